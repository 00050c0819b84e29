"""ldmzvoc: our own frame-rate vocoder (ConvNeXt blocks, a magnitude + parallel-phase iSTFT head).

The network runs at the mel frame rate, which is what makes it fast on a CPU: ``blocks``
ConvNeXt blocks (depthwise convolution of kernel ``kernel``, LayerNorm, a 3x MLP, layer scale)
between an input convolution and a head that predicts, per frame and STFT bin, a log-magnitude
and two numbers (r, i) whose angle is the phase (APNet's "parallel phase estimation"). The
frames are inverted by a weighted overlap-add with the analysis framing of the codec's mel
front-end, so frame ``t`` of the output covers the same samples as frame ``t`` of the mel.
torch is imported inside functions, so importing this module stays light.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

WEIGHTS_DIR = Path(__file__).parents[1] / "weights" / "ldmzvoc"
WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class LdmzVocConfig:
    """The network's shape and its mel/STFT framing (defaults: the codec's 80-mel)."""

    n_mels: int = 80
    dim: int = 384
    blocks: int = 8
    kernel: int = 7
    n_fft: int = 1024
    hop: int = 256
    mlp_ratio: int = 3
    log_mag_max: float = 7.0
    # version 2: the head refines the mel's pseudo-inverse magnitude (a residual in log), its
    # phase starts from zero phase, and ``gla_iters`` fast Griffin-Lim iterations (momentum
    # ``gla_momentum``) make the spectrum consistent. The defaults are version 1's shape.
    mag_prior: bool = False
    gla_iters: int = 0
    gla_momentum: float = 0.99

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "ldmzvoc config") -> LdmzVocConfig:
        """Build from a dict, refusing unknown keys and wrong types (messages name ``where``)."""
        from ldmz.codec.params import from_mapping

        return from_mapping(cls, raw, where)


def receptive_field(cfg: LdmzVocConfig) -> int:
    """Frames each side of an output frame that can change it (convolutions, iterations, OLA)."""
    conv = (cfg.kernel // 2) * (cfg.blocks + 1)  # the input convolution and every block
    # one Griffin-Lim iteration (overlap-add, then re-analysis) reaches the frames that overlap
    gla = cfg.gla_iters * -(-(cfg.n_fft - cfg.hop) // cfg.hop)
    ola = -(-(cfg.n_fft - cfg.hop) // 2 // cfg.hop) + 1  # frames whose windows reach a sample
    return conv + gla + ola


def build(cfg: LdmzVocConfig) -> Any:  # an nn.Module (torch is opaque to mypy here)
    """The ldmzvoc network for ``cfg``, randomly initialised."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Block(nn.Module):
        def __init__(self, d: int) -> None:
            super().__init__()
            self.dw = nn.Conv1d(d, d, cfg.kernel, padding=cfg.kernel // 2, groups=d)
            self.norm = nn.LayerNorm(d)
            self.up = nn.Linear(d, cfg.mlp_ratio * d)
            self.down = nn.Linear(cfg.mlp_ratio * d, d)
            self.scale = nn.Parameter(torch.full((d,), 1.0 / cfg.blocks))

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, d, T)
            y = self.dw(x).transpose(1, 2)
            y = self.down(F.gelu(self.up(self.norm(y)))) * self.scale
            return x + y.transpose(1, 2)

    class LdmzVoc(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = cfg
            d, bins = cfg.dim, cfg.n_fft // 2 + 1
            self.inp = nn.Conv1d(cfg.n_mels, d, cfg.kernel, padding=cfg.kernel // 2)
            self.norm_in = nn.LayerNorm(d)
            self.blocks = nn.ModuleList(Block(d) for _ in range(cfg.blocks))
            self.norm_out = nn.LayerNorm(d)
            self.head = nn.Linear(d, 3 * bins)
            self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
            if cfg.mag_prior:  # residuals start at zero: the prior magnitude with zero phase
                nn.init.zeros_(self.head.weight)
                nn.init.zeros_(self.head.bias)
                self.register_buffer("pinv", torch.from_numpy(_mel_pinv(cfg)), persistent=False)

        def spectrum(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            """(B, T, n_mels) -> log-magnitude, r, i, each (B, T, bins)."""
            x = self.inp(mel.transpose(1, 2))
            x = self.norm_in(x.transpose(1, 2)).transpose(1, 2)
            for b in self.blocks:
                x = b(x)
            h = self.head(self.norm_out(x.transpose(1, 2)))
            if h.dtype in (torch.float16, torch.bfloat16):  # autocast: the iSTFT in fp32
                h = h.float()
            logmag, r, i = h.chunk(3, dim=-1)
            if cfg.mag_prior:
                with torch.autocast(mel.device.type, enabled=False):  # in the pinv's dtype
                    prior = torch.exp(mel.to(self.pinv.dtype)) @ self.pinv.T  # (B, T, bins)
                logmag = logmag + torch.log(torch.clamp(prior, min=1e-5)).to(logmag.dtype)
                r = r + 1.0
            return logmag.clamp(max=cfg.log_mag_max), r, i

        def synthesize(self, logmag: torch.Tensor, r: torch.Tensor,
                       i: torch.Tensor) -> torch.Tensor:
            """Head outputs -> waveform (B, T * hop), framed like the mel front-end."""
            norm = torch.rsqrt(r * r + i * i + 1e-9)
            mag = torch.exp(logmag)
            spec = torch.complex(mag * norm * r, mag * norm * i)
            if cfg.gla_iters:
                spec = griffin_lim(spec, mag, self.window, cfg.hop, cfg.gla_iters,
                                   cfg.gla_momentum)
            frames = torch.fft.irfft(spec, n=cfg.n_fft)
            return overlap_add(frames * self.window, self.window, cfg.hop)

        def forward(self, mel: torch.Tensor) -> torch.Tensor:
            """(B, T, n_mels) log-mel -> (B, T * hop) waveform."""
            return self.synthesize(*self.spectrum(mel.to(self.inp.weight.dtype)))

    return LdmzVoc()


def _mel_pinv(cfg: LdmzVocConfig) -> Any:  # a float32 numpy array (bins, n_mels)
    """The pseudo-inverse of the codec's mel bank for ``cfg``'s framing (the magnitude prior)."""
    from ldmz.codec.vocoders import UNIVERSAL_MEL, mel_pinv

    if (cfg.n_fft, cfg.hop, cfg.n_mels) != (UNIVERSAL_MEL.n_fft, UNIVERSAL_MEL.hop_length,
                                            UNIVERSAL_MEL.n_mels):
        raise ValueError("ldmzvoc's magnitude prior needs the codec's 80-mel framing")
    return mel_pinv(UNIVERSAL_MEL).copy()  # the cached array stays untouched


def overlap_add(frames: Any, window: Any, hop: int, crop: bool = True) -> Any:  # torch tensors
    """(B, T, n_fft) windowed frames -> (B, T * hop), normalized by the summed squared window.

    Frame ``t`` starts at sample ``t * hop - (n_fft - hop) // 2``, the mel front-end's framing.
    ``crop=False`` keeps the whole span, ``(T - 1) * hop + n_fft`` samples, where frame ``t``
    starts at ``t * hop``.
    """

    b, t, n_fft = frames.shape
    y = _fold(frames, hop) * _inverse_envelope(window, t, hop)
    if not crop:
        return y
    p = (n_fft - hop) // 2
    return y[:, p:p + t * hop]


def _inverse_envelope(window: Any, frames: int, hop: int) -> Any:  # torch tensors
    """1 / the squared window overlap-added over ``frames`` frames (clamped away from zero)."""
    import torch

    env = _fold((window * window).expand(1, frames, window.shape[0]), hop)
    return 1.0 / torch.clamp(env, min=1e-3)


def _fold(frames: Any, hop: int) -> Any:  # torch tensors
    """Sum (B, T, n_fft) frames placed ``hop`` apart into (B, (T - 1) * hop + n_fft) samples."""
    from torch.nn import functional as F

    b, t, n_fft = frames.shape
    if n_fft % hop:
        length = (t - 1) * hop + n_fft
        return F.fold(frames.transpose(1, 2), (1, length), (1, n_fft), stride=(1, hop))[:, 0, 0]
    k = n_fft // hop  # each frame is k blocks of hop samples; block j of frame t lands at t + j
    parts = frames.reshape(b, t, k, hop)
    out = frames.new_zeros(b, t + k - 1, hop)
    for j in range(k):
        out[:, j:j + t] += parts[:, :, j]
    return out.reshape(b, (t + k - 1) * hop)


def griffin_lim(spec: Any, mag: Any, window: Any, hop: int, iters: int,
                momentum: float) -> Any:  # torch tensors
    """Fast Griffin-Lim (Perraudin et al. 2013) on a (B, T, bins) complex spectrum.

    Each iteration overlap-adds the frames and analyses them again with the same framing,
    extrapolates by ``momentum`` and keeps the phase of the result under ``mag``. Every step is
    differentiable (the phase is normalized with a small epsilon), so training sees it.
    """
    import torch

    n_fft = window.shape[0]
    inv_env = _inverse_envelope(window, spec.shape[1], hop)  # the same for every iteration
    prev = None
    for _ in range(iters):
        wave = _fold(torch.fft.irfft(spec, n=n_fft) * window, hop) * inv_env
        proj = torch.fft.rfft(wave.unfold(-1, n_fft, hop) * window)
        t = proj if prev is None else proj + momentum * (proj - prev)
        prev = proj
        spec = mag * t * torch.rsqrt(t.real * t.real + t.imag * t.imag + 1e-12)
    return spec


def save(net: Any, folder: Path, meta: dict[str, Any] | None = None) -> None:
    """Write ``config.json`` and float16 ``model.safetensors`` (atomically) into ``folder``."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    cfg = {**asdict(net.config), **({"meta": meta} if meta else {})}
    tmp = folder / "config.json.tmp"
    tmp.write_text(json.dumps(cfg, indent=2))
    tmp.replace(folder / "config.json")
    state = {k: v.detach().cpu().half().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(folder / (WEIGHTS_FILE + ".tmp")))
    (folder / (WEIGHTS_FILE + ".tmp")).replace(folder / WEIGHTS_FILE)


def load(folder: Path | str = WEIGHTS_DIR, device: str = "cpu") -> Any:  # an nn.Module
    """Load an ldmzvoc folder (``config.json`` + ``model.safetensors``) in float32, eval mode."""
    from safetensors.torch import load_file

    folder = Path(folder)
    raw = json.loads((folder / "config.json").read_text())
    raw.pop("meta", None)
    net = build(LdmzVocConfig.from_dict(raw, str(folder / "config.json")))
    state = {k: v.float() for k, v in load_file(str(folder / WEIGHTS_FILE)).items()}
    net.load_state_dict(state)
    return net.eval().to(device)


def load_shipped(device: str = "cpu") -> Any:  # an nn.Module
    """The weights shipped in the package (``WEIGHTS_DIR``, codec/weights/ldmzvoc/), cached."""
    return _load_cached(str(WEIGHTS_DIR), device)


@lru_cache(maxsize=2)
def _load_cached(folder: str, device: str) -> Any:
    return load(folder, device)
