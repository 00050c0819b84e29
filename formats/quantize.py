"""Per-channel affine quantizer and bit packing for latents, in numpy only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_BITS = 8


def values_per_byte(bits: int) -> int:
    """How many codes of ``bits`` bits share one byte in the packed layout (0 bits: none stored)."""
    if not 0 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be in 0..{MAX_BITS}, got {bits}")
    return 8 // bits if bits else 0


def packed_size(bits: int, count: int) -> int:
    """Bytes taken by ``count`` codes of ``bits`` bits in one packed plane."""
    k = values_per_byte(bits)
    return 0 if k == 0 else -(-count // k)


def quantize(
    x: np.ndarray, bits: Sequence[int], clip_percentile: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantize ``x`` of shape (channels, ...) with one affine grid per channel.

    Returns ``(codes uint8, offset float32 (C,), step float32 (C,))`` with
    ``x ~= offset + step * codes``. A channel with 0 bits keeps only its mean.
    ``clip_percentile`` (e.g. 0.1) clips the range to that percentile at each end.
    """
    x = np.asarray(x, dtype=np.float32)
    if len(bits) != x.shape[0]:
        raise ValueError(f"need one bit depth per channel: {len(bits)} for {x.shape[0]} channels")
    codes = np.zeros(x.shape, dtype=np.uint8)
    offset = np.zeros(x.shape[0], dtype=np.float32)
    step = np.zeros(x.shape[0], dtype=np.float32)
    for c, b in enumerate(bits):
        values_per_byte(b)
        plane = x[c]
        if b == 0 or plane.size == 0:
            offset[c] = float(plane.mean()) if plane.size else 0.0
            continue
        if clip_percentile:
            lo, hi = np.percentile(plane, [clip_percentile, 100.0 - clip_percentile])
        else:
            lo, hi = float(plane.min()), float(plane.max())
        levels = (1 << b) - 1
        offset[c] = np.float32(lo)
        step[c] = np.float32((hi - lo) / levels) if hi > lo else np.float32(0.0)
        if step[c] > 0:
            q = np.rint((plane - offset[c]) / step[c])
            codes[c] = np.clip(q, 0, levels).astype(np.uint8)
    return codes, offset, step


def dequantize(codes: np.ndarray, offset: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Map codes of shape (channels, ...) back to float32 values ``offset + step * code``."""
    shape = (-1,) + (1,) * (codes.ndim - 1)
    off = np.asarray(offset, dtype=np.float32).reshape(shape)
    stp = np.asarray(step, dtype=np.float32).reshape(shape)
    return (off + stp * codes.astype(np.float32)).astype(np.float32)


def pack_plane(codes: np.ndarray, bits: int) -> bytes:
    """Pack one plane of codes, flattened in C order, ``8 // bits`` codes per byte, LSB first."""
    k = values_per_byte(bits)
    if k == 0:
        return b""
    flat = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1)
    if flat.size and int(flat.max()) >> bits:
        raise ValueError(f"code {int(flat.max())} does not fit in {bits} bits")
    pad = (-flat.size) % k
    grid = np.concatenate([flat, np.zeros(pad, np.uint8)]).reshape(-1, k).astype(np.uint16)
    shifts = (np.arange(k, dtype=np.uint16) * bits)[None, :]
    packed: bytes = (grid << shifts).sum(axis=1).astype(np.uint8).tobytes()
    return packed


def unpack_plane(buf: bytes | memoryview, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_plane`: ``count`` codes as uint8."""
    k = values_per_byte(bits)
    if k == 0:
        return np.zeros(count, dtype=np.uint8)
    raw = np.frombuffer(buf, dtype=np.uint8)
    if raw.size != packed_size(bits, count):
        raise ValueError(f"packed plane has {raw.size} bytes, expected {packed_size(bits, count)}")
    shifts = (np.arange(k, dtype=np.uint8) * bits)[None, :]
    mask = np.uint8((1 << bits) - 1)
    codes: np.ndarray = ((raw[:, None] >> shifts) & mask).reshape(-1)[:count].copy()
    return codes
