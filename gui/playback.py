"""Playback: one sounddevice output stream whose callback reads from the selected A or B buffer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

StreamFactory = Callable[..., Any]
A, B = 0, 1  # original, reconstruction


def output_devices() -> list[str]:
    """Names of the audio output devices PortAudio sees (empty without PortAudio or devices)."""
    try:
        import sounddevice as sd

        return [d["name"] for d in sd.query_devices() if d.get("max_output_channels", 0) > 0]
    except (OSError, ImportError, ValueError, TypeError):
        return []


def default_stream_factory() -> tuple[StreamFactory | None, str]:
    """(sounddevice's OutputStream, "Audio out: NAME") if an output device exists, else
    (None, the reason)."""
    try:
        import sounddevice as sd
    except OSError:  # PortAudio missing
        return None, "No audio device: PortAudio is not installed, playback is off"
    try:
        name = sd.query_devices(kind="output")["name"]
    except (sd.PortAudioError, ValueError, KeyError, TypeError):
        return None, "No audio device: playback is off"
    return sd.OutputStream, f"Audio out: {name}"


def as_frames(audio: np.ndarray, channels: int, length: int) -> np.ndarray:
    """(channels_in, samples) -> C-contiguous float32 (length, channels), zero-padded."""
    a = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    if a.shape[0] < channels:
        a = np.repeat(a[:1], channels, axis=0) if a.shape[0] == 1 else np.pad(
            a, ((0, channels - a.shape[0]), (0, 0)))
    a = a[:channels, :length]
    out = np.zeros((length, channels), np.float32)
    out[:a.shape[1]] = a.T
    return out


class Player(QObject):
    """Play/pause/stop/seek over two equally long buffers; select() flips A/B without a gap.

    The stream callback (audio thread) copies from the selected buffer at the shared position, so
    switching changes the very next block. With a region set, playback stays inside it: it stops
    at its end, or starts over at its beginning when looping. ``position_changed`` is emitted
    about 30 times a second while playing.
    """

    state_changed = Signal(str)  # "playing", "paused", "stopped"
    position_changed = Signal(float)  # seconds
    audio_status = Signal(str)  # "Audio out: NAME", or why playback is off

    def __init__(self, stream_factory: StreamFactory | None = None,
                 parent: QObject | None = None,
                 devices: Callable[[], list[str]] | None = None) -> None:
        super().__init__(parent)
        self._factory = stream_factory
        self._list_devices = devices or output_devices
        self.device = ""  # output device name; "" = the system default
        self.probed = stream_factory is not None
        self.reason = ""
        self._region: tuple[int, int] | None = None
        self.loop = False
        self._lock = threading.Lock()
        self._bufs: list[np.ndarray | None] = [None, None]
        self._sel = A
        self._pos = 0
        self._ended = False
        self.sr = 0
        self.channels = 0
        self._stream: Any = None
        self.state = "stopped"
        self._timer = QTimer(self)
        self._timer.setInterval(33)
        self._timer.timeout.connect(self._tick)

    # ------------------------------------------------------------------ device
    def probe(self) -> bool:
        """Find the output device now (PortAudio start-up); False (and ``reason``) if none."""
        if self._factory is None:
            self._factory, self.reason = default_stream_factory()
            self.probed = True
            self.audio_status.emit(self.reason)
        self.probed = True
        return self._factory is not None

    def devices(self) -> list[str]:
        """The output devices to choose from."""
        return self._list_devices() if self.available else []

    def set_device(self, name: str) -> None:
        """Play through device ``name`` ("" = the system default) from the next play on."""
        was_playing = self.state == "playing"
        self._halt()
        self._close()
        self.device = name
        if was_playing:
            self.play()

    @property
    def available(self) -> bool:
        """Whether playback can work (after probe())."""
        return self._factory is not None

    # ------------------------------------------------------------------ sources
    def set_sources(self, a: np.ndarray | None, b: np.ndarray | None, sr: int) -> None:
        """Set the original (A) and reconstruction (B), (channels, samples) at rate ``sr``."""
        pos, was_playing = self.position, self.state == "playing"
        self._close()
        srcs = [x for x in (a, b) if x is not None]
        self.sr = int(sr)
        self.channels = min(2, max((np.atleast_2d(x).shape[0] for x in srcs), default=1))
        n = max((np.atleast_2d(x).shape[1] for x in srcs), default=0)
        with self._lock:
            self._bufs = [None if x is None else as_frames(x, self.channels, n) for x in (a, b)]
            if self._bufs[self._sel] is None:
                self._sel = B if self._bufs[B] is not None else A
            self._pos = min(int(pos * self.sr), n)
        self._set_state("stopped" if self._pos == 0 else "paused")
        self.position_changed.emit(self.position)
        if was_playing:
            self.play()

    @property
    def length(self) -> int:
        """Frames in the buffers."""
        return max((len(x) for x in self._bufs if x is not None), default=0)

    @property
    def selected(self) -> int:
        """A (0, original) or B (1, reconstruction)."""
        return self._sel

    def has(self, which: int) -> bool:
        """Whether buffer ``which`` is set."""
        return self._bufs[which] is not None

    def select(self, which: int) -> None:
        """Play from buffer ``which`` from the very next block on, at the same position."""
        if self._bufs[which] is not None:
            with self._lock:
                self._sel = which

    # ------------------------------------------------------------------ transport
    @property
    def position(self) -> float:
        """Current position in seconds."""
        return self._pos / self.sr if self.sr else 0.0

    def seek(self, seconds: float) -> None:
        """Move to ``seconds`` (clamped); playback continues from there."""
        with self._lock:
            self._pos = int(np.clip(round(seconds * self.sr), 0, self.length)) if self.sr else 0
            self._ended = False
        self.position_changed.emit(self.position)

    def play(self) -> bool:
        """Start (or resume) playing; False with ``reason`` set if it cannot."""
        if self.state == "playing" or self.length == 0:
            return self.state == "playing"
        if not self.probe():
            return False
        lo, hi = self._region or (0, self.length)
        if not lo <= self._pos < hi:
            self.seek(lo / self.sr)
        try:
            if self._stream is None:
                kw = {"device": self.device} if self.device else {}
                self._stream = self._factory(samplerate=self.sr, channels=self.channels,
                                             dtype="float32", callback=self._callback, **kw)
            self._ended = False
            self._stream.start()
        except Exception as exc:  # noqa: BLE001 - PortAudioError and friends: report, don't crash
            self.reason = f"Playback failed: {exc}"
            self.audio_status.emit(self.reason)
            self._close()
            return False
        self._set_state("playing")
        self._timer.start()
        return True

    def pause(self) -> None:
        """Stop the stream, keep the position."""
        if self.state == "playing":
            self._halt()
            self._set_state("paused")

    def toggle(self) -> None:
        """Play if paused or stopped, else pause."""
        if self.state == "playing":
            self.pause()
        else:
            self.play()

    def stop(self) -> None:
        """Stop and go back to the start."""
        self._halt()
        self.seek(0.0)
        self._set_state("stopped")

    def close(self) -> None:
        """Release the audio device."""
        self._halt()
        self._close()

    # ------------------------------------------------------------------ region
    @property
    def region(self) -> tuple[float, float] | None:
        """The selected passage in seconds, or None."""
        r = self._region
        return None if r is None or not self.sr else (r[0] / self.sr, r[1] / self.sr)

    def set_region(self, start: float, end: float) -> None:
        """Keep playback inside ``start``..``end`` seconds (an empty span clears the region)."""
        lo, hi = sorted((start, end))
        a = int(np.clip(round(lo * self.sr), 0, self.length))
        b = int(np.clip(round(hi * self.sr), 0, self.length))
        with self._lock:
            self._region = (a, b) if b > a else None

    def clear_region(self) -> None:
        """Play the whole file again."""
        with self._lock:
            self._region = None

    def set_loop(self, loop: bool) -> None:
        """Start the region over at its end instead of stopping."""
        with self._lock:
            self.loop = loop

    # ------------------------------------------------------------------ audio thread
    def _callback(self, out: np.ndarray, frames: int, time: Any, status: Any) -> None:
        with self._lock:
            buf = self._bufs[self._sel]
            lo, hi = self._region or (0, 0 if buf is None else len(buf))
            hi = 0 if buf is None else min(hi, len(buf))
            pos, done = self._pos, 0
            while buf is not None and done < frames:
                n = max(0, min(frames - done, hi - pos))
                out[done:done + n] = buf[pos:pos + n]
                done, pos = done + n, pos + n
                if done < frames and not (self.loop and self._region and hi > lo):
                    break
                if pos >= hi and self.loop and self._region:
                    pos = lo
            out[done:] = 0
            self._pos = pos
            if done < frames:
                self._ended = True

    # ------------------------------------------------------------------ internals
    def _tick(self) -> None:
        # the playhead shows what is heard: the read position minus the output latency
        latency = getattr(self._stream, "latency", 0.0)
        lag = float(latency) if isinstance(latency, (int, float)) else 0.0
        self.position_changed.emit(max(0.0, self.position - lag))
        if self._ended:
            self._halt()
            self._set_state("stopped")

    def _halt(self) -> None:
        self._timer.stop()
        if self._stream is not None:
            try:
                self._stream.stop()
            except Exception:  # noqa: BLE001 - a vanished device must not crash the app
                self._close()
        self.position_changed.emit(self.position)

    def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001
                pass
        if self.state == "playing":
            self._timer.stop()
            self._set_state("paused")

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)
