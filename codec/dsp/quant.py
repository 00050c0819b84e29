"""Bit allocation for latents: one quantizer step for every channel (classic transform coding).

``bits`` names the depth of the widest latent channel; every other channel gets just enough bits
to cover its own range with the same step, so low-variance channels cost little or nothing.
"""

from __future__ import annotations

import math

import numpy as np

from ldmz.codec.errors import ParamError
from ldmz.formats import dequantize, quantize

CLIP_PERCENTILE = 0.02  # clip each channel's range to its 0.02 / 99.98 percentiles


def channel_ranges(z: np.ndarray, clip: float | None = CLIP_PERCENTILE) -> np.ndarray:
    """Range of each latent channel of ``z`` (audio_ch, latent_ch, frames, freq)."""
    flat = np.moveaxis(np.asarray(z, np.float32), 1, 0).reshape(z.shape[1], -1)
    if flat.shape[1] == 0:
        return np.zeros(z.shape[1], np.float32)
    if clip:
        lo, hi = np.percentile(flat, [clip, 100 - clip], axis=1)
    else:
        lo, hi = flat.min(axis=1), flat.max(axis=1)
    ranges: np.ndarray = (hi - lo).astype(np.float32)
    return ranges


def allocate_bits(z: np.ndarray, bits: int, clip: float | None = CLIP_PERCENTILE) -> list[int]:
    """Bits per latent channel for an equal quantizer step set by ``bits`` on the widest one."""
    if not 1 <= bits <= 8:
        raise ParamError(f"bits must be 1..8, got {bits}")
    ranges = channel_ranges(z, clip)
    widest = float(ranges.max()) if ranges.size else 0.0
    if widest <= 0:
        return [0] * len(ranges)
    step = widest / (2**bits - 1)
    out = []
    for r in ranges:
        levels = r / step
        out.append(0 if levels < 0.5 else min(8, max(1, math.ceil(math.log2(levels + 1)))))
    return out


def quantize_latents(z: np.ndarray, bits: int) -> tuple[np.ndarray, list[int]]:
    """Quantize and dequantize ``z`` (audio_ch, latent_ch, frames, freq) as one chunk."""
    per = allocate_bits(z, bits)
    out = np.empty_like(z, dtype=np.float32)
    for a in range(z.shape[0]):
        codes, off, step = quantize(z[a], per, CLIP_PERCENTILE)
        out[a] = dequantize(codes, off, step)
    return out, per
