"""Mel-domain rate-quality of models on the bench corpus: real file kbps vs 80-mel log-mel L1.

Each clip is mixed to mono, encoded with the codec (``EncodeParams(model, bits)``), and
``decode_mel`` is compared with the exact mel of the clip (no vocoder). ``--pca`` adds the
linear floor: a PatchVAE at its PCA initialisation (no residuals) fitted on the training cache.

    python scripts/rate_quality_mel.py codec/models/ldmz-small --pca --bits 2 3 4 5
    python scripts/rate_quality_mel.py codec/models/ldmz-small --bits --quality 1 2 3 4 5

``--quality`` rows use the entropy coding (format 2) with the model folder's tables.
"""

from __future__ import annotations

import argparse
import glob
import tempfile
from pathlib import Path

import numpy as np


def pca_folder(cache: Path, out: Path) -> Path:
    """Export the PCA-initialised PatchVAE (the linear floor) fitted on ``cache``."""
    from ldmz.codec.models.patchvae import PatchVAE
    from ldmz.codec.train.trainer import export, pca_init

    with np.load(cache) as z:
        data = {k: z[k] for k in z.files}
    model = PatchVAE()
    pca_init(model, data)
    export(model, out, revision="pca")
    return out


def evaluate(folder: str, bits: list[int], corpus: str, qualities: list[int] = ()) -> None:
    """Print mean kbps and 80-mel L1 per category for each bit depth and quality."""
    import torch

    from ldmz.codec.api import decode_mel, encode
    from ldmz.codec.audio_io import read_audio, resample
    from ldmz.codec.dsp.frontend import log_mel_np, normalize
    from ldmz.codec.models import load_model
    from ldmz.codec.params import EncodeParams

    torch.set_num_threads(1)
    m = load_model(folder, "cpu")
    clips = sorted(glob.glob(f"{corpus}/*/*.flac"))
    points = [("bits", b, EncodeParams(model=folder, bits=b, coding="affine")) for b in bits]
    points += [("quality", q, EncodeParams(model=folder, quality=q, coding="rans"))
               for q in qualities]
    for what, b, params in points:
        res: dict[str, list[tuple[float, float]]] = {}
        for c in clips:
            a, sr = read_audio(c)
            a = a.mean(0, keepdims=True)
            f = encode(a, sr, params)
            kbps = f.header.bitrate_kbps(len(f.to_bytes()))
            mel = decode_mel(f, 0, m)
            ref = log_mel_np(normalize(resample(a[0], sr, m.mel.sample_rate))[0], m.mel)
            n = min(len(ref), len(mel))
            res.setdefault(Path(c).parent.name, []).append(
                (kbps, float(np.abs(mel[:n] - ref[:n]).mean())))
        cells = "  ".join(f"{k} {np.mean([v[0] for v in vs]):.2f} kbps L1 "
                          f"{np.mean([v[1] for v in vs]):.3f}" for k, vs in sorted(res.items()))
        print(f"{folder} {what} {b}: {cells}", flush=True)


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", help="model names or folders")
    ap.add_argument("--bits", nargs="*", type=int, default=[2, 3, 4])
    ap.add_argument("--quality", nargs="*", type=int, default=[],
                    help="entropy-coded qualities of the model's tables")
    ap.add_argument("--pca", action="store_true", help="also the PCA floor (linear coder)")
    ap.add_argument("--cache", type=Path, default=Path("data/cache_train.npz"))
    ap.add_argument("--corpus", default="bench/corpus")
    a = ap.parse_args()
    models = list(a.models)
    with tempfile.TemporaryDirectory() as tmp:
        if a.pca:
            models.insert(0, str(pca_folder(a.cache, Path(tmp) / "pca-floor")))
        for folder in models:
            evaluate(folder, a.bits, a.corpus, a.quality)


if __name__ == "__main__":
    main()
