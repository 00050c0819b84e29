"""The comparison view: original and reconstruction side by side on one time axis, plus a diff."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import QSizePolicy

from ldmz.gui import plots
from ldmz.gui.analysis import Spectrogram, channel_name, hz_to_y, y_to_hz
from ldmz.gui.jobs import Analysis, Side

NAMES = ("Original", "Reconstruction")


class Pane:
    """The plots of one side: overview, zoomable waveform (one lane per channel), spectrogram."""

    def __init__(self, view: ComparisonView, col: int) -> None:
        lay = view.ci
        self.col = col
        self.title = lay.addLabel(NAMES[col], row=0, col=col, size="10pt")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.overview = plots.overview_plot()
        self.wave = plots.detail_plot()
        self.spec = plots.detail_plot(freq=True)
        plots.time_label(self.spec)
        for row, p in ((1, self.overview), (2, self.wave), (3, self.spec)):
            lay.addItem(p, row=row, col=col)
        self.env_curves: list[pg.PlotDataItem] = []
        self.wave_curves: list[pg.PlotDataItem] = []
        self._lanes(1)
        self.image = pg.ImageItem()
        self.spec.addItem(self.image)
        self.region = pg.LinearRegionItem(movable=True, brush=pg.mkBrush(255, 255, 255, 28))
        self.region.setZValue(50)
        self.overview.addItem(self.region, ignoreBounds=True)
        self.side: Side | None = None
        self.heads = [plots.playhead(p) for p in (self.overview, self.wave, self.spec)]

    @property
    def wave_curve(self) -> pg.PlotDataItem:
        """The first lane's curve."""
        return self.wave_curves[0]

    def _lanes(self, n: int) -> None:
        """Have exactly ``n`` lane curves in the overview and the waveform plot."""
        while len(self.wave_curves) < n:
            self.env_curves.append(self.overview.plot(pen=plots.WAVE_PENS[self.col],
                                                      connect="pairs"))
            c = self.wave.plot(pen=plots.WAVE_PENS[self.col])
            c.setDownsampling(auto=True, method="peak")
            c.setClipToView(True)
            self.wave_curves.append(c)
        while len(self.wave_curves) > max(n, 1):
            self.overview.removeItem(self.env_curves.pop())
            self.wave.removeItem(self.wave_curves.pop())
        for p in (self.overview, self.wave):
            p.setYRange(-n, n, padding=0.05)
        names = [channel_name(i, n) for i in range(n)]
        self.wave.getAxis("left").set_lanes(names)
        self.wave.setLabel("left", "Amplitude" if n == 1 else "Channels (±1 each)")

    def lane_at(self, y: float) -> int:
        """The lane under display height ``y``."""
        n = len(self.wave_curves)
        return int(np.clip(np.floor((n - y) / 2), 0, n - 1))

    def show(self, side: Side | None, title: str, max_hz: float = 0.0) -> None:
        """Draw ``side`` (or clear the pane)."""
        self.side = side
        self.title.setText(title)
        if side is None:
            for c in self.env_curves + self.wave_curves:
                c.clear()
            plots.show_image(self.image, None)
            return
        n = side.lanes.shape[0]
        self._lanes(n)
        t = plots.wave_time(side.samples, side.sr)
        for i, (env, curve, x) in enumerate(zip(self.env_curves, self.wave_curves, side.lanes,
                                                strict=True)):
            centre = float(n - 1 - 2 * i)
            et, ev = side.envelopes[i]
            env.setData(et, ev + centre)
            curve.setData(t, x + centre if centre else x)
        plots.show_image(self.image, side.spec)
        self.spec.getAxis("left").set_scale(side.spec.scale)
        self.spec.setYRange(side.spec.y0, top_y(side.spec, max_hz), padding=0)
        self.overview.setXRange(0, side.samples / side.sr, padding=0)


def top_y(spec: Spectrogram, max_hz: float) -> float:
    """The top of the frequency axis: ``max_hz`` (0: Nyquist) in the image's coordinate."""
    if max_hz <= 0:
        return spec.y1
    return float(np.clip(hz_to_y(max_hz, spec.scale), spec.y0 + 1e-6, spec.y1))


class ComparisonView(pg.GraphicsLayoutWidget):
    """Two panes and a difference spectrogram sharing one time axis; draws only.

    Emits ``seek_requested(seconds)`` on a click, ``readout(text)`` as the mouse moves and
    ``selection_changed(start, end)`` (seconds; equal when cleared) when Shift+drag or the
    selection's edges change the selected passage.
    """

    seek_requested = Signal(float)
    readout = Signal(str)
    selection_changed = Signal(float, float)

    def __init__(self, parent: object = None) -> None:
        super().__init__(parent)
        self.setBackground("#15171c")
        self.panes = [Pane(self, 0), Pane(self, 1)]
        self.panes[0].title.setText("Original: open a file (Ctrl+O) or drop one here")
        self.panes[1].title.setText("Reconstruction: Compress (Ctrl+R)")
        lay = self.ci
        self.diff_title = lay.addLabel("Difference (reconstruction − original, dB)",
                                       row=4, col=0, colspan=2, size="10pt")
        self.diff = plots.detail_plot(freq=True)
        plots.time_label(self.diff)
        lay.addItem(self.diff, row=5, col=0, colspan=2)
        self.diff_image = pg.ImageItem()
        self.diff.addItem(self.diff_image)
        self.diff_spec: Spectrogram | None = None
        self.heads = [h for p in self.panes for h in p.heads] + [plots.playhead(self.diff)]
        self.spec_bar = pg.ColorBarItem(values=(-100, 0), colorMap="inferno", interactive=False,
                                        colorMapMenu=False, width=12, label="dB")
        self.spec_bar.setImageItem([p.image for p in self.panes])
        lay.addItem(self.spec_bar, row=3, col=2)
        self.diff_bar = pg.ColorBarItem(values=(-24, 24), colorMap=plots.DIFF_COLORMAP,
                                        interactive=False, colorMapMenu=False, width=12,
                                        label="dB")
        self.diff_bar.setImageItem(self.diff_image)
        lay.addItem(self.diff_bar, row=5, col=2)
        for r, h in ((1, 60), (2, 150), (3, 260), (5, 170)):
            lay.layout.setRowPreferredHeight(r, h)
            lay.layout.setRowStretchFactor(r, h)
        for c in (0, 1):  # equal panes, whatever their titles say
            lay.layout.setColumnPreferredWidth(c, 400)
            lay.layout.setColumnStretchFactor(c, 1)
        self.duration = 0.0
        self._linking = False
        for p in self.detail_plots():
            p.vb.sigXRangeChanged.connect(self._link_x)
        self.panes[0].wave.setXRange(0, 1, padding=0)
        for p in (self.panes[0].spec, self.panes[1].spec, self.diff):
            p.setYRange(0, 8000, padding=0)
        for p in self.panes:
            p.region.sigRegionChanged.connect(self._region_moved)
        self.max_hz = 0.0
        self.selections = [plots.selection(p) for p in self.detail_plots()]
        for sel in self.selections:
            sel.sigRegionChangeFinished.connect(self._selection_dragged)
        for p in self.detail_plots():
            p.vb.on_select = self._shift_drag
        self.scene().sigMouseMoved.connect(self._mouse_moved)
        self.scene().sigMouseClicked.connect(self._mouse_clicked)

    # ------------------------------------------------------------------ data
    def show_analysis(self, a: Analysis, titles: tuple[str, str]) -> None:
        """Draw both sides and the difference; keeps the zoom unless the length changed."""
        for pane, side, title in zip(self.panes, a.sides, titles, strict=True):
            pane.show(side, title, self.max_hz)
        self.diff_spec = a.diff
        plots.show_image(self.diff_image, a.diff)
        if a.diff is not None:
            self.diff.getAxis("left").set_scale(a.diff.scale)
            self.diff.setYRange(a.diff.y0, top_y(a.diff, self.max_hz), padding=0)
        dur = max((s.samples / s.sr for s in a.sides if s is not None), default=0.0)
        changed = abs(dur - self.duration) > 1e-6
        self.duration = dur
        for p in self.detail_plots():
            p.setLimits(xMin=0, xMax=max(dur, 1e-3))
        if changed:
            self.fit()

    def detail_plots(self) -> list[pg.PlotItem]:
        """The five plots on the shared time axis."""
        return [self.panes[0].wave, self.panes[1].wave, self.panes[0].spec,
                self.panes[1].spec, self.diff]

    def set_levels(self, floor: float, ceiling: float, diff_range: float) -> None:
        """dB ranges of the spectrograms and of the difference."""
        self.spec_bar.setLevels((floor, max(ceiling, floor + 1)))
        self.diff_bar.setLevels((-abs(diff_range), abs(diff_range)))

    def set_max_hz(self, hz: float) -> None:
        """Frequency zoom: show the spectrograms from their bottom up to ``hz`` (0: Nyquist)."""
        self.max_hz = hz
        specs = [(p.spec, p.side.spec if p.side else None) for p in self.panes]
        for plot, spec in specs + [(self.diff, self.diff_spec)]:
            if spec is not None:
                plot.setYRange(spec.y0, top_y(spec, hz), padding=0)

    # ------------------------------------------------------------------ selection
    def selection(self) -> tuple[float, float] | None:
        """The selected passage in seconds, or None."""
        sel = self.selections[0]
        if not sel.isVisible():
            return None
        lo, hi = sel.getRegion()
        return float(lo), float(hi)

    def set_selection(self, start: float, end: float) -> None:
        """Select ``start``..``end`` seconds (clipped to the file); an empty span clears it."""
        lo, hi = sorted((float(np.clip(start, 0, self.duration)),
                         float(np.clip(end, 0, self.duration))))
        for sel in self.selections:
            sel.blockSignals(True)
            sel.setRegion((lo, hi))
            sel.setVisible(hi > lo)
            sel.blockSignals(False)
        self.selection_changed.emit(lo, hi if hi > lo else lo)

    def clear_selection(self) -> None:
        """No selection."""
        self.set_selection(0.0, 0.0)

    def _shift_drag(self, t0: float, t1: float, finished: bool) -> None:
        self.set_selection(t0, t1)

    def _selection_dragged(self, region: pg.LinearRegionItem) -> None:
        lo, hi = region.getRegion()
        self.set_selection(lo, hi)

    def set_colormap(self, name: str) -> None:
        """Colormap of the spectrograms."""
        self.spec_bar.setColorMap(pg.colormap.get(name))

    # ------------------------------------------------------------------ time axis
    def set_playhead(self, seconds: float) -> None:
        """Move the playhead in every plot."""
        for h in self.heads:
            h.setValue(seconds)

    def playhead(self) -> float:
        """The playhead position in seconds."""
        return float(self.heads[0].value())

    def x_range(self) -> tuple[float, float]:
        """The visible time range."""
        lo, hi = self.panes[0].wave.viewRange()[0]
        return float(lo), float(hi)

    def fit(self) -> None:
        """Show the whole duration."""
        self.panes[0].wave.setXRange(0, max(self.duration, 1e-3), padding=0)

    def zoom(self, factor: float) -> None:
        """Zoom the time axis by ``factor`` (> 1 zooms in) around the playhead when visible."""
        lo, hi = self.x_range()
        c = self.playhead() if lo <= self.playhead() <= hi else (lo + hi) / 2
        half = (hi - lo) / factor / 2
        self.panes[0].wave.setXRange(c - half, c + half, padding=0)

    def _link_x(self, vb: pg.ViewBox, rng: tuple[float, float]) -> None:
        """One time axis: give every plot the same range (pyqtgraph's setXLink would align
        plots by screen position instead, which shifts the full-width difference plot)."""
        if self._linking:
            return
        self._linking = True
        try:
            for p in self.detail_plots():
                if p.vb is not vb:
                    p.setXRange(*rng, padding=0)
            self._sync_regions(*rng)
        finally:
            self._linking = False

    def _sync_regions(self, lo: float, hi: float) -> None:
        for p in self.panes:
            p.region.blockSignals(True)
            p.region.setRegion((lo, hi))
            p.region.blockSignals(False)

    def _region_moved(self, region: pg.LinearRegionItem) -> None:
        lo, hi = region.getRegion()
        if hi - lo > 1e-4:
            self.panes[0].wave.setXRange(lo, hi, padding=0)

    # ------------------------------------------------------------------ mouse
    def _plot_at(self, pos: QPointF) -> tuple[str, pg.PlotItem, int] | None:
        for i, pane in enumerate(self.panes):
            for kind, p in (("overview", pane.overview), ("wave", pane.wave),
                            ("spec", pane.spec)):
                if p.vb.sceneBoundingRect().contains(pos):
                    return kind, p, i
        if self.diff.vb.sceneBoundingRect().contains(pos):
            return "diff", self.diff, -1
        return None

    def _mouse_clicked(self, ev: object) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or ev.double():
            return
        hit = self._plot_at(ev.scenePos())
        if hit is not None and self.duration > 0:
            t = hit[1].vb.mapSceneToView(ev.scenePos()).x()
            self.seek_requested.emit(float(np.clip(t, 0.0, self.duration)))

    def _mouse_moved(self, pos: QPointF) -> None:
        hit = self._plot_at(pos)
        self.readout.emit("" if hit is None else self.describe(hit, pos))

    def describe(self, hit: tuple[str, pg.PlotItem, int], pos: QPointF) -> str:
        """The readout text for the point ``pos`` of a plot."""
        kind, plot, i = hit
        pt = plot.vb.mapSceneToView(pos)
        t, y = pt.x(), pt.y()
        name = "Difference" if i < 0 else NAMES[i]
        text = f"{name}   t {t:.3f} s"
        if kind in ("spec", "diff"):
            spec = self.diff_spec if i < 0 else (self.panes[i].side.spec
                                                 if self.panes[i].side else None)
            if spec is not None:
                side = self.panes[i].side if i >= 0 else None
                if side is not None and side.lanes.shape[0] > 1:
                    text += f"   {side.channel}"
                text += f"   f {plots.format_hz(float(y_to_hz(y, spec.scale)))}Hz"
                level = spec.value_at(t, y)
                if level is not None:
                    text += f"   {level:+.1f} dB" if i < 0 else f"   {level:.1f} dB"
        elif self.panes[i].side is not None:
            side = self.panes[i].side
            k = int(round(t * side.sr))
            lane = self.panes[i].lane_at(y)
            if 0 <= k < side.samples:
                v = float(side.lanes[lane, k])
                n = side.lanes.shape[0]
                text += f"   {channel_name(lane, n)}" if n > 1 else ""
                text += f"   amplitude {v:+.4f} ({20 * np.log10(max(abs(v), 1e-10)):.1f} dBFS)"
        return text
