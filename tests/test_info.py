"""`ldmz info`: readable and JSON summaries, one stderr line per damaged file, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ldmz.codec.cli import main
from ldmz.formats import MelParams, ModelInfo, SourceInfo, pack_latents


def _write(path: Path, seconds: float = 2.0, channels: int = 1, bits: object = 4) -> Path:
    mel = MelParams(sample_rate=16000, hop_length=160)
    frames = int(seconds * 25)
    z = np.random.default_rng(3).normal(size=(channels, 8, frames, 16)).astype(np.float32)
    f = pack_latents(z, model=ModelInfo("ldmz-small", revision="v1"), mel=mel,
                     source=SourceInfo(44100, channels, int(seconds * 44100), (1.0,) * channels),
                     bits=bits, frames_per_chunk=16, overlap=2, tags={"title": "Ünïcode"})
    f.save(path)
    return path


@pytest.fixture()
def good(tmp_path: Path) -> Path:
    return _write(tmp_path / "good.ldmz")


def test_text_output(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(good)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    for word in ("duration", "2.000 s", "1 ch @ 44100 Hz", "ldmz-small v1", "bitrate", "kbps",
                 "compression", "chunks", "4 chunks", "80 mels", "checksums", "OK", "Ünïcode"):
        assert word in out, word


def test_json_output(tmp_path: Path, good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = _write(tmp_path / "stereo.ldmz", seconds=1.0, channels=2, bits="float16")
    assert main(["info", "--json", str(good), str(other)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    a, b = (json.loads(line) for line in lines)
    assert a["file"] == str(good) and b["file"] == str(other)
    for key in ("duration_s", "channels", "sample_rate", "model", "bits", "bitrate_kbps",
                "compression_ratio", "chunks", "checksums_ok", "header", "file_bytes"):
        assert key in a, key
    assert a["duration_s"] == 2.0 and a["chunks"] == 4 and a["checksums_ok"] is True
    assert a["model"] == "ldmz-small" and a["bits"] == [4] * 8 and b["bits"] == "float16"
    assert a["file_bytes"] == good.stat().st_size
    assert a["bitrate_kbps"] == pytest.approx(good.stat().st_size * 8 / 2.0 / 1000, abs=1e-3)
    assert a["compression_ratio"] == pytest.approx(44100 * 16 * 2.0 / (a["file_bytes"] * 8),
                                                   abs=0.01)
    assert a["header"]["tags"] == {"title": "Ünïcode"} and b["channels"] == 2


def test_damaged_file_one_line_and_continue(tmp_path: Path, good: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.ldmz"
    data = bytearray(good.read_bytes())
    data[-3] ^= 0x40
    bad.write_bytes(bytes(data))
    missing = tmp_path / "missing.ldmz"
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    rc = main(["info", "--json", str(bad), str(good), str(missing), str(text), str(good)])
    out, err = capsys.readouterr()
    assert rc == 1
    shown = [json.loads(line) for line in out.splitlines()]
    assert [s["file"] for s in shown] == [str(bad), str(good), str(good)]
    assert not shown[0]["checksums_ok"] and shown[1]["checksums_ok"]
    assert [d["chunk"] for d in shown[0]["damaged_chunks"]] == [3]  # the intact header, then
    assert shown[0]["duration_s"] == 2.0 and shown[1]["damaged_chunks"] == []
    lines = err.splitlines()
    assert len(lines) == 3 and "Traceback" not in err
    assert lines[0].startswith(f"{bad}: ") and "chunk 3" in lines[0] and "checksum" in lines[0]
    assert "--salvage" in lines[0]
    assert lines[1].startswith(f"{missing}: ")
    assert lines[2].startswith(f"{text}: ") and "not an ldmz file" in lines[2]


def test_every_byte_flip_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    small = _write(tmp_path / "small.ldmz", seconds=0.5).read_bytes()
    paths = []
    for i in range(len(small)):
        bad = bytearray(small)
        bad[i] ^= 0xFF if i % 2 else 0x01
        p = tmp_path / f"flip{i:05d}.ldmz"
        p.write_bytes(bytes(bad))
        paths.append(str(p))
    assert main(["info", *paths]) == 1
    out, err = capsys.readouterr()
    assert out.count("checksums    DAMAGED: 1 chunk of 1") == out.count("  duration  ")
    lines = err.splitlines()
    assert len(lines) == len(paths)
    assert all(line.startswith(f"{p}: ") for line, p in zip(lines, paths, strict=True))
    assert "Traceback" not in err
