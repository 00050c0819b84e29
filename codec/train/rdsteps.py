"""Sensitivity-weighted quantizer steps: how much each latent (channel, bin) moves the log-mel.

For a decoder ``y = g(z)`` and a small error ``e`` on the latent coordinates of group ``(c, f)``,
the log-mel squared error grows by ``e^2 * ||dg/dz_i||^2`` for each coordinate ``i`` of the
group. The mean squared Jacobian column norm per group, ``w[c, f]``, is estimated on training
crops without forming the Jacobian: for ``u ~ N(0, I)`` over the output, ``E[(J^T u)_i^2] =
||J e_i||^2`` (one backward pass gives every column at once).

High-rate theory: a uniform quantizer of step ``s`` adds ``s^2 / 12`` per coordinate, so the
weighted error ``sum w_g s_g^2 / 12`` at a given total rate ``sum -log2 s_g`` is least when
``w_g s_g^2`` is the same for every group: ``s_g = s * sqrt(mean_w / w_g)`` (``mean_w`` the
geometric mean, so the mean log step, and roughly the rate, stays that of the uniform ``s``).
Groups whose variance is below the error level, ``var_g < s_g^2 / 12``, are better sent as zero
(reverse water-filling): :func:`allocate_steps` gives them a step so large every code is 0.
"""

from __future__ import annotations

import numpy as np

ZERO_STEP = 1.0e4  # a step that rounds every latent of unit scale to code 0


def decoder_sensitivity(model, crops, probes: int = 4,  # noqa: ANN001 - LoadedModel, Tensor
                        batch: int = 8, seed: int = 0) -> np.ndarray:
    """Mean squared Jacobian column norm (C, F) of ``model.decode`` at the latents of ``crops``
    (B, 1, T, n_mels log-mels), averaged over crops, frames and ``probes`` random projections."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        z0 = model.encode(crops)
    acc = torch.zeros(z0.shape[1], z0.shape[3], dtype=torch.float64)
    for b in range(0, len(z0), batch):
        z = z0[b:b + batch].clone().requires_grad_(True)
        y = model.decode(z)
        for p in range(probes):
            u = torch.randn(y.shape, generator=gen, dtype=y.dtype)
            (g,) = torch.autograd.grad((y * u).sum(), z, retain_graph=p < probes - 1)
            acc += (g.double() ** 2).sum(dim=(0, 2))
    out: np.ndarray = (acc / (probes * z0.shape[0] * z0.shape[2])).numpy()
    return out


def allocate_steps(base: np.ndarray, sensitivity: np.ndarray, variance: np.ndarray | None = None,
                   power: float = 0.5) -> np.ndarray:
    """Steps (Q, C, F) from uniform ``base`` steps (Q,) and the (C, F) ``sensitivity``:
    ``base[q] * (mean_w / w) ** power`` (``power`` 0.5: high-rate optimum for the weighted
    squared error). With ``variance`` (C, F), groups with ``variance < step^2 / 12`` get
    ``ZERO_STEP`` (no bits)."""
    w = np.asarray(sensitivity, np.float64)
    if w.ndim != 2 or not (np.isfinite(w).all() and (w > 0).all()):
        raise ValueError("sensitivity must be a finite, positive (C, F) array")
    rel = (np.exp(np.log(w).mean()) / w) ** power
    steps = np.asarray(base, np.float64)[:, None, None] * rel[None]
    if variance is not None:
        steps = np.where(np.asarray(variance)[None] < steps ** 2 / 12, ZERO_STEP, steps)
    out: np.ndarray = steps.astype(np.float32)
    return out
