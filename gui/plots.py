"""pyqtgraph building blocks: a frequency axis (linear, log, mel), plot and image factories."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt

from ldmz.gui.analysis import Spectrogram, hz_to_y, y_to_hz

PLAYHEAD_PEN = pg.mkPen("#ff3b30", width=2)
SELECTION_BRUSH = pg.mkBrush(90, 170, 255, 45)
WAVE_PENS = (pg.mkPen("#4fa3ff", width=1), pg.mkPen("#ffb347", width=1))
NICE_HZ = (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
NICE_MEL_HZ = (0, 500, 1000, 2000, 4000, 8000, 16000)
DIFF_COLORMAP = "CET-D1A"


def format_hz(hz: float) -> str:
    """440 -> '440', 2500 -> '2.5k'."""
    if abs(hz) >= 1000:
        return f"{hz / 1000:.3g}k"
    return f"{hz:.0f}"


class FreqAxis(pg.AxisItem):
    """A left axis whose coordinate is Hz, log10(Hz) or mel, labelled in Hz."""

    def __init__(self) -> None:
        super().__init__("left")
        self.freq_scale = "linear"

    def set_scale(self, scale: str) -> None:
        """Switch the mapping ("linear", "log" or "mel") and redraw."""
        self.freq_scale = scale
        self.picture = None
        self.update()

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:
        """Ticks at round frequencies for log and mel, pyqtgraph's own for linear."""
        if self.freq_scale == "linear":
            return super().tickValues(minVal, maxVal, size)
        nice = NICE_HZ if self.freq_scale == "log" else NICE_MEL_HZ
        ys = [float(hz_to_y(f, self.freq_scale)) for f in nice]
        return [(1.0, [y for y in ys if minVal <= y <= maxVal])]

    def tickStrings(self, values: list, scale: float, spacing: float) -> list[str]:
        """Labels in Hz."""
        return [format_hz(float(y_to_hz(v, self.freq_scale))) for v in values]


class LaneAxis(pg.AxisItem):
    """A left axis for waveform lanes: amplitude ticks for one lane, channel names for several."""

    def __init__(self) -> None:
        super().__init__("left")
        self.names: list[str] = []

    def set_lanes(self, names: list[str]) -> None:
        """One name per lane, top to bottom (lane i is centred at y = len - 1 - 2 i)."""
        self.names = names
        self.setTicks(None if len(names) <= 1 else
                      [[(float(len(names) - 1 - 2 * i), n) for i, n in enumerate(names)], []])


class SelectViewBox(pg.ViewBox):
    """A ViewBox where Shift+drag selects a time span (``on_select(t0, t1, finished)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.on_select = None

    def mouseDragEvent(self, ev: object, axis: int | None = None) -> None:
        """Shift+left drag selects; anything else pans and zooms as usual."""
        if (self.on_select is not None and ev.button() == Qt.MouseButton.LeftButton
                and ev.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            ev.accept()
            t0 = self.mapSceneToView(ev.buttonDownScenePos()).x()
            t1 = self.mapSceneToView(ev.scenePos()).x()
            self.on_select(float(t0), float(t1), bool(ev.isFinish()))
            return
        super().mouseDragEvent(ev, axis)


def detail_plot(freq: bool = False) -> pg.PlotItem:
    """A time-zoomable plot (the x mouse only), with a frequency or an amplitude/lane axis."""
    left = FreqAxis() if freq else LaneAxis()
    p = pg.PlotItem(viewBox=SelectViewBox(), axisItems={"left": left})
    p.setMouseEnabled(x=True, y=False)
    p.hideButtons()
    left.setWidth(64)
    if freq:
        left.enableAutoSIPrefix(False)  # the ticks are already labelled in Hz, 2.5k, ...
        p.setLabel("left", "Frequency (Hz)")
    else:
        p.setLabel("left", "Amplitude")
    p.setMenuEnabled(True)
    return p


def time_label(plot: pg.PlotItem) -> None:
    """Title the time axis (seconds; pyqtgraph shows ms when zoomed in)."""
    plot.setLabel("bottom", "Time", units="s")


def selection(plot: pg.PlotItem) -> pg.LinearRegionItem:
    """A hidden, resizable time selection in ``plot``."""
    region = pg.LinearRegionItem(movable=True, brush=SELECTION_BRUSH)
    region.setZValue(60)
    region.hide()
    plot.addItem(region, ignoreBounds=True)
    return region


def overview_plot() -> pg.PlotItem:
    """A small fixed whole-file plot."""
    p = pg.PlotItem()
    p.setMouseEnabled(x=False, y=False)
    p.hideButtons()
    p.setMenuEnabled(False)
    p.hideAxis("bottom")
    p.getAxis("left").setWidth(64)
    p.getAxis("left").setTicks([[]])
    p.setYRange(-1, 1, padding=0.05)
    return p


def playhead(plot: pg.PlotItem) -> pg.InfiniteLine:
    """A red vertical line in ``plot``."""
    line = pg.InfiniteLine(pos=0.0, angle=90, movable=False, pen=PLAYHEAD_PEN)
    line.setZValue(100)
    plot.addItem(line, ignoreBounds=True)
    return line


def show_image(img: pg.ImageItem, spec: Spectrogram | None) -> None:
    """Put ``spec`` in ``img`` (rows along y) with its time/frequency rectangle, or clear it."""
    if spec is None or spec.frames == 0:
        img.clear()
        return
    img.setImage(spec.db, autoLevels=False)
    img.setRect(QRectF(spec.t0 - spec.dt / 2, spec.y0, spec.frames * spec.dt,
                       spec.y1 - spec.y0))


def wave_time(n: int, sr: int) -> np.ndarray:
    """Sample times in seconds (float32 to halve memory for long files)."""
    return np.arange(n, dtype=np.float32) / np.float32(sr)
