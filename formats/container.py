"""Read and write `.ldmz` files: preamble, msgpack header, zstd-compressed latent chunks."""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

import msgpack
import numpy as np

from ldmz.formats.chunks import (
    check_blob,
    chunk_values,
    compress,
    crc32,
    decode_chunk,
    decompress_chunk,
    encode_chunk,
)
from ldmz.formats.compact import header_from_compact, header_to_compact, is_joint
from ldmz.formats.entropy import EntropyTables, decode_codes, dequantize_ec, encode_codes
from ldmz.formats.errors import ChecksumError, FormatError, VersionError
from ldmz.formats.fileio import _ChunkReader, write_atomic
from ldmz.formats.header import MAX_HEADER_BYTES, RANS, Header
from ldmz.formats.parse import header_from_dict

MAGIC = b"LDMZ"
VERSION_MAJOR = 1
VERSION_MINOR = 0
VERSION_RANS = 2  # format 2.0: compact header, entropy-coded chunks (SPEC.md, section 7)
MAJORS = (1, 2)
# Preamble, 16 bytes, little-endian:
#   magic    4s  b"LDMZ"
#   major    B   format major version (readers refuse a major they do not know)
#   minor    B   format minor version (additions only; readers accept any minor)
#   flags    H   reserved, 0
#   hlen     I   length of the msgpack header in bytes
#   hcrc     I   CRC-32 of the first 12 preamble bytes followed by the header bytes
PREAMBLE = struct.Struct("<4sBBHII")

MAX_LATENTS_BYTES = 1 << 30  # LdmzFile.latents() refuses to allocate more unless asked
Source = str | os.PathLike[str] | BinaryIO | bytes

__all__ = ["MAGIC", "PREAMBLE", "VERSION_MAJOR", "VERSION_MINOR", "LdmzFile", "header_end",
           "read_header", "write_atomic"]


def _name(src: object) -> str:
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    return str(getattr(src, "name", "<stream>"))


class LdmzFile:
    """A `.ldmz` file: its :class:`Header` and its latent chunks (read on demand)."""

    def __init__(self, header: Header, chunk_data: Sequence[bytes] | None = None,
                 *, _reader: _ChunkReader | None = None,
                 tables: EntropyTables | None = None) -> None:
        self.header = header
        self._data = list(chunk_data) if chunk_data is not None else None
        self._reader = _reader
        self.name = _reader.name if _reader else "<memory>"
        self.tables: EntropyTables | None = None
        if tables is not None:
            self.use_tables(tables)

    @property
    def entropy_coded(self) -> bool:
        """Whether the chunks are rANS-coded (format 2), needing the model's entropy tables."""
        return self.header.quantizer.mode == RANS

    def use_tables(self, tables: EntropyTables) -> None:
        """Attach the model's entropy tables; FormatError if they are not the file's."""
        q = self.header.quantizer
        if not self.entropy_coded:
            return
        c, f = tables.mean.shape
        if (not tables.sha256.startswith(q.tables_sha256) or q.quality >= tables.qualities
                or (c, f) != (self.header.latent.channels, self.header.latent.freq_bins)):
            raise FormatError(self.name, f"made with entropy tables {q.tables_sha256} (quality "
                                         f"{q.quality}), but the model's are "
                                         f"{tables.sha256[:16]}; decode with the model that "
                                         f"made it (--model)")
        self.tables = tables

    # ------------------------------------------------------------------ building
    @classmethod
    def from_latents(cls, header: Header, latents: Sequence[np.ndarray],
                     tables: EntropyTables | None = None) -> LdmzFile:
        """Build a file from a header template and one array per chunk.

        Each array is quantized codes (integers, affine mode) or float values (float16 mode) of
        shape (audio_channels, latent_channels, frames, freq_bins). Chunk offsets, sizes and
        checksums in ``header.chunks`` are recomputed; their q_offset/q_step are kept. In
        ``rans`` mode the arrays are integer codes and ``tables`` the model's entropy tables.
        """
        if len(latents) != len(header.chunks):
            raise ValueError(f"{len(latents)} chunk arrays for {len(header.chunks)} chunk entries")
        rans = header.quantizer.mode == RANS
        if rans and (tables is None or not tables.sha256.startswith(
                header.quantizer.tables_sha256) or not header.quantizer.tables_sha256):
            raise ValueError("rans chunks need the entropy tables named in the header")
        blobs, entries, pos = [], [], 0
        for c, arr in zip(header.chunks, latents, strict=True):
            if rans:
                assert tables is not None  # checked above
                raw = b""
                blob = encode_codes(arr, tables, header.quantizer.quality, c.joint)
            else:
                raw = encode_chunk(header, arr)
                blob = compress(raw)
            entries.append(replace(c, offset=pos, size=len(blob), raw_size=len(raw),
                                   crc32=crc32(blob), frames=np.shape(arr)[2]))
            blobs.append(blob)
            pos += len(blob)
        h = replace(header, chunks=tuple(entries))
        # the writer obeys the same rules as readers
        if rans:  # and keeps only what format 2 stores (hash prefixes, float32 values)
            h = header_from_compact(_unpack_header(_pack_header(h)), "<writer>")
        else:
            header_from_dict(h.to_dict(), "<writer>")
        return cls(h, blobs, tables=tables)

    def with_tags(self, tags: dict[str, str]) -> LdmzFile:
        """A copy with other tags and the same chunk bytes (nothing is re-encoded)."""
        h = replace(self.header, tags=dict(tags))
        (header_from_dict if not self.entropy_coded else header_from_compact)(
            _unpack_header(_pack_header(h)), "<writer>")
        blobs = [self._blob(i) for i in range(len(h.chunks))]
        return LdmzFile(h, blobs, tables=self.tables)

    # ------------------------------------------------------------------ reading
    @classmethod
    def from_bytes(cls, data: bytes, name: str = "<bytes>") -> LdmzFile:
        """Parse and fully verify a file held in memory."""
        f = cls._open(_ChunkReader(name, memory=memoryview(bytes(data))))
        f.verify()
        return f

    @classmethod
    def load(cls, src: Source, *, lazy: bool = False) -> LdmzFile:
        """Read a file from a path or binary file object.

        With ``lazy=False`` every chunk is read and verified now. With ``lazy=True`` only the
        preamble and header are read (and the file size checked); chunks are read, checked and
        decompressed on demand, so seeking costs the header plus one chunk. A lazily read file
        object must stay open (and unchanged) while chunks are read; a non-seekable one is read
        into memory.
        """
        if isinstance(src, (bytes, bytearray, memoryview)):
            return cls.from_bytes(bytes(src))
        name = _name(src)
        if isinstance(src, (str, os.PathLike)):
            reader = _ChunkReader(name, path=Path(src))
        elif lazy and _seekable(src):
            reader = _ChunkReader(name, fileobj=src)
        else:
            try:
                data = src.read()
            except OSError as e:
                raise FormatError(name, f"cannot read: {e.strerror or e}") from e
            if not isinstance(data, (bytes, bytearray)):
                raise TypeError(f"{name}: need a binary file object, got {type(data).__name__}")
            reader = _ChunkReader(name, memory=memoryview(bytes(data)))
        f = cls._open(reader)
        if not lazy:
            f.verify()
        return f

    @classmethod
    def _open(cls, reader: _ChunkReader) -> LdmzFile:
        header = _read_header(reader)
        expected = reader.data_start + header.data_size
        if reader.size != expected:
            what = "truncated" if reader.size < expected else "has trailing bytes"
            raise FormatError(reader.name, f"{what}: {reader.size} bytes on disk, header "
                                           f"describes {expected}")
        return cls(header, None, _reader=reader)

    def _blob(self, i: int) -> bytes:
        if self._data is not None:
            return self._data[i]
        assert self._reader is not None
        c = self.header.chunks[i]
        blob = self._reader.read(self._reader.data_start + c.offset, c.size)
        if len(blob) != c.size:
            raise FormatError(self.name, f"truncated inside chunk {i} (the file changed?)")
        return blob

    def _raw_chunk(self, i: int) -> bytes:
        n = len(self.header.chunks)
        if not 0 <= i < n:
            raise IndexError(f"chunk {i} out of range 0..{n - 1}")
        c = self.header.chunks[i]
        if self.entropy_coded:  # rANS words are stored as they are: check the CRC only
            blob = self._blob(i)
            if crc32(blob) != c.crc32:
                raise ChecksumError(self.name, f"chunk {i} checksum mismatch (the file is "
                                               f"damaged)")
            return blob
        return decompress_chunk(self._blob(i), c, i, self.name)

    def verify(self, *, inflate: bool = True) -> None:
        """Check every chunk's checksum, zstd frame and values; raise FormatError on damage.

        Entropy-coded chunks are decoded too once the model's tables are attached
        (:meth:`use_tables`); without them only their checksums are checked. With
        ``inflate=False`` only each chunk's CRC-32 (and zstd frame header) is checked: the cost
        follows the file's size, not the sizes its header declares (``ldmz info`` does this;
        decoding checks each chunk fully as it reads it).
        """
        for i in range(len(self.header.chunks)):
            if inflate:
                self.check_chunk(i)
            else:
                self.check_crc(i)

    def _codes(self, i: int, blob: bytes) -> np.ndarray:
        if self.tables is None:
            raise FormatError(self.name, f"entropy-coded by model '{self.header.model.id}': "
                                         f"its entropy tables are needed to read the latents")
        return decode_codes(blob, self.header.chunk_shape(i), self.tables,
                            self.header.quantizer.quality, self.name, i,
                            self.header.chunks[i].joint)

    def check_chunk(self, i: int) -> None:
        """Verify chunk ``i`` as :meth:`verify` does; FormatError if it is damaged."""
        raw = self._raw_chunk(i)
        if not self.entropy_coded:
            chunk_values(self.header, i, raw, self.name)
        elif self.tables is not None:
            self._codes(i, raw)

    def check_crc(self, i: int) -> None:
        """Check chunk ``i``'s CRC-32 (and zstd frame header) without inflating or decoding."""
        n = len(self.header.chunks)
        if not 0 <= i < n:
            raise IndexError(f"chunk {i} out of range 0..{n - 1}")
        if self.entropy_coded:
            self._raw_chunk(i)  # the CRC of the stored rANS words, nothing decoded
        else:
            check_blob(self._blob(i), self.header.chunks[i], i, self.name)

    @property
    def file_size(self) -> int:
        """Bytes of the file as read (preamble, header and chunks)."""
        if self._reader is not None:
            return self._reader.size
        return len(self.to_bytes())

    def close(self) -> None:
        """Release the open file (chunks can no longer be read)."""
        if self._reader is not None:
            self._reader.close()

    def __enter__(self) -> LdmzFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_chunk(self, i: int) -> np.ndarray:
        """Dequantized float32 latents of chunk ``i``: (audio_ch, latent_ch, frames, freq)."""
        if self.entropy_coded:
            codes = self._codes(i, self._raw_chunk(i))
            assert self.tables is not None  # entropy_coded means the tables are attached
            return dequantize_ec(codes, self.tables, self.header.quantizer.quality)
        return decode_chunk(self.header, i, self._raw_chunk(i), self.name)

    def chunk_codes(self, i: int) -> np.ndarray:
        """Raw stored values of chunk ``i``: uint8 codes, read-only float16 (float16 mode) or
        int32 signed codes (rans mode, which needs the tables)."""
        if self.entropy_coded:
            return self._codes(i, self._raw_chunk(i))
        return chunk_values(self.header, i, self._raw_chunk(i), self.name)

    def chunk_bits_per_value(self) -> list[float]:
        """Stored bits per latent value of each chunk (header excluded)."""
        return [8 * c.size / v if v else 0.0
                for c, v in zip(self.header.chunks, self.header.values_per_chunk, strict=True)]

    def chunk_at(self, seconds: float) -> int:
        """Index of the chunk holding the latent frame at time ``seconds`` of the source."""
        if seconds != seconds:
            raise ValueError("seconds is NaN")
        h = self.header
        frame_rate = h.mel.sample_rate / (h.mel.hop_length * h.latent.time_downsample)
        last = max(len(h.chunks) - 1, 0)
        frame = max(0.0, seconds) * frame_rate
        return min(int(min(frame, float(h.latent.frames))) // h.latent.frames_per_chunk, last)

    def latents(self, channel: int | None = None, *, max_bytes: int = MAX_LATENTS_BYTES
                ) -> np.ndarray:
        """All latents, overlap removed: float32 (audio_ch, latent_ch, frames, freq).

        With ``channel`` set, only that audio channel, still with a leading axis of 1. Refuses
        (FormatError) when the array would exceed ``max_bytes``: read such a file chunk by
        chunk with :meth:`read_chunk`, or pass a larger bound.
        """
        h = self.header
        lat = h.latent
        a = h.source.channels
        if channel is not None:
            if not -a <= channel < a:
                raise IndexError(f"audio channel {channel} out of range for {a} channels")
            channel %= a
        need = (a if channel is None else 1) * lat.channels * lat.frames * lat.freq_bins * 4
        if need > max_bytes:
            raise FormatError(self.name, f"its latents need {need} bytes, over the bound of "
                                         f"{max_bytes}; read them chunk by chunk (read_chunk)")
        out = np.zeros((a if channel is None else 1, lat.channels, lat.frames, lat.freq_bins),
                       np.float32)
        for i, c in enumerate(h.chunks):
            x = self.read_chunk(i)
            keep = min(lat.frames_per_chunk, c.frames)
            sel = x if channel is None else x[channel:channel + 1]
            out[:, :, c.frame_start:c.frame_start + keep] = sel[:, :, :keep]
        return out

    def tail(self, k: int) -> tuple[LdmzFile, int]:
        """Chunks ``k..`` as a file of their own, and the source sample that file starts at.

        The compressed chunks are reused as they are; frame starts, offsets, the source length
        and the latent frame counts are shifted, so the result decodes like this file from chunk
        ``k`` on (a player seeks by decoding from the chunk that holds the target).
        """
        if k <= 0:
            return self, 0
        h = self.header
        first = h.chunks[k]
        skip_mel = first.frame_start * h.latent.time_downsample
        start = min(round(skip_mel * h.mel.hop_length * h.source.sample_rate / h.mel.sample_rate),
                    h.source.samples)
        chunks = tuple(replace(c, frame_start=c.frame_start - first.frame_start,
                               offset=c.offset - first.offset) for c in h.chunks[k:])
        latent = replace(h.latent, frames=h.latent.frames - first.frame_start,
                         mel_frames=max(0, h.latent.mel_frames - skip_mel)
                         if h.latent.mel_frames else 0)
        sub = replace(h, chunks=chunks, latent=latent,
                      source=replace(h.source, samples=h.source.samples - start))
        out = LdmzFile(sub, [self._blob(i) for i in range(k, len(h.chunks))])
        out.name = self.name
        return out, start

    # ------------------------------------------------------------------ writing
    def to_bytes(self) -> bytes:
        """Serialize: preamble, msgpack header, chunks."""
        hbytes = _pack_header(self.header)
        if len(hbytes) > MAX_HEADER_BYTES:  # the writer refuses what its reader would
            raise FormatError(self.name, f"the header would take {len(hbytes)} bytes, over the "
                                         f"limit of {MAX_HEADER_BYTES}; use longer chunks "
                                         f"(--chunk-seconds) or fewer channels")
        try:
            _unpack_header(hbytes)
        except ValueError as e:
            raise FormatError(self.name, f"the header would be refused by readers ({e}); use "
                                         f"longer chunks (--chunk-seconds)") from e
        major = VERSION_RANS if self.entropy_coded else VERSION_MAJOR
        minor = 1 if self.entropy_coded and is_joint(self.header) else VERSION_MINOR
        head = struct.pack("<4sBBHI", MAGIC, major, minor, 0, len(hbytes))
        out = io.BytesIO()
        out.write(head + struct.pack("<I", crc32(head, hbytes)))
        out.write(hbytes)
        for i in range(len(self.header.chunks)):
            out.write(self._blob(i))
        return out.getvalue()

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write atomically (temporary file in the same folder, fsync, rename).

        Refuses to replace an existing file unless ``overwrite`` is true.
        """
        write_atomic(path, self.to_bytes(), overwrite=overwrite)

    def __repr__(self) -> str:
        h = self.header
        return (f"LdmzFile({self.name!r}, model={h.model.id!r}, {h.duration:.2f}s, "
                f"{h.source.channels}ch, {len(h.chunks)} chunks)")



def _read_header(reader: _ChunkReader) -> Header:
    """Check the preamble and parse the header; sets ``reader.data_start``."""
    name = reader.name
    pre = reader.read(0, PREAMBLE.size)
    end = header_end(pre, name)
    if end is None:
        raise FormatError(name, f"truncated: {len(pre)} bytes, the preamble needs "
                                f"{PREAMBLE.size}")
    hlen, hcrc = end - PREAMBLE.size, PREAMBLE.unpack(pre)[5]
    hbytes = reader.read(PREAMBLE.size, hlen)
    if len(hbytes) < hlen:
        raise FormatError(name, f"truncated inside the header: file ends at byte "
                                f"{PREAMBLE.size + len(hbytes)}, the header ends at "
                                f"{PREAMBLE.size + hlen}")
    if crc32(pre[:12], hbytes) != hcrc:
        raise ChecksumError(name, "header checksum mismatch (the file is damaged)")
    try:
        raw = _unpack_header(hbytes)
    except (ValueError, msgpack.UnpackException) as e:
        why = " ".join(str(e).split())[:200] or type(e).__name__
        raise FormatError(name, f"header is not valid msgpack ({why})") from e
    major = pre[4]
    header = (header_from_dict if major == 1 else header_from_compact)(raw, name)
    if (major == 2) != (header.quantizer.mode == RANS):
        raise FormatError(name, f"format {major} cannot hold {header.quantizer.mode} chunks")
    reader.data_start = PREAMBLE.size + hlen
    return header


def read_header(prefix: bytes, name: str = "<bytes>") -> tuple[Header, int]:
    """The verified header of a file from its first bytes, and the offset of its data section.

    ``prefix`` needs only the preamble and the header (the chunks may be absent), so a stream
    reader can learn duration, channels, rate and tags before the rest arrives. Raises
    FormatError (wrong magic, damage, or too few bytes: :func:`header_end` says how many).
    """
    reader = _ChunkReader(name, memory=memoryview(bytes(prefix)))
    return _read_header(reader), reader.data_start


def header_end(prefix: bytes, name: str = "<bytes>") -> int | None:
    """How many leading bytes :func:`read_header` needs (None: fewer than a preamble so far).

    Raises FormatError as soon as the bytes cannot start an ldmz file (magic, version, flags,
    header length), so a stream reader can refuse before buffering anything more.
    """
    if prefix[:4] != MAGIC[:min(len(prefix), 4)]:
        raise FormatError(name, "not an ldmz file (wrong magic bytes)")
    if len(prefix) < PREAMBLE.size:
        return None
    _, major, minor, flags, hlen, _ = PREAMBLE.unpack(prefix[:PREAMBLE.size])
    if major not in MAJORS:
        raise VersionError(name, f"format version {major}.{minor} is not supported; this "
                                 f"reader supports versions 1.x and 2.x")
    if flags != 0 or hlen > MAX_HEADER_BYTES:
        raise FormatError(name, f"bad preamble (flags {flags}, header length {hlen}); "
                                f"the header limit is {MAX_HEADER_BYTES} bytes")
    return PREAMBLE.size + int(hlen)


def _pack_header(h: Header) -> bytes:
    """Format 1's readable map, or format 2's compact one (floats as float 32) for rans."""
    packed: bytes
    if h.quantizer.mode == RANS:
        packed = msgpack.packb(header_to_compact(h), use_bin_type=True, use_single_float=True)
    else:
        packed = msgpack.packb(h.to_dict(), use_bin_type=True)
    return packed


def _unpack_header(hbytes: bytes) -> object:
    """Decode the msgpack header: keys are distinct strings; maps + arrays <= 1 per 8 bytes + 64.

    Legitimate headers need far fewer (a row of q values alone takes 10 bytes). The budget, and
    the matching cap on declared lengths (msgpack allocates a list before filling it), keep a
    forged header of empty arrays from costing ~60 bytes of memory per byte of input.
    """
    budget = len(hbytes) // 8 + 64

    def count(x: list[Any]) -> list[Any]:
        nonlocal budget
        budget -= 1
        if budget < 0:
            raise ValueError("more maps and arrays than the header size allows")
        return x

    def to_dict(pairs: list[tuple[object, object]]) -> dict[object, object]:
        d = dict(count(pairs))
        if len(d) != len(pairs) or not all(isinstance(k, str) for k in d):
            raise ValueError("map keys must be distinct strings")
        return d

    try:
        return msgpack.unpackb(hbytes, raw=False, strict_map_key=True, list_hook=count,
                               object_pairs_hook=to_dict, max_array_len=budget,
                               max_map_len=len(hbytes) // 2 + 64)
    except MemoryError as e:  # deep nesting of long declared arrays, on a strict-overcommit OS
        raise ValueError("header needs too much memory to decode") from e


def _seekable(f: object) -> bool:
    try:
        return bool(f.seekable())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False
