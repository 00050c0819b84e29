"""Decoder-only fine-tuning of any loadable model: the encoder stays frozen, latents compatible."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ldmz.codec.errors import TrainError
from ldmz.codec.models import LoadedModel, ModelError, load_model, quiet_loading, weights_hash
from ldmz.codec.params import from_json
from ldmz.codec.train.mels import build_cache, read_manifest
from ldmz.codec.train.trainer import (
    TrainConfig,
    _lr,
    crop_batch,
    evaluate,
    plot_log,
    quant_noise,
)
from ldmz.formats import MelParams

FinetuneError = TrainError  # the name earlier releases exported


@dataclass(frozen=True)
class FinetuneConfig:
    """A decoder fine-tuning run; ``base`` is anything ``load_model`` accepts."""

    base: str = "ldmz-small"
    manifest: str = "data/manifest.csv"
    out: str = ""  # "" -> runs/finetune-<base name>
    steps: int = 1000
    batch: int = 8
    frames: int = 128  # mel frames per crop (rounded up to whole latent frames)
    lr: float = 1e-4
    lr_min: float = 1e-5
    warmup: int = 50
    seed: int = 0
    bits_min: int = 2
    bits_max: int = 8
    clean_fraction: float = 0.2
    gain_aug_db: float = 12.0
    log_every: int = 25
    val_every: int = 250
    val_batch: int = 32
    ckpt_every: int = 250
    threads: int = 2  # 0: leave torch's setting alone
    bf16: bool = True  # autocast the decoder (CPU or CUDA)
    device: str = "auto"
    offline: bool = False

    @classmethod
    def load(cls, path: str | None, **overrides: object) -> FinetuneConfig:
        """Read a JSON config (unknown keys refused), then apply the non-None ``overrides``."""
        return from_json(cls, path, **overrides)

    @property
    def out_dir(self) -> Path:
        """The run folder (default from the base's name)."""
        if self.out:
            return Path(self.out)
        stem = Path(self.base.rstrip("/\\")).name or "model"
        return Path("runs") / f"finetune-{stem}"


def decoder_params(model: LoadedModel) -> list[str]:
    """Names of the parameters fine-tuning trains (the decoder side of ``model.vae``)."""
    parts = model.autoencoder.decoder_prefixes
    return [n for n, _ in model.vae.named_parameters() if n.startswith(parts)]


def mel_cache(manifest: Path, split: str, mel: MelParams) -> dict | None:
    """Cached log-mels of ``split`` in ``mel``'s configuration (None if the split is empty).

    The default configuration shares the main trainer's cache files; others get their own.
    """
    if not read_manifest(manifest, split):
        return None
    tag = "" if mel == MelParams() else "_" + hashlib.sha256(
        json.dumps(asdict(mel), sort_keys=True).encode()).hexdigest()[:10]
    return build_cache(manifest, split, mel, manifest.parent / f"cache_{split}{tag}.npz")


def base_record(model: LoadedModel) -> dict:
    """What ``encoder_of`` stores: the identity of the latent space (the base's encoder)."""
    i = model.info
    return {"id": i.id, "revision": i.revision, "weights_sha256": i.weights_sha256,
            "scaling_factor": i.scaling_factor}


def export_finetuned(model: LoadedModel, base: LoadedModel, folder: Path, step: int) -> str:
    """Write ``model`` as a diffusers-layout folder whose ldmz.json names the base's encoder.

    Returns the decoder's revision id. The folder is built next to ``folder`` and swapped in.
    """
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    for p in (tmp, old):
        shutil.rmtree(p, ignore_errors=True)
    model.autoencoder.save(tmp)
    if (folder / "vocoder" / "config.json").exists():
        os.replace(folder / "vocoder", tmp / "vocoder")
    else:  # the base's own vocoder goes with it, so `--vocoder hifigan` still means the same
        voc = base.load_own_vocoder()
        if voc is not None:
            with quiet_loading():
                voc.save_pretrained(tmp / "vocoder")
    sha = weights_hash(tmp)
    rev = f"ft-{sha[:10]}-step-{step}"
    meta = {"mel": asdict(base.mel), "vocoder": base.vocoder, "revision": rev,
            "encoder_of": base_record(base), "decoder": rev, "finetune_steps": step}
    (tmp / "ldmz.json").write_text(json.dumps(meta, indent=2))
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)
    return rev


def _truncate_log(path: Path, step: int) -> None:
    """Drop records past ``step`` (written after the checkpoint a resumed run restarts from)."""
    if path.exists():
        keep = [ln for ln in path.read_text().splitlines()
                if ln.strip() and json.loads(ln)["step"] <= step]
        path.write_text("".join(ln + "\n" for ln in keep))


def finetune(cfg: FinetuneConfig, log: Callable[[str], object] = print) -> Path:
    """Fine-tune (or resume) the decoder of ``cfg.base``; returns the run folder.

    The run folder holds config.json, base.json (the base decoder's validation L1), last.pt
    (decoder + optimizer + RNG state), train.log, loss.png and model/ (the exported model).
    """
    threads = torch.get_num_threads()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    try:
        return _finetune(cfg, log)
    finally:
        torch.set_num_threads(threads)


def _finetune(cfg: FinetuneConfig, log: Callable[[str], object]) -> Path:
    base = load_model(cfg.base, cfg.device, cfg.offline or None)
    if not base.autoencoder.decoder_prefixes:
        raise ModelError(f"{cfg.base}: its autoencoder ({type(base.autoencoder).__name__}) "
                         f"names no decoder parameters to fine-tune")
    manifest, out = Path(cfg.manifest), cfg.out_dir
    if not manifest.exists():
        raise FinetuneError(f"{manifest}: no training manifest; run "
                            f"scripts/prepare_training_data.py or pass --data MANIFEST")
    torch.manual_seed(cfg.seed)
    train_data = mel_cache(manifest, "train", base.mel)
    if train_data is None:
        raise FinetuneError(f"{manifest}: no 'train' rows; add audio files with split 'train'")
    val_data = mel_cache(manifest, "val", base.mel) or train_data
    down, dev = base.geometry.time_downsample, base.device
    frames = -(-cfg.frames // down) * down
    floor = math.log(base.mel.log_floor)
    val = crop_batch(val_data, cfg.val_batch, 2 * frames, 0.0, floor,
                 np.random.default_rng(1234)).to(dev)

    # load_model's cached base stays intact
    model = replace(base, autoencoder=copy.deepcopy(base.autoencoder))
    train_names = set(decoder_params(model))
    params = []
    for n, p in model.vae.named_parameters():
        p.requires_grad_(n in train_names)
        if n in train_names:
            params.append(p)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    sched = TrainConfig(steps=cfg.steps, lr=cfg.lr, lr_min=cfg.lr_min, warmup=cfg.warmup)
    out.mkdir(parents=True, exist_ok=True)
    ckpt, log_path = out / "last.pt", out / "train.log"
    step, rng = 0, np.random.default_rng(cfg.seed)
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True, map_location="cpu")
        if state["encoder_of"] != base_record(base):
            raise FinetuneError(f"{ckpt}: fine-tuned from '{state['encoder_of']['id']}', "
                                f"not '{base.info.id}'; pass another --out")
        got = model.vae.load_state_dict(state["decoder"], strict=False)
        if got.unexpected_keys or set(got.missing_keys) & train_names:
            raise FinetuneError(f"{ckpt}: not a decoder checkpoint of this model; pass "
                                f"another --out")
        opt.load_state_dict(state["opt"])
        step = int(state["step"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.device(dev).type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], torch.device(dev))
        rng.bit_generator.state = json.loads(state["np_rng"])
        _truncate_log(log_path, step)
        log(f"resumed at step {step}")
    else:
        log_path.unlink(missing_ok=True)
        model.vae.eval()
        rec = {"step": 0, "base": base.info.id, **evaluate(model, val)}
        (out / "base.json").write_text(json.dumps(rec, indent=2))
        log(json.dumps(rec))
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    amp = torch.autocast(torch.device(dev).type, dtype=torch.bfloat16, enabled=cfg.bf16)
    t0, acc = time.time(), []
    while step < cfg.steps:
        model.vae.train()
        for g in opt.param_groups:
            g["lr"] = _lr(sched, step)
        x = crop_batch(train_data, cfg.batch, frames, cfg.gain_aug_db, floor, rng).to(dev)
        bits = torch.from_numpy(rng.integers(cfg.bits_min, cfg.bits_max + 1, cfg.batch))
        keep = torch.from_numpy(rng.random(cfg.batch) < cfg.clean_fraction).to(dev)
        with torch.no_grad():
            z = model.encode(x).float()
        zn = torch.where(keep[:, None, None, None], z, quant_noise(z, bits.float().to(dev)))
        with amp:
            y = model.decode(zn)
        loss = (y.float() - x).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        acc.append(float(loss.detach()))
        if step % cfg.log_every == 0 or step == cfg.steps:
            rec = {"step": step, "loss": float(np.mean(acc)), "lr": _lr(sched, step),
                   "s_per_step": (time.time() - t0) / len(acc)}
            acc, t0 = [], time.time()
            if step % cfg.val_every == 0 or step == cfg.steps:
                model.vae.eval()
                rec.update(evaluate(model, val))
            _append(log_path, rec)
            log(json.dumps(rec))
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            _checkpoint(model, base, opt, step, rng, ckpt, train_names)
            rev = export_finetuned(model, base, out / "model", step)
            plot_log(log_path, out / "loss.png")
            log(f"exported {out / 'model'} ({rev})")
    if not (out / "model" / "ldmz.json").exists():  # resumed a finished run: export once more
        export_finetuned(model, base, out / "model", step)
    return out


def _append(path: Path, rec: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


def _checkpoint(model: LoadedModel, base: LoadedModel, opt: torch.optim.Optimizer, step: int,
                rng: np.random.Generator, ckpt: Path, names: set[str]) -> None:
    state = {"decoder": {k: v for k, v in model.vae.state_dict().items() if k in names},
             "opt": opt.state_dict(), "step": step, "torch_rng": torch.get_rng_state(),
             "np_rng": json.dumps(rng.bit_generator.state), "encoder_of": base_record(base)}
    dev = torch.device(model.device)
    if dev.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(dev)
    tmp = ckpt.with_name(ckpt.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(ckpt)
