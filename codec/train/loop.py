"""A generic, resumable training loop: schedule, clock budget, log, loss plot, checkpoints.

A task supplies the model, its loss on a batch, its validation and its export; the loop owns
everything else: warm-up + cosine learning rate (or a schedule that follows a wall-clock
budget), gradient clipping, a JSON-lines ``train.log``, a ``loss.png``, and ``last.pt``
checkpoints (tensors only, loaded with ``weights_only=True``) from which a rerun resumes. Each
step's batch is drawn from a generator seeded by (seed, step), so a resumed run draws the same
batches as one that was never stopped. The PatchVAE trainer (``trainer.py``), the decoder
fine-tune (``finetune.py``) and the vocoder trainer (``vocoder.py``) all run on it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch


@dataclass(frozen=True)
class LoopConfig:
    """The loop's own settings (a task's config carries these fields too)."""

    out: str
    steps: int
    lr: float = 1e-3
    lr_min: float = 1e-5
    warmup: int = 100
    weight_decay: float = 1e-4
    clip_grad: float = 1.0
    seed: int = 0
    log_every: int = 50
    val_every: int = 500
    ckpt_every: int = 250
    time_budget_s: float = 0.0
    select: str = ""  # a validation key whose lowest value marks the best export ("" = last)
    val_prefix: str = "val_"  # prefix of validation keys in the log
    plot: tuple[str, ...] = ()  # log keys drawn beside the loss ("" = every val_* key)


class Task(Protocol):
    """What the loop trains."""

    model: torch.nn.Module

    def loss(self, step: int, rng: np.random.Generator) -> tuple[torch.Tensor, dict]:
        """Draw a batch with ``rng`` and return (loss to minimise, scalars to log)."""

    def validate(self) -> dict:
        """Validation scalars (the model is in eval mode, gradients off)."""

    def export(self, folder: Path, step: int) -> None:
        """Write the deliverable model into ``folder``."""

    # optional: ``extra_state() -> dict`` and ``load_extra_state(dict)`` for state the loop does
    # not own (a discriminator and its optimizer), saved in and restored from the checkpoint;
    # ``param_groups() -> list[dict]`` for the optimizer (a group's "lr_scale" scales its lr)


def lr_at(cfg: LoopConfig, step: int, progress: float | None = None) -> float:
    """Warm-up then cosine decay; ``progress`` (0..1) overrides step/steps for timed runs."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup) if progress is None else progress
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * min(t, 1.0)))


def run(cfg: LoopConfig, task: Task, log: Callable[[str], object] = print) -> Path:
    """Train ``task`` to ``cfg.steps`` (or the clock budget), resuming from ``out/last.pt``."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model = task.model
    params = task.param_groups() if hasattr(task, "param_groups") else model.parameters()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, spent, best = _resume(cfg, task, opt, log)
    model.train()
    logf = open(out / "train.log", "a")
    t0, start = time.time(), time.time() - spent
    acc: list[float] = []
    parts: dict[str, list[float]] = {}

    def progress() -> float | None:
        return (time.time() - start) / cfg.time_budget_s if cfg.time_budget_s else None

    try:
        while step < cfg.steps and (progress() or 0.0) < 1.0:
            for g in opt.param_groups:
                g["lr"] = lr_at(cfg, step, progress()) * g.get("lr_scale", 1.0)
            loss, scalars = task.loss(step, np.random.default_rng([cfg.seed, step]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            opt.step()
            step += 1
            acc.append(float(loss.detach()))
            for k, v in scalars.items():
                parts.setdefault(k, []).append(float(v))
            final = step >= cfg.steps or (progress() or 0.0) >= 1.0
            if step % cfg.log_every == 0 or final:
                rec = {"step": step, "loss": float(np.mean(acc)),
                       "lr": lr_at(cfg, step, progress()),
                       "s_per_step": (time.time() - t0) / len(acc),
                       **{k: float(np.mean(v)) for k, v in parts.items()}}
                acc, parts, t0 = [], {}, time.time()
                if step % cfg.val_every == 0 or final:
                    model.eval()
                    with torch.no_grad():
                        rec.update({f"{cfg.val_prefix}{k}": v for k, v in task.validate().items()})
                    model.train()
                    score = rec.get(f"{cfg.val_prefix}{cfg.select}") if cfg.select else None
                    if score is not None and score < best:
                        best = score
                        task.export(out / "best", step)
                logf.write(json.dumps(rec) + "\n")
                logf.flush()
                log(json.dumps(rec))
            if step % cfg.ckpt_every == 0 or final:
                _save(out / "last.pt", task, opt, step, time.time() - start, best)
                task.export(out / "model", step)
                plot_log(out / "train.log", out / "loss.png", cfg.plot)
    finally:
        logf.close()
    return out


def _resume(cfg: LoopConfig, task: Task, opt: torch.optim.Optimizer,
            log: Callable[[str], object]) -> tuple[int, float, float]:
    """Restore ``out/last.pt`` if there is one; returns (step, seconds spent, best score)."""
    ckpt = Path(cfg.out) / "last.pt"
    if not ckpt.exists():
        torch.manual_seed(cfg.seed)
        return 0, 0.0, math.inf
    state = torch.load(ckpt, weights_only=True, map_location="cpu")
    task.model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    step = int(state["step"])
    torch.set_rng_state(state["torch_rng"])
    if "extra" in state and hasattr(task, "load_extra_state"):
        task.load_extra_state(state["extra"])
    _truncate_log(Path(cfg.out) / "train.log", step)
    log(f"resumed at step {step}")
    return step, float(state["spent"]), float(state["best"])


def _save(ckpt: Path, task: Task, opt: torch.optim.Optimizer, step: int, spent: float,
          best: float) -> None:
    """Write the checkpoint (tensors and numbers only) atomically."""
    extra = task.extra_state() if hasattr(task, "extra_state") else None
    tmp = ckpt.with_name(ckpt.name + ".tmp")
    torch.save({"model": task.model.state_dict(), "opt": opt.state_dict(), "step": step,
                "spent": spent, "best": best, "torch_rng": torch.get_rng_state(),
                **({"extra": extra} if extra is not None else {})}, tmp)
    tmp.replace(ckpt)


def _truncate_log(path: Path, step: int) -> None:
    """Drop records past ``step`` (written after the checkpoint a resumed run restarts from)."""
    if path.exists():
        keep = [ln for ln in path.read_text().splitlines()
                if ln.strip() and json.loads(ln)["step"] <= step]
        path.write_text("".join(ln + "\n" for ln in keep))


def plot_log(log_path: Path, png: Path, keys: tuple[str, ...] = ()) -> None:
    """Draw the training loss and any ``val_*`` curves of a JSON-lines log to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    if not recs:
        return
    keys = keys or tuple(sorted({k for r in recs for k in r if k.startswith("val_")}))
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot([r["step"] for r in recs], [r["loss"] for r in recs], label="train loss")
    ax[0].set_yscale("log")
    for key in keys:
        pts = [(r["step"], r[key]) for r in recs if key in r]
        ax[1].plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=key)
    for a in ax:
        a.set_xlabel("step")
        a.grid(alpha=0.3)
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=7)
    fig.tight_layout()
    tmp = png.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(png)
