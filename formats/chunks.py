"""Chunk payloads: code planes or float16 values, zstd compression and bounded decompression."""

from __future__ import annotations

import zlib

import numpy as np
import zstandard

from ldmz.formats.errors import ChecksumError, FormatError
from ldmz.formats.header import ChunkEntry, Header
from ldmz.formats.quantize import dequantize, pack_plane, packed_size, unpack_plane

ZSTD_LEVEL = 19
FLOAT16_MAX = 65504.0


def crc32(*parts: bytes | memoryview) -> int:
    """CRC-32 (zlib, ISO-HDLC) of the concatenated ``parts``."""
    c = 0
    for p in parts:
        c = zlib.crc32(p, c)
    return c & 0xFFFFFFFF


def compress(raw: bytes) -> bytes:
    """One zstd frame with the content size recorded and no zstd checksum."""
    cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True,
                                    write_checksum=False)
    return cctx.compress(raw)


def encode_chunk(h: Header, arr: np.ndarray) -> bytes:
    """Raw (uncompressed) payload of one chunk: packed code planes, or float16 values."""
    arr = np.asarray(arr)
    if arr.ndim != 4:
        raise ValueError(f"chunk must be 4-D (audio_ch, latent_ch, frames, freq), got {arr.shape}")
    a, lc, t, f = arr.shape
    if (a, lc, f) != (h.source.channels, h.latent.channels, h.latent.freq_bins):
        raise ValueError(f"chunk shape {arr.shape} does not match the header")
    if h.quantizer.mode == "float16":
        with np.errstate(over="ignore", invalid="ignore"):
            vals = np.ascontiguousarray(arr, dtype="<f2")
        if not np.isfinite(vals).all():
            raise ValueError(f"float16 chunk values must be finite and within +-{FLOAT16_MAX:g}")
        return vals.tobytes()
    if arr.dtype.kind not in "iu":
        raise ValueError(f"affine chunks take integer codes, got dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 255):
        raise ValueError("codes must lie in 0..255")
    return b"".join(pack_plane(arr[ai, ci], b) for ai in range(a)
                    for ci, b in enumerate(h.quantizer.bits))


def check_blob(blob: bytes, c: ChunkEntry, i: int, name: str) -> None:
    """Check chunk ``i``'s CRC-32 and its zstd frame header (cheap: nothing is inflated)."""
    if crc32(blob) != c.crc32:
        raise ChecksumError(name, f"chunk {i} checksum mismatch (the file is damaged)")
    try:
        declared = zstandard.get_frame_parameters(blob).content_size
    except zstandard.ZstdError as e:
        raise FormatError(name, f"chunk {i} is not valid zstd ({e})") from e
    if declared in (zstandard.CONTENTSIZE_UNKNOWN, zstandard.CONTENTSIZE_ERROR):
        raise FormatError(name, f"chunk {i} zstd frame does not record its content size")
    if declared != c.raw_size:
        raise FormatError(name, f"chunk {i} zstd frame declares {declared} bytes, the "
                                f"header {c.raw_size}")


def decompress_chunk(blob: bytes, c: ChunkEntry, i: int, name: str) -> bytes:
    """Check the CRC-32 and zstd frame of chunk ``i``, then inflate it to exactly ``raw_size``."""
    check_blob(blob, c, i, name)
    try:
        # The content size is checked above, so libzstd bounds both its window and the output
        # by raw_size (it stops with an error once a frame outgrows its declared size).
        obj = zstandard.ZstdDecompressor().decompressobj()
        raw = obj.decompress(blob)
    except zstandard.ZstdError as e:
        raise FormatError(name, f"chunk {i} is not valid zstd ({e})") from e
    if len(raw) != c.raw_size or not obj.eof or obj.unused_data:
        raise FormatError(name, f"chunk {i} is not one zstd frame of the declared "
                                f"{c.raw_size} bytes")
    return raw


def chunk_values(h: Header, i: int, raw: bytes, name: str) -> np.ndarray:
    """Stored values of chunk ``i``: uint8 codes, or float16 (read-only) in float16 mode."""
    shape = h.chunk_shape(i)
    if h.quantizer.mode == "float16":
        vals = np.frombuffer(raw, dtype="<f2").reshape(shape)
        if not np.isfinite(vals).all():
            raise FormatError(name, f"chunk {i} holds non-finite float16 values")
        return vals
    a, lc, t, f = shape
    codes = np.zeros(shape, dtype=np.uint8)
    pos = 0
    for ai in range(a):
        for ci, b in enumerate(h.quantizer.bits):
            n = packed_size(b, t * f)
            codes[ai, ci] = unpack_plane(raw[pos:pos + n], b, t * f).reshape(t, f)
            pos += n
    return codes


def decode_chunk(h: Header, i: int, raw: bytes, name: str) -> np.ndarray:
    """Dequantized float32 values of chunk ``i``: (audio_ch, latent_ch, frames, freq)."""
    vals = chunk_values(h, i, raw, name)
    if h.quantizer.mode == "float16":
        return vals.astype(np.float32)
    c = h.chunks[i]
    return np.stack([dequantize(vals[ai], np.array(c.q_offset[ai]), np.array(c.q_step[ai]))
                     for ai in range(vals.shape[0])])
