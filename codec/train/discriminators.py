"""Discriminators for the vocoder's adversarial stage: multi-period and multi-resolution.

The multi-period discriminator folds the waveform into ``(samples / p, p)`` for each period
``p`` and runs 2-D convolutions along the folded time axis (HiFi-GAN's MPD). The
multi-resolution discriminator runs 2-D convolutions over log-magnitude spectrograms at several
STFT sizes (UnivNet's MRD). Both return per-sub-discriminator logits and feature maps;
``adversarial_losses`` gives the least-squares GAN losses and the feature-matching L1.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

Features = list[torch.Tensor]


def _stack(convs: nn.ModuleList, post: nn.Module,
           x: torch.Tensor) -> tuple[torch.Tensor, Features]:
    """Run a discriminator's convolutions (leaky ReLU 0.1) and its output layer: (logits, maps)."""
    feats = []
    for c in convs:
        x = F.leaky_relu(c(x), 0.1)
        feats.append(x)
    x = post(x)
    feats.append(x)
    return x.flatten(1), feats


class PeriodDisc(nn.Module):
    """One period of the MPD."""

    def __init__(self, period: int, width: int = 32) -> None:
        super().__init__()
        self.period = period
        chans = [1, width, 4 * width, 16 * width, 32 * width, 32 * width]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(a, b, (5, 1), (3 if i < 4 else 1, 1), padding=(2, 0)))
            for i, (a, b) in enumerate(zip(chans[:-1], chans[1:], strict=True)))
        self.post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, Features]:
        """(B, samples) -> (logits, feature maps)."""
        b, n = y.shape
        pad = (-n) % self.period
        x = F.pad(y[:, None], (0, pad), mode="reflect" if pad < n else "constant")
        x = x.view(b, 1, -1, self.period)
        return _stack(self.convs, self.post, x)


class ResolutionDisc(nn.Module):
    """One STFT resolution of the MRD."""

    def __init__(self, n_fft: int, hop: int, width: int = 32) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv2d(1, width, (3, 9), padding=(1, 4))),
            *(weight_norm(nn.Conv2d(width, width, (3, 9), (1, 2), padding=(1, 4)))
              for _ in range(3)),
            weight_norm(nn.Conv2d(width, width, (3, 3), padding=(1, 1))),
        ])
        self.post = weight_norm(nn.Conv2d(width, 1, (3, 3), padding=(1, 1)))

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, Features]:
        """(B, samples) -> (logits, feature maps)."""
        s = torch.stft(y, self.n_fft, self.hop, window=torch.hann_window(self.n_fft,
                       device=y.device), return_complex=True).abs()
        x = torch.log(s + 1e-5).transpose(1, 2)[:, None]  # (B, 1, frames, bins)
        return _stack(self.convs, self.post, x)


class Discriminators(nn.Module):
    """MPD (periods 2, 3, 5, 7, 11) and MRD (three STFT sizes) together."""

    def __init__(self, width: int = 32, periods: tuple[int, ...] = (2, 3, 5, 7, 11),
                 resolutions: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256),
                                                             (2048, 512))) -> None:
        super().__init__()
        self.discs = nn.ModuleList([*(PeriodDisc(p, width) for p in periods),
                                    *(ResolutionDisc(n, h, width) for n, h in resolutions)])

    def forward(self, y: torch.Tensor) -> list[tuple[torch.Tensor, Features]]:
        """Every sub-discriminator's (logits, feature maps) for ``y`` (B, samples)."""
        return [d(y) for d in self.discs]


def discriminator_loss(real: list, fake: list) -> torch.Tensor:
    """Least-squares: real logits towards 1, fake towards 0."""
    return sum(((1 - r) ** 2).mean() + (f ** 2).mean()
               for (r, _), (f, _) in zip(real, fake, strict=True))


def adversarial_losses(real: list, fake: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Generator's (least-squares adversarial loss, feature-matching L1) against ``real``."""
    adv = sum(((1 - f) ** 2).mean() for f, _ in fake)
    fm = sum((a - b.detach()).abs().mean()
             for (_, fr), (_, ff) in zip(real, fake, strict=True)
             for a, b in zip(ff, fr, strict=True))
    return adv, fm
