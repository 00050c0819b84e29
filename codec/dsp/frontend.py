"""The mel front-end the models were trained on, and the waveform normalization before it.

Both AudioLDM2's VAE and HiFi-GAN V1 use the same STFT variant. In the AudioLDM training code
(haoheliu/AudioLDM-training-finetuning, `audioldm_train/utilities/data/dataset.py`,
`mel_spectrogram_train` and `normalize_wav`) and in HiFi-GAN's `meldataset.py`:

- the waveform is reflect-padded by (n_fft - hop) / 2 on both sides, then STFT'd with
  center=False and a hann window of win_length;
- the magnitude (not power) spectrum goes through slaney-normalised mel filters (librosa's,
  rebuilt in numpy in `melscale.py`);
- log(clamp(x, 1e-5)).

Before the STFT the AudioLDM data loader removes the mean and scales the peak to 0.5. We do the
same (for every model, so a file is loudness-independent) and keep the gain to undo at decode.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ldmz.codec.dsp.melscale import mel_filterbank
from ldmz.formats import MelParams

if TYPE_CHECKING:
    import torch

PEAK = 0.5  # AudioLDM's normalize_wav target peak

# AudioLDM / AudioLDM2 front-end: 16 kHz, 64 mels, n_fft = win = 1024, hop 160, 0-8 kHz.
AUDIOLDM_MEL = MelParams(sample_rate=16000, n_fft=1024, hop_length=160, win_length=1024,
                         n_mels=64, fmin=0.0, fmax=8000.0, log_floor=1e-5, frontend="audioldm")


def normalize(wav: np.ndarray) -> tuple[np.ndarray, float]:
    """Remove the mean and scale the peak to 0.5; return ``(normalized float32, gain)``.

    ``gain`` multiplies the normalized signal back to the input level (0 for digital silence).
    Works in float32 with a float64 mean, so a long channel costs one extra copy.
    """
    wav = np.asarray(wav)
    if wav.size == 0:
        return np.zeros(0, np.float32), 0.0
    mean = float(np.mean(wav, dtype=np.float64))
    peak = float(max(np.max(wav) - mean, mean - np.min(wav)))
    if peak < 1e-8:
        return np.zeros(wav.shape, np.float32), 0.0
    out = np.subtract(wav, np.float32(mean), dtype=np.float32)
    out *= np.float32(PEAK / peak)
    return out, peak / PEAK


@lru_cache(maxsize=8)
def mel_basis(mel: MelParams) -> np.ndarray:
    """Slaney-normalised mel filterbank (n_mels, n_fft // 2 + 1), as librosa builds it."""
    return mel_filterbank(mel.sample_rate, mel.n_fft, mel.n_mels, mel.fmin, mel.fmax)


def num_frames(samples: int, mel: MelParams) -> int:
    """Mel frames the front-end yields for ``samples`` samples (padding (n_fft-hop)/2 each side)."""
    pad = (mel.n_fft - mel.hop_length) // 2
    return max(0, (samples + 2 * pad - mel.n_fft) // mel.hop_length + 1)


def log_mel(wav: torch.Tensor, mel: MelParams, pad: bool = True) -> torch.Tensor:
    """Log-mel of a torch waveform (..., samples) -> (..., frames, n_mels), float32.

    With ``pad=False`` the caller has already applied the reflect padding.
    """
    import torch

    p = (mel.n_fft - mel.hop_length) // 2
    x = wav.float()
    lead = x.shape[:-1]
    x = x.reshape(-1, x.shape[-1])
    if pad:
        x = torch.nn.functional.pad(x[:, None], (p, p), mode="reflect")[:, 0]
    window = torch.hann_window(mel.win_length, device=x.device)
    spec = torch.stft(x, mel.n_fft, hop_length=mel.hop_length, win_length=mel.win_length,
                      window=window, center=False, return_complex=True).abs()
    basis = torch.from_numpy(mel_basis(mel)).to(x.device)
    m = torch.log(torch.clamp(basis @ spec, min=mel.log_floor))
    return m.transpose(-1, -2).reshape(*lead, m.shape[-1], mel.n_mels)


def _reflect_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Indices into a signal of length ``n`` reflected at both ends (edge sample not repeated)."""
    period = 2 * (n - 1)
    idx = np.abs(idx) % period if n > 1 else np.zeros_like(idx)
    return np.where(idx >= n, period - idx, idx)


def log_mel_np(wav: np.ndarray, mel: MelParams, length: int | None = None,
               block_frames: int = 512) -> np.ndarray:
    """Log-mel (frames, n_mels) of a 1-D numpy waveform, computed in blocks of frames.

    ``length`` zero-extends the waveform first (no copy is made). Memory is the output plus one
    block, whatever the duration.
    """
    import torch

    wav = np.asarray(wav, np.float32)
    n = max(len(wav), length or 0)
    p = (mel.n_fft - mel.hop_length) // 2
    frames = num_frames(n, mel)
    out = np.empty((frames, mel.n_mels), np.float32)
    for f0 in range(0, frames, block_frames):
        f1 = min(frames, f0 + block_frames)
        lo, hi = f0 * mel.hop_length - p, (f1 - 1) * mel.hop_length + mel.n_fft - p
        if lo >= 0 and hi <= len(wav):
            part = wav[lo:hi]  # inside the signal: a view
        else:  # at an end: zeros past the real samples, reflection past the (virtual) ends
            part = np.zeros(hi - lo, np.float32)
            i0, i1 = max(lo, 0), min(hi, len(wav))
            part[i0 - lo:max(i0, i1) - lo] = wav[i0:i1]
            out_ = np.r_[lo:min(hi, 0), max(lo, n):hi]
            idx = _reflect_index(out_, n)
            part[out_ - lo] = np.where(idx < len(wav), wav[np.minimum(idx, len(wav) - 1)], 0)
        with torch.inference_mode():
            out[f0:f1] = log_mel(torch.from_numpy(part), mel, pad=False).numpy()
    return out
