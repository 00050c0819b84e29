"""`ldmz encode` / `ldmz decode` in-process: batches, suffix inference, --force, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ldmz.codec.cli import build_parser, main
from ldmz.codec.cli.convert import decode_params, encode_params
from ldmz.codec.params import DecodeParams, EncodeParams
from ldmz.formats import LdmzFile


def _wav(path: Path, seconds: float = 0.5, sr: int = 16000, channels: int = 1) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.4 * np.sin(2 * np.pi * 440 * t)
    sf.write(path, np.stack([x] * channels, axis=1), sr)
    return path


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith(".")]


def test_cli_defaults_are_the_params_defaults() -> None:
    p = build_parser()
    assert encode_params(p.parse_args(["encode", "x.wav"])) == EncodeParams()
    assert decode_params(p.parse_args(["decode", "x.ldmz"])) == DecodeParams()


def test_encode_then_decode(tiny_audioldm: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    src = _wav(tmp_path / "a.wav", channels=2, sr=22050)
    rc = main(["encode", str(src), "--model", str(tiny_audioldm), "--bits", "3",
               "--title", "hello", "-q"])
    assert rc == 0, capsys.readouterr().err
    f = LdmzFile.load(tmp_path / "a.ldmz")
    assert f.header.tags == {"title": "hello"} and max(f.header.quantizer.bits) == 3
    out = tmp_path / "b.flac"
    rc = main(["decode", str(tmp_path / "a.ldmz"), "-o", str(out), "--sr", "16000", "-q",
               "--model", str(tiny_audioldm)])
    assert rc == 0, capsys.readouterr().err
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.frames, info.format) == (16000, 2, 8000, "FLAC")
    assert _no_temp_files(tmp_path)


def test_direction_from_suffix(tiny_audioldm: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    src = _wav(tmp_path / "s.wav")
    assert main([str(src), "--model", str(tiny_audioldm), "-q"]) == 0
    assert (tmp_path / "s.ldmz").is_file()
    assert main([str(tmp_path / "s.ldmz"), "-o", str(tmp_path / "back.wav"), "-q",
                 "--model", str(tiny_audioldm)]) == 0
    assert sf.info(tmp_path / "back.wav").frames == 8000
    assert capsys.readouterr().err == ""


def test_batch_with_a_bad_file(tiny_audioldm: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    good = [_wav(tmp_path / f"g{i}.wav") for i in range(2)]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wave file" * 20)
    out = tmp_path / "out"
    rc = main(["encode", str(good[0]), str(bad), str(good[1]), "-o", str(out),
               "--model", str(tiny_audioldm), "-q"])
    assert rc == 1
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and str(bad) in err[0] and "convert it" in err[0]
    assert sorted(p.name for p in out.iterdir()) == ["g0.ldmz", "g1.ldmz"]


def test_refuses_to_overwrite_without_force(tiny_audioldm: Path, tmp_path: Path,
                                            capsys) -> None:  # noqa: ANN001
    src = _wav(tmp_path / "a.wav")
    dst = tmp_path / "a.ldmz"
    dst.write_bytes(b"precious")
    rc = main(["encode", str(src), "--model", str(tiny_audioldm), "-q"])
    err = _lines(capsys.readouterr().err)
    assert rc == 1 and len(err) == 1 and "--force" in err[0] and str(dst) in err[0]
    assert dst.read_bytes() == b"precious"
    assert main(["encode", str(src), "--model", str(tiny_audioldm), "-q", "--force"]) == 0
    assert LdmzFile.load(dst).header.source.samples == 8000
    assert _no_temp_files(tmp_path)


def test_failed_decode_leaves_nothing(tiny_audioldm: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    src = _wav(tmp_path / "d.wav")
    assert main(["encode", str(src), "--model", str(tiny_audioldm), "-q"]) == 0
    src.unlink()
    damaged = tmp_path / "d.ldmz"
    damaged.write_bytes(damaged.read_bytes()[:-7])  # truncated
    rc = main(["decode", str(damaged), "-q"])
    err = _lines(capsys.readouterr().err)
    assert rc == 1 and len(err) == 1 and str(damaged) in err[0] and "re-encode" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.ldmz"]


def test_recursive_folder(tiny_audioldm: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    (tmp_path / "in" / "sub").mkdir(parents=True)
    _wav(tmp_path / "in" / "x.wav")
    _wav(tmp_path / "in" / "sub" / "y.flac")
    (tmp_path / "in" / "notes.txt").write_text("not audio")
    rc = main(["encode", str(tmp_path / "in"), "--model", str(tiny_audioldm), "-q"])
    err = _lines(capsys.readouterr().err)
    assert rc == 1 and len(err) == 1 and "-r" in err[0]
    out = tmp_path / "out"
    rc = main(["encode", str(tmp_path / "in"), "-r", "-o", str(out), "--model",
               str(tiny_audioldm), "-q"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["x.ldmz", "y.ldmz"]
    rc = main(["decode", str(out), "-r", "--format", "flac", "-q", "--model", str(tiny_audioldm)])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["x.ldmz", "x.ldmz.flac", "y.ldmz",
                                                     "y.ldmz.flac"]
    assert _no_temp_files(tmp_path)


@pytest.mark.parametrize("argv", [["encode", "a.wav", "--chunk-seconds", "0"],
                                  ["decode", "a.ldmz", "--sr", "-5"],
                                  ["decode", "a.ldmz", "--vocoder", "nonsense"]])
def test_bad_options_are_usage_errors(argv: list[str], capsys) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_output_must_be_a_folder_for_several_inputs(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    a, b = _wav(tmp_path / "a.wav"), _wav(tmp_path / "b.wav")
    rc = main(["encode", str(a), str(b), "-o", str(tmp_path / "one.ldmz"), "-q"])
    err = _lines(capsys.readouterr().err)
    assert rc == 1 and len(err) == 1 and "give a folder" in err[0]
    assert not (tmp_path / "one.ldmz").exists()
    (tmp_path / "empty").mkdir()
    rc = main(["encode", str(tmp_path / "empty"), "-r", "-q"])
    err = _lines(capsys.readouterr().err)
    assert rc == 1 and len(err) == 1 and "no " in err[0]


def test_vocoder_option_knows_every_builtin() -> None:
    """The CLI's torch-free list of vocoders is the codec's."""
    import argparse

    from ldmz.codec.cli.convert import _vocoder
    from ldmz.codec.vocoders import VOCODERS

    assert [_vocoder(v) for v in VOCODERS] == list(VOCODERS) and _vocoder("") == ""
    with pytest.raises(argparse.ArgumentTypeError, match="griffinlim"):
        _vocoder("nonsense")
