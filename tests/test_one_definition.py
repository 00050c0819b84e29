"""One definition of each thing: the slaney mel bank, resampling, kbps, audio suffixes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

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


def test_bench_normalization_rows_run_the_encode_pipeline(tiny_patchvae: Path) -> None:
    from ldmz.codec.api import encode
    from ldmz.codec.bench.rows import Row, _encode_normalized
    from ldmz.codec.models import load_model
    from ldmz.codec.params import EncodeParams

    x = np.random.default_rng(1).normal(size=(2, 30000)).astype(np.float32) * 0.1
    model = load_model(str(tiny_patchvae), "auto", True)
    row = Row("normalization", "n", "normalization", model=str(tiny_patchvae), bits=3,
              option="exact")
    f, gains, undos = _encode_normalized(row, x, 22050, model)
    ref = encode(x, 22050, EncodeParams(model=str(tiny_patchvae), bits=3, offline=True))
    assert f.to_bytes() == ref.to_bytes() and len(undos) == 2
    assert gains == list(ref.header.source.gain)
    z, _, _ = _encode_normalized(replace(row, option="zscore"), x, 22050, model)
    assert z.header.latent == ref.header.latent and not np.array_equal(z.latents(), f.latents())


def test_kbps_and_compression_have_one_formula() -> None:
    from ldmz.formats import MelParams, ModelInfo, SourceInfo, kbps, pack_latents

    assert kbps(1000, 2.0) == 4.0 and kbps(1000, 0.0) is None
    z = np.zeros((2, 2, 10, 3), np.float32)
    f = pack_latents(z, model=ModelInfo("m"), mel=MelParams(sample_rate=16000),
                     source=SourceInfo(16000, 2, 32000, (1.0, 1.0)), bits=2, frames_per_chunk=8)
    h = f.header
    assert h.bitrate_kbps(1000) == 4.0 and h.compression_ratio(1000) == 128.0
    assert h.compression_ratio(0) is None
