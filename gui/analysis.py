"""Numpy-only analysis for the views: waveform envelopes and STFT / log-mel dB images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ldmz.codec.dsp.melscale import hz_to_mel, mel_filterbank, mel_to_hz

MAX_FRAMES = 6000  # spectrogram columns at most; the hop grows for long files
LOG_ROWS = 384  # rows of a log-frequency image
MEL_BANDS = 128
LOG_FMIN = 20.0
HANN_ENBW = 1.5  # a Hann window's noise bandwidth in bins: a full-scale sine reads 0 dB
MAX_LANES = 8  # waveform lanes drawn per side


@dataclass(frozen=True)
class Spectrogram:
    """A dB image: ``db[frame, row]``; frame i is centred at ``t0 + i * dt`` seconds.

    Rows are equally spaced in the display coordinate ``y`` from ``y0`` to ``y1`` (Hz for
    "linear", log10(Hz) for "log", slaney mel for "mel"); :func:`y_to_hz` converts back.
    """

    db: np.ndarray
    t0: float
    dt: float
    y0: float
    y1: float
    scale: str

    @property
    def frames(self) -> int:
        """Number of time frames."""
        return int(self.db.shape[0])

    def value_at(self, t: float, y: float) -> float | None:
        """The dB value of the cell under (time, display y), or None outside the image."""
        rows = self.db.shape[1]
        i = int(np.floor((t - self.t0) / self.dt + 0.5))
        j = int(np.floor((y - self.y0) / (self.y1 - self.y0) * rows))
        if 0 <= i < self.frames and 0 <= j < rows:
            return float(self.db[i, j])
        return None


def mono(audio: np.ndarray) -> np.ndarray:
    """Average (channels, samples) to float32 (samples,)."""
    a = np.asarray(audio, dtype=np.float32)
    return a if a.ndim == 1 else a.mean(axis=0)


def channel_name(i: int, channels: int) -> str:
    """"L"/"R" for stereo, "ch N" (1-based) otherwise."""
    if channels == 2 and i in (0, 1):
        return "LR"[i]
    return "mono" if channels == 1 else f"ch {i + 1}"


def pick_channel(audio: np.ndarray, channel: int) -> tuple[np.ndarray, str]:
    """Channel ``channel`` of (channels, samples) and its name; -1 (or a channel the audio does
    not have) gives the mix, named as such."""
    a = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    n = a.shape[0]
    if n == 1:
        return a[0], "mono"
    if 0 <= channel < n:
        return a[channel], channel_name(channel, n)
    return a.mean(axis=0), ("L+R mix" if n == 2 else f"mix of {n} channels")


def envelope(x: np.ndarray, sr: int, bins: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Min/max overview of ``x`` as (times, values) pairs of vertical segments (connect='pairs')."""
    n = len(x)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    bins = max(1, min(bins, n))
    edges = np.linspace(0, n, bins + 1).astype(np.int64)
    lo = np.minimum.reduceat(x, edges[:-1])
    hi = np.maximum.reduceat(x, edges[:-1])
    t = (edges[:-1] + edges[1:]) / 2 / sr
    return np.repeat(t, 2), np.stack([lo, hi], axis=1).ravel()


def y_to_hz(y: np.ndarray | float, scale: str) -> np.ndarray:
    """Display coordinate -> Hz for a spectrogram scale."""
    if scale == "log":
        return np.power(10.0, y)
    if scale == "mel":
        return mel_to_hz(y)
    return np.asarray(y, dtype=np.float64)


def hz_to_y(f: np.ndarray | float, scale: str) -> np.ndarray:
    """Hz -> display coordinate for a spectrogram scale."""
    if scale == "log":
        return np.log10(np.maximum(f, 1e-9))
    if scale == "mel":
        return hz_to_mel(f)
    return np.asarray(f, dtype=np.float64)


def mel_filters(sr: int, n_fft: int, n_mels: int = MEL_BANDS) -> np.ndarray:
    """Unit-peak triangular filters evenly spaced in slaney mel, 0 Hz to Nyquist: (n_mels, bins)."""
    return mel_filterbank(sr, n_fft, n_mels, area_norm=False)


def _frames(x: np.ndarray, n_fft: int) -> tuple[np.ndarray, int]:
    """Centred frames (a strided view, no copy): frame i is centred on sample i * hop."""
    hop = max(n_fft // 4, -(-len(x) // MAX_FRAMES))
    x = np.pad(x, (n_fft // 2, n_fft // 2 + max(0, n_fft - len(x))))
    return np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop], hop


def power_spectrum(x: np.ndarray, n_fft: int) -> tuple[np.ndarray, int]:
    """Hann-windowed power spectrum (frames, n_fft // 2 + 1); a full-scale sine peaks at 0 dB."""
    frames, hop = _frames(np.asarray(x, dtype=np.float32), n_fft)
    win = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    spec = np.empty((len(frames), n_fft // 2 + 1), np.float32)
    for s in range(0, len(frames), 512):  # bounded temporary memory
        mag = np.abs(np.fft.rfft(frames[s:s + 512] * win, axis=1)) * (2.0 / win.sum())
        spec[s:s + 512] = mag * mag
    return spec, hop


def to_db(power: np.ndarray, floor_db: float = -160.0) -> np.ndarray:
    """10 log10(power), floored."""
    return (10.0 * np.log10(np.maximum(power, 10.0 ** (floor_db / 10)))).astype(np.float32)


def spectrogram(x: np.ndarray, sr: int, n_fft: int, kind: str = "mel",
                log_freq: bool = True) -> Spectrogram:
    """A dB spectrogram of mono ``x``: ``kind`` "mel" (log-mel) or "linear" (STFT).

    A linear STFT with ``log_freq`` is resampled onto LOG_ROWS rows spaced evenly in log10(Hz)
    from LOG_FMIN (or the first bin) to Nyquist, as Sonic Visualiser's log scale shows it.
    """
    power, hop = power_spectrum(x, n_fft)
    t0, dt, nyq = 0.0, hop / sr, sr / 2
    if kind == "mel":
        db = to_db(power @ mel_filters(sr, n_fft).T / HANN_ENBW)
        return Spectrogram(db, t0, dt, 0.0, float(hz_to_mel(nyq)), "mel")
    db = to_db(power)
    if not log_freq:
        half = nyq / (n_fft // 2)
        return Spectrogram(db, t0, dt, -half / 2, nyq + half / 2, "linear")
    lo = max(LOG_FMIN, sr / n_fft)
    edges = np.linspace(np.log10(lo), np.log10(nyq), LOG_ROWS + 1)
    centres = 10 ** ((edges[:-1] + edges[1:]) / 2)
    pos = centres / nyq * (n_fft // 2)  # fractional bin of each row
    i0 = np.clip(np.floor(pos).astype(int), 0, n_fft // 2 - 1)
    frac = (pos - i0).astype(np.float32)
    db = db[:, i0] * (1 - frac) + db[:, i0 + 1] * frac
    return Spectrogram(db.astype(np.float32), t0, dt, float(edges[0]), float(edges[-1]), "log")


def difference(rec: Spectrogram, orig: Spectrogram, floor_db: float) -> Spectrogram | None:
    """Reconstruction minus original in dB, both floored at ``floor_db``; None if incompatible."""
    if rec.db.shape[1] != orig.db.shape[1] or abs(rec.dt - orig.dt) > 1e-9 \
            or rec.scale != orig.scale:
        return None
    n = min(rec.frames, orig.frames)
    d = np.maximum(rec.db[:n], floor_db) - np.maximum(orig.db[:n], floor_db)
    return Spectrogram(d.astype(np.float32), rec.t0, rec.dt, rec.y0, rec.y1, rec.scale)
