"""The mel front-end, pinned against an independent librosa/numpy derivation, and normalize()."""

from __future__ import annotations

import numpy as np
import pytest

from ldmz.codec.dsp.frontend import log_mel_np, normalize
from ldmz.codec.models import AUDIOLDM_MEL
from ldmz.codec.vocoders import UNIVERSAL_MEL
from ldmz.formats import MelParams


def _reference_log_mel(x: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int) -> np.ndarray:
    """AudioLDM / HiFi-GAN training front-end from librosa and numpy primitives only."""
    import librosa

    pad = (n_fft - hop) // 2
    xp = np.pad(x.astype(np.float64), (pad, pad), mode="reflect")
    spec = np.abs(librosa.stft(xp, n_fft=n_fft, hop_length=hop, win_length=n_fft,
                               window="hann", center=False))
    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=8000.0,
                                htk=False, norm="slaney")
    return np.log(np.maximum(basis @ spec, 1e-5)).T


def _synthetic(sr: int, seconds: float = 0.75) -> np.ndarray:
    rng = np.random.default_rng(42)
    t = np.arange(int(sr * seconds)) / sr
    x = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.2 * np.sin(2 * np.pi * 2750 * t + 0.3)
         + 0.02 * rng.standard_normal(len(t)))
    x[: sr // 10] = 0.0  # digital silence exercises the log floor
    return x.astype(np.float32)


def test_mel_configs_are_the_training_ones() -> None:
    assert (AUDIOLDM_MEL.sample_rate, AUDIOLDM_MEL.n_fft, AUDIOLDM_MEL.hop_length,
            AUDIOLDM_MEL.win_length, AUDIOLDM_MEL.n_mels, AUDIOLDM_MEL.fmin, AUDIOLDM_MEL.fmax,
            AUDIOLDM_MEL.log_floor) == (16000, 1024, 160, 1024, 64, 0.0, 8000.0, 1e-5)
    assert (UNIVERSAL_MEL.sample_rate, UNIVERSAL_MEL.n_fft, UNIVERSAL_MEL.hop_length,
            UNIVERSAL_MEL.win_length, UNIVERSAL_MEL.n_mels, UNIVERSAL_MEL.fmax,
            UNIVERSAL_MEL.log_floor) == (22050, 1024, 256, 1024, 80, 8000.0, 1e-5)


@pytest.mark.parametrize("mel", [AUDIOLDM_MEL, UNIVERSAL_MEL], ids=["16k-64", "22k-80"])
def test_log_mel_matches_independent_reference(mel: MelParams) -> None:
    x = _synthetic(mel.sample_rate)
    expected = _reference_log_mel(x, mel.sample_rate, mel.n_fft, mel.hop_length, mel.n_mels)
    got = log_mel_np(x, mel, block_frames=16)  # small blocks: the blocked path is pinned too
    assert got.shape == expected.shape == (len(x) // mel.hop_length, mel.n_mels)
    assert np.abs(got - expected).max() < 1e-4  # float32 STFT against float64
    assert np.abs(got - expected).mean() < 1e-5
    assert got.min() == pytest.approx(np.log(1e-5), abs=1e-6)  # the silent part hits the floor


def test_log_mel_zero_extension_and_short_input() -> None:
    mel = AUDIOLDM_MEL
    x = _synthetic(mel.sample_rate, 0.05)  # shorter than the reflect padding needs twice
    got = log_mel_np(x, mel, length=2048)
    ext = np.zeros(2048, np.float32)
    ext[: len(x)] = x
    expected = _reference_log_mel(ext, mel.sample_rate, mel.n_fft, mel.hop_length, mel.n_mels)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-4


def test_normalize_removes_mean_scales_peak_and_keeps_gain() -> None:
    rng = np.random.default_rng(1)
    x = (0.1 + 0.3 * rng.standard_normal(10_000)).astype(np.float32)
    y, gain = normalize(x)
    assert y.dtype == np.float32
    assert abs(float(y.mean())) < 1e-6
    assert float(np.abs(y).max()) == pytest.approx(0.5, rel=1e-6)
    np.testing.assert_allclose(y * gain, x - x.mean(dtype=np.float64), atol=1e-5)


def test_normalize_silence_and_empty() -> None:
    y, gain = normalize(np.full(100, 0.25, np.float32))  # DC only: silence once the mean is gone
    assert gain == 0.0 and not y.any() and len(y) == 100
    y, gain = normalize(np.zeros(0, np.float32))
    assert gain == 0.0 and y.size == 0
