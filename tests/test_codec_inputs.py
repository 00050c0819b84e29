"""Odd and bad inputs: each either works or is refused with one line and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ldmz.codec import DecodeParams, EncodeParams
from ldmz.codec.api import decode, encode
from ldmz.codec.audio_io import AudioError
from ldmz.codec.cli import main
from ldmz.codec.models import ModelError
from ldmz.formats import LdmzFile


def _run(argv: list[str], capsys) -> tuple[int, list[str]]:  # noqa: ANN001
    rc = main([*argv, "-q"])
    return rc, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def _roundtrip(path: Path, model: Path, capsys) -> np.ndarray:  # noqa: ANN001
    rc, err = _run(["encode", str(path), "--model", str(model)], capsys)
    assert (rc, err) == (0, [])
    out = path.with_name(path.stem + ".out.wav")
    rc, err = _run(["decode", str(path.with_suffix(".ldmz")), "-o", str(out), "--model",
                    str(model)], capsys)
    assert (rc, err) == (0, [])
    y, sr = sf.read(out, always_2d=True)
    assert sr == sf.info(path).samplerate
    return y


def test_silence_decodes_to_silence(tiny_audioldm: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    sf.write(tmp_path / "s.wav", np.zeros((4000, 2)), 16000)
    y = _roundtrip(tmp_path / "s.wav", tiny_audioldm, capsys)
    assert y.shape == (4000, 2) and not y.any()


def test_a_few_samples(tiny_audioldm: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    sf.write(tmp_path / "few.wav", np.array([0.1, -0.2, 0.3, 0.0, 0.5]), 44100)
    y = _roundtrip(tmp_path / "few.wav", tiny_audioldm, capsys)
    assert y.shape == (5, 1)


def test_clipped_input(tiny_audioldm: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    t = np.arange(8000) / 16000
    x = np.clip(3 * np.sin(2 * np.pi * 200 * t), -1, 1)  # hard-clipped at full scale
    sf.write(tmp_path / "clip.wav", x, 16000, subtype="PCM_16")
    y = _roundtrip(tmp_path / "clip.wav", tiny_audioldm, capsys)
    assert y.shape == (8000, 1) and np.isfinite(y).all() and np.abs(y).max() <= 1.0


@pytest.mark.parametrize("sr", [8000, 96000])
def test_phone_and_hires_rates(tiny_audioldm: Path, tmp_path: Path, capsys, sr: int) -> None:  # noqa: ANN001
    t = np.arange(int(0.3 * sr)) / sr
    sf.write(tmp_path / f"r{sr}.wav", 0.5 * np.sin(2 * np.pi * 300 * t), sr)
    y = _roundtrip(tmp_path / f"r{sr}.wav", tiny_audioldm, capsys)
    assert y.shape == (len(t), 1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_refused(tiny_audioldm: Path, tmp_path: Path, capsys,  # noqa: ANN001
                                 bad: float) -> None:
    x = np.zeros(1000, np.float32)
    x[500] = bad
    path = tmp_path / "nan.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    rc, err = _run(["encode", str(path), "--model", str(tiny_audioldm)], capsys)
    assert rc == 1 and len(err) == 1 and str(path) in err[0] and "NaN or inf" in err[0]
    assert not path.with_suffix(".ldmz").exists()
    with pytest.raises(AudioError, match="NaN or inf"):
        encode(x, 16000, EncodeParams(model=str(tiny_audioldm)))


def test_missing_model_says_where_it_looked(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    sf.write(tmp_path / "a.wav", np.zeros(100), 16000)
    rc, err = _run(["encode", str(tmp_path / "a.wav"), "--model", str(tmp_path / "nope")],
                   capsys)
    assert rc == 1 and len(err) == 1
    assert "not found" in err[0] and f"no folder at {tmp_path / 'nope'}" in err[0]
    assert "--model" in err[0]


def test_other_model_is_refused(tiny_audioldm: Path, tiny_audioldm_other: Path,
                                tmp_path: Path, capsys) -> None:  # noqa: ANN001
    sf.write(tmp_path / "a.wav", 0.1 * np.ones(2000), 16000)
    assert _run(["encode", str(tmp_path / "a.wav"), "--model", str(tiny_audioldm)], capsys)[0] \
        == 0
    rc, err = _run(["decode", str(tmp_path / "a.ldmz"), "-o", str(tmp_path / "b.wav"),
                    "--model", str(tiny_audioldm_other)], capsys)
    assert rc == 1 and len(err) == 1 and "made by model" in err[0] and "a.ldmz" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ldmz", "a.wav"]
    with pytest.raises(ModelError):
        decode(LdmzFile.load(tmp_path / "a.ldmz"), DecodeParams(model=str(tiny_audioldm_other)))


@pytest.mark.parametrize("content", [b"", b"ID3 this is no mp3", bytes(range(256)) * 40])
def test_unreadable_audio(tmp_path: Path, capsys, content: bytes) -> None:  # noqa: ANN001
    path = tmp_path / "x.mp3"
    path.write_bytes(content)
    rc, err = _run(["encode", str(path), "--model", "unused"], capsys)
    err = [e for e in err if not e.startswith("Note:")]  # mpg123's own chatter, if any
    assert rc == 1 and len(err) == 1 and str(path) in err[0] and "cannot decode" in err[0]


def test_missing_input(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    rc, err = _run(["encode", str(tmp_path / "ghost.wav")], capsys)
    assert rc == 1 and err == [f"{tmp_path / 'ghost.wav'}: no such file"]


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_damaged_ldmz(tiny_audioldm: Path, tmp_path: Path, capsys, damage: str) -> None:  # noqa: ANN001
    sf.write(tmp_path / "a.wav", 0.2 * np.ones(3000), 16000)
    assert _run(["encode", str(tmp_path / "a.wav"), "--model", str(tiny_audioldm)], capsys)[0] \
        == 0
    path = tmp_path / "a.ldmz"
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-3] ^= 0x40
    else:
        data = bytearray(b"\x00garbage" * 50)
    path.write_bytes(bytes(data))
    rc, err = _run(["decode", str(path), "-o", str(tmp_path / "o.wav")], capsys)
    assert rc == 1 and len(err) == 1 and str(path) in err[0]
    assert not (tmp_path / "o.wav").exists()
