"""Saving the .ldmz, exporting the reconstruction and the view, and the recent-files menu."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from ldmz.formats import LdmzError
from ldmz.gui import files, jobs
from ldmz.gui.worker import describe_error


class WritingMixin:
    """The main window's file-writing actions (atomic writes; overwriting asks first)."""

    def save_ldmz(self) -> None:
        """Save the .ldmz with the edited tags (atomic; asks before overwriting)."""
        if self.ldmz is None:
            self.error("Compress an audio file first: there is no .ldmz to save.")
            return
        stem = Path(self.doc_path).stem or "untitled"
        default = str(Path(self.doc_path).with_name(stem + ".ldmz")) if self.doc_path else ""
        ans = files.ask_save(self, "Save as .ldmz", default, "ldmz files (*.ldmz)", (".ldmz",))
        if ans is None:
            return
        try:
            f = jobs.retag(self.ldmz, self.tags.tags())
            f.save(ans[0], overwrite=ans[1])
            self.ldmz, self.ldmz_size, self.doc_path = f, jobs.file_size(ans[0]), ans[0]
        except (LdmzError, OSError, ValueError) as e:
            self.error(describe_error(e))
            return
        self.info.show_ldmz(f, self.ldmz_size, Path(ans[0]).name)
        self.settings.add_recent(ans[0])
        self.set_modified(False)
        self.status.showMessage(f"Saved {ans[0]}", 5000)

    def export_audio(self) -> None:
        """Write the reconstruction as WAV or FLAC (atomic; asks before overwriting)."""
        if self.coded is None:
            self.error("There is no reconstruction to export yet: compress or open a .ldmz.")
            return
        from ldmz.codec.audio_io import write_audio

        default = str(Path(self.doc_path).with_suffix("")) + "-decoded.wav"
        ans = files.ask_save(self, "Export reconstruction", default,
                             "WAV (*.wav);;FLAC (*.flac)", (".wav", ".flac"))
        if ans is not None:
            try:
                write_audio(ans[0], self.coded.audio.data, self.coded.audio.sr, overwrite=ans[1])
                self.status.showMessage(f"Exported {ans[0]}", 5000)
            except (LdmzError, OSError, ValueError) as e:
                self.error(describe_error(e))

    def export_png(self) -> None:
        """Save a picture of the views."""
        default = str(Path(self.doc_path).with_suffix("")) + "-view.png" if self.doc_path else ""
        ans = files.ask_save(self, "Export view as PNG", default, "PNG (*.png)", (".png",))
        if ans is not None:
            try:
                files.save_png(self.views, ans[0], overwrite=ans[1])
            except OSError as e:
                self.error(describe_error(e))

    # ------------------------------------------------------------------ window
    def fill_recent_menu(self) -> None:
        """Rebuild File > Open Recent."""
        self.recent_menu.clear()
        for p in self.settings.recent_files():
            self.recent_menu.addAction(p, partial(self.open_path, p))
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear", self.settings.clear_recent)

    def about(self) -> None:
        """The about box."""
        from ldmz import __version__

        QMessageBox.about(self, "About ldmz", f"ldmz {__version__}: hear and see what a neural "
                          "audio codec on AudioLDM2-style latents does to your sound.")

    def _confirm_discard(self) -> bool:
        """Whether unsaved work may go: Save (then go on if it was saved), Discard or Cancel."""
        if not self.isWindowModified():
            return True
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self, "Unsaved .ldmz", "The compressed file is not saved. Save it first?",
            buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save)
        if answer == buttons.Save:
            self.save_ldmz()
            return not self.isWindowModified()
        return answer == buttons.Discard
