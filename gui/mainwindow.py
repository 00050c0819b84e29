"""The main window: holds the document state and wires panels, views, player and workers."""

from __future__ import annotations

import os
from dataclasses import replace
from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMessageBox, QStyle, QWidget

from ldmz.formats import LdmzFile
from ldmz.gui import actions, files, jobs
from ldmz.gui.controls import ViewControls
from ldmz.gui.panels import CodecPanel, InfoPanel, MetricsPanel, TagsPanel
from ldmz.gui.playback import Player
from ldmz.gui.settings import AppSettings, ViewParams
from ldmz.gui.statusbar import StatusBar
from ldmz.gui.transport import TransportMixin
from ldmz.gui.views import ComparisonView
from ldmz.gui.worker import TaskPool
from ldmz.gui.writing import WritingMixin


class MainWindow(TransportMixin, WritingMixin, QMainWindow):
    """ldmz's window: original vs reconstruction, with playback, metrics and the codec settings."""

    def __init__(self, settings: AppSettings | None = None, player: Player | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from ldmz.codec.models import available_models

        self.settings = settings or AppSettings()
        self.enc, self.dec = self.settings.encode_params(), self.settings.decode_params()
        self.view_params = self.settings.view_params()
        self.orig: jobs.Audio | None = None
        self.coded: jobs.Coded | None = None
        self.ldmz: LdmzFile | None = None
        self.ldmz_size = 0
        self.doc_path = ""
        self.tasks = TaskPool(self)
        self.player = player or Player(parent=self)
        self.player.device = self.settings.output_device()
        self.views = ComparisonView(self)
        self.setCentralWidget(self.views)
        self.view_controls = ViewControls(self.view_params)
        self.info, self.tags = InfoPanel(), TagsPanel()
        self.codec = CodecPanel(available_models())
        self.codec.set_params(self.enc, self.dec)
        self.metrics = MetricsPanel()
        docks = {}
        for title, w in (("File", self.info), ("Codec", self.codec), ("Tags", self.tags),
                         ("Metrics", self.metrics)):
            docks[title] = dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{title.lower()}")
            dock.setWidget(w)
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.tabifyDockWidget(docks["Codec"], docks["Tags"])
        docks["Codec"].raise_()
        self.status = StatusBar(self)
        self.setStatusBar(self.status)
        self.actions_ = actions.build(self)
        for dock in self.findChildren(QDockWidget):
            self.view_menu.addAction(dock.toggleViewAction())
        self._analysis_timer = QTimer(self, singleShot=True, interval=150)
        self._analysis_timer.timeout.connect(self.refresh_analysis)
        self._connect()
        self.setAcceptDrops(True)
        self.resize(1440, 900)
        self.resizeDocks(list(docks.values()), [380] * len(docks), Qt.Orientation.Horizontal)
        self.resizeDocks([docks["File"], docks["Codec"], docks["Metrics"]], [250, 250, 360],
                         Qt.Orientation.Vertical)
        self.apply_view(self.view_params, analyse=False)
        self.update_state()

    def _connect(self) -> None:
        self.codec.changed.connect(self._codec_edited)
        self.codec.compress_button.clicked.connect(self.compress)
        self.codec.decode_button.clicked.connect(self.decode_again)
        self.tags.edited.connect(lambda: self.set_modified(self.ldmz is not None))
        self.view_controls.changed.connect(self.apply_view)
        self.views.seek_requested.connect(self.seek)
        self.views.selection_changed.connect(self._selected)
        self.views.readout.connect(self.status.readout.setText)
        self.player.position_changed.connect(self._position)
        self.player.state_changed.connect(lambda _s: self.update_state())
        self.player.audio_status.connect(self.status.set_audio)
        self.player.audio_status.connect(lambda _t: self.update_state())
        self.status.cancel.clicked.connect(self.cancel)
        self.tasks.busy_changed.connect(lambda _b: self.update_state())

    # ------------------------------------------------------------------ opening
    def open_dialog(self) -> None:
        """Ask for a file and open it."""
        path = files.ask_open(self, "Open audio or .ldmz", os.path.dirname(self.doc_path))
        if path:
            self.open_path(path)

    def open_original_dialog(self) -> None:
        """Ask for the original audio of the open .ldmz."""
        path = files.ask_open(self, "Open the original audio", os.path.dirname(self.doc_path))
        if path:
            self.open_path(path, as_original=True)

    def open_path(self, path: str | os.PathLike, as_original: bool = False) -> bool:
        """Open audio (read in the background) or a .ldmz (header now, decode in the background)."""
        path = os.fspath(path)
        as_original = as_original and self.ldmz is not None
        if not as_original and not self._confirm_discard():
            return False
        if path.lower().endswith(".ldmz") and not as_original:
            # reading and verifying every checksum happens in the worker, never in this thread
            self.tasks.start("codec", partial(jobs.open_ldmz, path), self._ldmz_opened,
                             self._failed, self.status.progress)
        else:
            done = self._original_loaded if as_original else self._audio_loaded
            self.tasks.start("codec", partial(jobs.read, path), done, self._failed,
                             self.status.progress)
        return True

    def _ldmz_opened(self, o: jobs.Opened) -> None:
        self._reset(o.path)
        self.ldmz, self.ldmz_size = o.ldmz, o.size
        self.info.show_ldmz(o.ldmz, o.size, Path(o.path).name)
        self.tags.set_tags(o.ldmz.header.tags)
        self.metrics.show_metrics(o.ldmz, o.size, None)
        self._sources_changed()
        self.settings.add_recent(o.path)
        self.decode_again()

    def _reset(self, path: str) -> None:
        self.tasks.cancel("codec")
        self.player.stop()
        self.views.clear_selection()
        self.orig = self.coded = self.ldmz = None
        self.doc_path = path
        self.set_modified(False)
        self.tags.set_tags({})
        self.metrics.show_metrics(None, 0, None)

    def _audio_loaded(self, audio: jobs.Audio) -> None:
        self._reset(audio.path)
        self.settings.add_recent(audio.path)
        self.orig = audio
        self.info.show_audio(audio, Path(audio.path).name)
        self.tags.set_tags({"title": Path(audio.path).stem})
        self._sources_changed()

    def _original_loaded(self, audio: jobs.Audio) -> None:
        self.orig = audio
        coded = self.coded
        if coded is not None and coded.audio.sr == audio.sr:  # measure only, no new decode
            def measured(report: object) -> None:
                coded.report = report
                self.metrics.show_metrics(coded.ldmz, coded.size, report)
            self.tasks.start("codec", partial(jobs.measure, audio, coded.audio), measured,
                             self._failed, self.status.progress)
        elif self.ldmz is not None:
            self.decode_again()
        self._sources_changed()

    # ------------------------------------------------------------------ codec work
    def compress(self) -> None:
        """Encode the original with the codec settings, decode it and measure (background)."""
        if self.orig is None:
            self.error("Open an audio file first: there is nothing to compress.")
            return
        job = partial(jobs.compress, self.orig, self.enc, self.dec, self.tags.tags())
        self.tasks.start("codec", job, self._compressed, self._failed, self.status.progress)

    def decode_again(self) -> None:
        """Decode the open .ldmz with the current decode settings (background)."""
        if self.ldmz is None:
            self.error("Open or create a .ldmz file first: there is nothing to decode.")
            return
        dec = self.dec
        if not dec.model and os.path.isdir(self.enc.model) and \
                str(Path(self.enc.model).resolve()) == self.ldmz.header.model.id:
            dec = replace(dec, model=self.enc.model)  # the folder picked here (hash checked)
        job = partial(jobs.decode_file, self.ldmz, self.ldmz_size, dec, self.orig)
        self.tasks.start("codec", job, self._decoded, self._failed, self.status.progress)

    def cancel(self) -> None:
        """Cancel the running codec job."""
        if self.tasks.busy("codec"):
            self.tasks.cancel("codec")
            self.status.showMessage("Cancelled", 3000)

    def _compressed(self, coded: jobs.Coded) -> None:
        self.ldmz, self.ldmz_size = coded.ldmz, coded.size
        self.info.show_ldmz(coded.ldmz, coded.size, "(not saved yet)")
        self._decoded(coded)
        self.set_modified(True)

    def _decoded(self, coded: jobs.Coded) -> None:
        self.coded = coded
        self.info.show_reconstruction(coded.vocoder)
        self.metrics.show_metrics(coded.ldmz, coded.size, coded.report)
        self._sources_changed()

    def _failed(self, message: str) -> None:
        self.error(message)

    def _sources_changed(self) -> None:
        rec = self.coded.audio if self.coded else None
        ref = self.orig or rec
        same = rec is None or self.orig is None or rec.sr == self.orig.sr
        self.player.set_sources(self.orig.data if self.orig else None,
                                rec.data if rec is not None and same else None,
                                ref.sr if ref else 0)
        self.refresh_analysis()
        self.update_state()

    # ------------------------------------------------------------------ views
    def apply_view(self, p: ViewParams, analyse: bool = True) -> None:
        """Use new view parameters: redraw levels now, re-analyse if the image changes."""
        old, self.view_params = self.view_params, p
        self.settings.set_view_params(p)
        self.views.set_levels(p.db_floor, p.db_ceiling, p.diff_range)
        self.views.set_colormap(p.colormap)
        self.views.set_max_hz(p.max_hz)
        keys = ("spectrogram", "log_freq", "n_fft", "db_floor", "channel")
        if analyse and any(getattr(old, k) != getattr(p, k) for k in keys):
            self._analysis_timer.start()

    def refresh_analysis(self) -> None:
        """Recompute the envelopes and spectrograms in the background."""
        audios = [self.orig, self.coded.audio if self.coded else None]
        job = partial(jobs.analyse, audios, self.view_params)
        self.tasks.start("analysis", job, self._analysed, self._failed)

    def _analysed(self, a: jobs.Analysis) -> None:
        if self.coded:
            rec = (f"Reconstruction · {Path(self.coded.ldmz.header.model.id).name} · "
                   f"{self.coded.vocoder or '?'} vocoder")
        else:
            rec = "Reconstruction: " + ("decoding…" if self.ldmz else "Compress (Ctrl+R)")
        if self.orig:
            orig = f"Original · {Path(self.orig.path).name}"
        else:
            orig = "Original: " + ("Open Original for Comparison (Ctrl+Shift+O)" if self.ldmz
                                   else "open a file (Ctrl+O) or drop one here")
        self.views.show_analysis(a, (orig, rec))
        self.views.set_playhead(self.player.position)

    def _codec_edited(self) -> None:
        self.enc, self.dec = self.codec.params(self.enc, self.dec)
        self.settings.set_encode_params(self.enc)
        self.settings.set_decode_params(self.dec)

    def set_modified(self, modified: bool) -> None:
        """Mark unsaved work (the * in the title)."""
        self.setWindowModified(modified)
        self.update_state()

    def update_state(self) -> None:
        """Enable actions for the current state; refresh the title and the status labels."""
        name = Path(self.doc_path).name if self.doc_path else "untitled"
        self.setWindowTitle(f"{name}[*] — ldmz")
        A, busy = self.actions_, self.tasks.busy("codec")
        A["compress"].setEnabled(self.orig is not None and not busy)
        A["decode"].setEnabled(self.ldmz is not None and not busy)
        A["cancel"].setEnabled(busy)
        A["save"].setEnabled(self.ldmz is not None)
        A["export_audio"].setEnabled(self.coded is not None)
        self.codec.compress_button.setEnabled(A["compress"].isEnabled())
        self.codec.decode_button.setEnabled(A["decode"].isEnabled())
        playing = self.player.state == "playing"
        no_device = self.player.probed and not self.player.available
        A["play"].setEnabled(not no_device)
        A["play"].setToolTip(f"Play is off: {self.player.reason or 'no audio output device'}"
                             if no_device else "Play or pause (Space)")
        A["play_selection"].setEnabled(not no_device and self.views.selection() is not None)
        A["loop"].setChecked(self.player.loop)
        A["play"].setText("Pause" if playing else "Play")
        A["play"].setIcon(self.style().standardIcon(
            QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay))
        A["ab"].setChecked(self.player.selected == 1)
        A["ab"].setText("B: reconstruction" if self.player.selected == 1 else "A: original")
        self.status.set_busy(busy)

    def error(self, message: str) -> None:
        """Tell the user what went wrong in one sentence."""
        self.status.showMessage(message, 8000)
        QMessageBox.warning(self, "ldmz", message)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Accept local files."""
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """Open the first dropped file."""
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_path(paths[0])

    def closeEvent(self, event: QCloseEvent) -> None:
        """Ask about unsaved work, then stop playback and the workers."""
        if not self._confirm_discard():
            event.ignore()
            return
        self._analysis_timer.stop()
        self.player.close()
        self.tasks.shutdown()
        event.accept()
