"""The slaney mel scale and filterbank, in numpy alone (the front-end, the metrics and the GUI)."""

from __future__ import annotations

import numpy as np

_F_SP = 200.0 / 3  # Hz per mel below 1 kHz (linear part)
_MIN_LOG_HZ, _MIN_LOG_MEL = 1000.0, 15.0
_LOGSTEP = np.log(6.4) / 27.0  # mel step of the logarithmic part


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale (linear below 1 kHz, logarithmic above), as librosa's default."""
    f = np.asarray(f, dtype=np.float64)
    log = _MIN_LOG_MEL + np.log(np.maximum(f, 1e-9) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log, f / _F_SP)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp((m - _MIN_LOG_MEL) * _LOGSTEP),
                    m * _F_SP)


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float | None = None, area_norm: bool = True) -> np.ndarray:
    """Triangular filters evenly spaced in slaney mel: float32 (n_mels, n_fft // 2 + 1).

    ``area_norm`` scales each filter by 2 / its width in Hz (librosa's ``norm="slaney"``, what
    AudioLDM and HiFi-GAN were trained with); without it every filter peaks at 1 (for display).
    """
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    top = sr / 2 if fmax is None else fmax
    pts = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(top), n_mels + 2))
    width = np.maximum(np.diff(pts), 1e-9)
    lower = (freqs[None] - pts[:-2, None]) / width[:-1, None]
    upper = (pts[2:, None] - freqs[None]) / width[1:, None]
    bank = np.maximum(0.0, np.minimum(lower, upper))
    if area_norm:
        bank *= (2.0 / (pts[2:] - pts[:-2]))[:, None]
    out: np.ndarray = bank.astype(np.float32)
    return out
