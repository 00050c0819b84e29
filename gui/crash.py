"""The crash hook: unexpected exceptions go to a log file under the user log dir and a dialog."""

from __future__ import annotations

import datetime
import os
import platform
import sys
import traceback
from pathlib import Path
from types import TracebackType

from ldmz import __version__


def log_dir() -> Path:
    """platformdirs' user log dir for ldmz (created on demand)."""
    import platformdirs

    return Path(platformdirs.user_log_dir("ldmz", appauthor=False))


def write_log(etype: type[BaseException], value: BaseException,
              tb: TracebackType | None) -> Path | None:
    """Write a crash report and return its path (None if even that fails)."""
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        path = folder / f"crash-{stamp}-{os.getpid()}.log"
        lines = [
            f"ldmz {__version__} crash report, {datetime.datetime.now().isoformat()}",
            f"python {sys.version.split()[0]} on {platform.platform()}",
            "",
            *traceback.format_exception(etype, value, tb),
        ]
        path.write_text("\n".join(line.rstrip("\n") for line in lines) + "\n", encoding="utf-8")
        return path
    except OSError:
        return None


def excepthook(etype: type[BaseException], value: BaseException,
               tb: TracebackType | None) -> None:
    """sys.excepthook for the app: log, tell the user in a dialog, keep running."""
    if issubclass(etype, KeyboardInterrupt):
        sys.__excepthook__(etype, value, tb)
        return
    path = write_log(etype, value, tb)
    traceback.print_exception(etype, value, tb)
    from PySide6.QtWidgets import QApplication, QMessageBox

    where = f"A report was written to {path}." if path else "No report could be written."
    if QApplication.instance() is not None:
        QMessageBox.critical(None, "ldmz: unexpected error",
                             f"ldmz hit an unexpected error ({etype.__name__}: {value}). {where}")


def install() -> None:
    """Install :func:`excepthook` as sys.excepthook."""
    sys.excepthook = excepthook
