"""The status bar: cursor readout, job progress with cancel, audio device state."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QToolButton, QWidget


class StatusBar(QStatusBar):
    """Shows the readout on the left; progress, cancel and the audio state on the right."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.readout = QLabel("")
        self.readout.setMinimumWidth(420)
        self.stage = QLabel("")
        self.bar = QProgressBar()
        self.bar.setFixedWidth(180)
        self.bar.setTextVisible(False)
        self.cancel = QToolButton()
        self.cancel.setText("Cancel")
        self.audio = QLabel("")
        self.addWidget(self.readout, 1)
        for w in (self.stage, self.bar, self.cancel, self.audio):
            self.addPermanentWidget(w)
        self.set_busy(False)

    def progress(self, done: int, total: int, stage: str) -> None:
        """Show a job's progress (total 0: busy without a known length)."""
        self.set_busy(True)
        self.stage.setText(stage)
        self.bar.setRange(0, max(total, 0))
        self.bar.setValue(done if total else 0)

    def set_busy(self, busy: bool) -> None:
        """Show or hide the progress widgets."""
        for w in (self.stage, self.bar, self.cancel):
            w.setVisible(busy)
        if not busy:
            self.stage.setText("")

    def set_audio(self, text: str) -> None:
        """The audio device state (e.g. 'No audio device: playback is off')."""
        self.audio.setText(text)
        self.audio.setToolTip(text)
