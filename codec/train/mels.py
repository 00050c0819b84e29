"""Training features: read the prepared audio manifest and cache normalized log-mels as float16."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ldmz.formats import MelParams


def read_manifest(path: Path, split: str) -> list[tuple[Path, str]]:
    """``(audio path, category)`` rows of ``split`` in a manifest.csv (path,split,category)."""
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["split"] == split:
                p = Path(r["path"])
                rows.append((p if p.is_absolute() else path.parent / p, r["category"]))
    return rows


def build_cache(manifest: Path, split: str, mel: MelParams, cache: Path) -> dict:
    """Compute (or load) the log-mels of every file of ``split``; returns arrays and offsets.

    The cache file holds ``mels`` (frames, n_mels) float16 for all files concatenated,
    ``starts`` per file and ``category`` per file.
    """
    if cache.exists():
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    import soundfile as sf

    from ldmz.codec.audio_io import resample
    from ldmz.codec.dsp.frontend import log_mel_np, normalize

    mels, starts, cats, pos = [], [], [], 0
    for path, cat in read_manifest(manifest, split):
        wav, sr = sf.read(path, dtype="float32", always_2d=True)
        wav = wav.mean(axis=1)
        if sr != mel.sample_rate:
            wav = resample(wav, sr, mel.sample_rate)
        wav, gain = normalize(wav)
        if gain == 0 or wav.size < mel.n_fft * 2:
            continue
        m = log_mel_np(wav, mel).astype(np.float16)
        mels.append(m)
        starts.append(pos)
        cats.append(cat)
        pos += len(m)
    out: dict[str, np.ndarray] = {"mels": np.concatenate(mels),
                                  "starts": np.array(starts + [pos], np.int64),
                                  "category": np.array(cats)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, mels=out["mels"], starts=out["starts"], category=out["category"])
    return out


def sample_crops(data: dict, n: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random crops of ``frames`` frames (files shorter than that are zero-floor padded)."""
    starts = data["starts"]
    mels = data["mels"]
    files = rng.integers(0, len(starts) - 1, n)
    out = np.full((n, frames, mels.shape[1]), np.log(1e-5), np.float32)
    for i, f in enumerate(files):
        a, b = int(starts[f]), int(starts[f + 1])
        if b - a <= frames:
            out[i, : b - a] = mels[a:b]
        else:
            s = int(rng.integers(a, b - frames))
            out[i] = mels[s:s + frames]
    return out
