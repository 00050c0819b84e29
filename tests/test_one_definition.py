"""One definition of each thing: the slaney mel bank, resampling, kbps, audio suffixes."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from ldmz.codec.audio_io import resample
from ldmz.codec.dsp.melscale import hz_to_mel, mel_filterbank, mel_to_hz


@pytest.mark.parametrize(("sr", "n_fft", "n_mels", "fmin", "fmax"), [
    (16000, 1024, 64, 0.0, 8000.0), (22050, 1024, 80, 0.0, 8000.0),
    (44100, 2048, 128, 0.0, None), (16000, 512, 32, 50.0, 7000.0),
])
def test_mel_bank_is_librosas(sr: int, n_fft: int, n_mels: int, fmin: float,
                              fmax: float | None) -> None:
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    np.testing.assert_allclose(mel_filterbank(sr, n_fft, n_mels, fmin, fmax), ref, atol=1e-8)


def test_unit_peak_bank_and_scale() -> None:
    bank = mel_filterbank(44100, 2048, 128, area_norm=False)
    assert bank.max(axis=1).min() > 0.5 and bank.max() <= 1.0
    f = np.array([0.0, 440.0, 1000.0, 8000.0, 22050.0])
    np.testing.assert_allclose(hz_to_mel(f), librosa.hz_to_mel(f), rtol=1e-9)
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, rtol=1e-9, atol=1e-9)


def test_the_gui_and_the_front_end_use_the_same_bank() -> None:
    from ldmz.codec.dsp.frontend import AUDIOLDM_MEL, mel_basis
    from ldmz.gui.analysis import mel_filters

    assert np.array_equal(mel_filters(44100, 2048), mel_filterbank(44100, 2048, 128,
                                                                    area_norm=False))
    assert np.array_equal(mel_basis(AUDIOLDM_MEL), mel_filterbank(16000, 1024, 64, 0.0, 8000.0))


@pytest.mark.parametrize(("sr_in", "sr_out"), [(44100, 16000), (16000, 22050), (48000, 44100)])
def test_resample_one_call_every_channel(sr_in: int, sr_out: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 12345)).astype(np.float32)
    y = resample(x, sr_in, sr_out)
    n = -(-12345 * sr_out // sr_in)
    assert y.shape == (3, n) and y.dtype == np.float32 and y.flags.c_contiguous
    for c in range(3):  # channels are independent: the same as one channel at a time
        np.testing.assert_allclose(resample(x[c], sr_in, sr_out), y[c], atol=1e-6)
    ref = librosa.resample(x, orig_sr=sr_in, target_sr=sr_out, res_type="soxr_hq", axis=-1)
    np.testing.assert_allclose(y, ref, atol=1e-5)
    assert resample(x.astype(np.float64), sr_in, sr_out).dtype == np.float64
    assert resample(x, sr_in, sr_in) is x
