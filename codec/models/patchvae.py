"""The ldmz-small model: a PCA-initialised 4x4 patch transform coder with learned residuals.

Encoder: pixel-unshuffle the (time, mel) log-mel into 4x4 patches, project them linearly (the
PCA of training patches at initialisation) and add a learned convolutional residual. Decoder:
the linear inverse plus a learned residual at latent resolution and a light full-resolution
refinement. The residual branches start at zero, so training starts from the PCA coder.
Interface as diffusers' AutoencoderKL: latents are (batch, channels, time/4, mel/4).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

REFINE_SLICE = 256  # mel frames per slice of the full-resolution refinement in inference
REFINE_RF = 3  # its receptive radius in frames: three 3x3 convolutions


@dataclass(frozen=True)
class PatchVAEConfig:
    """Architecture of a PatchVAE; stored as config.json next to the weights."""

    latent_channels: int = 8
    patch: int = 4
    n_mels: int = 80
    width: int = 64
    enc_blocks: int = 2
    dec_blocks: int = 4
    refine_width: int = 24
    mel_mean: float = -5.0
    mel_std: float = 2.5

    def to_dict(self) -> dict[str, Any]:
        """The config as stored in config.json."""
        return {"_class_name": "PatchVAE", **asdict(self)}


class _Res(nn.Module):
    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(width, width, 3, padding=(dilation, 1), dilation=(dilation, 1))
        self.c2 = nn.Conv2d(width, width, 3, padding=1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c2(self.act(self.c1(self.act(x))))


class PatchVAE(nn.Module):
    """Patch transform coder; ``encode`` gives the latent mean, ``decode`` the log-mel."""

    def __init__(self, config: PatchVAEConfig | None = None) -> None:
        super().__init__()
        c = self.config = config or PatchVAEConfig()
        p2 = c.patch * c.patch
        self.proj_in = nn.Conv2d(p2, c.latent_channels, 1)
        self.enc = nn.Sequential(
            nn.Conv2d(p2, c.width, 3, padding=1),
            *[_Res(c.width, 2 ** (i % 3)) for i in range(c.enc_blocks)],
            nn.GELU(), nn.Conv2d(c.width, c.latent_channels, 1),
        )
        self.proj_out = nn.Conv2d(c.latent_channels, p2, 1)
        self.dec = nn.Sequential(
            nn.Conv2d(c.latent_channels, c.width, 3, padding=1),
            *[_Res(c.width, 2 ** (i % 3)) for i in range(c.dec_blocks)],
            nn.GELU(), nn.Conv2d(c.width, p2, 1),
        )
        self.refine = nn.Sequential(
            nn.Conv2d(1, c.refine_width, 3, padding=1), nn.GELU(),
            nn.Conv2d(c.refine_width, c.refine_width, 3, padding=1), nn.GELU(),
            nn.Conv2d(c.refine_width, 1, 3, padding=1),
        )
        for last in (self.enc[-1], self.dec[-1], self.refine[-1]):
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    @torch.no_grad()
    def init_pca(self, patches: torch.Tensor) -> torch.Tensor:
        """Set the linear paths to the PCA of ``patches`` (N, patch*patch) of normalised mels."""
        mean = patches.mean(0)
        cov = torch.cov((patches - mean).T)
        evals, evecs = torch.linalg.eigh(cov)
        order = torch.argsort(evals, descending=True)
        comps = evecs[:, order[: self.config.latent_channels]].T  # (C, p2)
        scale = evals[order[: self.config.latent_channels]].clamp(min=0).mean().sqrt()
        scale = float(scale) if scale > 0 else 1.0  # latents of RMS ~1
        self.proj_in.weight.copy_(comps[:, :, None, None] / scale)
        self.proj_in.bias.copy_(-(comps @ mean) / scale)
        self.proj_out.weight.copy_(comps.T[:, :, None, None] * scale)
        self.proj_out.bias.copy_(mean)
        return evals[order]

    def _norm(self, mel: torch.Tensor) -> torch.Tensor:
        return (mel - self.config.mel_mean) / self.config.mel_std

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, n_mels) log-mel, T a multiple of the patch -> (B, C, T/p, n_mels/p)."""
        x = nn.functional.pixel_unshuffle(self._norm(mel), self.config.patch)
        return self.proj_in(x) + self.enc(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, T/p, n_mels/p) latents -> (B, 1, T, n_mels) log-mel."""
        y = nn.functional.pixel_shuffle(self.proj_out(z) + self.dec(z), self.config.patch)
        y = y + self._refine(y)
        return y * self.config.mel_std + self.config.mel_mean

    def _refine(self, y: torch.Tensor) -> torch.Tensor:
        """``refine(y)``; in inference, in slices of REFINE_SLICE frames with the 3 frames of
        context its three 3x3 convolutions see, so its full-resolution activations (width x
        frames x mels) stay small whatever the window (the same values)."""
        t = y.shape[2]
        if torch.is_grad_enabled() or t <= REFINE_SLICE + 2 * REFINE_RF:
            return self.refine(y)
        out = torch.empty_like(y)
        for s in range(0, t, REFINE_SLICE):
            e = min(t, s + REFINE_SLICE)
            a, b = max(0, s - REFINE_RF), min(t, e + REFINE_RF)
            out[:, :, s:e] = self.refine(y[:, :, a:b])[:, :, s - a:e - a]
        return out

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Encode then decode (no quantization)."""
        return self.decode(self.encode(mel))
