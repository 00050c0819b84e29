"""Files on disk: lazy reads touch only the header and one chunk; saves are atomic; no torch."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from ldmz.formats import (
    ChecksumError,
    FormatError,
    LdmzFile,
    MelParams,
    ModelInfo,
    SourceInfo,
    pack_latents,
    write_atomic,
)


def _file(frames: int = 40, per: int = 8) -> LdmzFile:
    z = np.random.default_rng(2).normal(size=(2, 4, frames, 5)).astype(np.float32)
    return pack_latents(z, model=ModelInfo("m"), mel=MelParams(),
                        source=SourceInfo(16000, 2, 16000, (1.0, 1.0)), bits=(3, 8, 1, 0),
                        frames_per_chunk=per, overlap=2)


class CountingReader(io.RawIOBase):
    """A seekable binary file that counts the bytes handed out."""

    def __init__(self, data: bytes) -> None:
        self.buf = io.BytesIO(data)
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.buf.seek(pos, whence)

    def readinto(self, b: bytearray) -> int:
        n = self.buf.readinto(b)
        self.bytes_read += n
        return n


def test_lazy_load_reads_header_and_one_chunk() -> None:
    f = _file()
    data = f.to_bytes()
    hlen = int.from_bytes(data[8:12], "little")
    r = CountingReader(data)
    lazy = LdmzFile.load(r, lazy=True)
    assert r.bytes_read == 16 + hlen
    i = lazy.chunk_at(0.5)
    assert 0 < i < len(f.header.chunks) - 1
    x = lazy.read_chunk(i)
    assert r.bytes_read == 16 + hlen + f.header.chunks[i].size
    np.testing.assert_array_equal(x, f.read_chunk(i))


def test_lazy_load_ignores_damage_elsewhere(tmp_path: Path) -> None:
    f = _file()
    data = bytearray(f.to_bytes())
    hlen = int.from_bytes(data[8:12], "little")
    c0 = f.header.chunks[0]
    data[16 + hlen + c0.offset + c0.size // 2] ^= 0xFF  # damage chunk 0 only
    path = tmp_path / "one-bad-chunk.ldmz"
    path.write_bytes(bytes(data))
    lazy = LdmzFile.load(path, lazy=True)
    np.testing.assert_array_equal(lazy.read_chunk(2), f.read_chunk(2))
    with pytest.raises(ChecksumError, match="chunk 0"):
        lazy.read_chunk(0)
    with pytest.raises(ChecksumError, match=str(path)):
        lazy.latents()
    with pytest.raises(ChecksumError):
        LdmzFile.load(path)
    with pytest.raises(IndexError):
        lazy.read_chunk(len(f.header.chunks))


def test_load_sources_agree(tmp_path: Path) -> None:
    f = _file()
    path = tmp_path / "a.ldmz"
    f.save(path)
    ref = f.latents()
    with open(path, "rb") as fh:
        assert LdmzFile.load(fh).name == str(path)
    for lazy in (False, True):
        for src in (path, str(path), path.read_bytes(), io.BytesIO(path.read_bytes())):
            np.testing.assert_array_equal(LdmzFile.load(src, lazy=lazy).latents(), ref)
    np.testing.assert_array_equal(LdmzFile.load(path).latents(1), ref[1:2])
    np.testing.assert_array_equal(LdmzFile.load(path).latents(-1), ref[1:2])
    with pytest.raises(IndexError):
        f.latents(2)
    for lazy in (False, True):  # a file object is read from its current position
        embedded = io.BytesIO(b"prefix" + path.read_bytes())
        embedded.seek(6)
        np.testing.assert_array_equal(LdmzFile.load(embedded, lazy=lazy).latents(), ref)
    with pytest.raises(FormatError, match="missing.ldmz: cannot open"):
        LdmzFile.load(tmp_path / "missing.ldmz")
    with pytest.raises(FormatError, match=r"not a regular file \(a folder\)"):
        LdmzFile.load(tmp_path)


def test_save_is_atomic_and_refuses_to_overwrite(tmp_path: Path) -> None:
    f, g = _file(), _file(frames=9)
    path = tmp_path / "out.ldmz"
    f.save(path)
    assert path.read_bytes() == f.to_bytes()
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    with pytest.raises(FileExistsError, match="already exists"):
        g.save(path)
    assert path.read_bytes() == f.to_bytes()
    g.save(path, overwrite=True)
    assert path.read_bytes() == g.to_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ldmz"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_failed_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            overwrite: bool) -> None:
    path = tmp_path / "out.ldmz"
    if overwrite:
        path.write_bytes(b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        _file().save(path, overwrite=overwrite)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out.ldmz"] if overwrite else [])
    if overwrite:
        assert path.read_bytes() == b"old"


def test_save_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(src: str, dst: str, **kw: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    path = tmp_path / "out.ldmz"
    write_atomic(path, b"data")
    assert path.read_bytes() == b"data"
    with pytest.raises(FileExistsError):
        write_atomic(path, b"other")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ldmz"]


def test_writer_rejects_what_readers_would() -> None:
    z = np.zeros((1, 2, 4, 3), np.float32)
    kw = dict(model=ModelInfo("m"), mel=MelParams(), source=SourceInfo(16000, 1, 100, (1.0,)))
    with pytest.raises(ValueError, match="float16"):
        pack_latents(z + 70000, bits="float16", **kw)
    with pytest.raises(ValueError, match="NaN"):
        pack_latents(z * np.nan, **kw)
    with pytest.raises(ValueError):
        pack_latents(z + 1e30, **kw)
    with pytest.raises(FormatError, match="overlap"):
        pack_latents(z, frames_per_chunk=2, overlap=2, **kw)
    with pytest.raises(FormatError, match="tags"):
        pack_latents(z, tags={"k": "\udc80"}, **kw)
    f = pack_latents(z, bits=2, **kw)
    with pytest.raises(ValueError, match="integer codes"):
        LdmzFile.from_latents(f.header, [np.zeros((1, 2, 4, 3), np.float32)])
    with pytest.raises(ValueError, match="fit"):
        LdmzFile.from_latents(f.header, [np.full((1, 2, 4, 3), 4, np.uint8)])
    with pytest.raises(ValueError, match="0..255"):
        LdmzFile.from_latents(f.header, [np.full((1, 2, 4, 3), 300)])
    with pytest.raises(ValueError, match="chunk arrays"):
        LdmzFile.from_latents(f.header, [])


def test_crc_is_zlib_crc32() -> None:
    data = _file().to_bytes()
    hlen = int.from_bytes(data[8:12], "little")
    assert int.from_bytes(data[12:16], "little") == zlib.crc32(data[:12] + data[16:16 + hlen])


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_import_does_not_load_torch() -> None:
    r = _run("-c", "import ldmz.formats, sys; "
                   "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'librosa')]; "
                   "assert not bad, bad")
    assert r.returncode == 0, r.stderr


def test_ldmz_info_does_not_import_torch(tmp_path: Path) -> None:
    path = tmp_path / "a.ldmz"
    _file().save(path)
    r = _run("-X", "importtime", "-m", "ldmz", "info", str(path))
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout
    imported = [line.split("|")[-1].strip() for line in r.stderr.splitlines()
                if line.startswith("import time:") and "|" in line]
    assert "ldmz.formats" in imported
    heavy = [m for m in imported if m.split(".")[0] in ("torch", "librosa")]
    assert not heavy, heavy
