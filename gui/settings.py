"""Persist the codec's parameter dataclasses, the view options and recent files as plain text."""

from __future__ import annotations

import configparser
import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ldmz.codec.params import DecodeParams, EncodeParams

T = TypeVar("T")
MAX_RECENT = 10
SPECTROGRAM_KINDS = ("mel", "linear")
WINDOW_SIZES = (256, 512, 1024, 2048, 4096, 8192)
COLORMAPS = ("inferno", "magma", "viridis", "plasma", "cividis", "turbo", "CET-L1")

# The file is read with configparser, never with QSettings: QSettings' INI reader turns
# "@Variant(...)" values into objects, and PySide6 unpickles Python objects stored that way, so a
# payload written into the file would run when the app starts. Here every value is a string that
# is converted to the field's plain type (str, int, float, bool) or dropped.


def default_path() -> Path:
    """~/.config/ldmz/ldmz-gui.ini (where QSettings kept it), honouring XDG_CONFIG_HOME."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "ldmz" / "ldmz-gui.ini"


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
    max_hz: float = 0.0  # top of the frequency axes; 0: Nyquist
    channel: int = -1  # the channel the spectrograms show; -1: the mix of all channels


def _convert(raw: str, default: T) -> T:
    """A stored string as the plain type of ``default``; ValueError if it is not one."""
    if raw.startswith("@"):  # QSettings' serialized objects (@Variant, @ByteArray, ...)
        raise ValueError(f"not a plain value: {raw[:20]}")
    if isinstance(default, bool):
        if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(raw)
        return raw.lower() in ("true", "1", "yes")  # type: ignore[return-value]
    if isinstance(default, (int, float, str)):
        return type(default)(raw)
    raise TypeError(f"unsupported setting type {type(default).__name__}")


class SettingsStore:
    """A plain-text INI file of strings: read once, written atomically on every change."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.ini = configparser.ConfigParser(interpolation=None)
        self.ini.optionxform = str  # type: ignore[assignment,method-assign]  # keep key case
        try:
            self.ini.read(self.path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            self.ini = configparser.ConfigParser(interpolation=None)
            self.ini.optionxform = str  # type: ignore[assignment,method-assign]

    def get(self, group: str, key: str) -> str | None:
        """The stored string, or None."""
        return self.ini.get(group, key, fallback=None)

    def set(self, group: str, key: str, value: str) -> None:
        """Store ``value`` (not yet written)."""
        if not self.ini.has_section(group):
            self.ini.add_section(group)
        self.ini.set(group, key, value)

    def sync(self) -> None:
        """Write the file atomically (a failure to write settings is not worth a dialog)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    self.ini.write(fh)
                os.replace(tmp, self.path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError:
            pass


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise TypeError(f"only plain values are stored, not {type(value).__name__}")


def load_dataclass(store: SettingsStore, group: str, cls: type[T]) -> T:
    """Read ``cls`` from ``group``; missing or unreadable fields keep the class defaults."""
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        raw = store.get(group, f.name)
        if raw is None:
            continue
        try:
            values[f.name] = _convert(raw, f.default)
        except (TypeError, ValueError):
            continue
    try:
        return cls(**values)
    except (TypeError, ValueError):  # a value the dataclass itself refuses
        return cls()


def save_dataclass(store: SettingsStore, group: str, obj: Any) -> None:
    """Write every field of the dataclass ``obj`` under ``group``."""
    for f in dataclasses.fields(obj):
        store.set(group, f.name, _plain(getattr(obj, f.name)))
    store.sync()


class AppSettings:
    """Typed access to the app's settings: codec params, view params, recent files."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.store = SettingsStore(path)

    def encode_params(self) -> EncodeParams:
        """The saved encode parameters."""
        return load_dataclass(self.store, "encode", EncodeParams)

    def set_encode_params(self, p: EncodeParams) -> None:
        """Save the encode parameters."""
        save_dataclass(self.store, "encode", p)

    def decode_params(self) -> DecodeParams:
        """The saved decode parameters."""
        return load_dataclass(self.store, "decode", DecodeParams)

    def set_decode_params(self, p: DecodeParams) -> None:
        """Save the decode parameters."""
        save_dataclass(self.store, "decode", p)

    def view_params(self) -> ViewParams:
        """The saved view parameters (invalid choices fall back to the defaults)."""
        v = load_dataclass(self.store, "view", ViewParams)
        d = ViewParams()
        return dataclasses.replace(
            v,
            spectrogram=v.spectrogram if v.spectrogram in SPECTROGRAM_KINDS else d.spectrogram,
            n_fft=v.n_fft if v.n_fft in WINDOW_SIZES else d.n_fft,
            colormap=v.colormap if v.colormap in COLORMAPS else d.colormap,
            max_hz=max(0.0, v.max_hz), channel=max(-1, v.channel))

    def set_view_params(self, p: ViewParams) -> None:
        """Save the view parameters."""
        save_dataclass(self.store, "view", p)

    def output_device(self) -> str:
        """The chosen audio output device's name ("" = the system default)."""
        raw = self.store.get("playback", "device") or ""
        return "" if raw.startswith("@") else raw

    def set_output_device(self, name: str) -> None:
        """Remember the audio output device."""
        self.store.set("playback", "device", name)
        self.store.sync()

    def recent_files(self) -> list[str]:
        """Recently opened files, newest first, existing ones only."""
        try:
            items = json.loads(self.store.get("files", "recent") or "[]")
        except ValueError:
            return []
        if not isinstance(items, list):
            return []
        return [p for p in items if isinstance(p, str) and p and os.path.exists(p)][:MAX_RECENT]

    def add_recent(self, path: str | os.PathLike) -> None:
        """Put ``path`` first in the recent files."""
        p = os.path.abspath(os.fspath(path))
        items = [p] + [q for q in self.recent_files() if q != p]
        self.store.set("files", "recent", json.dumps(items[:MAX_RECENT]))
        self.store.sync()

    def clear_recent(self) -> None:
        """Forget the recent files."""
        self.store.set("files", "recent", "[]")
        self.store.sync()
