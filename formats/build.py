"""Build an LdmzFile from a full latent array: chunking, quantization, header assembly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from ldmz.formats.chunks import FLOAT16_MAX
from ldmz.formats.container import LdmzFile
from ldmz.formats.entropy import EntropyTables, choose_joint, quantize_ec
from ldmz.formats.header import (
    MAX_QUANT_ABS,
    ChunkEntry,
    Header,
    LatentInfo,
    MelParams,
    ModelInfo,
    QuantizerInfo,
    SourceInfo,
)
from ldmz.formats.quantize import quantize


def pack_latents(
    latents: np.ndarray,
    *,
    model: ModelInfo,
    mel: MelParams,
    source: SourceInfo,
    bits: int | Sequence[int] | str = 8,
    frames_per_chunk: int = 256,
    overlap: int = 0,
    time_downsample: int = 4,
    mel_frames: int = 0,
    clip_percentile: float | None = None,
    tags: Mapping[str, str] | None = None,
    vocoder: str = "",
    writer: str = "",
    tables: EntropyTables | None = None,
    quality: int = 0,
    joint: bool = True,
) -> LdmzFile:
    """Quantize and chunk ``latents`` (audio_ch, latent_ch, frames, freq) into an LdmzFile.

    ``bits`` is one depth for all latent channels, one per latent channel, or ``"float16"``.
    With ``tables`` (the model's entropy tables) ``bits`` is ignored: the latents are coded at
    ``quality`` and rANS-coded (format 2); with ``joint`` a chunk's audio channel is coded as
    the residual of an earlier one where that is smaller (format 2.1; the codes are the same).
    Each chunk stores frames ``[i*frames_per_chunk, (i+1)*frames_per_chunk + overlap)``.
    """
    latents = np.asarray(latents, dtype=np.float32)
    if latents.ndim != 4:
        raise ValueError(f"latents must be 4-D (audio_ch, latent_ch, frames, freq), "
                         f"got {latents.shape}")
    if not np.isfinite(latents).all():
        raise ValueError("latents contain NaN or inf")
    limit = FLOAT16_MAX if isinstance(bits, str) else MAX_QUANT_ABS / 2
    if latents.size and float(np.abs(latents).max()) > limit:
        raise ValueError(f"latents must lie within +-{limit:g} for bits={bits!r}")
    a, lc, t, f = latents.shape
    if tables is not None:
        return _pack_rans(latents, tables, quality, model=model, mel=mel, source=source,
                          frames_per_chunk=frames_per_chunk, overlap=overlap,
                          time_downsample=time_downsample, mel_frames=mel_frames, tags=tags,
                          vocoder=vocoder, writer=writer, joint=joint)
    if isinstance(bits, str):
        if bits != "float16":
            raise ValueError(f"bits must be 0..8 or 'float16', got {bits!r}")
        quant = QuantizerInfo(mode="float16", bits=())
    else:
        per = [int(bits)] * lc if isinstance(bits, (int, np.integer)) else [int(b) for b in bits]
        quant = QuantizerInfo(mode="affine", bits=tuple(per))
    lat = LatentInfo(channels=lc, freq_bins=f, frames=t, frames_per_chunk=frames_per_chunk,
                     overlap=overlap, mel_frames=mel_frames, time_downsample=time_downsample)
    entries: list[ChunkEntry] = []
    arrays: list[np.ndarray] = []
    for start in range(0, t, frames_per_chunk):
        part = latents[:, :, start:start + frames_per_chunk + overlap]
        if quant.mode == "float16":
            arrays.append(part.astype(np.float16))
            entries.append(ChunkEntry(start, part.shape[2], 0, 0, 0, 0))
            continue
        codes = np.zeros(part.shape, np.uint8)
        offs, steps = [], []
        for ai in range(a):
            codes[ai], o, s = quantize(part[ai], quant.bits, clip_percentile)
            offs.append(tuple(float(v) for v in o))
            steps.append(tuple(float(v) for v in s))
        arrays.append(codes)
        entries.append(ChunkEntry(start, part.shape[2], 0, 0, 0, 0, tuple(offs), tuple(steps)))
    header = Header(model=model, mel=mel, source=source, latent=lat, quantizer=quant,
                    chunks=tuple(entries), writer=writer, vocoder=vocoder, tags=dict(tags or {}))
    return LdmzFile.from_latents(header, arrays)


def _pack_rans(latents: np.ndarray, tables: EntropyTables, quality: int, *, model: ModelInfo,
               mel: MelParams, source: SourceInfo, frames_per_chunk: int, overlap: int,
               time_downsample: int, mel_frames: int, tags: Mapping[str, str] | None,
               vocoder: str, writer: str, joint: bool = True) -> LdmzFile:
    a, lc, t, f = latents.shape
    if tables.mean.shape != (lc, f):
        raise ValueError(f"entropy tables are for {tables.mean.shape} latents, not {(lc, f)}")
    if not 0 <= quality < tables.qualities:
        raise ValueError(f"quality must be 0..{tables.qualities - 1}, got {quality}")
    codes = quantize_ec(latents, tables, quality)
    lat = LatentInfo(channels=lc, freq_bins=f, frames=t, frames_per_chunk=frames_per_chunk,
                     overlap=overlap, mel_frames=mel_frames, time_downsample=time_downsample)
    starts = range(0, t, frames_per_chunk)
    arrays = [codes[:, :, s:s + frames_per_chunk + overlap] for s in starts]
    entries = tuple(ChunkEntry(s, arr.shape[2], 0, 0, 0, 0,
                               joint=choose_joint(arr, tables, quality) if joint else ())
                    for s, arr in zip(starts, arrays, strict=True))
    quant = QuantizerInfo(mode="rans", quality=quality, tables_sha256=tables.sha256[:16])
    header = Header(model=model, mel=mel, source=source, latent=lat, quantizer=quant,
                    chunks=entries, writer=writer, vocoder=vocoder, tags=dict(tags or {}))
    out = LdmzFile.from_latents(header, arrays, tables)
    if any(e.joint for e in entries):  # format 2.1 only where the whole file is smaller
        plain = LdmzFile.from_latents(
            replace(header, chunks=tuple(replace(e, joint=()) for e in entries)), arrays, tables)
        if len(plain.to_bytes()) <= len(out.to_bytes()):
            return plain
    return out
