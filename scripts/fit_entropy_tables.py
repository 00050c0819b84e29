"""Fit a model folder's entropy tables (``entropy/tables.safetensors.zst``) on training log-mels.

Every training file is encoded whole; for each quality step the codes' histograms per (latent
channel, bin, context) become integer tables (``ldmz.formats.entropy.freqs_from_counts``).
Steps: ``--qualities`` levels from 2.8 down to 0.3 (geometric), each scaled per latent channel
and bin by the decoder's measured sensitivity on training crops (``codec/train/rdsteps.py``;
``--uniform``: one step per level, as the first tables). The default quality is the one of
smallest rate whose log-mel L1 on whole validation files is at most the affine 2-bit coder's,
unless ``--default`` names it (MODEL_CARD.md says how the shipped
default was chosen). The folder's earlier tables are kept under their hash
(``entropy/tables-<hash>.safetensors.zst``): files made with them still decode.

    python scripts/fit_entropy_tables.py codec/models/ldmz-small --data data --every 3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

STEP_RANGE = (2.8, 0.3)  # quality 0 = coarsest


def base_steps(qualities: int) -> tuple[float, ...]:
    """The uniform step of each quality level, geometric from 2.8 to 0.3."""
    return tuple(float(v) for v in np.geomspace(*STEP_RANGE, qualities).round(4))


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


def histograms(lat: list[np.ndarray], mean: np.ndarray, step: np.ndarray,
               radius: int) -> np.ndarray:
    """Counts (C, F, CONTEXTS, 2*radius+1) of the codes of ``lat`` at steps ``step`` (C, F)
    in their coding contexts."""
    from ldmz.formats.entropy import CONTEXTS, EntropyTables, _pad, contexts, quantize_ec

    c, f = mean.shape
    n = 2 * radius + 1
    t = EntropyTables(np.asarray(step, np.float32)[None], mean,
                      (np.ones((c, f, CONTEXTS, n), np.int64),))
    counts = np.zeros(c * f * CONTEXTS * n, np.int64)
    for z in lat:
        k = quantize_ec(z[None], t, 0)
        idx = np.unravel_index(np.arange(k.size), k.shape)
        ctx = contexts(_pad(k), idx)
        flat = ((idx[1] * f + idx[3]) * CONTEXTS + ctx) * n + k.reshape(-1) + radius
        counts += np.bincount(flat, minlength=counts.size)
    return counts.reshape(c, f, CONTEXTS, n)


def sensitivity(model, train: dict, crops: int = 48,  # noqa: ANN001 - a LoadedModel
                frames: int = 256) -> np.ndarray:
    """The decoder's sensitivity (C, F) on ``crops`` fixed training crops (rdsteps)."""
    from ldmz.codec.train.rdsteps import decoder_sensitivity
    from ldmz.codec.train.trainer import LOG_FLOOR, crop_batch

    x = crop_batch(train, crops, frames, 0.0, LOG_FLOOR, np.random.default_rng(1234))
    return decoder_sensitivity(model, x)


def fit(folder: Path, data: Path, every: int = 1, qualities: int = 15,
        uniform: bool = False) -> tuple[dict, dict]:
    """Tensors and metadata of ``folder``'s tables, fitted on ``data``/cache_train.npz."""
    import torch

    from ldmz.codec.models import load_model
    from ldmz.codec.train.rdsteps import allocate_steps
    from ldmz.formats.entropy import TABLES_FORMAT, freqs_from_counts

    torch.set_num_threads(1)
    model = load_model(str(folder), "cpu")
    with np.load(data / "cache_train.npz") as z:
        train = {k: z[k] for k in z.files}
    base = base_steps(qualities)
    c, f = model.geometry.channels, model.mel.n_mels // model.geometry.freq_downsample
    sens = np.ones((c, f)) if uniform else sensitivity(model, train)
    steps = allocate_steps(np.array(base), sens)
    lat = encode_files(model, train, every)
    allz = np.concatenate([z.reshape(z.shape[0], -1) for z in lat], axis=1)
    mean = np.mean([z.mean(axis=1) * z.shape[1] for z in lat], axis=0) / np.mean(
        [z.shape[1] for z in lat])  # (C, F): frame-weighted mean
    mean = mean.astype(np.float32)
    spread = float(np.quantile(np.abs(allz), 0.99999)) + float(np.abs(mean).max())
    tensors = {"mean": mean, "step": steps, "sensitivity": sens.astype(np.float32)}
    for q, st in enumerate(steps):
        radius = int(min(255, np.ceil(spread / st.min()) + 1))
        tensors[f"freq.{q}"] = freqs_from_counts(histograms(lat, mean, st, radius)).astype(np.int32)
        print(f"quality {q}: step {base[q]} (x {st.min() / base[q]:.2f}..{st.max() / base[q]:.2f}"
              f" by channel and bin), codes -{radius}..{radius}", flush=True)
    meta = {"format": TABLES_FORMAT, "default": "0",
            "fitted_on": f"cache_train.npz, every {every}. file", "steps": json.dumps(base),
            "step_rule": "uniform" if uniform else "base * sqrt(gmean(w) / w), w = decoder "
                                                  "sensitivity (tensor 'sensitivity')"}
    return tensors, meta


def choose_default(folder: Path, data: Path, tensors: dict, meta: dict,
                   margin: float = 1.0) -> int:
    """Smallest-rate quality whose validation L1 is <= ``margin`` x the affine 2-bit coder's.

    Whole validation files, each encoded whole (as ``encode_files``), decoded and compared
    with its log-mel. (Not padded crops: most validation files are shorter than a crop, and
    the padding's digital silence, one constant latent, lands on or off each step's grid,
    which made the crop L1 jump up and down from one quality to the next.)
    """
    import torch

    from ldmz.codec.dsp.quant import quantize_latents
    from ldmz.codec.models import load_model
    from ldmz.formats.entropy import EntropyTables, dequantize_ec, quantize_ec

    model = load_model(str(folder), "cpu")
    t = EntropyTables(tensors["step"], tensors["mean"],
                      tuple(tensors[f"freq.{q}"] for q in range(len(tensors["step"]))))
    t.check()
    with np.load(data / "cache_val.npz") as z:
        val = {k: z[k] for k in z.files}
    lat = encode_files(model, val)
    p = model.geometry.time_downsample
    starts = val["starts"]
    mels = [val["mels"][starts[i]:starts[i + 1]].astype(np.float32)
            for i in range(len(starts) - 1)]
    mels = [m[: len(m) // p * p] for m in mels if len(m) >= p]

    def l1(quant) -> float:  # noqa: ANN001 - latents (C, T, F) -> quantized latents
        err = n = 0.0
        for z, m in zip(lat, mels, strict=True):
            with torch.inference_mode():
                y = model.decode(torch.from_numpy(quant(z)[None]))[0, 0].numpy()
            err += float(np.abs(y - m).sum())
            n += m.size
        return err / n

    ref = l1(lambda z: quantize_latents(z[None], 2)[0][0])
    res = [l1(lambda z, q=q: dequantize_ec(quantize_ec(z[None], t, q), t, q)[0])
           for q in range(t.qualities)]
    default = next((q for q, v in enumerate(res) if v <= margin * ref), t.qualities - 1)
    print(f"val L1 (whole files): affine 2-bit {ref:.4f}; per quality "
          f"{[round(v, 4) for v in res]}; default {default}", flush=True)
    meta["default"] = str(default)
    meta["val_l1"] = json.dumps([round(v, 4) for v in res])
    meta["val_l1_affine2"] = f"{ref:.4f}"
    meta["default_note"] = f"whole validation files: L1 <= {margin:g} x the affine 2-bit coder's"
    return default


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="model folder (diffusers layout)")
    ap.add_argument("--data", type=Path, default=Path("data"),
                    help="folder with cache_train.npz and cache_val.npz (ldmz train makes them)")
    ap.add_argument("--every", type=int, default=1, help="use every N-th training file")
    ap.add_argument("--out", type=Path, help="tables file (default: the folder's own; its "
                                             "earlier tables are kept under their hash)")
    ap.add_argument("--qualities", type=int, default=15, help="quality levels (default 15)")
    ap.add_argument("--uniform", action="store_true",
                    help="one step per level for every channel and bin (no sensitivity)")
    ap.add_argument("--default", type=int, default=-1,
                    help="the default quality (default: the validation L1 rule)")
    a = ap.parse_args()
    from ldmz.codec.models.registry import TABLES_FILE
    from ldmz.formats import write_atomic
    from ldmz.formats.entropy import tables_bytes

    tensors, meta = fit(a.folder, a.data, a.every, a.qualities, a.uniform)
    choose_default(a.folder, a.data, tensors, meta)
    if a.default >= 0:
        meta["default"] = str(min(a.default, a.qualities - 1))
        meta["default_note"] = "chosen with --default (see MODEL_CARD.md)"
    path = a.out or a.folder / TABLES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    keep_earlier(path)
    write_atomic(path, tables_bytes(tensors, meta), overwrite=True)
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def keep_earlier(path: Path) -> Path | None:
    """Move an existing tables file to ``tables-<hash prefix>.safetensors.zst`` beside it, so
    the files made with it still decode (readers look through every tables file)."""
    import hashlib

    if not path.exists():
        return None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    kept = path.with_name(f"tables-{digest}.safetensors.zst")
    if not kept.exists():
        path.rename(kept)
    return kept


if __name__ == "__main__":
    main()
