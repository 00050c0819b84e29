"""File dialogs, overwrite confirmation and atomic writes of the view PNG."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget


def open_filter() -> str:
    """The Open dialog's filter: .ldmz and every audio suffix the codec reads."""
    from ldmz.codec.audio_io import AUDIO_SUFFIXES

    globs = " ".join(f"*{s}" for s in (".ldmz", *AUDIO_SUFFIXES))
    return f"Audio and ldmz files ({globs});;All files (*)"


def ask_open(parent: QWidget, title: str, folder: str = "") -> str | None:
    """An open-file dialog; None if cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, title, folder, open_filter())
    return path or None


def confirm_overwrite(parent: QWidget, path: str | os.PathLike) -> bool:
    """Ask before replacing an existing file."""
    answer = QMessageBox.question(
        parent, "Replace file?", f"{Path(path).name} already exists. Replace it?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def ask_save(parent: QWidget, title: str, default: str, filters: str,
             suffixes: tuple[str, ...]) -> tuple[str, bool] | None:
    """A save dialog: (path with one of ``suffixes``, overwrite) or None if cancelled/refused.

    The overwrite question is ours (not the dialog's), so it is asked exactly once, after the
    suffix was added.
    """
    path, chosen = QFileDialog.getSaveFileName(
        parent, title, default, filters, options=QFileDialog.Option.DontConfirmOverwrite)
    if not path:
        return None
    if Path(path).suffix.lower() not in suffixes:
        wanted = next((s for s in suffixes if s.lstrip(".") in (chosen or "").lower()),
                      suffixes[0])
        path += wanted
    exists = os.path.exists(path)
    if exists and not confirm_overwrite(parent, path):
        return None
    return path, exists


def save_png(widget: QWidget, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Grab ``widget`` and write it as a PNG with the one atomic writer (fsync, umask mode)."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    from ldmz.formats.fileio import write_atomic

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists")
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not widget.grab().save(buf, "PNG"):
        raise OSError(f"{path}: could not make the PNG image")
    buf.close()
    write_atomic(path, bytes(data.data()), overwrite=overwrite)
