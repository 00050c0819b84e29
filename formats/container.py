"""Read and write `.ldmz` files: preamble, msgpack header, zstd-compressed latent chunks."""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import msgpack
import numpy as np
import zstandard

from ldmz.formats.errors import ChecksumError, FormatError, VersionError
from ldmz.formats.header import MAX_HEADER_BYTES, ChunkEntry, Header, header_from_dict
from ldmz.formats.quantize import dequantize, pack_plane, packed_size, unpack_plane

MAGIC = b"LDMZ"
VERSION_MAJOR = 1
VERSION_MINOR = 0
# Preamble, 16 bytes, little-endian:
#   magic    4s  b"LDMZ"
#   major    B   format major version (readers refuse a major they do not know)
#   minor    B   format minor version (additions only; readers accept any minor)
#   flags    H   reserved, 0
#   hlen     I   length of the msgpack header in bytes
#   hcrc     I   CRC-32 of the first 12 preamble bytes followed by the header bytes
PREAMBLE = struct.Struct("<4sBBHII")
ZSTD_LEVEL = 19

Source = str | os.PathLike | BinaryIO | bytes


def _name(src: object) -> str:
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    return str(getattr(src, "name", "<stream>"))


def _crc(*parts: bytes | memoryview) -> int:
    c = 0
    for p in parts:
        c = zlib.crc32(p, c)
    return c & 0xFFFFFFFF


class LdmzFile:
    """A `.ldmz` file: its :class:`Header` and its latent chunks (read on demand)."""

    def __init__(self, header: Header, chunk_data: Sequence[bytes] | None = None,
                 *, _reader: _ChunkReader | None = None) -> None:
        self.header = header
        self._data = list(chunk_data) if chunk_data is not None else None
        self._reader = _reader
        self.name = _reader.name if _reader else "<memory>"

    # ------------------------------------------------------------------ building
    @classmethod
    def from_latents(cls, header: Header, latents: Sequence[np.ndarray]) -> LdmzFile:
        """Build a file from a header template and one array per chunk.

        Each array is quantized codes (uint8, affine mode) or float values (float16 mode) of
        shape (audio_channels, latent_channels, frames, freq_bins). Chunk offsets, sizes and
        checksums in ``header.chunks`` are recomputed; their q_offset/q_step are kept.
        """
        cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True,
                                        write_checksum=False)
        blobs, entries, pos = [], [], 0
        for i, arr in enumerate(latents):
            raw = _encode_chunk(header, arr)
            blob = cctx.compress(raw)
            c = header.chunks[i]
            entries.append(replace(c, offset=pos, size=len(blob), raw_size=len(raw),
                                   crc32=_crc(blob), frames=arr.shape[2]))
            blobs.append(blob)
            pos += len(blob)
        if len(latents) != len(header.chunks):
            raise ValueError(f"{len(latents)} chunk arrays for {len(header.chunks)} chunk entries")
        h = replace(header, chunks=tuple(entries))
        header_from_dict(h.to_dict(), "<writer>")  # the writer obeys the same rules as readers
        return cls(h, blobs)

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
        decompressed on demand, so seeking costs the header plus one chunk.
        """
        if isinstance(src, (bytes, bytearray, memoryview)):
            return cls.from_bytes(bytes(src))
        name = _name(src)
        if isinstance(src, (str, os.PathLike)):
            try:
                size = os.stat(src).st_size
            except OSError as e:
                raise FormatError(name, f"cannot open: {e.strerror or e}") from e
            reader = _ChunkReader(name, path=Path(src), size=size)
        else:
            reader = _ChunkReader(name, memory=memoryview(src.read()))
        f = cls._open(reader)
        if not lazy:
            f.verify()
        return f

    @classmethod
    def _open(cls, reader: _ChunkReader) -> LdmzFile:
        name = reader.name
        pre = reader.read(0, PREAMBLE.size)
        if pre[:4] != MAGIC[: min(len(pre), 4)]:
            raise FormatError(name, "not an ldmz file (wrong magic bytes)")
        if len(pre) < PREAMBLE.size:
            raise FormatError(name, f"truncated: {len(pre)} bytes, the preamble needs "
                                    f"{PREAMBLE.size}")
        magic, major, minor, flags, hlen, hcrc = PREAMBLE.unpack(pre)
        if major != VERSION_MAJOR:
            raise VersionError(name, f"format version {major}.{minor} is not supported; this "
                                     f"reader supports version {VERSION_MAJOR}.x")
        if flags != 0 or hlen > MAX_HEADER_BYTES:
            raise FormatError(name, f"bad preamble (flags {flags}, header length {hlen}); "
                                    f"the header limit is {MAX_HEADER_BYTES} bytes")
        hbytes = reader.read(PREAMBLE.size, hlen)
        if len(hbytes) < hlen:
            raise FormatError(name, f"truncated inside the header: file ends at byte "
                                    f"{PREAMBLE.size + len(hbytes)}, the header ends at "
                                    f"{PREAMBLE.size + hlen}")
        if _crc(pre[:12], hbytes) != hcrc:
            raise ChecksumError(name, "header checksum mismatch (the file is damaged)")
        try:
            raw = msgpack.unpackb(hbytes, raw=False, strict_map_key=True)
        except (ValueError, msgpack.UnpackException) as e:
            raise FormatError(name, f"header is not valid msgpack ({type(e).__name__})") from e
        header = header_from_dict(raw, name)
        reader.data_start = PREAMBLE.size + hlen
        expected = reader.data_start + header.data_size
        if reader.size != expected:
            what = "truncated" if reader.size < expected else "has trailing bytes"
            raise FormatError(name, f"{what}: {reader.size} bytes on disk, header describes "
                                    f"{expected}")
        return cls(header, None, _reader=reader)

    def _blob(self, i: int) -> bytes:
        if self._data is not None:
            return self._data[i]
        assert self._reader is not None
        c = self.header.chunks[i]
        blob = self._reader.read(self._reader.data_start + c.offset, c.size)
        if len(blob) != c.size:
            raise FormatError(self.name, f"truncated inside chunk {i}")
        return blob

    def _raw_chunk(self, i: int) -> bytes:
        if not 0 <= i < len(self.header.chunks):
            raise IndexError(f"chunk {i} out of range 0..{len(self.header.chunks) - 1}")
        c = self.header.chunks[i]
        blob = self._blob(i)
        if _crc(blob) != c.crc32:
            raise ChecksumError(self.name, f"chunk {i} checksum mismatch (the file is damaged)")
        try:
            declared = zstandard.get_frame_parameters(blob).content_size
            if declared != c.raw_size:
                raise FormatError(self.name, f"chunk {i} frame declares {declared} bytes, the "
                                             f"header {c.raw_size}")
            obj = zstandard.ZstdDecompressor().decompressobj()
            raw = obj.decompress(blob)
        except zstandard.ZstdError as e:
            raise FormatError(self.name, f"chunk {i} is not valid zstd ({e})") from e
        if len(raw) != c.raw_size or not obj.eof or obj.unused_data:
            raise FormatError(self.name, f"chunk {i} inflates to a size other than the declared "
                                         f"{c.raw_size} bytes")
        return raw

    def verify(self) -> None:
        """Check every chunk's checksum and decompressed size; raise FormatError on damage."""
        for i in range(len(self.header.chunks)):
            self._raw_chunk(i)

    def read_chunk(self, i: int) -> np.ndarray:
        """Dequantized float32 latents of chunk ``i``: (audio_ch, latent_ch, frames, freq)."""
        return _decode_chunk(self.header, i, self._raw_chunk(i))

    def chunk_codes(self, i: int) -> np.ndarray:
        """Raw stored values of chunk ``i`` (uint8 codes, or float16 in float16 mode)."""
        return _chunk_values(self.header, i, self._raw_chunk(i))

    def chunk_at(self, seconds: float) -> int:
        """Index of the chunk holding the latent frame at time ``seconds`` of the source."""
        h = self.header
        frame_rate = h.mel.sample_rate / (h.mel.hop_length * h.latent.time_downsample)
        frame = int(max(0.0, seconds) * frame_rate)
        return min(frame // h.latent.frames_per_chunk, max(len(h.chunks) - 1, 0))

    def latents(self, channel: int | None = None) -> np.ndarray:
        """All latents, overlap removed: float32 (audio_ch, latent_ch, frames, freq).

        With ``channel`` set, only that audio channel, still with a leading axis of 1.
        """
        h = self.header
        lat = h.latent
        out = np.zeros((h.source.channels, lat.channels, lat.frames, lat.freq_bins), np.float32)
        for i, c in enumerate(h.chunks):
            x = self.read_chunk(i)
            keep = min(lat.frames_per_chunk, c.frames)
            out[:, :, c.frame_start:c.frame_start + keep] = x[:, :, :keep]
        return out if channel is None else out[channel:channel + 1]

    # ------------------------------------------------------------------ writing
    def to_bytes(self) -> bytes:
        """Serialize: preamble, msgpack header, chunks."""
        hbytes = msgpack.packb(self.header.to_dict(), use_bin_type=True)
        head = struct.pack("<4sBBHI", MAGIC, VERSION_MAJOR, VERSION_MINOR, 0, len(hbytes))
        out = io.BytesIO()
        out.write(head + struct.pack("<I", _crc(head, hbytes)))
        out.write(hbytes)
        for i in range(len(self.header.chunks)):
            out.write(self._blob(i))
        return out.getvalue()

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write atomically (temporary file in the same folder, fsync, rename).

        Refuses to replace an existing file unless ``overwrite`` is true.
        """
        write_atomic(path, self.to_bytes(), overwrite=overwrite)

    def __repr__(self) -> str:
        h = self.header
        return (f"LdmzFile({self.name!r}, model={h.model.id!r}, {h.duration:.2f}s, "
                f"{h.source.channels}ch, {len(h.chunks)} chunks)")


def write_atomic(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename; FileExistsError if present."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (use --force to overwrite)")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if path appeared meanwhile: never clobber
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class _ChunkReader:
    """Random access to a file's bytes, from memory or by path (one open per read)."""

    def __init__(self, name: str, *, memory: memoryview | None = None,
                 path: Path | None = None, size: int = 0) -> None:
        self.name, self.memory, self.path = name, memory, path
        self.size = len(memory) if memory is not None else size
        self.data_start = 0

    def read(self, offset: int, n: int) -> bytes:
        if self.memory is not None:
            return bytes(self.memory[offset:offset + n])
        try:
            with open(self.path, "rb") as f:  # type: ignore[arg-type]
                f.seek(offset)
                return f.read(n)
        except OSError as e:
            raise FormatError(self.name, f"cannot read: {e.strerror or e}") from e


def _encode_chunk(h: Header, arr: np.ndarray) -> bytes:
    a, lc, t, f = arr.shape
    if (a, lc, f) != (h.source.channels, h.latent.channels, h.latent.freq_bins):
        raise ValueError(f"chunk shape {arr.shape} does not match the header")
    if h.quantizer.mode == "float16":
        return np.ascontiguousarray(arr, dtype="<f2").tobytes()
    return b"".join(pack_plane(arr[ai, ci], b) for ai in range(a)
                    for ci, b in enumerate(h.quantizer.bits))


def _chunk_values(h: Header, i: int, raw: bytes) -> np.ndarray:
    shape = h.chunk_shape(i)
    if h.quantizer.mode == "float16":
        return np.frombuffer(raw, dtype="<f2").reshape(shape)
    a, lc, t, f = shape
    codes = np.zeros(shape, dtype=np.uint8)
    pos = 0
    for ai in range(a):
        for ci, b in enumerate(h.quantizer.bits):
            n = packed_size(b, t * f)
            codes[ai, ci] = unpack_plane(raw[pos:pos + n], b, t * f).reshape(t, f)
            pos += n
    return codes


def _decode_chunk(h: Header, i: int, raw: bytes) -> np.ndarray:
    vals = _chunk_values(h, i, raw)
    if h.quantizer.mode == "float16":
        return vals.astype(np.float32)
    c: ChunkEntry = h.chunks[i]
    return np.stack([dequantize(vals[ai], np.array(c.q_offset[ai]), np.array(c.q_step[ai]))
                     for ai in range(vals.shape[0])])
