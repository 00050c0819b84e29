"""HiFi-GAN V1-style generator in plain torch, for the universal vocoder's weights.

The parameter names match the layout transformers' SpeechT5HifiGan uses (``conv_pre``,
``upsampler.N``, ``resblocks.N.convs1.M``/``convs2.M``, ``conv_post``), so the same state dict
loads into either; decoding does not import transformers (about 150 MB of resident memory).
Inference only: activations are updated in place where the graph allows it, and each stage
runs in time tiles (see :meth:`HifiGan.stage`), so only the stages' inputs and outputs are
held whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

# Floats (channels x samples) of one stage's output tile: each tile's temporaries (the
# upsampled slice, the residual blocks' intermediates, their sum) are about 1 MB apiece
TILE_FLOATS = 1 << 18


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
        # samples of input each side that one output sample depends on
        self.radius = (kernel - 1) // 2 * (sum(dilations) + len(dilations))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (c1, c2) in enumerate(zip(self.convs1, self.convs2, strict=True)):
            h = c2(F.leaky_relu_(c1(F.leaky_relu(x, self.slope)), self.slope))
            x = x + h if i == 0 else x.add_(h)  # the input is shared with the other blocks
            del h
        return x


class HifiGan(nn.Module):
    """(batch, frames, n_mels) log-mel -> (batch, frames * prod(upsample_rates)) waveform."""

    def __init__(self, config: HifiGanConfig, tile: int = TILE_FLOATS) -> None:
        super().__init__()
        c = self.config = config
        self.tile = tile
        # called before each stage that runs in more than one tile: a caller that wants the
        # freed memory of the previous stage handed back first sets it (ldmz's decoder:
        # glibc's malloc_trim; a stage of one tile fits in what the previous one freed)
        self.release: Callable[[], None] | None = None
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
        slope = self.config.leaky_relu_slope
        x = self.conv_pre(mel.transpose(1, 2))
        for i in range(len(self.upsampler)):  # x is this forward's own: in place
            x = self.stage(i, F.leaky_relu_(x, slope))
        y: torch.Tensor = torch.tanh_(self.conv_post(F.leaky_relu_(x, 0.01)))
        return y[:, 0]

    def stage(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Upsampler ``i`` and the mean of its residual blocks, over output tiles of
        ``self.tile`` to ``2 * self.tile`` floats.

        Each tile is computed from an input slice that holds everything it depends on (the
        transposed convolution's reach plus the blocks' radius each side), so its samples are
        the whole computation's; slices end with zero padding only where the window does.
        All slices of a call have one length (the first and last are shifted inwards), so
        oneDNN builds and caches one kernel set per stage, not one per tile.
        """
        kinds = len(self.config.resblock_kernel_sizes)
        up, blocks = self.upsampler[i], self.resblocks[i * kinds:(i + 1) * kinds]
        r, k, p = up.stride[0], up.kernel_size[0], up.padding[0]
        n_in = x.shape[-1]
        n_out = (n_in - 1) * r + k - 2 * p
        halo = max(b.radius for b in blocks)
        # output sample t of a slice [s0, s1) is complete (has all its inputs) from
        # s0 * r + (k - r - p) on and before s1 * r - p (at the window's ends: everywhere)
        left, right = k - r - p + halo, p + halo
        # whole tiles of at least ``tile`` floats: a short call is not cut into small pieces
        n_tiles = max(1, n_out * up.out_channels // max(1, self.tile))
        if n_tiles > 1 and self.release is not None:
            self.release()
        size = -(-n_out // (n_tiles * r)) * r  # output samples per tile, a whole number of r
        span = -(-(size + left + right) // r) + 1  # input samples per slice
        out = x.new_empty(x.shape[0], up.out_channels, n_out) if size < n_out else None
        for t0 in range(0, n_out, size):
            t1 = min(n_out, t0 + size)
            s0 = max(0, min((t0 - left) // r, n_in - span))
            y = up(x[..., s0:s0 + span])
            acc = blocks[0](y)
            for b in blocks[1:]:
                acc += b(y)
            del y
            acc = acc[..., t0 - s0 * r:t1 - s0 * r].div_(kinds)
            if out is None:  # one tile: the whole output
                return acc
            out[..., t0:t1] = acc
            del acc
        assert out is not None
        return out
