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
CHANNELS = ((-1, "Mix"), (0, "L / 1"), (1, "R / 2"), (2, "3"), (3, "4"))
MAX_FREQS = ((0.0, "Nyquist"), (16000.0, "16 kHz"), (8000.0, "8 kHz"), (4000.0, "4 kHz"),
             (2000.0, "2 kHz"), (1000.0, "1 kHz"))


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
        self.channel = QComboBox()
        for ch, label in CHANNELS:
            self.channel.addItem(label, ch)
        self.channel.setToolTip("The channel the spectrograms show (the waveforms show every "
                                "channel as its own lane)")
        self.max_hz = QComboBox()
        for hz, label in MAX_FREQS:
            self.max_hz.addItem(label, hz)
        self.max_hz.setToolTip("Frequency zoom: the top of the spectrograms")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 0)
        for label, w in (("Spectrogram", self.kind), ("", self.log_freq), ("Window", self.window),
                         ("Channel", self.channel), ("Up to", self.max_hz),
                         ("Range", self.floor), ("to", self.ceiling), ("Diff", self.diff),
                         ("Colors", self.cmap)):
            if label:
                lay.addWidget(QLabel(label))
            lay.addWidget(w)
        self.params = params
        self.set_params(params)
        for w in (self.kind, self.window, self.cmap, self.channel, self.max_hz):
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
        self.channel.setCurrentIndex(max(0, self.channel.findData(p.channel)))
        i = self.max_hz.findData(p.max_hz)
        if i < 0:
            self.max_hz.addItem(f"{p.max_hz:g} Hz", p.max_hz)
            i = self.max_hz.count() - 1
        self.max_hz.setCurrentIndex(i)
        self.blockSignals(False)

    def _edited(self, *_: object) -> None:
        self.params = replace(
            self.params, spectrogram=self.kind.currentData(), log_freq=self.log_freq.isChecked(),
            n_fft=int(self.window.currentData()), db_floor=self.floor.value(),
            db_ceiling=self.ceiling.value(), diff_range=self.diff.value(),
            colormap=self.cmap.currentText(), channel=int(self.channel.currentData()),
            max_hz=float(self.max_hz.currentData()))
        self.log_freq.setEnabled(self.params.spectrogram == "linear")
        self.changed.emit(self.params)
