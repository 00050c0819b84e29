"""`ldmz train`: reproducible, resumable training of the ldmz-small PatchVAE on cached log-mels."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ldmz.codec.models.patchvae import PatchVAE, PatchVAEConfig
from ldmz.codec.params import from_json
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


def _lr(cfg: TrainConfig, step: int, progress: float | None = None) -> float:
    """Warm-up then cosine decay; ``progress`` (0..1) overrides step/steps for timed runs."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup) if progress is None else progress
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * min(t, 1.0)))


VAL_BITS = (8, 4, 3, 2)


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


def train(cfg: TrainConfig, log=print) -> Path:  # noqa: ANN001 - a print-like callable
    """Run (or resume) training; returns the run folder holding checkpoints, log and plot."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    device = cfg.device if cfg.device != "auto" else (
        "cuda" if torch.cuda.is_available() else "cpu")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    mel = MelParams()
    manifest = Path(cfg.manifest)
    train_data = build_cache(manifest, "train", mel, manifest.parent / "cache_train.npz")
    val_data = build_cache(manifest, "val", mel, manifest.parent / "cache_val.npz")
    val = crop_batch(val_data, 64, 256, 0.0, LOG_FLOOR, np.random.default_rng(1234)).to(device)
    model = PatchVAE(PatchVAEConfig(**(cfg.model or {}))).to(device)
    rate = RateModel(model.config.latent_channels, model.config.n_mels // model.config.patch)
    rate = rate.to(device)
    groups: list[dict[str, Any]] = [{"params": list(model.parameters())}]
    if cfg.rd_lambda:  # the rate model is tiny and starts untrained: it learns 30x faster
        groups.append({"params": list(rate.parameters()), "lr_scale": 30.0, "weight_decay": 0})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=1e-4)
    ckpt = out / "last.pt"
    step = 0
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True, map_location=device)
        model.load_state_dict(state["model"])
        if "rate" in state:
            rate.load_state_dict(state["rate"])
        opt.load_state_dict(state["opt"])
        step = int(state["step"])
        torch.set_rng_state(state["torch_rng"].cpu())
        log(f"resumed at step {step}")
    elif cfg.init_from:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(Path(cfg.init_from) /
                                            "diffusion_pytorch_model.safetensors")))
        log(f"initialised from {cfg.init_from}")
        with torch.no_grad():
            rate.mean.copy_(model.encode(val).float().mean(dim=(0, 2)))
        log(json.dumps({"step": 0, **evaluate(model, val),
                        **(evaluate_rd(model, rate, val) if cfg.rd_lambda else {})}))
    else:
        ev = pca_init(model, train_data)
        log(f"PCA init: explained variance of kept channels "
            f"{float(ev[:model.config.latent_channels].sum() / ev.sum()):.4f}")
        log(json.dumps({"step": 0, **evaluate(model, val)}))
    rng = np.random.default_rng([cfg.seed, step])
    logf = open(out / "train.log", "a")  # kept open for the run
    t0, acc, acc_bits = time.time(), [], []
    start = time.time()
    while step < cfg.steps:
        progress = None
        if cfg.time_budget_s:  # timed run: the schedule follows the clock, steps is a cap
            progress = (time.time() - start) / cfg.time_budget_s
            if progress >= 1:
                break
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, step, progress) * g.get("lr_scale", 1.0)
        x = crop_batch(train_data, cfg.batch, cfg.frames, cfg.gain_aug_db, LOG_FLOOR,
                       rng).to(device, non_blocking=True)
        bits = torch.from_numpy(rng.integers(cfg.bits_min, cfg.bits_max + 1, cfg.batch))
        bits = bits.float().to(device)
        bpv = None
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16):
            z = model.encode(x)
            if cfg.rd_lambda:  # the codec's uniform grid, rounded straight-through
                lo, hi = math.log(cfg.rd_step_min), math.log(cfg.rd_step_max)
                qstep = torch.from_numpy(np.exp(rng.uniform(lo, hi, (cfg.batch, 1, 1, 1))))
                qstep = qstep.float().to(device)
                zn = rate.quantize(z.float(), qstep)
                bpv = rate.bits(z.float(), qstep)
            else:
                zn = quant_noise(z.float(), bits, cfg.detach_step)
            keep = torch.from_numpy(rng.random(cfg.batch) < cfg.clean_fraction).to(device)
            zn = torch.where(keep[:, None, None, None], z.float(), zn)
            y = model.decode(zn)
        loss = (y.float() - x).abs().mean()
        if bpv is not None:
            loss = loss + cfg.rd_lambda * bpv
            acc_bits.append(bpv.detach())
        if cfg.rate_weight:
            loss = loss + cfg.rate_weight * z.float().abs().mean()
        if cfg.scale_weight:  # the loss ignores the latents' scale; pin their RMS near 1
            loss = loss + cfg.scale_weight * z.float().pow(2).mean().log().pow(2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        acc.append(loss.detach())
        final = step == cfg.steps or (
            cfg.time_budget_s and time.time() - start >= cfg.time_budget_s)
        if step % cfg.log_every == 0 or final:
            rec = {"step": step, "loss": float(torch.stack(acc).mean()),
                   "lr": _lr(cfg, step, progress),
                   "s_per_step": (time.time() - t0) / len(acc)}
            if acc_bits:
                rec["bits_per_value"] = float(torch.stack(acc_bits).mean())
            acc, acc_bits, t0 = [], [], time.time()
            if step % cfg.val_every == 0 or final:
                model.eval()
                rec.update(evaluate(model, val))
                if cfg.rd_lambda:
                    rec.update(evaluate_rd(model, rate, val))
                model.train()
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            log(json.dumps(rec))
        if step % cfg.ckpt_every == 0 or final:
            tmp = out / "last.pt.tmp"
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                        "rate": rate.state_dict(), "torch_rng": torch.get_rng_state()}, tmp)
            tmp.replace(ckpt)
            export(model, out / "model", revision=f"step-{step}")
            plot_log(out / "train.log", out / "loss.png")
    logf.close()
    return out


def export(model: PatchVAE, folder: Path, revision: str = "") -> None:
    """Save in diffusers layout: config.json + diffusion_pytorch_model.safetensors + ldmz.json."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2))
    meta = {"mel": asdict(MelParams()), "vocoder": "universal", "revision": revision}
    (folder / "ldmz.json").write_text(json.dumps(meta, indent=2))
    state = {k: v.detach().cpu().contiguous().float() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "diffusion_pytorch_model.safetensors"))


def plot_log(log_path: Path, png: Path) -> None:
    """Draw the training loss and validation L1 curves to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r["step"] for r in recs], [r["loss"] for r in recs], label="train loss (L1)")
    for key in ("l1_clean", "l1_4bit", "l1_2bit"):
        pts = [(r["step"], r[key]) for r in recs if key in r]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"val {key}")
    ax.set_xlabel("step")
    ax.set_ylabel("log-mel L1")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
