"""The view toolbar's controls: spectrogram kind, log-frequency, window size, dB range, colormap."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QWidget,
)

from ldmz.gui.settings import COLORMAPS, WINDOW_SIZES, ViewParams

KIND_LABELS = (("mel", "Log-mel"), ("linear", "Linear STFT"))


def _spin(lo: float, hi: float, step: float, suffix: str, tip: str) -> QDoubleSpinBox:
    s = QDoubleSpinBox()
    s.setRange(lo, hi)
    s.setSingleStep(step)
    s.setDecimals(0)
    s.setSuffix(suffix)
    s.setToolTip(tip)
    s.setKeyboardTracking(False)
    return s


class ViewControls(QWidget):
    """Edits a ViewParams; ``changed`` fires with the new value after each edit."""

    changed = Signal(object)

    def __init__(self, params: ViewParams, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = QComboBox()
        for key, label in KIND_LABELS:
            self.kind.addItem(label, key)
        self.kind.setToolTip("Spectrogram: log-mel bands or the linear STFT")
        self.log_freq = QCheckBox("Log freq")
        self.log_freq.setToolTip("Linear STFT on a logarithmic frequency axis")
        self.window = QComboBox()
        for n in WINDOW_SIZES:
            self.window.addItem(str(n), n)
        self.window.setToolTip("STFT window size in samples (frequency vs time resolution)")
        self.floor = _spin(-200, -1, 5, " dB", "Bottom of the colour scale")
        self.ceiling = _spin(-150, 50, 5, " dB", "Top of the colour scale")
        self.diff = _spin(1, 100, 2, " dB", "The difference image spans ± this")
        self.diff.setPrefix("± ")
        self.cmap = QComboBox()
        self.cmap.addItems(COLORMAPS)
        self.cmap.setToolTip("Colormap of the spectrograms")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 0)
        for label, w in (("Spectrogram", self.kind), ("", self.log_freq), ("Window", self.window),
                         ("Range", self.floor), ("to", self.ceiling), ("Diff", self.diff),
                         ("Colors", self.cmap)):
            if label:
                lay.addWidget(QLabel(label))
            lay.addWidget(w)
        self.params = params
        self.set_params(params)
        for w in (self.kind, self.window, self.cmap):
            w.currentIndexChanged.connect(self._edited)
        self.log_freq.toggled.connect(self._edited)
        for w in (self.floor, self.ceiling, self.diff):
            w.valueChanged.connect(self._edited)

    def set_params(self, p: ViewParams) -> None:
        """Show ``p`` without emitting ``changed``."""
        self.params = p
        self.blockSignals(True)
        self.kind.setCurrentIndex(max(0, self.kind.findData(p.spectrogram)))
        self.log_freq.setChecked(p.log_freq)
        self.log_freq.setEnabled(p.spectrogram == "linear")
        self.window.setCurrentIndex(max(0, self.window.findData(p.n_fft)))
        self.floor.setValue(p.db_floor)
        self.ceiling.setValue(p.db_ceiling)
        self.diff.setValue(p.diff_range)
        self.cmap.setCurrentText(p.colormap)
        self.blockSignals(False)

    def _edited(self, *_: object) -> None:
        self.params = replace(
            self.params, spectrogram=self.kind.currentData(), log_freq=self.log_freq.isChecked(),
            n_fft=int(self.window.currentData()), db_floor=self.floor.value(),
            db_ceiling=self.ceiling.value(), diff_range=self.diff.value(),
            colormap=self.cmap.currentText())
        self.log_freq.setEnabled(self.params.spectrogram == "linear")
        self.changed.emit(self.params)
