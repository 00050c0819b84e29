"""The comparison view: original and reconstruction side by side on one time axis, plus a diff."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import QSizePolicy

from ldmz.gui import plots
from ldmz.gui.analysis import Spectrogram, y_to_hz
from ldmz.gui.jobs import Analysis, Side

NAMES = ("Original", "Reconstruction")


class Pane:
    """The plots of one side: overview, zoomable waveform, spectrogram."""

    def __init__(self, view: ComparisonView, col: int) -> None:
        lay = view.ci
        self.title = lay.addLabel(NAMES[col], row=0, col=col, size="10pt")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.overview = plots.overview_plot()
        self.wave = plots.detail_plot()
        self.spec = plots.detail_plot(freq=True)
        for row, p in ((1, self.overview), (2, self.wave), (3, self.spec)):
            lay.addItem(p, row=row, col=col)
        self.env_curve = self.overview.plot(pen=plots.WAVE_PENS[col], connect="pairs")
        self.wave_curve = self.wave.plot(pen=plots.WAVE_PENS[col])
        self.wave_curve.setDownsampling(auto=True, method="peak")
        self.wave_curve.setClipToView(True)
        self.wave.setYRange(-1, 1, padding=0.05)
        self.image = pg.ImageItem()
        self.spec.addItem(self.image)
        self.region = pg.LinearRegionItem(movable=True, brush=pg.mkBrush(255, 255, 255, 28))
        self.region.setZValue(50)
        self.overview.addItem(self.region, ignoreBounds=True)
        self.side: Side | None = None
        self.heads = [plots.playhead(p) for p in (self.overview, self.wave, self.spec)]

    def show(self, side: Side | None, title: str) -> None:
        """Draw ``side`` (or clear the pane)."""
        self.side = side
        self.title.setText(title)
        if side is None:
            self.env_curve.clear()
            self.wave_curve.clear()
            plots.show_image(self.image, None)
            return
        self.env_curve.setData(*side.envelope)
        self.wave_curve.setData(plots.wave_time(len(side.wave), side.sr), side.wave)
        plots.show_image(self.image, side.spec)
        self.spec.getAxis("left").set_scale(side.spec.scale)
        self.spec.setYRange(side.spec.y0, side.spec.y1, padding=0)
        duration = len(side.wave) / side.sr
        self.overview.setXRange(0, duration, padding=0)


class ComparisonView(pg.GraphicsLayoutWidget):
    """Two panes and a difference spectrogram sharing one time axis; draws only.

    Emits ``seek_requested(seconds)`` on a click and ``readout(text)`` as the mouse moves.
    """

    seek_requested = Signal(float)
    readout = Signal(str)

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
        self.scene().sigMouseMoved.connect(self._mouse_moved)
        self.scene().sigMouseClicked.connect(self._mouse_clicked)

    # ------------------------------------------------------------------ data
    def show_analysis(self, a: Analysis, titles: tuple[str, str]) -> None:
        """Draw both sides and the difference; keeps the zoom unless the length changed."""
        for pane, side, title in zip(self.panes, a.sides, titles, strict=True):
            pane.show(side, title)
        self.diff_spec = a.diff
        plots.show_image(self.diff_image, a.diff)
        if a.diff is not None:
            self.diff.getAxis("left").set_scale(a.diff.scale)
            self.diff.setYRange(a.diff.y0, a.diff.y1, padding=0)
        dur = max((len(s.wave) / s.sr for s in a.sides if s is not None), default=0.0)
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
                text += f"   f {plots.format_hz(float(y_to_hz(y, spec.scale)))}Hz"
                level = spec.value_at(t, y)
                if level is not None:
                    text += f"   {level:+.1f} dB" if i < 0 else f"   {level:.1f} dB"
        elif self.panes[i].side is not None:
            side = self.panes[i].side
            k = int(round(t * side.sr))
            if 0 <= k < len(side.wave):
                v = float(side.wave[k])
                text += f"   amplitude {v:+.4f} ({20 * np.log10(max(abs(v), 1e-10)):.1f} dBFS)"
        return text
