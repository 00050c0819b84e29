"""Tests for ldmz.codec.metrics: known cases per metric, alignment, rates, channels, edge cases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import librosa
import numpy as np
import pytest
import soxr

from ldmz.codec.metrics import (
    DB_CAP,
    METRIC_NAMES,
    CompareParams,
    MetricReport,
    compare,
    find_delay,
)
from ldmz.codec.metrics import perceptual as metrics_perceptual
from ldmz.codec.metrics.spectral import audioldm2_log_mel

SR = 16000
FAST = CompareParams(visqol=False)  # ViSQOL is covered by its own tests


def speech_like(sr: int = SR, dur: float = 2.0, seed: int = 0) -> np.ndarray:
    """A voiced, speech-like float32 signal: gliding-pitch harmonics, formants, syllable-rate AM."""
    rng = np.random.default_rng(seed)
    n = int(sr * dur)
    t = np.arange(n) / sr
    f0 = 120 + 40 * np.sin(np.pi * t + rng.uniform(0, 6)) + 15 * np.sin(2 * np.pi * 1.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = np.zeros(n)
    for k in range(1, 40):
        fk = k * f0
        formants = np.exp(-(((fk - 700) / 900) ** 2)) + 0.5 * np.exp(-(((fk - 1800) / 700) ** 2))
        x += (formants + 0.1) * np.sin(k * phase) * (fk < 0.45 * sr) / math.sqrt(k)
    syllables = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, None) ** 1.5
    x = x * syllables + 0.003 * rng.standard_normal(n)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def with_noise(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    """``x`` plus white noise scaled to exactly ``snr_db`` (in float64, then cast)."""
    noise = np.random.default_rng(seed).standard_normal(x.shape)
    noise *= math.sqrt(np.sum(x.astype(np.float64) ** 2) / np.sum(noise**2) / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speech_like()


def values(report: MetricReport) -> dict[str, float | None]:
    return {m.name: m.value for m in report.metrics}


def test_identical_signals(speech: np.ndarray) -> None:
    report = compare(speech, SR, speech, SR, FAST)
    v = values(report)
    assert report.delay_samples == 0 and report.sr == SR and report.channels == 1
    assert v["snr"] == DB_CAP and v["si_sdr"] == DB_CAP
    for name in ("lsd", "mel_l1", "mr_stft", "spectral_convergence"):
        assert v[name] == pytest.approx(0.0, abs=1e-9), name
    assert v["pesq_wb"] > 4.6
    assert v["stoi"] > 0.999
    assert all(m.reason is None for m in report.metrics)


@pytest.mark.parametrize("delay", [123, -200])
def test_pure_delay_is_found_and_removed(speech: np.ndarray, delay: int) -> None:
    if delay > 0:  # deg starts late: all of ref overlaps
        deg = np.concatenate([np.zeros(delay, np.float32), speech])
    else:  # deg starts early: its first -delay samples are cut
        deg = speech[-delay:]
    report = compare(speech, SR, deg, SR, FAST)
    assert report.delay_samples == delay
    assert report.get("snr").value == DB_CAP
    assert report.get("mel_l1").value == pytest.approx(0.0, abs=1e-9)
    assert report.duration_s == pytest.approx((speech.size - max(0, -delay)) / SR)


def test_delay_search_is_bounded(speech: np.ndarray) -> None:
    deg = np.concatenate([np.zeros(3000, np.float32), speech])
    assert find_delay(speech, deg, max_lag=4000) == 3000
    assert abs(find_delay(speech, deg, max_lag=1000)) <= 1000
    report = compare(speech, SR, deg, SR, CompareParams(visqol=False, align=False))
    assert report.delay_samples == 0 and report.get("snr").value < 3.0


def test_delay_is_found_under_noise(speech: np.ndarray) -> None:
    deg = with_noise(np.concatenate([np.zeros(77, np.float32), speech]), 5.0)
    assert compare(speech, SR, deg, SR, FAST).delay_samples == 77


@pytest.mark.parametrize("snr_db", [10.0, 20.0])
def test_white_noise_at_known_snr(speech: np.ndarray, snr_db: float) -> None:
    report = compare(speech, SR, with_noise(speech, snr_db), SR, FAST)
    assert report.delay_samples == 0
    assert report.get("snr").value == pytest.approx(snr_db, abs=0.2)
    assert report.get("si_sdr").value == pytest.approx(snr_db, abs=0.2)


def test_more_noise_scores_worse_everywhere(speech: np.ndarray) -> None:
    good = values(compare(speech, SR, with_noise(speech, 30.0), SR, FAST))
    bad = values(compare(speech, SR, with_noise(speech, 5.0), SR, FAST))
    for m in compare(speech, SR, speech, SR, FAST).metrics:
        worse = bad[m.name] < good[m.name] if m.higher_is_better else bad[m.name] > good[m.name]
        assert worse, m.name


@pytest.mark.parametrize("gain", [0.5, 0.9, 2.0])
def test_gain_change(speech: np.ndarray, gain: float) -> None:
    report = compare(speech, SR, speech * np.float32(gain), SR, FAST)
    # SNR = 10 log10(sum x^2 / sum ((1 - g) x)^2) = -20 log10 |1 - g|; 6.0206 dB for g = 0.5.
    assert report.get("snr").value == pytest.approx(-20 * math.log10(abs(1 - gain)), abs=1e-4)
    assert report.get("si_sdr").value > 90.0
    assert report.get("pesq_wb").value > 4.5  # PESQ aligns levels itself


def test_spectral_metrics_known_values_for_a_gain() -> None:
    # White noise has no near-silent bins, so the floors/clamps play no part.
    x = (0.1 * np.random.default_rng(3).standard_normal(SR)).astype(np.float32)
    v = values(compare(x, SR, 0.5 * x, SR, FAST))
    assert v["lsd"] == pytest.approx(20 * math.log10(2), abs=1e-4)
    assert v["mel_l1"] == pytest.approx(math.log(2), abs=1e-4)
    assert v["spectral_convergence"] == pytest.approx(0.5, abs=1e-4)
    assert v["mr_stft"] == pytest.approx(0.5 + math.log(2), abs=1e-4)


def test_audioldm2_log_mel_front_end() -> None:
    t = np.arange(SR) / SR
    mel = audioldm2_log_mel(0.5 * np.sin(2 * np.pi * 1000 * t))
    assert mel.shape == (64, SR // 160)  # (n + 2 * 432 - 1024) // 160 + 1 frames
    centers = librosa.mel_frequencies(n_mels=66, fmin=0, fmax=8000)[1:-1]
    assert int(np.argmax(mel[:, 50])) == int(np.argmin(np.abs(centers - 1000)))
    assert mel.min() >= math.log(1e-5) - 1e-12


def test_log_mel_matches_an_independent_librosa_derivation(speech: np.ndarray) -> None:
    """The metric's mel (the codec's front-end) against librosa, with AudioLDM2's settings."""
    pad = (1024 - 160) // 2
    spec = librosa.stft(np.pad(speech.astype(np.float64), pad, mode="reflect"), n_fft=1024,
                        hop_length=160, win_length=1024, window="hann", center=False)
    bank = librosa.filters.mel(sr=SR, n_fft=1024, n_mels=64, fmin=0.0, fmax=8000.0)
    theirs = np.log(np.maximum(bank @ np.abs(spec), 1e-5))
    ours = audioldm2_log_mel(speech)
    assert ours.shape == theirs.shape == (64, SR * 2 // 160)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_different_sample_rates(speech: np.ndarray) -> None:
    ref48 = soxr.resample(speech, SR, 48000).astype(np.float32)
    report = compare(ref48, 48000, speech, SR, FAST)
    assert report.sr == 48000 and report.delay_samples == 0
    assert report.get("snr").value > 30.0
    assert report.get("pesq_wb").value > 4.5

    deg44 = soxr.resample(speech, SR, 44100).astype(np.float32)
    report = compare(speech, SR, deg44, 44100, FAST)
    assert report.sr == SR and report.get("snr").value > 30.0

    report = compare(ref48, 48000, deg44, 44100, CompareParams(sr=SR, visqol=False))
    assert report.sr == SR and report.get("stoi").value > 0.99


def test_per_channel_when_channel_counts_match(speech: np.ndarray) -> None:
    other = speech_like(seed=5)
    ref = np.stack([speech, other])
    deg = np.stack([with_noise(speech, 10.0), with_noise(other, 20.0, seed=2)])
    report = compare(ref, SR, deg, SR, FAST)
    assert report.channel_mode == "per-channel" and report.channels == 2
    assert report.get("snr").value == pytest.approx(15.0, abs=0.2)  # mean of 10 and 20 dB


def test_mono_mix_when_channel_counts_differ(speech: np.ndarray) -> None:
    report = compare(np.stack([speech, speech]), SR, speech, SR, FAST)
    assert report.channel_mode == "mono" and report.channels == 1 and report.notes
    assert report.get("snr").value == DB_CAP


@pytest.mark.parametrize("seconds", [0.1, 0.3])
def test_too_short_audio_gives_none_with_reason(speech: np.ndarray, seconds: float) -> None:
    x = speech[: int(seconds * SR)]
    report = compare(x, SR, 0.9 * x, SR, FAST)
    stoi = report.get("stoi")
    assert stoi.value is None and "shorter" in stoi.reason
    pesq = report.get("pesq_wb")
    if seconds < 0.25:
        assert pesq.value is None and "shorter" in pesq.reason
    else:
        assert pesq.value is not None
    assert report.get("snr").value == pytest.approx(20.0, abs=1e-3)
    assert report.get("mel_l1").value is not None


def test_stoi_without_enough_speech_frames_gives_none(speech: np.ndarray) -> None:
    x = np.zeros(SR, np.float32)
    x[:800] = speech[4000:4800]  # 50 ms of sound, then digital silence
    stoi = compare(x, SR, x, SR, FAST).get("stoi")
    assert stoi.value is None and "non-silent frames" in stoi.reason


def test_pesq_error_becomes_reason(speech: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    import pesq

    def no_utterances(*args: object, **kwargs: object) -> float:
        raise pesq.NoUtterancesError(b"No utterances detected")

    monkeypatch.setattr(pesq, "pesq", no_utterances)
    metric = compare(speech, SR, speech, SR, FAST).get("pesq_wb")
    assert metric.value is None and metric.reason == "PESQ: No utterances detected"


def test_empty_and_silent_inputs_never_raise(speech: np.ndarray) -> None:
    empty = compare(speech[:0], SR, speech[:0], SR, FAST)
    assert all(m.value is None and m.reason for m in empty.metrics)

    silent_ref = compare(np.zeros_like(speech), SR, speech, SR, FAST)
    for name in ("snr", "si_sdr", "spectral_convergence", "pesq_wb", "stoi"):
        assert silent_ref.get(name).value is None
        assert "silent" in silent_ref.get(name).reason

    silent_deg = values(compare(speech, SR, np.zeros_like(speech), SR, FAST))
    assert silent_deg["snr"] == 0.0 and silent_deg["si_sdr"] == -DB_CAP
    assert silent_deg["pesq_wb"] is None and silent_deg["stoi"] is None


def test_report_dict_and_table(speech: np.ndarray) -> None:
    x = speech[: int(0.2 * SR)]
    report = compare(x, SR, with_noise(x, 20.0), SR)
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert [m["name"] for m in d["metrics"]] == list(METRIC_NAMES)
    assert d["sr"] == SR and d["delay_samples"] == 0
    table = report.format_table()
    assert "↑" in table and "↓" in table and "n/a" in table
    for name in METRIC_NAMES:
        assert name in table
    assert report.get("pesq_wb").reason in table


def test_metric_selection(speech: np.ndarray) -> None:
    report = compare(speech, SR, speech, SR, names=["snr", "mel_l1"])
    assert [m.name for m in report.metrics] == ["snr", "mel_l1"]
    with pytest.raises(ValueError, match="unknown metric"):
        compare(speech, SR, speech, SR, names=["nope"])


def test_bad_shape_is_refused(speech: np.ndarray) -> None:
    with pytest.raises(ValueError, match="shape"):
        compare(speech[None, None], SR, speech, SR, FAST)
    bad = speech.copy()
    bad[10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        compare(speech, SR, bad, SR, FAST)


@pytest.mark.skipif(metrics_perceptual.visqol_available(), reason="visqol-python is installed")
def test_visqol_missing_is_reported(speech: np.ndarray) -> None:
    metric = compare(speech, SR, speech, SR).get("visqol")
    assert metric.value is None and "not installed" in metric.reason


@pytest.mark.skipif(not metrics_perceptual.visqol_available(), reason="needs visqol-python")
def test_visqol_known_cases(speech: np.ndarray) -> None:
    x = speech[: int(1.5 * SR)]
    same = compare(x, SR, x, SR, names=["visqol"]).get("visqol").value
    noisy = compare(x, SR, with_noise(x, 10.0), SR, names=["visqol"]).get("visqol").value
    assert same > 4.5 and 1.0 <= noisy < same - 1.0
    short = compare(x[:4000], SR, x[:4000], SR, names=["visqol"]).get("visqol")
    assert short.value is None and "shorter" in short.reason


def test_eval_align_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ldmz eval --align`: auto/yes find a known delay in an audio DEG, `no` compares as is."""
    import json

    import soundfile as sf

    from ldmz.codec.cli import main

    sr = 16000
    rng = np.random.default_rng(3)
    ref = rng.normal(0, 0.1, sr * 2).astype(np.float32)
    sf.write(tmp_path / "ref.wav", ref, sr)
    sf.write(tmp_path / "deg.wav", np.concatenate([np.zeros(80, np.float32), ref[:-80]]), sr)
    delays = {}
    for mode in ("auto", "yes", "no"):
        assert main(["eval", str(tmp_path / "ref.wav"), str(tmp_path / "deg.wav"), "--json",
                     "--no-visqol", "--align", mode]) == 0
        delays[mode] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert delays["auto"]["delay_samples"] == delays["yes"]["delay_samples"] == 80
    assert delays["no"]["delay_samples"] == 0
    snr = {m: next(x["value"] for x in d["metrics"] if x["name"] == "snr")
           for m, d in delays.items()}
    assert snr["no"] < 3 < 40 < snr["yes"]
