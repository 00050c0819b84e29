"""List the input audio files of a dataset with pyarrow.fs: local paths or URIs (s3://, gs://...)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from ldmz.codec.cluster import require


@dataclass(frozen=True)
class Source:
    """One input file: where to open it, its path relative to its SRC, size and mtime."""

    uri: str  # a local absolute path, or a URI that pyarrow.fs.FileSystem.from_uri opens
    rel: str  # POSIX path relative to the SRC it was found under (its base name for a file)
    size: int
    mtime_ns: int


def _open_fs(src: str):  # noqa: ANN202 - (pyarrow FileSystem, path, URI prefix)
    fs_mod = require("pyarrow.fs", "listing a dataset")
    if "://" in src and not src.startswith("file://"):
        fs, path = fs_mod.FileSystem.from_uri(src)
        scheme = src.split("://", 1)[0]
        return fs, path.rstrip("/"), f"{scheme}://"
    local = src[len("file://"):] if src.startswith("file://") else src
    return fs_mod.LocalFileSystem(), os.path.abspath(local), ""


def list_sources(inputs: Sequence[str], suffixes: Iterable[str]) -> list[Source]:
    """Every audio file (by suffix) under ``inputs``, folders recursively, sorted by ``rel``."""
    fs_mod = require("pyarrow.fs", "listing a dataset")
    suffixes = {s.lower() for s in suffixes}
    out: list[Source] = []
    for src in inputs:
        fs, path, prefix = _open_fs(src)
        info = fs.get_file_info(path)
        if info.type == fs_mod.FileType.NotFound:
            raise FileNotFoundError(f"{src}: no such file or folder")
        if info.type == fs_mod.FileType.Directory:
            found = fs.get_file_info(fs_mod.FileSelector(path, recursive=True))
            found = [i for i in found if i.type == fs_mod.FileType.File
                     and PurePosixPath(i.path).suffix.lower() in suffixes
                     and not PurePosixPath(i.path).name.startswith(".")]
            base = len(path.rstrip("/")) + 1
            out += [Source(prefix + i.path, i.path[base:].replace(os.sep, "/"), int(i.size),
                           int(i.mtime_ns or 0)) for i in found]
        else:
            out.append(Source(prefix + path, PurePosixPath(path.replace(os.sep, "/")).name,
                              int(info.size), int(info.mtime_ns or 0)))
    return sorted(out, key=lambda s: (s.rel, s.uri))


def read_bytes(uri: str) -> bytes:
    """The bytes of a remote input (a local one is read by path instead)."""
    fs, path, _ = _open_fs(uri)
    with fs.open_input_stream(path) as f:
        return f.read()
