"""Fit a model folder's entropy tables (``entropy/tables.safetensors.zst``) on training log-mels.

Every training file is encoded whole; for each quality step the codes' histograms per (latent
channel, bin, context) become integer tables (``ldmz.formats.entropy.freqs_from_counts``). The
default quality is the one of smallest rate whose validation log-mel L1 is at most ``margin``
(0.9) times the affine 2-bit coder's, on validation crops. The margin: at 1.0 the shipped
tables' default was quality 3, which matched the old default's mel L1 on the bench corpus but
lost 0.06 speech PESQ; 0.9 picks quality 4, which lost nothing (MODEL_CARD.md).

    python scripts/fit_entropy_tables.py codec/models/ldmz-small --data data
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

STEPS = tuple(float(v) for v in np.geomspace(2.8, 0.3, 8).round(4))  # quality 0 = coarsest


def encode_files(model, data: dict, every: int = 1,  # noqa: ANN001 - a LoadedModel
                 max_frames: int = 4096) -> list[np.ndarray]:
    """Latents (C, T, F) of every ``every``-th file of a mel cache, in pieces of ``max_frames``."""
    import torch

    starts, mels, p = data["starts"], data["mels"], model.geometry.time_downsample
    out = []
    for i in range(0, len(starts) - 1, every):
        m = mels[starts[i]:starts[i + 1]].astype(np.float32)
        m = m[: len(m) // p * p]
        if len(m) < p:
            continue
        parts = []
        for s in range(0, len(m), max_frames):
            with torch.inference_mode():
                x = torch.from_numpy(m[s:s + max_frames])[None, None]
                parts.append(model.encode(x)[0].numpy())
        out.append(np.concatenate(parts, axis=1))
    return out


def histograms(lat: list[np.ndarray], mean: np.ndarray, step: float, radius: int) -> np.ndarray:
    """Counts (C, F, CONTEXTS, 2*radius+1) of the codes of ``lat`` in their coding contexts."""
    from ldmz.formats.entropy import CONTEXTS, EntropyTables, _pad, contexts, quantize_ec

    c, f = mean.shape
    n = 2 * radius + 1
    t = EntropyTables(np.full((1, c), step, np.float32), mean,
                      (np.ones((c, f, CONTEXTS, n), np.int64),))
    counts = np.zeros(c * f * CONTEXTS * n, np.int64)
    for z in lat:
        k = quantize_ec(z[None], t, 0)
        idx = np.unravel_index(np.arange(k.size), k.shape)
        ctx = contexts(_pad(k), idx)
        flat = ((idx[1] * f + idx[3]) * CONTEXTS + ctx) * n + k.reshape(-1) + radius
        counts += np.bincount(flat, minlength=counts.size)
    return counts.reshape(c, f, CONTEXTS, n)


def fit(folder: Path, data: Path, every: int = 1) -> tuple[dict, dict]:
    """Tensors and metadata of ``folder``'s tables, fitted on ``data``/cache_train.npz."""
    import torch

    from ldmz.codec.models import load_model
    from ldmz.formats.entropy import freqs_from_counts

    torch.set_num_threads(1)
    model = load_model(str(folder), "cpu")
    with np.load(data / "cache_train.npz") as z:
        train = {k: z[k] for k in z.files}
    lat = encode_files(model, train, every)
    allz = np.concatenate([z.reshape(z.shape[0], -1) for z in lat], axis=1)
    mean = np.mean([z.mean(axis=1) * z.shape[1] for z in lat], axis=0) / np.mean(
        [z.shape[1] for z in lat])  # (C, F): frame-weighted mean
    mean = mean.astype(np.float32)
    spread = float(np.quantile(np.abs(allz), 0.99999)) + float(np.abs(mean).max())
    tensors = {"mean": mean, "step": np.zeros((len(STEPS), mean.shape[0]), np.float32)}
    for q, s in enumerate(STEPS):
        radius = int(min(255, np.ceil(spread / s) + 1))
        tensors["step"][q] = s
        tensors[f"freq.{q}"] = freqs_from_counts(histograms(lat, mean, s, radius)).astype(np.int32)
        print(f"quality {q}: step {s}, codes -{radius}..{radius}", flush=True)
    meta = {"format": "ldmz-entropy-1", "default": "0",
            "fitted_on": f"cache_train.npz, every {every}. file", "steps": json.dumps(STEPS)}
    return tensors, meta


def choose_default(folder: Path, data: Path, tensors: dict, meta: dict,
                   margin: float = 0.9) -> int:
    """Smallest-rate quality whose validation L1 is <= ``margin`` x the affine 2-bit coder's."""
    import torch

    from ldmz.codec.dsp.quant import quantize_latents
    from ldmz.codec.models import load_model
    from ldmz.codec.train.trainer import LOG_FLOOR, crop_batch
    from ldmz.formats.entropy import EntropyTables, dequantize_ec, quantize_ec

    model = load_model(str(folder), "cpu")
    t = EntropyTables(tensors["step"], tensors["mean"],
                      tuple(tensors[f"freq.{q}"] for q in range(len(tensors["step"]))))
    with np.load(data / "cache_val.npz") as z:
        val = {k: z[k] for k in z.files}
    x = crop_batch(val, 64, 256, 0.0, LOG_FLOOR, np.random.default_rng(1234))
    with torch.inference_mode():
        z = model.encode(x).numpy()

        def l1(zq: np.ndarray) -> float:
            return float((model.decode(torch.from_numpy(zq)) - x).abs().mean())

        ref = l1(np.stack([quantize_latents(zi[None], 2)[0][0] for zi in z]))
        res = [l1(dequantize_ec(quantize_ec(z, t, q), t, q)) for q in range(t.qualities)]
    default = next((q for q, v in enumerate(res) if v <= margin * ref), t.qualities - 1)
    print(f"val L1: affine 2-bit {ref:.4f}; per quality {[round(v, 4) for v in res]}; "
          f"default {default}", flush=True)
    meta["default"] = str(default)
    meta["val_l1"] = json.dumps([round(v, 4) for v in res])
    meta["val_l1_affine2"] = f"{ref:.4f}"
    meta["default_note"] = f"val L1 <= {margin:g} x the affine 2-bit coder's"
    return default


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="model folder (diffusers layout)")
    ap.add_argument("--data", type=Path, default=Path("data"),
                    help="folder with cache_train.npz and cache_val.npz (ldmz train makes them)")
    ap.add_argument("--every", type=int, default=1, help="use every N-th training file")
    ap.add_argument("--out", type=Path, help="tables file (default: the folder's own)")
    a = ap.parse_args()
    from ldmz.codec.models.registry import TABLES_FILE
    from ldmz.formats import write_atomic
    from ldmz.formats.entropy import tables_bytes

    tensors, meta = fit(a.folder, a.data, a.every)
    choose_default(a.folder, a.data, tensors, meta)
    path = a.out or a.folder / TABLES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, tables_bytes(tensors, meta), overwrite=True)
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
