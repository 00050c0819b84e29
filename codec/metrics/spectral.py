"""Spectral distances for `ldmz.codec.metrics`: LSD, AudioLDM2 log-mel L1, multi-resolution STFT."""

from __future__ import annotations

import warnings

import librosa
import numpy as np

from ldmz.codec.dsp.frontend import AUDIOLDM_MEL

# mel L1 is measured on the AudioLDM2 front-end (`frontend.AUDIOLDM_MEL`, `frontend.log_mel_np`):
# the representation the AudioLDM2 VAE sees.
MEL_SR = AUDIOLDM_MEL.sample_rate

# Parallel WaveGAN's MultiResolutionSTFTLoss resolutions: (fft_size, hop, win_length), hann window.
MRSTFT_RESOLUTIONS: tuple[tuple[int, int, int], ...] = (
    (512, 50, 240),
    (1024, 120, 600),
    (2048, 240, 1200),
)
_MRSTFT_FLOOR = 1e-7  # PWG clamps the squared magnitude at 1e-7 before the sqrt

LSD_N_FFT = 2048
LSD_HOP = 512
_LSD_POWER_FLOOR = 1e-10  # -100 dB: digital silence in both signals counts as equal


class NotApplicable(Exception):
    """A metric cannot be computed for this input; the message says why."""


def audioldm2_log_mel(x: np.ndarray) -> np.ndarray:
    """AudioLDM2 log-mel of a 16 kHz mono signal, shape (64, frames)."""
    from ldmz.codec.dsp.frontend import log_mel_np

    m = AUDIOLDM_MEL
    if x.shape[-1] + (m.n_fft - m.hop_length) < m.n_fft:
        raise NotApplicable(f"audio shorter than {m.hop_length} samples at {m.sample_rate} Hz")
    out: np.ndarray = log_mel_np(x, m).T
    return out


def mel_l1(ref: np.ndarray, deg: np.ndarray) -> float:
    """Mean absolute difference of AudioLDM2 log-mels (natural log) of two 16 kHz signals."""
    return float(np.mean(np.abs(audioldm2_log_mel(ref) - audioldm2_log_mel(deg))))


def _stft_mag(x: np.ndarray, n_fft: int, hop: int, win: int) -> np.ndarray:
    if x.shape[-1] < 2:
        raise NotApplicable("audio shorter than 2 samples")
    # torch.stft's defaults, as Parallel WaveGAN uses them: center=True with reflect padding.
    # Audio shorter than n_fft still gives frames thanks to that padding; librosa only warns.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_fft=.* is too large", category=UserWarning)
        spec = librosa.stft(
            x, n_fft=n_fft, hop_length=hop, win_length=win, window="hann", center=True,
            pad_mode="reflect",
        )
    mag: np.ndarray = np.abs(spec)
    return mag


def log_spectral_distance(ref: np.ndarray, deg: np.ndarray) -> float:
    """Log-spectral distance in dB: per-frame RMS of the dB power difference, mean over frames."""
    p_ref = np.maximum(_stft_mag(ref, LSD_N_FFT, LSD_HOP, LSD_N_FFT) ** 2, _LSD_POWER_FLOOR)
    p_deg = np.maximum(_stft_mag(deg, LSD_N_FFT, LSD_HOP, LSD_N_FFT) ** 2, _LSD_POWER_FLOOR)
    diff = 10.0 * (np.log10(p_ref) - np.log10(p_deg))
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=0))))


def mrstft_terms(ref: np.ndarray, deg: np.ndarray) -> tuple[float, float]:
    """Spectral convergence and log-magnitude L1, each averaged over the PWG resolutions."""
    if not np.any(ref):
        raise NotApplicable("reference is silent")
    sc_terms, mag_terms = [], []
    for n_fft, hop, win in MRSTFT_RESOLUTIONS:
        m_ref = np.sqrt(np.maximum(_stft_mag(ref, n_fft, hop, win) ** 2, _MRSTFT_FLOOR))
        m_deg = np.sqrt(np.maximum(_stft_mag(deg, n_fft, hop, win) ** 2, _MRSTFT_FLOOR))
        sc_terms.append(np.linalg.norm(m_ref - m_deg) / np.linalg.norm(m_ref))
        mag_terms.append(np.mean(np.abs(np.log(m_ref) - np.log(m_deg))))
    return float(np.mean(sc_terms)), float(np.mean(mag_terms))


def spectral_convergence(ref: np.ndarray, deg: np.ndarray) -> float:
    """Spectral convergence ||S_ref - S_deg||_F / ||S_ref||_F, mean over the PWG resolutions."""
    return mrstft_terms(ref, deg)[0]


def mrstft_distance(ref: np.ndarray, deg: np.ndarray) -> float:
    """Multi-resolution STFT distance as in Parallel WaveGAN: convergence + log-magnitude L1."""
    return sum(mrstft_terms(ref, deg))
