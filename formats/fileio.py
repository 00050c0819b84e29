"""Byte access for the reader (memory, one open descriptor, or file object) and atomic writes."""

from __future__ import annotations

import errno
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO

from ldmz.formats.errors import FormatError


def open_regular(path: str | os.PathLike[str], name: str | None = None) -> int:
    """A read-only descriptor of ``path``, refusing FIFOs, devices and folders without blocking.

    The file is opened non-blocking (so a FIFO never waits for a writer) and checked with fstat
    on the descriptor itself, so what is checked is what is read.
    """
    name = name if name is not None else os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) \
        | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise FormatError(name, f"cannot open: {e.strerror or e}") from e
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) \
                else "a device or socket"
            raise FormatError(name, f"not a regular file ({what}); give a .ldmz file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


class _ChunkReader:
    """Random access to a file's bytes: in memory, one descriptor held open, or a file object.

    A path is opened once: a file replaced on disk while it is read (an atomic save) goes on
    being read from the version that was opened, so its chunks still match its header.
    """

    def __init__(self, name: str, *, memory: memoryview | None = None,
                 path: Path | None = None, size: int = 0,
                 fileobj: BinaryIO | None = None) -> None:
        self.name, self.memory, self.fileobj = name, memory, fileobj
        self.size = len(memory) if memory is not None else size
        self.data_start = 0
        self.base = 0  # a file object is read from its position at open, like f.read() would
        self.fd: int | None = None
        self._lock = threading.Lock()
        if path is not None:
            self.fd = open_regular(path, name)
            self.size = os.fstat(self.fd).st_size
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
            if self.fd is not None:
                return _pread(self.fd, offset, n, self._lock)
            if self.fileobj is None:
                raise OSError(errno.EBADF, "the file was closed")
            with self._lock:
                return _read_at(self.fileobj, self.base + offset, n)
        except OSError as e:
            raise FormatError(self.name, f"cannot read: {e.strerror or e}") from e

    def close(self) -> None:
        """Release the descriptor (reads afterwards fail)."""
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)
            self.fileobj = None

    def __del__(self) -> None:
        try:
            self.close()
        except OSError:
            pass


def _pread(fd: int, offset: int, n: int, lock: threading.Lock) -> bytes:
    parts, left = [], n
    while left > 0:
        if hasattr(os, "pread"):
            b = os.pread(fd, min(left, 1 << 26), offset)
        else:  # no pread (Windows): seek and read under a lock
            with lock:
                os.lseek(fd, offset, os.SEEK_SET)
                b = os.read(fd, min(left, 1 << 26))
        if not b:
            break
        parts.append(b)
        left -= len(b)
        offset += len(b)
    return b"".join(parts)


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


class _Exists(FileExistsError):
    """FileExistsError whose text is the one-line message alone."""

    def __str__(self) -> str:
        return str(self.strerror)


@contextmanager
def atomic_file(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[BinaryIO]:
    """Open a new file that appears at ``path`` only once the block ends without an error.

    The one way ldmz writes files. The data goes to an unnamed file (Linux ``O_TMPFILE``) in
    the target's folder, or else to a hidden ``.NAME.XXXX.tmp`` there; it is fsynced, then
    linked into place (never replacing a file that appeared meanwhile) or, with ``overwrite``,
    renamed over the old one; then the folder is fsynced. On an error, SIGTERM (handled by the
    CLI as SystemExit) or kill -9 (O_TMPFILE) no partial file is left. The new file gets mode
    0o666 less the umask, like any other new file. Refuses (FileExistsError) to replace an
    existing file unless ``overwrite``.
    """
    path = Path(path)
    if os.path.lexists(path) and not overwrite:
        raise _Exists(errno.EEXIST, f"{path}: already exists (use --force to overwrite)")
    fd, tmp = _create_temp(path)
    f = os.fdopen(fd, "w+b")
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        _publish(f.fileno(), tmp, path, overwrite)
        tmp = None
        _fsync_dir(path.parent)
    finally:
        f.close()
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` with :func:`atomic_file`; FileExistsError if present."""
    with atomic_file(path, overwrite=overwrite) as f:
        f.write(data)


_TMPFILE_OK = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")


def _create_temp(path: Path) -> tuple[int, str | None]:
    """A new file in ``path``'s folder: unnamed (O_TMPFILE, name None) where it can be."""
    folder = path.parent if str(path.parent) else Path(".")
    if _TMPFILE_OK:
        try:
            return os.open(folder, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o666), None
        except OSError as e:  # not supported by this file system: a named temporary file
            if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOTSUP):
                raise
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) \
        | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = str(folder / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path}: could not create a temporary file next to it")


def _publish(fd: int, tmp: str | None, path: Path, overwrite: bool) -> None:
    if tmp is None:  # O_TMPFILE: give the open file a name
        target = path if not overwrite else \
            str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        if not _link_fd(fd, target, path):  # no way to name it here: copy to a named file
            global _TMPFILE_OK
            _TMPFILE_OK = False
            tmp = _copy_to_temp(fd, path)
            try:
                _publish(-1, tmp, path, overwrite)
            finally:
                if os.path.lexists(tmp):
                    os.unlink(tmp)
            return
        if overwrite:
            try:
                os.replace(target, path)
            except BaseException:
                os.unlink(target)
                raise
        return
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if path appeared meanwhile: never clobber
    except FileExistsError:
        raise _Exists(errno.EEXIST, f"{path}: already exists (use --force to overwrite)"
                      ) from None
    except OSError:  # no hard links on this file system: check, then rename
        if os.path.lexists(path):
            raise _Exists(errno.EEXIST, f"{path}: already exists (use --force to overwrite)"
                          ) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _link_fd(fd: int, target: str | Path, path: Path) -> bool:
    """Name the unnamed file ``fd`` as ``target``; False where this system cannot."""
    try:
        os.link(f"/proc/self/fd/{fd}", target, follow_symlinks=True)
        return True
    except FileExistsError:
        raise _Exists(errno.EEXIST, f"{path}: already exists (use --force to overwrite)"
                      ) from None
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.ENOENT, errno.EPERM, errno.EACCES):
            raise
    try:  # linkat(fd, "", AT_FDCWD, target, AT_EMPTY_PATH), where the kernel allows it
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.linkat(fd, b"", -100, os.fsencode(target), 0x1000) == 0:
            return True
        if ctypes.get_errno() == errno.EEXIST:
            raise _Exists(errno.EEXIST, f"{path}: already exists (use --force to overwrite)")
    except (OSError, AttributeError):
        pass
    return False


def _copy_to_temp(fd: int, path: Path) -> str:
    """Copy the unnamed file ``fd`` into a new hidden temporary file beside ``path``."""
    global _TMPFILE_OK
    _TMPFILE_OK = False
    out, tmp = _create_temp(path)
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        while block := os.read(fd, 1 << 20):
            os.write(out, block)
        os.fsync(out)
    except BaseException:
        os.close(out)
        os.unlink(tmp)  # type: ignore[arg-type]
        raise
    os.close(out)
    return tmp  # type: ignore[return-value]


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder if str(folder) else ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
