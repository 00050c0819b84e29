"""Vocoder training clips: audio, exact log-mel, the universal HiFi-GAN's output and codec mels.

Run: ``python scripts/vocoder_data.py --manifest data/manifest.csv --split train --clips 600
--out runs/vocoder/data/train`` writes shards ``NNN.npz`` of ``--shard`` clips each, so training
can start on the first shards while later ones are made. Clips are ``--frames`` mel frames long
(plus nothing: edges are cropped at training time), drawn with a seed, balanced over categories.
Each shard holds ``audio``/``teacher`` (clips, frames*hop) float16, ``mel`` (clips, frames,
n_mels) float16 (no ``teacher`` with ``--no-teacher``) and, for every ``--codec-every``-th
clip, the mel that ldmz-small decodes from its own file in ``codec_mel`` (else a copy of the
exact mel) with ``codec_bits``: 3 or 4 for the entropy coding at that quality, 2 for affine 2-bit.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    """Write the shards; existing shards are kept (the run resumes)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--clips", type=int, default=600)
    ap.add_argument("--shard", type=int, default=25)
    ap.add_argument("--frames", type=int, default=256)
    ap.add_argument("--codec-every", type=int, default=3, help="0: no codec mels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-teacher", action="store_true",
                    help="skip the universal HiFi-GAN (no teacher array: real-audio losses only)")
    ap.add_argument("--device", default="cpu", help="torch device for the teacher and the codec")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    import soundfile as sf
    import soxr
    import torch

    from ldmz.codec.api import decode_mel, encode
    from ldmz.codec.dsp.frontend import log_mel_np, normalize
    from ldmz.codec.models import load_model
    from ldmz.codec.params import EncodeParams
    from ldmz.codec.train.mels import read_manifest
    from ldmz.codec.vocoders import UNIVERSAL_MEL, load_vocoder

    torch.set_num_threads(a.threads)
    mel = UNIVERSAL_MEL
    rows = read_manifest(Path(a.manifest), a.split)
    if not rows:
        print(f"{a.manifest}: no rows of split {a.split}; check --split", file=sys.stderr)
        return 1
    by_cat: dict[str, list[Path]] = {}
    for p, c in rows:
        by_cat.setdefault(c, []).append(p)
    cats = sorted(by_cat)
    n_samp = a.frames * mel.hop_length
    teacher = None if a.no_teacher else load_vocoder("universal", device=a.device)
    model = load_model("ldmz-small", a.device) if a.codec_every else None
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for s in range(-(-a.clips // a.shard)):
        srng = np.random.default_rng([a.seed, s])
        dst = out / f"{s:03d}.npz"
        if dst.exists():
            continue
        keys = {k: [] for k in ("audio", "teacher", "mel", "codec_mel", "codec_bits", "cat")}
        i = 0
        while len(keys["audio"]) < min(a.shard, a.clips - s * a.shard):
            cat = cats[(s * a.shard + i) % len(cats)]
            i += 1
            path = by_cat[cat][int(srng.integers(len(by_cat[cat])))]
            wav, sr = sf.read(path, dtype="float32", always_2d=True)
            wav = wav.mean(axis=1)
            if sr != mel.sample_rate:
                wav = soxr.resample(wav, sr, mel.sample_rate)
            if len(wav) < n_samp:
                continue
            o = int(srng.integers(0, len(wav) - n_samp + 1))
            x, gain = normalize(wav[o:o + n_samp])
            if gain == 0 or np.sqrt(np.mean(x ** 2)) < 1e-3:
                continue
            m = log_mel_np(x, mel)[:a.frames]
            y = teacher(m)[:n_samp] if teacher is not None else None
            cm, bits = m, 0
            if model is not None and len(keys["audio"]) % a.codec_every == 0:
                # the entropy coding at quality 3 or 4 (4 is the default), or affine 2-bit
                bits = int(srng.choice([3, 4, 2]))
                p = EncodeParams(coding="affine", bits=2, device=a.device) if bits == 2 else \
                    EncodeParams(quality=bits, device=a.device)
                f = encode(x, mel.sample_rate, p)
                cm = decode_mel(f, 0, model)[:a.frames]
            keys["audio"].append(x.astype(np.float16))
            if y is not None:
                keys["teacher"].append(np.pad(y, (0, n_samp - len(y))).astype(np.float16))
            keys["mel"].append(m.astype(np.float16))
            keys["codec_mel"].append(cm.astype(np.float16))
            keys["codec_bits"].append(bits)
            keys["cat"].append(cat)
        tmp = dst.with_suffix(".tmp.npz")
        np.savez(tmp, **{k: np.stack(v) if k != "cat" else np.array(v)
                         for k, v in keys.items() if v})
        tmp.replace(dst)
        print(f"{dst} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
