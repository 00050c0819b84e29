"""Damaged `.ldmz` files: find the damaged chunks, open a truncated file, and decode the rest
(`ldmz decode --salvage`, `ldmz info`); torch-free."""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from ldmz.formats import MAGIC, FormatError, LdmzFile


@dataclass(frozen=True)
class Damage:
    """One damaged chunk: its index, the source time it covers and what is wrong with it."""

    chunk: int
    start_s: float
    end_s: float
    problem: str

    def describe(self) -> str:
        """``chunk 3 (12.00-16.00 s): checksum mismatch``."""
        return f"chunk {self.chunk} ({self.start_s:.2f}-{self.end_s:.2f} s): {self.problem}"


def _span_s(f: LdmzFile, i: int) -> tuple[float, float]:
    h = f.header
    c = h.chunks[i]
    frame_s = h.mel.hop_length * h.latent.time_downsample / h.mel.sample_rate
    end = c.frame_start + min(h.latent.frames_per_chunk, c.frames)
    return (min(c.frame_start * frame_s, h.duration), min(end * frame_s, h.duration))


def damaged_chunks(f: LdmzFile, inflate: bool = True) -> list[Damage]:
    """Check every chunk (one at a time): the damaged ones, with their time spans.

    With ``inflate=False`` only each chunk's CRC-32 and zstd frame header are checked, so the
    cost follows the file's size, not the sizes its header declares.
    """
    out = []
    for i in range(len(f.header.chunks)):
        try:
            if inflate:
                f.check_chunk(i)
            else:
                f.check_crc(i)
        except FormatError as e:
            why = re.sub(r"^chunk \d+ ", "", e.problem.split(" (")[0])
            out.append(Damage(i, *_span_s(f, i), why))
    return out


def _fit_to_header(data: bytes, name: str) -> bytes | None:
    """Pad a truncated file (or cut trailing bytes) to the size its intact header declares."""
    from ldmz.formats.compact import header_from_compact
    from ldmz.formats.container import PREAMBLE, _unpack_header
    from ldmz.formats.parse import header_from_dict

    if len(data) < PREAMBLE.size:
        return None
    major, hlen = PREAMBLE.unpack_from(data)[1], PREAMBLE.unpack_from(data)[4]
    parse = header_from_compact if major == 2 else header_from_dict
    try:
        header = parse(_unpack_header(data[PREAMBLE.size:PREAMBLE.size + hlen]), name)
    except (ValueError, TypeError):
        return None
    need = PREAMBLE.size + hlen + header.data_size
    return data[:need].ljust(need, b"\0") if len(data) != need else None


def open_damaged(src: str | os.PathLike[str] | BinaryIO, name: str | None = None) -> LdmzFile:
    """Open a file whose header is intact, lazily; a truncated one is padded (its lost chunks
    then fail their checksums). A damaged header still raises FormatError."""
    if isinstance(src, (str, os.PathLike)):
        try:
            return LdmzFile.load(src, lazy=True)
        except FormatError:
            if not os.path.isfile(src):  # a FIFO or device is never opened for reading
                raise
            with open(src, "rb") as fh:
                if fh.read(len(MAGIC)) != MAGIC:
                    raise
                data = MAGIC + fh.read()
        name = name or os.fspath(src)
    else:
        data = src.read()
        name = name or str(getattr(src, "name", "-"))
    try:
        f = LdmzFile.load(_Named(data, name), lazy=True)
    except FormatError:
        fixed = _fit_to_header(data, name)
        if fixed is None:
            raise
        f = LdmzFile.load(_Named(fixed, name), lazy=True)
    return f


class _Named(io.BytesIO):
    """Bytes in memory with a name, so messages name the file."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name


class Salvaged:
    """A file whose damaged chunks read as zero latents; decode silences their spans after."""

    def __init__(self, f: LdmzFile, damage: list[Damage]) -> None:
        self.file, self.header, self.name = f, f.header, f.name
        self.damage = damage
        self._bad = {d.chunk for d in damage}

    def __getattr__(self, name: str) -> object:
        """Everything else (entropy_coded, tables, use_tables, ...) is the file's."""
        return getattr(self.file, name)

    def read_chunk(self, i: int) -> np.ndarray:
        """Chunk ``i``'s latents, or zeros where it is damaged."""
        if i in self._bad:
            return np.zeros(self.header.chunk_shape(i), np.float32)
        return self.file.read_chunk(i)

    def mute_spans(self, sr: int) -> list[tuple[int, int]]:
        """Damaged spans in output samples at rate ``sr``."""
        return [(int(d.start_s * sr), int(np.ceil(d.end_s * sr))) for d in self.damage]
