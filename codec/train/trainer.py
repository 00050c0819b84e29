"""`ldmz train`: reproducible, resumable training of the ldmz-small PatchVAE on cached log-mels."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ldmz.codec.models.patchvae import PatchVAE, PatchVAEConfig
from ldmz.codec.params import from_json
from ldmz.codec.train.loop import LoopConfig, run
from ldmz.codec.train.mels import build_cache, sample_crops
from ldmz.formats import MelParams

LOG_FLOOR = math.log(1e-5)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; read from a JSON file, defaults defined here."""

    manifest: str = "data/manifest.csv"
    out: str = "runs/ldmz-small"
    steps: int = 6000
    batch: int = 16
    frames: int = 128
    lr: float = 2e-3
    lr_min: float = 1e-4
    warmup: int = 100
    seed: int = 0
    bits_min: int = 2
    bits_max: int = 8
    clean_fraction: float = 0.2
    rate_weight: float = 0.0
    detach_step: bool = False
    scale_weight: float = 0.01
    gain_aug_db: float = 12.0
    log_every: int = 50
    val_every: int = 500
    ckpt_every: int = 250
    threads: int = 2
    device: str = "cpu"
    time_budget_s: float = 0.0
    model: dict | None = None
    init_from: str = ""  # a model folder to start from instead of the PCA initialisation
    # rate-distortion: loss = L1 + rd_lambda * bits per latent value (0 = off), with the
    # quantizer step drawn log-uniformly from [rd_step_min, rd_step_max] per sample
    rd_lambda: float = 0.0
    rd_step_min: float = 0.25
    rd_step_max: float = 2.4

    @classmethod
    def load(cls, path: str | None) -> TrainConfig:
        """Read a JSON config (unknown keys refused)."""
        return from_json(cls, path)


def quant_noise(z: torch.Tensor, bits: torch.Tensor, detach: bool = False) -> torch.Tensor:
    """Add uniform noise of the equal-step quantizer's step: range of the widest channel / 2^b.

    The step is differentiable (unless ``detach``): the encoder then pays for every outlier that
    widens the range, as the real quantizer's step grows with it.
    """
    flat = (z.detach() if detach else z).flatten(2)
    widest = (flat.amax(-1) - flat.amin(-1)).amax(-1)  # (B,)
    step = widest / (2.0 ** bits - 1)
    return z + (torch.rand_like(z) - 0.5) * step[:, None, None, None]


class RateModel(torch.nn.Module):
    """Differentiable bits of latents on a uniform grid of step ``step`` (centred on ``mean``).

    Each (channel, bin) value is logistic around ``mean + alpha * (previous frame's quantized
    value - mean)``: an AR(1) stand-in for the codec's previous-frame context tables. The rate
    uses the noise proxy (value + uniform noise of one step), as in learned image compression.
    """

    def __init__(self, channels: int, bins: int) -> None:
        super().__init__()
        self.mean = torch.nn.Parameter(torch.zeros(channels, bins))
        self.log_scale = torch.nn.Parameter(torch.zeros(channels, bins))
        self.alpha = torch.nn.Parameter(torch.full((channels, bins), 0.5))

    def quantize(self, z: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """Straight-through rounding of ``z`` (B, C, T, F) to the grid ``mean + step * k``."""
        m = self.mean.detach()[None, :, None]
        q = torch.round((z - m) / step) * step + m
        return z + (q - z).detach()

    def bits(self, z: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """Mean bits per value of ``z`` (B, C, T, F); ``step`` (B, 1, 1, 1)."""
        m = self.mean[None, :, None]
        zq = self.quantize(z, step).detach()
        prev = torch.cat([m.expand_as(zq[:, :, :1]), zq[:, :, :-1]], dim=2)
        mu = m + self.alpha[None, :, None] * (prev - m)
        y = z + (torch.rand_like(z) - 0.5) * step
        s = self.log_scale.exp()[None, :, None]
        p = torch.sigmoid((y - mu + step / 2) / s) - torch.sigmoid((y - mu - step / 2) / s)
        return -torch.log2(p.clamp(min=1e-9)).mean()


VAL_BITS = (8, 4, 3, 2)
PLOT_KEYS = ("l1_clean", "l1_4bit", "l1_2bit")


def crop_batch(data: dict, n: int, frames: int, gain_db: float, floor: float,
               rng: np.random.Generator) -> torch.Tensor:
    """``n`` random crops (n, 1, frames, mels), each lowered by a random 0..``gain_db`` dB."""
    x = sample_crops(data, n, frames, rng)
    gain = rng.uniform(-gain_db, 0, (n, 1, 1)) / 20 * math.log(10)
    return torch.from_numpy(np.maximum(x + gain, floor).astype(np.float32))[:, None]


def pca_init(model: PatchVAE, data: dict) -> torch.Tensor:
    """Set ``model``'s linear paths to the PCA of patches of 512 fixed crops of ``data``.

    Returns the patch covariance's eigenvalues, largest first.
    """
    p = model.config.patch
    crops = torch.from_numpy(sample_crops(data, 512, 128, np.random.default_rng(7)))
    patches = torch.nn.functional.pixel_unshuffle(model._norm(crops[:, None]), p)
    device = next(model.parameters()).device
    return model.init_pca(patches.permute(0, 2, 3, 1).reshape(-1, p * p).to(device))


def evaluate(model, val: torch.Tensor,  # noqa: ANN001 - a PatchVAE or a LoadedModel
             bits: tuple[int, ...] = VAL_BITS) -> dict:
    """Validation log-mel L1, unquantized and through the codec's real quantizer at ``bits``."""
    from ldmz.codec.dsp.quant import quantize_latents

    out = {}
    with torch.inference_mode():
        z = model.encode(val).float()
        out["l1_clean"] = float((model.decode(z).float() - val).abs().mean())
        zc = z.cpu().numpy()
        for b in bits:
            zq = np.stack([quantize_latents(zi[None], b)[0][0] for zi in zc])
            y = model.decode(torch.from_numpy(zq).to(val.device)).float()
            out[f"l1_{b}bit"] = float((y - val).abs().mean())
    return out


RD_VAL_STEPS = (1.3, 0.6)


def evaluate_rd(model, rate: RateModel, val: torch.Tensor,  # noqa: ANN001 - a PatchVAE
                steps: tuple[float, ...] = RD_VAL_STEPS) -> dict:
    """Validation L1 on the uniform grid of each step, and the rate model's bits per value."""
    out = {}
    with torch.inference_mode():
        z = model.encode(val).float()
        for s in steps:
            st = torch.full((len(z), 1, 1, 1), s, device=z.device)
            y = model.decode(rate.quantize(z, st)).float()
            out[f"l1_step{s}"] = float((y - val).abs().mean())
            out[f"bits_step{s}"] = float(rate.bits(z, st))
    return out


class TrainTask:
    """The PatchVAE (and, with ``rd_lambda``, its rate model) for :func:`loop.run`."""

    def __init__(self, cfg: TrainConfig, device: str, log: Callable[[str], object]) -> None:
        mel, manifest = MelParams(), Path(cfg.manifest)
        self.cfg, self.device = cfg, device
        self.data = build_cache(manifest, "train", mel, manifest.parent / "cache_train.npz")
        val_data = build_cache(manifest, "val", mel, manifest.parent / "cache_val.npz")
        self.val = crop_batch(val_data, 64, 256, 0.0, LOG_FLOOR,
                              np.random.default_rng(1234)).to(device)
        self.model = PatchVAE(PatchVAEConfig(**(cfg.model or {}))).to(device)
        c = self.model.config
        self.rate = RateModel(c.latent_channels, c.n_mels // c.patch).to(device)
        if (Path(cfg.out) / "last.pt").exists():
            return  # the loop restores model and rate model
        if cfg.init_from:
            from safetensors.torch import load_file

            self.model.load_state_dict(load_file(str(Path(cfg.init_from) /
                                                     "diffusion_pytorch_model.safetensors")))
            log(f"initialised from {cfg.init_from}")
            with torch.no_grad():
                self.rate.mean.copy_(self.model.encode(self.val).float().mean(dim=(0, 2)))
        else:
            ev = pca_init(self.model, self.data)
            log(f"PCA init: explained variance of kept channels "
                f"{float(ev[:c.latent_channels].sum() / ev.sum()):.4f}")
        log(json.dumps({"step": 0, **self.validate()}))

    def param_groups(self) -> list[dict[str, Any]]:
        """The model; in rate-distortion mode also the rate model (tiny, untrained: 30x lr)."""
        groups: list[dict[str, Any]] = [{"params": list(self.model.parameters())}]
        if self.cfg.rd_lambda:
            groups.append({"params": list(self.rate.parameters()), "lr_scale": 30.0,
                           "weight_decay": 0})
        return groups

    def loss(self, step: int, rng: np.random.Generator) -> tuple[torch.Tensor, dict]:
        """L1 on log-mels through noisy (or, rd mode, rounded) latents, plus the regularisers."""
        cfg, dev, n = self.cfg, self.device, self.cfg.batch
        x = crop_batch(self.data, n, cfg.frames, cfg.gain_aug_db, LOG_FLOOR, rng).to(dev)
        bits = torch.from_numpy(rng.integers(cfg.bits_min, cfg.bits_max + 1, n)).float().to(dev)
        scalars = {}
        with torch.autocast(dev.split(":")[0], dtype=torch.bfloat16):
            z = self.model.encode(x)
            if cfg.rd_lambda:  # the codec's uniform grid, rounded straight-through
                lo, hi = math.log(cfg.rd_step_min), math.log(cfg.rd_step_max)
                qstep = torch.from_numpy(np.exp(rng.uniform(lo, hi, (n, 1, 1, 1))))
                qstep = qstep.float().to(dev)
                zn = self.rate.quantize(z.float(), qstep)
                scalars["bits_per_value"] = self.rate.bits(z.float(), qstep)
            else:
                zn = quant_noise(z.float(), bits, cfg.detach_step)
            keep = torch.from_numpy(rng.random(n) < cfg.clean_fraction).to(dev)
            y = self.model.decode(torch.where(keep[:, None, None, None], z.float(), zn))
        loss = (y.float() - x).abs().mean()
        if cfg.rd_lambda:
            loss = loss + cfg.rd_lambda * scalars["bits_per_value"]
        if cfg.rate_weight:
            loss = loss + cfg.rate_weight * z.float().abs().mean()
        if cfg.scale_weight:  # the loss ignores the latents' scale; pin their RMS near 1
            loss = loss + cfg.scale_weight * z.float().pow(2).mean().log().pow(2)
        return loss, {k: v.detach() for k, v in scalars.items()}

    def validate(self) -> dict:
        """Log-mel L1 through the real quantizer (and on the rd grid in rd mode)."""
        out = evaluate(self.model, self.val)
        return {**out, **(evaluate_rd(self.model, self.rate, self.val)
                           if self.cfg.rd_lambda else {})}

    def extra_state(self) -> dict:
        """The rate model (saved in every checkpoint, trained only in rd mode)."""
        return {"rate": self.rate.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        """Restore the rate model."""
        self.rate.load_state_dict(state["rate"])

    def export(self, folder: Path, step: int) -> None:
        """The model in diffusers layout, revision ``step-N``."""
        export(self.model, folder, revision=f"step-{step}")


def train(cfg: TrainConfig, log: Callable[[str], object] = print) -> Path:
    """Run (or resume) training; returns the run folder holding checkpoints, log and plot."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    device = cfg.device if cfg.device != "auto" else (
        "cuda" if torch.cuda.is_available() else "cpu")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    loop = LoopConfig(out=cfg.out, steps=cfg.steps, lr=cfg.lr, lr_min=cfg.lr_min,
                      warmup=cfg.warmup, seed=cfg.seed, log_every=cfg.log_every,
                      val_every=cfg.val_every, ckpt_every=cfg.ckpt_every,
                      time_budget_s=cfg.time_budget_s, val_prefix="", plot=PLOT_KEYS)
    return run(loop, TrainTask(cfg, device, log), log)


def export(model: PatchVAE, folder: Path, revision: str = "") -> None:
    """Save in diffusers layout: config.json + diffusion_pytorch_model.safetensors + ldmz.json."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2))
    meta = {"mel": asdict(MelParams()), "vocoder": "universal", "revision": revision}
    (folder / "ldmz.json").write_text(json.dumps(meta, indent=2))
    state = {k: v.detach().cpu().contiguous().float() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "diffusion_pytorch_model.safetensors"))
