"""Pack training audio for the vocoder's GPU stage: FLAC segments + a manifest, under a size cap.

Run: ``python scripts/pack_vocoder_audio.py --manifest data/manifest.csv --out
runs/vocoder/pack --max-mb 30``. Segments of ``--seconds`` are drawn with a seed from the
train split, balanced over categories, resampled to 22.05 kHz mono and written as 16-bit FLAC
until the folder would pass ``--max-mb``; ``--val`` segments come from the val split. The
folder's ``manifest.csv`` (path,split,category,source) is what ``scripts/vocoder_data.py``
reads on the GPU machine. The source column keeps each segment's origin for the licences.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    """Write the pack; refuses a non-empty ``--out`` unless ``--force``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-mb", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--val", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args(argv)
    import soundfile as sf
    import soxr

    from ldmz.codec.train.mels import read_manifest

    out = Path(a.out)
    if out.exists() and any(out.iterdir()) and not a.force:
        print(f"{out}: not empty; pass --force to overwrite", file=sys.stderr)
        return 1
    sr_out, n = 22050, int(a.seconds * 22050)
    rng = np.random.default_rng(a.seed)
    rows, size = [], 0
    for split, limit in (("val", a.val), ("train", None)):
        by_cat: dict[str, list[Path]] = {}
        for p, c in read_manifest(Path(a.manifest), split):
            by_cat.setdefault(c, []).append(p)
        cats = sorted(by_cat)
        if not cats:
            print(f"{a.manifest}: no {split} rows", file=sys.stderr)
            return 1
        i = tries = 0
        while (limit is None or i < limit) and tries < 100_000:
            tries += 1
            cat = cats[i % len(cats)]
            src = by_cat[cat][int(rng.integers(len(by_cat[cat])))]
            wav, sr = sf.read(src, dtype="float32", always_2d=True)
            wav = soxr.resample(wav.mean(axis=1), sr, sr_out) if sr != sr_out else wav.mean(1)
            if len(wav) < n or np.abs(wav).max() < 1e-3:
                continue
            o = int(rng.integers(0, len(wav) - n + 1))
            rel = Path(split) / cat / f"{i:05d}.flac"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(out / rel, np.clip(wav[o:o + n], -1, 1), sr_out, subtype="PCM_16")
            grown = size + (out / rel).stat().st_size
            if limit is None and grown > a.max_mb * 2**20:
                (out / rel).unlink()
                break
            size = grown
            origin = src.relative_to(Path(a.manifest).resolve().parent) if src.is_relative_to(
                Path(a.manifest).resolve().parent) else src
            rows.append((rel.as_posix(), split, cat, f"{origin}@{o / sr_out:.2f}s"))
            i += 1
    with open(out / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "split", "category", "source"])
        w.writerows(rows)
    print(f"{out}: {len(rows)} segments, {size / 2**20:.1f} MiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
