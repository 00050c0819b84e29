"""The mel front-end the models were trained on, and the waveform normalization before it.

Both AudioLDM2's VAE and HiFi-GAN V1 use the same STFT variant. In the AudioLDM training code
(haoheliu/AudioLDM-training-finetuning, `audioldm_train/utilities/data/dataset.py`,
`mel_spectrogram_train` and `normalize_wav`) and in HiFi-GAN's `meldataset.py`:

- the waveform is reflect-padded by (n_fft - hop) / 2 on both sides, then STFT'd with
  center=False and a hann window of win_length;
- the magnitude (not power) spectrum goes through librosa's slaney-normalised mel filters;
- log(clamp(x, 1e-5)).

Before the STFT the AudioLDM data loader removes the mean and scales the peak to 0.5. We do the
same (for every model, so a file is loudness-independent) and keep the gain to undo at decode.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ldmz.formats import MelParams

PEAK = 0.5  # AudioLDM's normalize_wav target peak


def normalize(wav: np.ndarray) -> tuple[np.ndarray, float]:
    """Remove the mean and scale the peak to 0.5; return ``(normalized, gain)``.

    ``gain`` multiplies the normalized signal back to the input level (0 for digital silence).
    """
    wav = np.asarray(wav, dtype=np.float64)
    if wav.size == 0:
        return wav.astype(np.float32), 0.0
    wav = wav - wav.mean()
    peak = float(np.max(np.abs(wav)))
    if peak < 1e-8:
        return np.zeros_like(wav, dtype=np.float32), 0.0
    return (wav * (PEAK / peak)).astype(np.float32), peak / PEAK


@lru_cache(maxsize=8)
def mel_basis(mel: MelParams) -> np.ndarray:
    """Slaney-normalised mel filterbank (n_mels, n_fft // 2 + 1), as librosa builds it."""
    import librosa

    return librosa.filters.mel(sr=mel.sample_rate, n_fft=mel.n_fft, n_mels=mel.n_mels,
                               fmin=mel.fmin, fmax=mel.fmax).astype(np.float32)


def num_frames(samples: int, mel: MelParams) -> int:
    """Mel frames the front-end yields for ``samples`` samples (padding (n_fft-hop)/2 each side)."""
    pad = (mel.n_fft - mel.hop_length) // 2
    return max(0, (samples + 2 * pad - mel.n_fft) // mel.hop_length + 1)


def log_mel(wav, mel: MelParams):  # noqa: ANN001, ANN201 - torch.Tensor in, torch.Tensor out
    """Log-mel of a torch waveform (..., samples) -> (..., frames, n_mels), float32."""
    import torch

    pad = (mel.n_fft - mel.hop_length) // 2
    x = wav.float()
    lead = x.shape[:-1]
    x = x.reshape(-1, 1, x.shape[-1])
    x = torch.nn.functional.pad(x, (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(mel.win_length, device=x.device)
    spec = torch.stft(x, mel.n_fft, hop_length=mel.hop_length, win_length=mel.win_length,
                      window=window, center=False, return_complex=True).abs()
    basis = torch.from_numpy(mel_basis(mel)).to(x.device)
    m = torch.log(torch.clamp(basis @ spec, min=mel.log_floor))
    return m.transpose(-1, -2).reshape(*lead, m.shape[-1], mel.n_mels)


def log_mel_np(wav: np.ndarray, mel: MelParams) -> np.ndarray:
    """Numpy convenience wrapper of :func:`log_mel` for a 1-D waveform."""
    import torch

    with torch.inference_mode():
        return log_mel(torch.from_numpy(np.ascontiguousarray(wav, np.float32)), mel).numpy()
