"""Decoder-only fine-tuning of any loadable model: the encoder stays frozen, latents compatible."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ldmz.codec.errors import TrainError
from ldmz.codec.models import LoadedModel, ModelError, load_model, quiet_loading, weights_hash
from ldmz.codec.params import from_json
from ldmz.codec.train.loop import LoopConfig, run
from ldmz.codec.train.mels import build_cache, read_manifest
from ldmz.codec.train.trainer import PLOT_KEYS, crop_batch, evaluate, quant_noise
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


class FinetuneTask:
    """The decoder of a loaded model (encoder frozen) for :func:`loop.run`."""

    def __init__(self, cfg: FinetuneConfig, base: LoadedModel,
                 log: Callable[[str], object]) -> None:
        manifest, self.out = Path(cfg.manifest), cfg.out_dir
        if not manifest.exists():
            raise FinetuneError(f"{manifest}: no training manifest; run "
                                f"scripts/prepare_training_data.py or pass --data MANIFEST")
        train_data = mel_cache(manifest, "train", base.mel)
        if train_data is None:
            raise FinetuneError(f"{manifest}: no 'train' rows; add audio files with split "
                                f"'train'")
        val_data = mel_cache(manifest, "val", base.mel) or train_data
        down, self.dev = base.geometry.time_downsample, base.device
        self.cfg, self.base, self.data, self.log = cfg, base, train_data, log
        self.frames = -(-cfg.frames // down) * down
        self.floor = math.log(base.mel.log_floor)
        self.val = crop_batch(val_data, cfg.val_batch, 2 * self.frames, 0.0, self.floor,
                              np.random.default_rng(1234)).to(self.dev)
        # load_model's cached base stays intact
        self.loaded = replace(base, autoencoder=copy.deepcopy(base.autoencoder))
        self.model = self.loaded.vae
        names = set(decoder_params(self.loaded))
        for n, p in self.model.named_parameters():
            p.requires_grad_(n in names)
        self.amp = torch.autocast(torch.device(self.dev).type, dtype=torch.bfloat16,
                                  enabled=cfg.bf16)

    def check_resume(self, ckpt: Path) -> None:
        """Refuse a checkpoint of another base or of another model."""
        state = torch.load(ckpt, weights_only=True, map_location="cpu")
        if "model" not in state or "extra" not in state:
            raise FinetuneError(f"{ckpt}: not a decoder checkpoint of this release; pass "
                                f"another --out")
        if state["extra"]["encoder_of"] != base_record(self.base):
            raise FinetuneError(f"{ckpt}: fine-tuned from "
                                f"'{state['extra']['encoder_of']['id']}', not "
                                f"'{self.base.info.id}'; pass another --out")
        if set(state["model"]) != set(self.model.state_dict()):
            raise FinetuneError(f"{ckpt}: not a decoder checkpoint of this model; pass "
                                f"another --out")

    def param_groups(self) -> list[dict]:
        """The decoder's parameters."""
        return [{"params": [p for p in self.model.parameters() if p.requires_grad]}]

    def loss(self, step: int, rng: np.random.Generator) -> tuple[torch.Tensor, dict]:
        """Log-mel L1 of the decoder on the frozen encoder's latents plus quantizer noise."""
        cfg, dev, model = self.cfg, self.dev, self.loaded
        x = crop_batch(self.data, cfg.batch, self.frames, cfg.gain_aug_db, self.floor,
                       rng).to(dev)
        bits = torch.from_numpy(rng.integers(cfg.bits_min, cfg.bits_max + 1, cfg.batch))
        keep = torch.from_numpy(rng.random(cfg.batch) < cfg.clean_fraction).to(dev)
        with torch.no_grad():
            z = model.encode(x).float()
        zn = torch.where(keep[:, None, None, None], z, quant_noise(z, bits.float().to(dev)))
        with self.amp:
            y = model.decode(zn)
        return (y.float() - x).abs().mean(), {}

    def validate(self) -> dict:
        """Log-mel L1, clean and through the codec's quantizer."""
        return evaluate(self.loaded, self.val)

    def extra_state(self) -> dict:
        """The base's identity (checked on resume) and the CUDA RNG."""
        dev = torch.device(self.dev)
        cuda = {"cuda_rng": torch.cuda.get_rng_state(dev)} if dev.type == "cuda" else {}
        return {"encoder_of": base_record(self.base), **cuda}

    def load_extra_state(self, state: dict) -> None:
        """Restore the CUDA RNG."""
        if "cuda_rng" in state and torch.device(self.dev).type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], torch.device(self.dev))

    def export(self, folder: Path, step: int) -> None:
        """The fine-tuned model, its ldmz.json naming the base's encoder."""
        rev = export_finetuned(self.loaded, self.base, folder, step)
        self.log(f"exported {folder} ({rev})")


def _finetune(cfg: FinetuneConfig, log: Callable[[str], object]) -> Path:
    base = load_model(cfg.base, cfg.device, cfg.offline or None)
    if not base.autoencoder.decoder_prefixes:
        raise ModelError(f"{cfg.base}: its autoencoder ({type(base.autoencoder).__name__}) "
                         f"names no decoder parameters to fine-tune")
    torch.manual_seed(cfg.seed)
    task, out = FinetuneTask(cfg, base, log), cfg.out_dir
    out.mkdir(parents=True, exist_ok=True)
    if (out / "last.pt").exists():
        task.check_resume(out / "last.pt")
    else:
        (out / "train.log").unlink(missing_ok=True)
        task.model.eval()
        rec = {"step": 0, "base": base.info.id, **task.validate()}
        (out / "base.json").write_text(json.dumps(rec, indent=2))
        log(json.dumps(rec))
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    loop = LoopConfig(out=str(out), steps=cfg.steps, lr=cfg.lr, lr_min=cfg.lr_min,
                      warmup=cfg.warmup, weight_decay=0.0, seed=cfg.seed,
                      log_every=cfg.log_every, val_every=cfg.val_every,
                      ckpt_every=cfg.ckpt_every, val_prefix="", plot=PLOT_KEYS)
    run(loop, task, log)
    if not (out / "model" / "ldmz.json").exists():  # resumed a finished run: export once more
        task.export(out / "model", cfg.steps)
    return out
