"""Persist the codec's own parameter dataclasses, the view options and recent files in QSettings."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, TypeVar

from PySide6.QtCore import QSettings

from ldmz.codec.params import DecodeParams, EncodeParams

T = TypeVar("T")
MAX_RECENT = 10
SPECTROGRAM_KINDS = ("mel", "linear")
WINDOW_SIZES = (256, 512, 1024, 2048, 4096, 8192)
COLORMAPS = ("inferno", "magma", "viridis", "plasma", "cividis", "turbo", "CET-L1")


@dataclass(frozen=True)
class ViewParams:
    """How the spectrograms are drawn."""

    spectrogram: str = "mel"  # "mel" (log-mel) or "linear" (STFT)
    log_freq: bool = True  # linear STFT on a log-frequency axis
    n_fft: int = 2048
    db_floor: float = -100.0
    db_ceiling: float = 0.0
    diff_range: float = 24.0  # the difference image spans +- this many dB
    colormap: str = "inferno"


def _convert(raw: Any, default: T) -> T:
    """A QSettings value (INI files give strings) as the type of ``default``."""
    if isinstance(default, bool):
        return raw if isinstance(raw, bool) else str(raw).lower() in ("true", "1", "yes")
    return type(default)(raw)


def load_dataclass(settings: QSettings, group: str, cls: type[T]) -> T:
    """Read ``cls`` from ``group``; missing or unreadable fields keep the class defaults."""
    values = {}
    settings.beginGroup(group)
    try:
        for f in dataclasses.fields(cls):
            if not settings.contains(f.name):
                continue
            try:
                values[f.name] = _convert(settings.value(f.name), f.default)
            except (TypeError, ValueError):
                continue
    finally:
        settings.endGroup()
    return cls(**values)


def save_dataclass(settings: QSettings, group: str, obj: Any) -> None:
    """Write every field of the dataclass ``obj`` under ``group``."""
    settings.beginGroup(group)
    try:
        for f in dataclasses.fields(obj):
            settings.setValue(f.name, getattr(obj, f.name))
    finally:
        settings.endGroup()
    settings.sync()


class AppSettings:
    """Typed access to the app's QSettings: codec params, view params, recent files, geometry."""

    def __init__(self, settings: QSettings | None = None) -> None:
        self.qs = settings if settings is not None else QSettings(
            QSettings.Format.IniFormat, QSettings.Scope.UserScope, "ldmz", "ldmz-gui")

    def encode_params(self) -> EncodeParams:
        """The saved encode parameters."""
        return load_dataclass(self.qs, "encode", EncodeParams)

    def set_encode_params(self, p: EncodeParams) -> None:
        """Save the encode parameters."""
        save_dataclass(self.qs, "encode", p)

    def decode_params(self) -> DecodeParams:
        """The saved decode parameters."""
        return load_dataclass(self.qs, "decode", DecodeParams)

    def set_decode_params(self, p: DecodeParams) -> None:
        """Save the decode parameters."""
        save_dataclass(self.qs, "decode", p)

    def view_params(self) -> ViewParams:
        """The saved view parameters (invalid choices fall back to the defaults)."""
        v = load_dataclass(self.qs, "view", ViewParams)
        d = ViewParams()
        return dataclasses.replace(
            v,
            spectrogram=v.spectrogram if v.spectrogram in SPECTROGRAM_KINDS else d.spectrogram,
            n_fft=v.n_fft if v.n_fft in WINDOW_SIZES else d.n_fft,
            colormap=v.colormap if v.colormap in COLORMAPS else d.colormap)

    def set_view_params(self, p: ViewParams) -> None:
        """Save the view parameters."""
        save_dataclass(self.qs, "view", p)

    def recent_files(self) -> list[str]:
        """Recently opened files, newest first, existing ones only."""
        raw = self.qs.value("recent", [])
        items = [raw] if isinstance(raw, str) else list(raw or [])
        return [p for p in items if p and os.path.exists(p)][:MAX_RECENT]

    def add_recent(self, path: str | os.PathLike) -> None:
        """Put ``path`` first in the recent files."""
        p = os.path.abspath(os.fspath(path))
        items = [p] + [q for q in self.recent_files() if q != p]
        self.qs.setValue("recent", items[:MAX_RECENT])
        self.qs.sync()

    def clear_recent(self) -> None:
        """Forget the recent files."""
        self.qs.setValue("recent", [])
        self.qs.sync()
