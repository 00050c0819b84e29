"""Hostile files and hostile batches: what a file may legitimately say costs bounded work, and
every batch edge ends in one line per bad input (issue 14). Files are made in the tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import msgpack
import numpy as np
import pytest
import soundfile as sf

from ldmz.codec.cli import main
from ldmz.formats import (
    FormatError,
    LdmzFile,
    MelParams,
    ModelInfo,
    SourceInfo,
    pack_latents,
)
from ldmz.formats.chunks import crc32
from ldmz.formats.container import PREAMBLE

ROOT = Path(__file__).resolve().parents[1]
AUDIOLDM = MelParams(sample_rate=16000, n_fft=1024, hop_length=160, win_length=1024, n_mels=64,
                     fmin=0.0, fmax=8000.0, log_floor=1e-5, frontend="audioldm")


def _file(samples: int = 16000, frames: int | None = None, *, fpc: int = 8, sr: int = 16000,
          model: str = "m", lc: int = 2, fb: int = 3, **kw: object) -> LdmzFile:
    mel = MelParams()
    need = -(-max(-(-samples * mel.sample_rate // sr), mel.n_fft) // (mel.hop_length * 4))
    t = need if frames is None else frames
    z = np.random.default_rng(0).normal(size=(1, lc, t, fb)).astype(np.float32)
    return pack_latents(z, model=ModelInfo(model), mel=mel,
                        source=SourceInfo(sr, 1, samples, (1.0,)), bits=2,
                        frames_per_chunk=fpc, **kw)


def _forge(f: LdmzFile, edit) -> bytes:  # noqa: ANN001 - edit(header dict)
    """The file's bytes with its header edited and the header CRC made right again."""
    h = f.header.to_dict()
    edit(h)
    hb = msgpack.packb(h, use_bin_type=True)
    head = PREAMBLE.pack(b"LDMZ", 1, 0, 0, len(hb), 0)[:12]
    data = f.to_bytes()
    hlen = PREAMBLE.unpack(data[:16])[4]
    return head + crc32(head, hb).to_bytes(4, "little") + hb + data[16 + hlen:]


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def _wav(path: Path, seconds: float = 0.5, sr: int = 16000, channels: int = 1) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 330 * t)
    sf.write(path, np.stack([x] * channels, axis=1), sr)
    return path


# ---------------------------------------------------------------- cost follows the audio
def test_frames_far_beyond_source_samples_are_refused() -> None:
    f = _file(16000)
    need = f.header.frames_needed
    assert f.header.latent.frames == need  # the writer stores exactly what samples need
    with pytest.raises(FormatError, match="inconsistent"):
        _file(16000, frames=2 * need + 65)
    bad = _forge(_file(160000), lambda h: h["source"].update(samples=10))
    with pytest.raises(FormatError, match="inconsistent"):
        LdmzFile.from_bytes(bad)


@pytest.mark.parametrize(("field", "value"), [("sample_rate", 10_000_000), ("sample_rate", 0)])
def test_source_rate_sanity(field: str, value: int) -> None:
    with pytest.raises(FormatError, match="source.sample_rate"):
        LdmzFile.from_bytes(_forge(_file(), lambda h: h["source"].update({field: value})))


def test_latent_values_per_second_are_bounded() -> None:
    with pytest.raises(FormatError, match="values per second"):
        _file(16000, lc=256, fb=256)


@pytest.mark.parametrize(("where", "value"), [("gain", 1e300), ("gain", -1.0), ("q_step", 1e30),
                                              ("q_offset", -1e30)])
def test_insane_gain_and_quantizer_refused_at_parse(where: str, value: float) -> None:
    def edit(h: dict) -> None:
        if where == "gain":
            h["source"]["gain"][0] = value
        else:
            h["chunks"][0][where][0][0] = value

    with pytest.raises(FormatError, match=f"source.gain|{where}"):
        LdmzFile.from_bytes(_forge(_file(), edit))


def test_info_does_not_inflate_and_verify_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from ldmz.formats import chunks, container

    path = tmp_path / "a.ldmz"
    _file(16000 * 30).save(path)
    inflated = []
    real = chunks.decompress_chunk
    monkeypatch.setattr(container, "decompress_chunk",
                        lambda *a: inflated.append(a[2]) or real(*a))
    assert main(["info", str(path)]) == 0
    assert inflated == [] and "CRC-32" in capsys.readouterr().out
    assert main(["info", "--verify", "--json", str(path)]) == 0
    assert len(inflated) == len(LdmzFile.load(path, lazy=True).header.chunks)
    assert json.loads(capsys.readouterr().out)["verified"] == "full"
    data = bytearray(path.read_bytes())
    data[-2] ^= 1  # a damaged chunk is still caught without inflating
    path.write_bytes(bytes(data))
    assert main(["info", str(path)]) == 1
    assert "checksum mismatch" in capsys.readouterr().err


def test_latents_are_bounded() -> None:
    f = _file(16000 * 20)
    need = f.header.latent.frames * 2 * 3 * 4
    with pytest.raises(FormatError, match="chunk by chunk"):
        f.latents(max_bytes=need - 1)
    assert f.latents(max_bytes=need).nbytes == need


def test_writer_refuses_a_header_its_reader_would_reject(monkeypatch: pytest.MonkeyPatch) -> None:
    from ldmz.codec.api import _check_header_size
    from ldmz.formats import container

    f = _file(16000 * 5, fpc=1)
    monkeypatch.setattr(container, "MAX_HEADER_BYTES", 2000)
    with pytest.raises(FormatError, match="header would take"):
        f.to_bytes()
    with pytest.raises(ValueError, match="--chunk-seconds"):  # encode refuses before the work
        _check_header_size(64, 8, 40000, "x.wav")


def test_zero_padding_is_streamed_in_bounded_blocks() -> None:
    from ldmz.codec import api

    blocks = api._output(iter([]), np.ones(2, np.float32), 16000, 16000, 1 << 28)
    first = [next(blocks) for _ in range(3)]
    assert all(b.shape == (api.OUTPUT_BLOCK, 2) for b in first)


def test_decode_window_comes_from_the_model(tiny_audioldm: Path, signals,  # noqa: ANN001
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from ldmz.codec import DecodeParams, EncodeParams, api
    from ldmz.codec.models import load_model

    model = load_model(str(tiny_audioldm), "cpu")
    f = api.encode(signals.chirp(4.0, 16000), 16000,
                   EncodeParams(model=str(tiny_audioldm), chunk_seconds=2000.0))
    assert f.header.latent.frames_per_chunk == 50000  # the file asks for huge windows
    seen: list[int] = []
    cls = type(model.vae)
    real = cls.decode
    monkeypatch.setattr(cls, "decode", lambda self, z, *a, **k: seen.append(z.shape[2])
                        or real(self, z, *a, **k))
    monkeypatch.setattr(api, "model_window", lambda m: 20)
    y, _ = api.decode(f, DecodeParams(model=str(tiny_audioldm), vocoder="hifigan"))
    assert y.shape == (1, 64000)
    assert max(seen) <= 20 + 2 * model.context  # the model's window, not the file's


def test_decoding_stops_at_source_samples(tiny_audioldm: Path, signals,  # noqa: ANN001
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from ldmz.codec import DecodeParams, EncodeParams, api

    f = api.encode(signals.chirp(2.0, 16000), 16000, EncodeParams(model=str(tiny_audioldm)))
    z = f.latents()
    need = f.header.frames_needed
    long = np.concatenate([z, z], axis=2)  # twice the frames the 2 s of samples need
    h = f.header
    g = pack_latents(long, model=h.model, mel=h.mel, source=h.source, bits=4,
                     frames_per_chunk=h.latent.frames_per_chunk, time_downsample=4)
    assert g.header.latent.frames == 2 * need and api.decoded_frames(g) == need
    seen: list[int] = []
    real = api._Latents.get
    monkeypatch.setattr(api._Latents, "get", lambda self, a, b: seen.append(b) or real(self, a, b))
    y, _ = api.decode(g, DecodeParams(model=str(tiny_audioldm), vocoder="hifigan"))
    assert y.shape == (1, 32000) and max(seen) <= need


def test_decoded_output_is_checked(tiny_audioldm: Path, tmp_path: Path, signals,  # noqa: ANN001
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from ldmz.codec import EncodeParams, api

    with pytest.raises(FormatError, match="NaN or infinite"):
        api._check_output(np.array([[0.1], [np.inf]], np.float32), "x.ldmz")
    with pytest.raises(FormatError, match="far beyond full scale"):
        api._check_output(np.full((100, 1), 10.0, np.float32), "x.ldmz")
    api._check_output(np.full((100, 1), 0.9, np.float32), "x.ldmz")
    path = tmp_path / "a.ldmz"
    api.encode(signals.chirp(0.5, 16000), 16000, EncodeParams(model=str(tiny_audioldm))).save(path)
    # gain at its bound still parses; the output it gives is refused and nothing is written
    path.write_bytes(_forge(LdmzFile.load(path), lambda h: h["source"].update(gain=[1e4])))
    out = tmp_path / "o.wav"
    rc = main(["decode", str(path), "-o", str(out), "-q", "--model", str(tiny_audioldm),
               "--vocoder", "griffinlim", "--griffinlim-iters", "2"])
    err = _lines(capsys.readouterr().err)
    assert rc == 1 and len(err) == 1 and "full scale" in err[0] and str(path) in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ldmz"]


# ---------------------------------------------------------------- what a file may name
@pytest.mark.parametrize("kind", ["absolute", "relative", "dotdot", "home"])
def test_a_file_names_a_model_not_a_path(tiny_audioldm: Path, tmp_path: Path, signals,  # noqa: ANN001
                                         kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from ldmz.codec import DecodeParams, EncodeParams, api
    from ldmz.codec.models import ModelError, registry

    f = api.encode(signals.chirp(0.3, 16000), 16000, EncodeParams(model=str(tiny_audioldm)))
    monkeypatch.chdir(tiny_audioldm.parent)
    monkeypatch.setenv("HOME", str(tiny_audioldm.parent))
    mid = {"absolute": str(tiny_audioldm), "relative": tiny_audioldm.name,
           "dotdot": f"../{tiny_audioldm.parent.name}/{tiny_audioldm.name}",
           "home": f"~/{tiny_audioldm.name}"}[kind]
    g = LdmzFile.from_bytes(_forge(f, lambda h: h["model"].update(id=mid)))
    loaded = []
    monkeypatch.setattr(registry, "load_folder", lambda *a, **k: loaded.append(a))
    with pytest.raises(ModelError, match="not a registered model.*--model PATH"):
        api.decode_stream(g)
    assert loaded == []  # nothing was loaded from the folder the file named
    monkeypatch.undo()
    # the user's --model PATH is used, and only because its weights hash matches
    y, _ = api.decode(g, DecodeParams(model=str(tiny_audioldm), vocoder="griffinlim",
                                      griffinlim_iters=2))
    assert y.shape == (1, 4800)


def test_a_registry_id_in_a_file_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    from ldmz.codec.models import registry

    calls = []
    monkeypatch.setattr(registry, "load_model", lambda *a: calls.append(a) or "model")
    assert registry.load_named_model("cvssp/audioldm2", "cpu", False) == "model"
    assert calls == [("cvssp/audioldm2", "cpu", True)]  # offline: the local cache only


def test_terminal_escapes_are_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evil = "\x1b[2J\x1b[H  checksums    OK\n\u202eevil"
    path = tmp_path / "e.ldmz"
    _file(model=evil, writer=evil, tags={"title": evil, evil: "x"}).save(path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\\x1b[2J" in out
    assert sum(ln.strip().startswith("checksums") for ln in out.splitlines()) == 1
    bad = tmp_path / "bad\x1b[31m.ldmz"  # error messages quoting a name are escaped too
    bad.write_bytes(b"LDMZ" + b"\0" * 40)
    assert main(["info", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "bad\\x1b[31m.ldmz" in err


def test_eval_with_zero_samples_is_one_line(tiny_audioldm: Path, tmp_path: Path, signals: type,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from ldmz.codec import EncodeParams, api

    f = api.encode(signals.chirp(0.3, 16000), 16000, EncodeParams(model=str(tiny_audioldm)))
    path = tmp_path / "z.ldmz"
    path.write_bytes(_forge(f, lambda h: h["source"].update(samples=0)))
    _wav(tmp_path / "ref.wav")
    rc = main(["eval", str(tmp_path / "ref.wav"), str(path), "--model", str(tiny_audioldm),
               "--no-visqol"])
    err = _lines(capsys.readouterr().err)
    assert rc == 1 and len(err) == 1 and str(path) in err[0] and "Traceback" not in err[0]


# ---------------------------------------------------------------- batches and writes
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifos_are_refused_everywhere(tiny_audioldm: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from ldmz.codec.audio_io import AudioError, read_audio

    fifo = tmp_path / "f.ldmz"
    os.mkfifo(fifo)
    os.mkfifo(tmp_path / "g.wav")
    t0 = time.monotonic()
    assert main(["info", str(fifo)]) == 1
    assert "not a regular file (a FIFO)" in capsys.readouterr().err
    with pytest.raises(FormatError, match="FIFO"):
        LdmzFile.load(fifo, lazy=True)
    with pytest.raises(AudioError, match="not a regular file"):
        read_audio(tmp_path / "g.wav")
    good = tmp_path / "good.ldmz"
    _wav(tmp_path / "good.wav")
    assert main(["encode", str(tmp_path / "good.wav"), "--model", str(tiny_audioldm), "-q"]) == 0
    rc = main(["decode", str(fifo), str(good), "-o", str(tmp_path / "out"), "-q", "--model",
               str(tiny_audioldm), "--vocoder", "hifigan"])
    err = _lines(capsys.readouterr().err)
    assert rc == 1 and len(err) == 1 and "FIFO" in err[0] and str(fifo) in err[0]
    assert [p.suffix for p in (tmp_path / "out").iterdir()] == [".wav"]  # good.ldmz decoded
    assert time.monotonic() - t0 < 60


def test_a_folder_without_r_is_one_bad_input(tiny_audioldm: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "d").mkdir()
    _wav(tmp_path / "d" / "in.wav")
    a = _wav(tmp_path / "a.wav")
    rc = main(["encode", str(tmp_path / "d"), str(a), "--model", str(tiny_audioldm), "-q"])
    err = _lines(capsys.readouterr().err)
    assert rc == 1 and len(err) == 1 and "-r" in err[0] and str(tmp_path / "d") in err[0]
    assert (tmp_path / "a.ldmz").is_file()


def test_same_stem_inputs_are_refused_up_front(tiny_audioldm: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        _wav(tmp_path / d / "x.wav")
    c = _wav(tmp_path / "c.wav")
    out = tmp_path / "out"
    rc = main(["encode", str(tmp_path / "a" / "x.wav"), str(tmp_path / "b" / "x.wav"), str(c),
               "-o", str(out), "--force", "--model", str(tiny_audioldm), "-q"])
    err = _lines(capsys.readouterr().err)
    assert rc == 1 and len(err) == 2
    for d, line in zip("ab", err, strict=True):
        assert line.startswith(str(tmp_path / d / "x.wav")) and "would also be written" in line
    assert sorted(p.name for p in out.iterdir()) == ["c.ldmz"]


def test_demo_and_bench_do_not_overwrite_without_force(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "example.ldmz").write_bytes(b"precious")
    t0 = time.monotonic()
    assert main(["demo", "--out", str(out)]) == 1
    assert "--force" in capsys.readouterr().err and time.monotonic() - t0 < 20
    assert (out / "example.ldmz").read_bytes() == b"precious"
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "results.md").write_text("old run")
    assert main(["bench", str(tmp_path), "--out", str(tmp_path / "bench"), "-q"]) == 1
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "bench" / "results.md").read_text() == "old run"


_WRITER = """
import os, signal, sys, time
sys.path.insert(0, {root!r})
from ldmz.formats import fileio
from ldmz.codec.cli import _sigterm_unwinds
fileio._TMPFILE_OK = {tmpfile}
with _sigterm_unwinds():
    with fileio.atomic_file({path!r}) as f:
        f.write(b"partial" * 1000)
        f.flush()
        print("ready", flush=True)
        time.sleep(60)
"""


@pytest.mark.parametrize(("sig", "tmpfile"), [(signal.SIGTERM, False), (signal.SIGTERM, True),
                                              (signal.SIGKILL, True)])
def test_a_killed_write_leaves_nothing(tmp_path: Path, sig: int, tmpfile: bool) -> None:
    from ldmz.formats import fileio

    if tmpfile and not fileio._TMPFILE_OK:
        pytest.skip("no O_TMPFILE on this system")
    code = _WRITER.format(root=str(ROOT.parent), path=str(tmp_path / "out.wav"),
                          tmpfile=tmpfile)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    if not tmpfile:  # the named fallback: a hidden temporary file exists while writing
        assert any(n.name.startswith(".out.wav.") for n in tmp_path.iterdir())
    p.send_signal(sig)
    p.wait(timeout=30)
    p.stdout.close()
    assert p.returncode == (143 if sig == signal.SIGTERM else -9)
    assert list(tmp_path.iterdir()) == []


def test_one_descriptor_survives_an_atomic_replace(tmp_path: Path) -> None:
    from ldmz.formats.fileio import write_atomic

    path = tmp_path / "a.ldmz"
    a, b = _file(16000 * 10), _file(16000 * 12, lc=3)
    a.save(path)
    f = LdmzFile.load(path, lazy=True)
    write_atomic(path, b.to_bytes(), overwrite=True)  # replaced while f is open
    for i in range(len(f.header.chunks)):
        np.testing.assert_array_equal(f.read_chunk(i), a.read_chunk(i))
    f.close()
    assert LdmzFile.load(path).header.latent.channels == 3


def test_new_files_follow_the_umask(tmp_path: Path) -> None:
    from ldmz.codec.audio_io import write_audio
    from ldmz.formats.fileio import write_atomic

    old = os.umask(0o027)
    try:
        write_audio(tmp_path / "a.wav", np.zeros((1, 100), np.float32), 16000)
        write_audio(tmp_path / "a.flac", np.zeros((1, 100), np.float32), 16000)
        write_atomic(tmp_path / "a.ldmz", b"x")
        _file().save(tmp_path / "b.ldmz")
    finally:
        os.umask(old)
    for p in tmp_path.iterdir():
        assert p.stat().st_mode & 0o777 == 0o640, p
    assert sf.info(tmp_path / "a.flac").frames == 100


def test_encode_checks_its_output_suffix(tiny_audioldm: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    a = _wav(tmp_path / "a.wav")
    rc = main(["encode", str(a), "-o", str(tmp_path / "x.wav"), "--model", str(tiny_audioldm),
               "-q"])
    err = _lines(capsys.readouterr().err)
    assert rc == 1 and len(err) == 1 and ".ldmz" in err[0]
    assert not (tmp_path / "x.wav").exists()


def test_non_utf8_file_names(tiny_audioldm: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    name = os.fsdecode(b"caf\xe9-\xff")
    src = tmp_path / f"{name}.wav"
    try:
        os.rename(_wav(tmp_path / "plain.wav"), src)
    except (UnicodeError, OSError):
        pytest.skip("this file system takes UTF-8 names only")
    assert main(["encode", str(src), "--model", str(tiny_audioldm), "-q"]) == 0
    z = tmp_path / f"{name}.ldmz"
    assert z.is_file()
    out = tmp_path / f"{name}-out.wav"
    assert main(["decode", str(z), "-o", str(out), "-q", "--model", str(tiny_audioldm),
                 "--vocoder", "hifigan"]) == 0
    with open(out, "rb") as fh, sf.SoundFile(fh) as w:
        assert w.frames == 8000
    assert main(["info", str(z)]) == 0
    assert "caf\\xe9-\\xff.ldmz" in capsys.readouterr().out


def test_truncated_wav_warns(tiny_audioldm: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    full = _wav(tmp_path / "full.wav", 1.0)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    assert main(["encode", str(cut), "--model", str(tiny_audioldm), "-q"]) == 0
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and "truncated" in err[0] and str(cut) in err[0]
    assert main(["encode", str(full), "--model", str(tiny_audioldm), "-q"]) == 0
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------- messages
_FULL_DISK = """
import resource, signal, sys
sys.path.insert(0, {root!r})
import numpy as np
from ldmz.codec.audio_io import write_audio
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
try:
    write_audio({path!r}, np.zeros((1, 100000), np.float32), 16000)
except Exception as e:
    print(type(e).__name__, e)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE stands in for a full disk")
def test_a_full_disk_names_the_output(tmp_path: Path) -> None:
    out = tmp_path / "o.wav"
    r = subprocess.run([sys.executable, "-c", _FULL_DISK.format(root=str(ROOT.parent),
                                                                path=str(out))],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.startswith("AudioError") and f"{out}: disk full" in r.stdout, r.stdout
    assert ".tmp" not in r.stdout and ".part" not in r.stdout and "report" not in r.stdout
    assert list(tmp_path.iterdir()) == []


def test_unreadable_input_says_permission_denied(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    a = _wav(tmp_path / "a.wav")
    a.chmod(0)
    if os.access(a, os.R_OK):  # root reads anything: stand in for the check
        monkeypatch.setattr(os, "access", lambda *a, **k: False)
    assert main(["encode", str(a), "-q"]) == 1
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and "permission denied" in err[0] and "System error" not in err[0]


def test_channel_limit_is_checked_up_front(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from ldmz.codec.models import registry

    sf.write(tmp_path / "wide.wav", np.zeros((100, 65), np.float32), 16000)
    monkeypatch.setattr(registry, "load_model", lambda *a: pytest.fail("model loaded"))
    assert main(["encode", str(tmp_path / "wide.wav"), "-q"]) == 1
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and "65 channels" in err[0] and "damaged" not in err[0]


def test_messages_fit_the_command() -> None:
    from ldmz.codec.cli.convert import message

    assert "--chunk-seconds" not in message(Path("a.ldmz"), MemoryError(), "decode")
    assert "--chunk-seconds" in message(Path("a.wav"), MemoryError(), "encode")


def test_eval_blames_the_reference_for_its_nans(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    x = np.zeros(16000, np.float32)
    x[5] = np.nan
    sf.write(tmp_path / "ref.wav", x, 16000, subtype="FLOAT")
    _wav(tmp_path / "deg.wav", 1.0)
    assert main(["eval", str(tmp_path / "ref.wav"), str(tmp_path / "deg.wav"),
                 "--no-visqol"]) == 1
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and "ref.wav" in err[0] and "deg.wav" not in err[0]


def test_library_chatter_stays_off_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    import warnings

    from ldmz.codec.audio_io import AudioWarning, _quiet_stderr
    from ldmz.codec.cli import _one_line_warnings

    with _quiet_stderr(True):
        os.write(2, b"[mpg123] chatter from C\n")
    with _one_line_warnings():
        warnings.warn("torch says something", UserWarning, stacklevel=1)
        warnings.warn(AudioWarning("x.wav: truncated"), stacklevel=1)
    assert _lines(capfd.readouterr().err) == ["warning: x.wav: truncated"]
    from ldmz.codec.cli import QUIET_ENV

    assert QUIET_ENV["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"


def test_no_progress_bar_when_stderr_is_not_a_terminal(tiny_audioldm: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _wav(tmp_path / "a.wav"), _wav(tmp_path / "b.wav")
    assert main(["encode", str(a), str(b), "--model", str(tiny_audioldm)]) == 0  # no -q
    err = capsys.readouterr().err
    assert "\r" not in err and "file/s" not in err and "it/s" not in err  # no bar, no \r
    assert all(" -> " in ln for ln in _lines(err))  # only the one line per converted file


def test_forged_replace_keeps_header_dataclass_roundtrip() -> None:
    """The forging helper itself: an unedited forge is the same file."""
    f = _file()
    assert LdmzFile.from_bytes(_forge(f, lambda h: None)).header == replace(f.header)


def test_two_pass_decode_stages_in_no_named_file(tiny_audioldm: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Integer output is staged as float first: in an unnamed file, so kill -9 leaves none."""
    from ldmz.codec import audio_io

    _wav(tmp_path / "a.wav")
    assert main(["encode", str(tmp_path / "a.wav"), "--model", str(tiny_audioldm), "-q"]) == 0
    seen = []
    real = audio_io.write_audio_stream
    monkeypatch.setattr(audio_io, "write_audio_stream", lambda *a, **k: seen.append(
        sorted(os.listdir(tmp_path))) or real(*a, **k))
    assert main(["decode", str(tmp_path / "a.ldmz"), "-o", str(tmp_path / "a.flac"), "-q",
                 "--model", str(tiny_audioldm), "--vocoder", "hifigan"]) == 0
    assert seen == [["a.ldmz", "a.wav"]]  # while the stage exists, nothing else is named
    assert sorted(os.listdir(tmp_path)) == ["a.flac", "a.ldmz", "a.wav"]
    assert sf.info(tmp_path / "a.flac").subtype == "PCM_24"
