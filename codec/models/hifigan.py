"""HiFi-GAN V1-style generator in plain torch, for the universal vocoder's weights.

The parameter names match the layout transformers' SpeechT5HifiGan uses (``conv_pre``,
``upsampler.N``, ``resblocks.N.convs1.M``/``convs2.M``, ``conv_post``), so the same state dict
loads into either; decoding does not import transformers (about 150 MB of resident memory).
Inference only: activations are updated in place where the graph allows it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class HifiGanConfig:
    """Generator shape (field names as SpeechT5HifiGanConfig's: the receptive field reads them)."""

    model_in_dim: int = 80
    upsample_initial_channel: int = 512
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    leaky_relu_slope: float = 0.1


class _ResBlock(nn.Module):
    """Pairs of (dilated conv, plain conv), each pair added back onto its input."""

    def __init__(self, ch: int, kernel: int, dilations: tuple[int, ...], slope: float) -> None:
        super().__init__()
        self.slope = slope
        self.convs1 = nn.ModuleList(nn.Conv1d(ch, ch, kernel, dilation=d,
                                              padding=d * (kernel - 1) // 2) for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(ch, ch, kernel, padding=(kernel - 1) // 2)
                                    for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (c1, c2) in enumerate(zip(self.convs1, self.convs2, strict=True)):
            h = c2(F.leaky_relu_(c1(F.leaky_relu(x, self.slope)), self.slope))
            x = x + h if i == 0 else x.add_(h)  # the input is shared with the other blocks
            del h
        return x


class HifiGan(nn.Module):
    """(batch, frames, n_mels) log-mel -> (batch, frames * prod(upsample_rates)) waveform."""

    def __init__(self, config: HifiGanConfig) -> None:
        super().__init__()
        c = self.config = config
        ch = c.upsample_initial_channel
        self.conv_pre = nn.Conv1d(c.model_in_dim, ch, 7, padding=3)
        self.upsampler = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (rate, kernel) in enumerate(zip(c.upsample_rates, c.upsample_kernel_sizes,
                                               strict=True)):
            out = ch >> (i + 1)
            self.upsampler.append(nn.ConvTranspose1d(ch >> i, out, kernel, stride=rate,
                                                     padding=(kernel - rate) // 2))
            for k, d in zip(c.resblock_kernel_sizes, c.resblock_dilation_sizes, strict=True):
                self.resblocks.append(_ResBlock(out, k, tuple(d), c.leaky_relu_slope))
        self.conv_post = nn.Conv1d(ch >> len(c.upsample_rates), 1, 7, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel (batch, frames, n_mels) -> waveform (batch, samples)."""
        kinds = len(self.config.resblock_kernel_sizes)
        slope = self.config.leaky_relu_slope
        x = self.conv_pre(mel.transpose(1, 2))
        for i, up in enumerate(self.upsampler):  # x is this forward's own: in place
            x = up(F.leaky_relu_(x, slope))
            acc = self.resblocks[i * kinds](x)
            for j in range(1, kinds):
                acc += self.resblocks[i * kinds + j](x)
            x = acc.div_(kinds)
        y: torch.Tensor = torch.tanh_(self.conv_post(F.leaky_relu_(x, 0.01)))
        return y[:, 0]
