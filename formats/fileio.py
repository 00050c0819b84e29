"""Byte access for the reader (memory, path or seekable file object) and atomic writes."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import IO, BinaryIO

from ldmz.formats.errors import FormatError


class _ChunkReader:
    """Random access to a file's bytes: in memory, by path (one open per read) or file object."""

    def __init__(self, name: str, *, memory: memoryview | None = None,
                 path: Path | None = None, size: int = 0,
                 fileobj: BinaryIO | None = None) -> None:
        self.name, self.memory, self.path, self.fileobj = name, memory, path, fileobj
        self.size = len(memory) if memory is not None else size
        self.data_start = 0
        self.base = 0  # a file object is read from its position at open, like f.read() would
        if fileobj is not None:
            try:
                self.base = fileobj.tell()
                self.size = fileobj.seek(0, os.SEEK_END) - self.base
            except OSError as e:
                raise FormatError(name, f"cannot seek: {e.strerror or e}") from e

    def read(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset`` (fewer only at the end of the file)."""
        if self.memory is not None:
            return bytes(self.memory[offset:offset + n])
        try:
            if self.fileobj is not None:
                return _read_at(self.fileobj, self.base + offset, n)
            with open(self.path, "rb") as f:  # type: ignore[arg-type]
                return _read_at(f, offset, n)
        except OSError as e:
            raise FormatError(self.name, f"cannot read: {e.strerror or e}") from e


def _read_at(f: IO[bytes], offset: int, n: int) -> bytes:
    f.seek(offset)
    parts, left = [], n
    while left > 0:
        b = f.read(left)
        if not b:
            break
        if not isinstance(b, bytes | bytearray):
            raise OSError(f"file object returned {type(b).__name__}, not bytes")
        parts.append(bytes(b))
        left -= len(b)
    return b"".join(parts)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename; FileExistsError if present.

    The temporary file lives in the same folder, is fsynced, then renamed into place (hard-linked
    when ``overwrite`` is false, so a file that appeared meanwhile is never clobbered). On any
    failure the temporary file is removed. The new file gets the usual umask-based permissions.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (use --force to overwrite)")
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def _create_temp(path: Path) -> tuple[int, str]:
    """A new temporary file next to ``path``, mode 0o666 less the umask (mkstemp gives 0o600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path}: could not create a temporary file next to it")


def _link_new(tmp: str, path: Path) -> None:
    try:
        os.link(tmp, path)  # fails if path appeared meanwhile: never clobber
    except FileExistsError:
        raise FileExistsError(f"{path}: already exists (use --force to overwrite)") from None
    except OSError:  # no hard links on this file system: check, then rename
        if path.exists():
            raise FileExistsError(f"{path}: already exists (use --force to overwrite)") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
