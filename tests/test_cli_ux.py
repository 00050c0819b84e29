"""The CLI by its peers' conventions (issue 15), in-process: safe names, peaks, pipes, tags,
salvage, one line per file, help that teaches, completion and the man page."""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ldmz.codec.cli import build_parser, main
from ldmz.formats import LdmzFile


def _wav(path: Path, seconds: float = 0.5, sr: int = 16000, channels: int = 1,
         tags: dict[str, str] | None = None, fmt: str | None = None) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.4 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) / 1.5
    with sf.SoundFile(path, "w", sr, channels, format=fmt) as f:
        for k, v in (tags or {}).items():
            setattr(f, k, v)
        f.write(np.stack([x] * channels, axis=1))
    return path


def _m(tiny: Path) -> list[str]:
    """A file names its model, never a folder: decoding one made by a folder names it."""
    return ["--model", str(tiny)]


def _ldmz(tiny: Path, folder: Path, name: str = "a", seconds: float = 0.5, *extra: str) -> Path:
    src = _wav(folder / f"{name}.wav", seconds)
    assert main(["encode", str(src), "--model", str(tiny), "-q", *extra]) == 0
    return folder / f"{name}.ldmz"


def _err_lines(capsys: pytest.CaptureFixture) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


# -------------------------------------------------------------- never lose the user's audio
def test_decode_without_o_never_aims_at_the_source(tiny_audioldm: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    src = _wav(tmp_path / "song.wav")
    before = src.read_bytes()
    assert main([str(src), "--model", str(tiny_audioldm), "-q"]) == 0
    # the natural round trip
    assert main([str(tmp_path / "song.ldmz"), "-q", *_m(tiny_audioldm)]) == 0
    assert src.read_bytes() == before
    out = tmp_path / "song.ldmz.wav"
    assert sf.info(out).frames == 8000 and sf.info(out).subtype == "FLOAT"
    # again: refused, --force is safe
    assert main([str(tmp_path / "song.ldmz"), "-q", *_m(tiny_audioldm)]) == 1
    assert "--force" in _err_lines(capsys)[0]


def test_force_is_never_suggested_onto_the_source(tiny_audioldm: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    f = _ldmz(tiny_audioldm, tmp_path, "song")
    src = tmp_path / "song.wav"
    before = src.read_bytes()
    assert main(["decode", *_m(tiny_audioldm), str(f), "-o", str(src), "-q"]) == 1
    err = _err_lines(capsys)
    assert len(err) == 1 and "may be the original" in err[0] and "--force" not in err[0]
    assert src.read_bytes() == before
    other = _wav(tmp_path / "other.wav", seconds=0.3)  # not the source: --force is offered
    assert main(["decode", *_m(tiny_audioldm), str(f), "-o", str(other), "-q"]) == 1
    assert "--force" in _err_lines(capsys)[0]


def test_encode_never_writes_ldmz_bytes_under_an_audio_name(
        tiny_audioldm: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = _wav(tmp_path / "song.wav")
    flac = _wav(tmp_path / "song.flac", fmt="FLAC")
    before = flac.read_bytes()
    for force in ([], ["--force"]):
        assert main(["encode", str(src), "-o", str(flac), "--model", str(tiny_audioldm),
                     "-q", *force]) == 1
        err = _err_lines(capsys)
        assert len(err) == 1 and ".ldmz" in err[0] and "--force" not in err[0]
    assert flac.read_bytes() == before
    f = _ldmz(tiny_audioldm, tmp_path)
    assert main(["decode", str(f), "-o", str(tmp_path / "a.mp3"), "-q"]) == 1
    assert ".wav or .flac" in _err_lines(capsys)[0]


def _loud_stream(amp: float):  # noqa: ANN202 - a decode_stream stand-in with overs
    from ldmz.codec.api import DecodeStream

    def fake(f, params=None, **kw):  # noqa: ANN001, ANN003, ANN202
        s = f.header.source
        t = np.arange(s.samples) / s.sample_rate
        x = (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        blocks = [np.stack([x] * s.channels, axis=1)[i:i + 1000] for i in range(0, len(x), 1000)]
        return DecodeStream(s.sample_rate, s.channels, s.samples, "fake", iter(blocks))

    return fake


@pytest.mark.parametrize(("extra", "subtype", "peak", "note"), [
    ([], "FLOAT", 2.0, "kept as float"),                                   # float keeps overs
    (["--format", "flac"], "PCM_24", 10 ** (-1 / 20), "lowered 7.0 dB"),   # integer: no clip
    (["--sample-format", "s16", "--peak", "keep"], "PCM_16", 1.0, "samples clipped"),
    (["--peak", "normalize"], "FLOAT", 10 ** (-1 / 20), "lowered"),
])
def test_peak_is_measured_and_nothing_clips_silently(
        tiny_audioldm: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch, extra: list[str], subtype: str, peak: float,
        note: str) -> None:
    from ldmz.codec import api

    f = _ldmz(tiny_audioldm, tmp_path)
    monkeypatch.setattr(api, "decode_stream", _loud_stream(2.0))
    assert main(["decode", str(f), *extra]) == 0
    err = _err_lines(capsys)
    out = next(p for p in tmp_path.iterdir() if p.name.startswith("a.ldmz."))
    y, _ = sf.read(out, dtype="float32")
    assert sf.info(out).subtype == subtype
    assert np.abs(y).max() == pytest.approx(peak, abs=2e-3)
    assert any(note in line for line in err), err
    assert "peak +6.0 dBFS" in err[-1]  # the success line reports the decoded peak
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


# -------------------------------------------------------------- pipes
def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_stdin_and_stdout(tiny_audioldm: Path, tmp_path: Path,
                          capsysbinary: pytest.CaptureFixture,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    src = _wav(tmp_path / "in.flac", fmt="FLAC", tags={"title": "Piped"})
    _stdin(monkeypatch, src.read_bytes())  # ffmpeg ... | ldmz encode - -o x.ldmz
    assert main(["encode", "-", "-o", str(tmp_path / "x.ldmz"), "--model", str(tiny_audioldm),
                 "-q"]) == 0
    f = LdmzFile.load(tmp_path / "x.ldmz")
    assert f.header.source.samples == 8000 and f.header.tags == {"title": "Piped"}
    _stdin(monkeypatch, src.read_bytes())  # no -o: standard output, as flac does
    assert main(["encode", "-", "--model", str(tiny_audioldm), "-q"]) == 0
    got = LdmzFile.from_bytes(capsysbinary.readouterr().out)
    assert got.header.source.samples == 8000
    _stdin(monkeypatch, (tmp_path / "x.ldmz").read_bytes())  # ldmz decode - -o - | aplay
    assert main(["decode", *_m(tiny_audioldm), "-", "-o", "-", "-q"]) == 0
    wav, err = capsysbinary.readouterr()
    y, sr = sf.read(io.BytesIO(wav), dtype="float32")
    assert (len(y), sr, err) == (8000, 16000, b"")
    assert wav[36:40] == b"fact"  # ldmz's own streamed header (libsndfile's would have PEAK)
    with sf.SoundFile(io.BytesIO(wav)) as piped:  # streamed: the header written first
        assert piped.subtype == "FLOAT" and piped.title == "Piped"
    assert main(["decode", *_m(tiny_audioldm), str(tmp_path / "x.ldmz"), "-q"]) == 0  # a file
    assert np.array_equal(sf.read(tmp_path / "x.ldmz.wav", dtype="float32")[0], y)
    (tmp_path / "x.ldmz.wav").unlink()
    assert main(["decode", *_m(tiny_audioldm), str(tmp_path / "x.ldmz"), "-o", "-", "--format",
                 "flac", "-q"]) == 0
    flac = capsysbinary.readouterr().out
    assert sf.info(io.BytesIO(flac)).format == "FLAC" and sf.info(io.BytesIO(flac)).frames == 8000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.flac", "x.ldmz"]  # no file "-"


def test_no_binary_onto_a_terminal(tiny_audioldm: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    f = _ldmz(tiny_audioldm, tmp_path)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["decode", *_m(tiny_audioldm), str(f), "-o", "-"]) == 1
    err = _err_lines(capsys)
    assert len(err) == 1 and "terminal" in err[0]


# -------------------------------------------------------------- one line per file, progress
def test_one_line_per_file_and_quiet(tiny_audioldm: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _wav(tmp_path / "a.wav"), _wav(tmp_path / "b.wav", seconds=1.0)
    assert main(["encode", str(a), str(b), "--model", str(tiny_audioldm)]) == 0
    err = _err_lines(capsys)
    assert len(err) == 2, err  # no progress bar off a terminal
    pat = r"^{} -> {}: {} s, [\d.]+ (B|kB), [\d.]+ kbps, [\d.]+x real time$"
    assert re.match(pat.format(re.escape(str(a)), re.escape(str(tmp_path / "a.ldmz")), "0.50"),
                    err[0]), err[0]
    assert re.match(pat.format(re.escape(str(b)), ".*b.ldmz", "1.00"), err[1]), err[1]
    assert main(["decode", *_m(tiny_audioldm), str(tmp_path / "a.ldmz")]) == 0
    err = _err_lines(capsys)
    assert len(err) == 1 and "a.ldmz.wav: 0.50 s" in err[0] and "dBFS" in err[0]
    assert main(["decode", *_m(tiny_audioldm), str(tmp_path / "b.ldmz"), "-q"]) == 0
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # on a terminal: progress
    assert main(["decode", *_m(tiny_audioldm), str(tmp_path / "a.ldmz"),
                 str(tmp_path / "b.ldmz"), "-f"]) == 0
    assert "2/2" in capsys.readouterr().err


# -------------------------------------------------------------- tags
def test_tags_from_source_options_and_back(tiny_audioldm: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    src = _wav(tmp_path / "t.flac", fmt="FLAC",
               tags={"title": "Song", "artist": "Me", "album": "LP", "date": "2020"})
    assert main(["encode", str(src), "--model", str(tiny_audioldm), "--album", "Other",
                 "--genre", "Jazz", "-q"]) == 0
    tags = LdmzFile.load(tmp_path / "t.ldmz").header.tags
    assert tags == {"title": "Song", "artist": "Me", "album": "Other", "date": "2020",
                    "genre": "Jazz"}
    for fmt in ("wav", "flac"):
        assert main(["decode", *_m(tiny_audioldm), str(tmp_path / "t.ldmz"), "--format", fmt,
                     "-q"]) == 0
        with sf.SoundFile(tmp_path / f"t.ldmz.{fmt}") as f:
            got = f.copy_metadata()
            assert got.pop("software").startswith("ldmz 0.1.0") and got == tags, fmt
    assert main(["encode", str(src), "--model", str(tiny_audioldm), "--no-source-tags",
                 "--comment", "c", "-o", str(tmp_path / "n.ldmz"), "-q"]) == 0
    assert LdmzFile.load(tmp_path / "n.ldmz").header.tags == {"comment": "c"}
    opts = {a.dest for a in _subs()["encode"]._actions}
    assert {"title", "artist", "album", "genre", "comment"} <= opts  # ldmzenc's tag set


@pytest.mark.skipif("MP3" not in sf.available_formats(), reason="libsndfile without MP3")
def test_id3_tags_are_carried(tmp_path: Path) -> None:
    from ldmz.codec.audio_io import read_tags

    mp3 = _wav(tmp_path / "s.mp3", seconds=1.0, fmt="MP3", tags={"title": "Id3", "artist": "A"})
    assert read_tags(mp3) == {"title": "Id3", "artist": "A"}
    if shutil.which("ffmpeg"):  # ID3v2.4 and Vorbis comments as ffmpeg writes them
        wav = _wav(tmp_path / "s.wav", seconds=1.0)
        for ext in ("mp3", "opus", "ogg", "m4a"):
            out = tmp_path / f"f.{ext}"
            subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-metadata", "title=T",
                            "-metadata", "artist=Ä", "-metadata", "track=4", str(out)],
                           check=True)
            assert {"title": "T", "artist": "Ä"}.items() <= read_tags(out).items(), ext


# -------------------------------------------------------------- salvage
def _damage(path: Path, chunk: int) -> None:
    f = LdmzFile.load(path)
    data = bytearray(path.read_bytes())
    c = f.header.chunks[chunk]
    data[len(data) - f.header.data_size + c.offset + c.size // 2] ^= 0x55
    path.write_bytes(bytes(data))


def test_salvage_decodes_the_rest_and_names_the_damage(tiny_audioldm: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    f = _ldmz(tiny_audioldm, tmp_path, "long", 3.0, "--chunk-seconds", "0.5")
    n_chunks = len(LdmzFile.load(f).header.chunks)
    assert n_chunks >= 5
    _damage(f, 2)
    assert main(["decode", *_m(tiny_audioldm), str(f), "-q"]) == 1
    err = _err_lines(capsys)
    assert len(err) == 1 and "--salvage" in err[0]
    assert main(["decode", *_m(tiny_audioldm), str(f), "--salvage", "-q"]) == 0
    err = _err_lines(capsys)
    assert len(err) == 1 and re.search(r"chunk 2 \(([\d.]+)-([\d.]+) s\).*silence", err[0])
    start, end = map(float, re.search(r"\(([\d.]+)-([\d.]+) s\)", err[0]).groups())
    y, sr = sf.read(tmp_path / "long.ldmz.wav", dtype="float32")
    assert len(y) == 3 * 16000
    assert not y[int(start * sr):int(end * sr)].any()  # the damaged span is silent
    assert np.abs(y[:int(start * sr)]).max() > 0 and np.abs(y[int(end * sr):]).max() > 0
    # ldmz info: the intact header first, then the damaged chunk
    assert main(["info", str(f)]) == 1
    out, err = capsys.readouterr()
    assert "duration     3.000 s" in out and "DAMAGED: 1 chunk of" in out
    assert re.search(r"chunk 2 +[\d.]+-[\d.]+ s +.*checksum", out)
    assert err.count("\n") == 1 and "--salvage" in err


def test_salvage_a_truncated_file(tiny_audioldm: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    f = _ldmz(tiny_audioldm, tmp_path, "cut", 3.0, "--chunk-seconds", "0.5")
    n = len(LdmzFile.load(f).header.chunks)
    f.write_bytes(f.read_bytes()[:-30])  # an interrupted download
    assert main(["decode", *_m(tiny_audioldm), str(f), "--salvage", "-o",
                 str(tmp_path / "cut.flac"), "-q"]) == 0
    err = _err_lines(capsys)
    assert len(err) == 1 and f"chunk {n - 1} (" in err[0]
    assert sf.info(tmp_path / "cut.flac").frames == 3 * 16000
    assert main(["info", str(f)]) == 1
    assert f"DAMAGED: 1 chunk of {n}" in capsys.readouterr().out


# -------------------------------------------------------------- help that teaches
def _subs() -> dict[str, argparse.ArgumentParser]:
    p = build_parser()
    return next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices


def test_every_command_teaches() -> None:
    for name, p in _subs().items():
        assert p.description and len(p.description) > 40, name
        examples = (p.epilog or "").partition("examples:\n")[2]
        assert len([ln for ln in examples.splitlines() if "ldmz " in ln]) >= 2, name
        for a in p._actions:
            assert a.help, (name, a.dest)
            takes_value = not a.option_strings or a.nargs != 0
            if takes_value and a.choices is None:
                assert a.metavar and re.fullmatch(r"[A-Z_]+", a.metavar), (name, a.dest)


def test_help_command_typos_and_unknown_options(capsys: pytest.CaptureFixture) -> None:
    assert main(["help", "decode"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ldmz decode") and "--salvage" in out and "examples:" in out
    assert main(["ecnode", "song.wav"]) == 2
    err = capsys.readouterr().err
    assert "did you mean `ldmz encode`" in err and "no such file" not in err
    with pytest.raises(SystemExit) as e:
        main(["info", "--bogus", "x.ldmz"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("usage: ldmz info") and "--bogus" in err
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and re.fullmatch(r"ldmz \d+\.\d+\.\d+\n", capsys.readouterr().out)


def test_info_into_a_closed_pipe_is_quiet(tiny_audioldm: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    f = _ldmz(tiny_audioldm, tmp_path)
    r, w = os.pipe()
    os.close(r)  # `ldmz info ... | head` after head has exited
    with os.fdopen(w, "w") as pipe:
        monkeypatch.setattr(sys, "stdout", pipe)
        assert main(["info", str(f), str(f)]) == 141
        monkeypatch.undo()
    assert capsys.readouterr().err == ""


def test_plurals(tiny_audioldm: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    f = _ldmz(tiny_audioldm, tmp_path)
    assert main(["info", str(f)]) == 0
    out = capsys.readouterr().out
    assert "1 chunk of" in out and "1 chunks" not in out


def test_eval_warns_when_durations_differ(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ref = _wav(tmp_path / "ref.wav", seconds=1.0)
    same = _wav(tmp_path / "same.wav", seconds=1.0)
    short = _wav(tmp_path / "short.wav", seconds=0.8)
    assert main(["eval", str(ref), str(same), str(short), "--json"]) == 0
    err = _err_lines(capsys)
    assert len(err) == 1 and str(short) in err[0] and "0.800 s" in err[0] \
        and "1.000 s" in err[0]


def test_visqol_defaults_agree() -> None:
    from ldmz.codec.bench.plan import BenchParams

    p = build_parser()
    ev = p.parse_args(["eval", "r.wav", "d.wav"]).visqol
    be = p.parse_args(["bench", "corpus"]).visqol
    assert ev is be is BenchParams().visqol is False


def test_absent_cuda_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    src = _wav(tmp_path / "a.wav")
    for cmd in (["encode", str(src)], ["decode", str(tmp_path / "a.ldmz")]):
        assert main([*cmd, "--device", "cuda", "-q"]) == 1
        err = _err_lines(capsys)
        assert len(err) == 1 and "'cuda' is not available" in err[0], err
        assert "report" not in err[0] and "--device cpu" in err[0]


# -------------------------------------------------------------- completion and man page
def test_completion_and_man_page(capsys: pytest.CaptureFixture) -> None:
    assert main(["completion", "bash"]) == 0
    bash = capsys.readouterr().out
    assert "complete" in bash and "--salvage" in bash and "--sample-format" in bash
    assert "_shtab_compgen_files" in bash  # IN and FILE complete as paths
    assert main(["completion", "zsh"]) == 0
    assert capsys.readouterr().out.startswith("#compdef ldmz")
    assert main(["help", "--man"]) == 0
    man = capsys.readouterr().out
    assert man.startswith(".TH LDMZ 1") or man.startswith('.TH LDMZ "1"')
    assert "salvage" in man and "completion" in man
    requests = set(re.findall(r"^\.(\w+)", man, re.M))  # a text line with "." reads as one
    assert requests <= {"TH", "SH", "SS", "TP", "B", "I", "BR", "RS", "RE", "PP"}, requests
    assert re.search(r"^ldmz \\- neural audio codec", man, re.M)  # NAME: ldmz - what it is


BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")


@pytest.mark.skipif(not BASH_COMPLETION.is_file() or not shutil.which("man"),
                    reason="needs bash-completion and man-db (packaging/setup.sh installs them)")
def test_install_shell_puts_them_where_bash_zsh_and_man_look(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "HOME": str(tmp_path), "LDMZ": str(Path(sys.executable).parent / "ldmz"),
           "PYTHONPATH": str(root.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("XDG_DATA_HOME", None)
    env.pop("BASH_COMPLETION_USER_DIR", None)
    subprocess.run(["sh", str(root / "packaging" / "install-shell.sh")], env=env, check=True,
                   capture_output=True)
    bash = ("source /usr/share/bash-completion/bash_completion; __load_completion ldmz; "
            "f=$(complete -p ldmz | sed 's/.*-F \\([^ ]*\\).*/\\1/'); "
            "COMP_WORDS=(ldmz de); COMP_CWORD=1; $f; echo ${COMPREPLY[@]}; "
            "COMP_WORDS=(ldmz decode --sal); COMP_CWORD=2; $f; echo ${COMPREPLY[@]}")
    out = subprocess.run(["bash", "-c", bash], env=env, capture_output=True, text=True).stdout
    assert out.split("\n")[:2] == ["decode demo", "--salvage"], out
    env["PATH"] = f"{tmp_path}/.local/bin:/usr/bin:/bin"
    man = subprocess.run(["man", "-w", "ldmz"], env=env, capture_output=True, text=True)
    assert man.stdout.strip() == str(tmp_path / ".local/share/man/man1/ldmz.1")
    if shutil.which("zsh"):
        zsh = (f"fpath=({tmp_path}/.local/share/zsh/site-functions $fpath); autoload -U compinit;"
               f" compinit -u -d {tmp_path}/zc; print $_comps[ldmz]")
        got = subprocess.run(["zsh", "-fc", zsh], env=env, capture_output=True, text=True)
        assert got.stdout.strip() == "_ldmz"
    subprocess.run(["sh", str(root / "packaging" / "install-shell.sh"), "--uninstall"],
                   env=env, check=True, capture_output=True)
    assert not [p for p in tmp_path.rglob("*ldmz*") if p.is_file()]
