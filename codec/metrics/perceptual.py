"""Perceptual metrics for `ldmz.codec.metrics`: wrappers over pesq, pystoi and visqol-python."""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING

import numpy as np

from ldmz.codec.metrics.spectral import NotApplicable

if TYPE_CHECKING:
    from visqol import VisqolApi

PESQ_SR = 16000
PESQ_MIN_S = 0.25  # the ITU P.862 code refuses shorter buffers
STOI_SR = 16000  # pystoi resamples to its internal 10 kHz itself
STOI_MIN_S = 0.4  # 30 frames of 256 samples, hop 128, at 10 kHz, before silent frames are dropped
VISQOL_SR = 48000  # ViSQOL v3 audio mode (the general-audio mode; speech mode needs a VAD + TFLite)
VISQOL_MIN_S = 0.5


def _require_sound(ref: np.ndarray, deg: np.ndarray) -> None:
    if not np.any(ref):
        raise NotApplicable("reference is silent")
    if not np.any(deg):
        raise NotApplicable("degraded signal is silent")


def pesq_wb(ref: np.ndarray, deg: np.ndarray) -> float:
    """Wideband PESQ (ITU-T P.862.2, MOS-LQO) of two 16 kHz signals."""
    from pesq import PesqError, pesq

    if ref.shape[-1] < PESQ_MIN_S * PESQ_SR:
        raise NotApplicable(f"audio shorter than {PESQ_MIN_S} s")
    _require_sound(ref, deg)
    try:
        return float(pesq(PESQ_SR, ref.astype(np.float32), deg.astype(np.float32), "wb"))
    except PesqError as exc:  # e.g. NoUtterancesError
        msg = exc.args[0] if exc.args else type(exc).__name__
        raise NotApplicable(f"PESQ: {msg.decode() if isinstance(msg, bytes) else msg}") from exc
    except ValueError as exc:  # NaN inside the P.862 code on near-silent input
        raise NotApplicable(f"PESQ failed: {exc}") from exc


def stoi(ref: np.ndarray, deg: np.ndarray) -> float:
    """STOI (Taal et al. 2011) of two 16 kHz signals via pystoi."""
    from pystoi import stoi as _stoi

    if ref.shape[-1] < STOI_MIN_S * STOI_SR:
        raise NotApplicable(f"audio shorter than {STOI_MIN_S} s")
    _require_sound(ref, deg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(_stoi(ref, deg, STOI_SR, extended=False))
    for w in caught:
        if "Not enough STFT frames" in str(w.message):
            raise NotApplicable("STOI: fewer than 30 non-silent frames")
    return value


@functools.lru_cache(maxsize=1)
def _visqol_api() -> VisqolApi:
    from visqol import VisqolApi

    api = VisqolApi()
    api.create(mode="audio")
    return api


def visqol_available() -> bool:
    """Whether the optional visqol-python package can be imported."""
    try:
        import visqol  # noqa: F401
    except ImportError:
        return False
    return True


def visqol(ref: np.ndarray, deg: np.ndarray) -> float:
    """ViSQOL v3 audio-mode MOS-LQO of two 48 kHz signals via visqol-python (optional)."""
    if not visqol_available():
        raise NotApplicable("visqol-python is not installed (pip install visqol-python)")
    if ref.shape[-1] < VISQOL_MIN_S * VISQOL_SR:
        raise NotApplicable(f"audio shorter than {VISQOL_MIN_S} s")
    _require_sound(ref, deg)
    try:
        result = _visqol_api().measure_from_arrays(
            ref.astype(np.float64), deg.astype(np.float64), sample_rate=VISQOL_SR
        )
    except Exception as exc:  # third-party internals: report, never raise from a metric
        raise NotApplicable(f"ViSQOL failed: {type(exc).__name__}: {exc}") from exc
    return float(result.moslqo)
