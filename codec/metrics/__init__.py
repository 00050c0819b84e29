"""Objective quality metrics comparing a reference and a degraded signal, for `ldmz eval`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.signal

from ldmz.codec.audio_io import resample
from ldmz.codec.errors import AudioError, ParamError
from ldmz.codec.metrics import perceptual as _perc
from ldmz.codec.metrics import spectral as _spec
from ldmz.codec.metrics.spectral import NotApplicable

__all__ = [
    "DB_CAP",
    "METRIC_NAMES",
    "CompareParams",
    "Metric",
    "MetricReport",
    "align",
    "compare",
    "find_delay",
    "si_sdr",
    "snr",
]

# SNR and SI-SDR are clipped to +-DB_CAP dB, so identical signals (an error of exactly zero) give
# +100.0 rather than inf, and the report stays valid JSON.
DB_CAP = 100.0


@dataclass(frozen=True)
class Metric:
    """One metric value; ``value`` is None when the metric does not apply, and ``reason`` says why.

    ``reason`` may also carry a caveat next to a value (e.g. averaged over fewer channels).
    """

    name: str
    value: float | None
    unit: str
    higher_is_better: bool
    reason: str | None = None


@dataclass(frozen=True)
class CompareParams:
    """Settings of `compare`; the defaults are the ones `ldmz eval` uses."""

    sr: int | None = None  # analysis rate for the waveform metrics; None: the reference's rate
    max_delay_s: float = 0.5  # delay search range, +- seconds
    align: bool = True  # find and compensate the delay
    visqol: bool = True  # compute ViSQOL when visqol-python is installed (slowest metric)


@dataclass(frozen=True)
class MetricReport:
    """The result of `compare`.

    ``delay_samples`` is at ``sr``; positive means the degraded signal lags the reference.
    ``channel_mode`` is "per-channel" (equal channel counts: metrics averaged over channels) or
    "mono" (different counts: both averaged to mono first).
    """

    metrics: list[Metric]
    delay_samples: int
    sr: int
    channels: int
    channel_mode: str
    duration_s: float
    notes: list[str] = field(default_factory=list)

    def get(self, name: str) -> Metric:
        """The metric called ``name``; KeyError if absent."""
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (plain floats, no inf/nan)."""
        return {
            "sr": self.sr,
            "delay_samples": self.delay_samples,
            "delay_s": self.delay_samples / self.sr,
            "channels": self.channels,
            "channel_mode": self.channel_mode,
            "duration_s": self.duration_s,
            "notes": list(self.notes),
            "metrics": [asdict(m) for m in self.metrics],
        }

    def format_table(self) -> str:
        """A plain-text table for the terminal, with the better direction of each metric."""
        rows = [("metric", "value", "unit", "better", "")]
        for m in self.metrics:
            value = "n/a" if m.value is None else f"{m.value:.4g}"
            better = "↑ higher" if m.higher_is_better else "↓ lower"
            rows.append((m.name, value, m.unit, better, m.reason or ""))
        w = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [
            f"{a:<{w[0]}}  {v:>{w[1]}}  {u:<{w[2]}}  {d:<{w[3]}}  {note}".rstrip()
            for a, v, u, d, note in rows
        ]
        lines.insert(1, "-" * len(lines[0]))
        delay_ms = 1000.0 * self.delay_samples / self.sr
        lines.append(
            f"delay {self.delay_samples} samples ({delay_ms:+.2f} ms) at {self.sr} Hz; "
            f"{self.channels} channel(s), {self.channel_mode}; {self.duration_s:.2f} s compared"
        )
        lines.extend(self.notes)
        return "\n".join(lines)


def _as_2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise AudioError(f"audio must have shape (samples,) or (channels, samples), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise AudioError("audio contains NaN or inf samples")
    return x[None, :] if x.ndim == 1 else x


def find_delay(ref: np.ndarray, deg: np.ndarray, max_lag: int) -> int:
    """Lag (samples) maximizing the FFT cross-correlation of mono signals; > 0: ``deg`` lags."""
    if ref.size == 0 or deg.size == 0 or not np.any(ref) or not np.any(deg):
        return 0
    corr = scipy.signal.correlate(deg, ref, mode="full", method="fft")
    lags = scipy.signal.correlation_lags(deg.size, ref.size, mode="full")
    window = np.abs(lags) <= max_lag
    return int(lags[window][np.argmax(corr[window])])


def align(ref: np.ndarray, deg: np.ndarray, delay: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove ``delay`` (as from `find_delay`) and trim both (channels, samples) to one length."""
    if delay > 0:
        deg = deg[..., delay:]
    elif delay < 0:
        ref = ref[..., -delay:]
    n = min(ref.shape[-1], deg.shape[-1])
    return ref[..., :n], deg[..., :n]


def _db(num: float, den: float) -> float:
    if num <= 0.0:
        return -DB_CAP
    if den <= 0.0:
        return DB_CAP
    return float(np.clip(10.0 * math.log10(num / den), -DB_CAP, DB_CAP))


def snr(ref: np.ndarray, deg: np.ndarray) -> float:
    """Waveform SNR in dB: 10 log10(sum ref^2 / sum (ref - deg)^2), clipped to +-DB_CAP."""
    energy = float(np.sum(ref**2))
    if energy == 0.0:
        raise NotApplicable("reference is silent")
    return _db(energy, float(np.sum((ref - deg) ** 2)))


def si_sdr(ref: np.ndarray, deg: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019, no mean removal), clipped to +-DB_CAP."""
    energy = float(np.sum(ref**2))
    if energy == 0.0:
        raise NotApplicable("reference is silent")
    target = (float(np.dot(deg, ref)) / energy) * ref
    return _db(float(np.sum(target**2)), float(np.sum((deg - target) ** 2)))


# name, unit, higher_is_better, rate (None: analysis rate), per-channel function
_Fn = Callable[[np.ndarray, np.ndarray], float]
_METRICS: tuple[tuple[str, str, bool, int | None, _Fn], ...] = (
    ("snr", "dB", True, None, snr),
    ("si_sdr", "dB", True, None, si_sdr),
    ("lsd", "dB", False, None, _spec.log_spectral_distance),
    ("mel_l1", "ln", False, _spec.MEL_SR, _spec.mel_l1),
    ("mr_stft", "", False, None, _spec.mrstft_distance),
    ("spectral_convergence", "", False, None, _spec.spectral_convergence),
    ("pesq_wb", "MOS", True, _perc.PESQ_SR, _perc.pesq_wb),
    ("stoi", "", True, _perc.STOI_SR, _perc.stoi),
    ("visqol", "MOS", True, _perc.VISQOL_SR, _perc.visqol),
)
METRIC_NAMES: tuple[str, ...] = tuple(m[0] for m in _METRICS)


def _over_channels(
    name: str, unit: str, higher: bool, fn: _Fn, refs: np.ndarray, degs: np.ndarray
) -> Metric:
    if refs.shape[-1] == 0:
        return Metric(name, None, unit, higher, "no overlapping audio after alignment")
    values, reasons = [], []
    for ch, (r, d) in enumerate(zip(refs, degs, strict=True)):
        try:
            values.append(fn(r, d))
        except NotApplicable as exc:
            reasons.append(f"channel {ch}: {exc}" if len(refs) > 1 else str(exc))
    if not values:
        return Metric(name, None, unit, higher, "; ".join(reasons))
    note = None
    if reasons:
        note = f"mean of {len(values)} of {len(refs)} channels; " + "; ".join(reasons)
    return Metric(name, float(np.mean(values)), unit, higher, note)


def compare(
    ref: np.ndarray,
    ref_sr: int,
    deg: np.ndarray,
    deg_sr: int,
    params: CompareParams | None = None,
    names: Sequence[str] | None = None,
) -> MetricReport:
    """Compare ``deg`` against ``ref`` and return every metric (or those in ``names``).

    Both are resampled (soxr HQ) to the analysis rate (``params.sr``, default the reference's
    rate). Equal channel counts are compared channel by channel and averaged; different counts are
    both averaged to mono. The delay is found by FFT cross-correlation of the mono mixes within
    +-``params.max_delay_s`` and removed (whole samples at the analysis rate) before any metric;
    both are trimmed to the overlap. The metrics that run at a fixed rate (mel L1, PESQ, STOI:
    16 kHz; ViSQOL: 48 kHz) resample the aligned signals again. Raises AudioError or ParamError
    (both ValueErrors) only for bad input (shape, NaN/inf, unknown ``names``); a metric that does
    not apply is None with a reason.
    """
    params = params or CompareParams()
    unknown = sorted(set(names or ()) - set(METRIC_NAMES))
    if unknown:
        raise ParamError(f"unknown metric(s) {unknown}; known: {', '.join(METRIC_NAMES)}")
    sr = int(params.sr or ref_sr)
    r2, d2 = _as_2d(ref), _as_2d(deg)
    notes: list[str] = []
    if r2.shape[0] == d2.shape[0]:
        mode = "per-channel"
    else:
        mode = "mono"
        notes.append(f"channel counts differ ({r2.shape[0]} vs {d2.shape[0]}): compared as mono")
        r2, d2 = r2.mean(axis=0, keepdims=True), d2.mean(axis=0, keepdims=True)
    r2, d2 = resample(r2, ref_sr, sr), resample(d2, deg_sr, sr)

    delay = 0
    if params.align:
        delay = find_delay(r2.mean(axis=0), d2.mean(axis=0), round(params.max_delay_s * sr))
    r2, d2 = align(r2, d2, delay)

    wanted = [m for m in _METRICS if names is None or m[0] in names]
    if not params.visqol:
        wanted = [m for m in wanted if m[0] != "visqol"]
    at_rate: dict[int, tuple[np.ndarray, np.ndarray]] = {sr: (r2, d2)}
    metrics = []
    for name, unit, higher, rate, fn in wanted:
        rate = rate or sr
        if rate not in at_rate:
            at_rate[rate] = (resample(r2, sr, rate), resample(d2, sr, rate))
        metrics.append(_over_channels(name, unit, higher, fn, *at_rate[rate]))
    return MetricReport(
        metrics=metrics,
        delay_samples=delay,
        sr=sr,
        channels=r2.shape[0],
        channel_mode=mode,
        duration_s=r2.shape[-1] / sr,
        notes=notes,
    )
