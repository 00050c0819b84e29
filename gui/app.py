"""The `ldmz-gui` entry point: ldmz-gui [FILE]."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile


def build_parser() -> argparse.ArgumentParser:
    """The command line of `ldmz-gui`."""
    from ldmz import __version__

    p = argparse.ArgumentParser(prog="ldmz-gui", description="See and hear what ldmz does.")
    p.add_argument("file", nargs="?", help="an audio file or a .ldmz file to open")
    p.add_argument("--version", action="version", version=f"ldmz-gui {__version__}")
    return p


def _runtime_dir() -> None:
    """Give Qt a private XDG_RUNTIME_DIR when none is set (as Qt would, minus its warning)."""
    if not sys.platform.startswith("linux") or os.environ.get("XDG_RUNTIME_DIR"):
        return
    path = os.path.join(tempfile.gettempdir(), f"runtime-{os.getuid()}")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path)
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            path = tempfile.mkdtemp(prefix="ldmz-runtime-")
    except OSError:
        path = tempfile.mkdtemp(prefix="ldmz-runtime-")
    os.environ["XDG_RUNTIME_DIR"] = path


def main(argv: list[str] | None = None) -> int:
    """Run the app; returns the exit status."""
    args = build_parser().parse_args(argv)
    _runtime_dir()
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from ldmz.gui import crash, theme
    from ldmz.gui.mainwindow import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("ldmz-gui")
    app.setOrganizationName("ldmz")
    app.setDesktopFileName("ldmz-gui")
    theme.apply_dark(app)
    crash.install()
    win = MainWindow()
    app.aboutToQuit.connect(win.tasks.shutdown)
    app.aboutToQuit.connect(win.player.close)
    win.show()
    if args.file:
        win.open_path(args.file)
    QTimer.singleShot(0, win.player.probe)
    quit_ms = os.environ.get("LDMZ_GUI_QUIT_AFTER_MS", "")
    if quit_ms.isdigit():  # smoke tests of packaged builds: start, show, quit cleanly
        QTimer.singleShot(int(quit_ms), app.quit)
    return app.exec()


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
