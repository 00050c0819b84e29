"""Menus, toolbars and keyboard shortcuts of the main window."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QMenu, QStyle, QToolBar

if TYPE_CHECKING:
    from ldmz.gui.mainwindow import MainWindow

Std = QKeySequence.StandardKey
SP = QStyle.StandardPixmap


def _action(win: MainWindow, text: str, slot: object, keys: object = None,
            tip: str = "", icon: QStyle.StandardPixmap | None = None) -> QAction:
    a = QAction(text, win)
    if icon is not None:
        a.setIcon(win.style().standardIcon(icon))
    if keys is not None:
        seqs = keys if isinstance(keys, list) else [keys]
        a.setShortcuts([k if isinstance(k, QKeySequence) else QKeySequence(k) for k in seqs])
    if tip:
        a.setStatusTip(tip)
        a.setToolTip(f"{tip} ({a.shortcut().toString()})" if keys is not None else tip)
    a.triggered.connect(lambda *_: slot())
    win.addAction(a)  # shortcuts work even when a toolbar is hidden
    return a


def build(win: MainWindow) -> dict[str, QAction]:
    """Create every action, the menu bar and the toolbars; return the actions by name."""
    A = {
        "open": _action(win, "&Open…", win.open_dialog, Std.Open,
                        "Open an audio file or a .ldmz file", SP.SP_DialogOpenButton),
        "open_original": _action(win, "Open &Original for Comparison…", win.open_original_dialog,
                                 "Ctrl+Shift+O", "Load the original audio next to a .ldmz"),
        "save": _action(win, "&Save as .ldmz…", win.save_ldmz, Std.Save,
                        "Save the compressed file with its tags", SP.SP_DialogSaveButton),
        "export_audio": _action(win, "&Export Reconstruction…", win.export_audio, "Ctrl+E",
                                "Write the reconstruction as WAV or FLAC",
                                SP.SP_FileDialogDetailedView),
        "export_png": _action(win, "Export View as &PNG…", win.export_png, "Ctrl+P",
                              "Save a picture of the views"),
        "quit": _action(win, "&Quit", win.close, Std.Quit),
        "compress": _action(win, "&Compress", win.compress, "Ctrl+R",
                            "Encode the original with the codec settings, decode and measure",
                            SP.SP_BrowserReload),
        "decode": _action(win, "&Decode Again", win.decode_again, "Ctrl+D",
                          "Decode the .ldmz again (e.g. with another vocoder)"),
        "cancel": _action(win, "C&ancel", win.cancel, "Esc", "Cancel the running job",
                          SP.SP_BrowserStop),
        "play": _action(win, "&Play/Pause", win.toggle_play, "Space", "Play or pause",
                        SP.SP_MediaPlay),
        "stop": _action(win, "&Stop", win.stop, "Home", "Stop and go back to the start",
                        SP.SP_MediaStop),
        "ab": _action(win, "&A/B Switch", win.toggle_ab, "B",
                      "Switch between original (A) and reconstruction (B) at the same position"),
        "play_a": _action(win, "Play &Original (A)", lambda: win.select_source(0), "1"),
        "play_b": _action(win, "Play &Reconstruction (B)", lambda: win.select_source(1), "2"),
        "play_selection": _action(win, "Play Se&lection", win.play_selection, "Shift+Space",
                                  "Play the selected passage from its start"),
        "loop": _action(win, "&Loop", win.toggle_loop, "L",
                        "Loop the selection (or the whole file)"),
        "sel_start": _action(win, "Selection Start at Playhead", lambda: win.mark_selection(0),
                             "["),
        "sel_end": _action(win, "Selection End at Playhead", lambda: win.mark_selection(1), "]"),
        "sel_clear": _action(win, "Clear Selection", win.clear_selection, "Ctrl+Shift+A",
                             "Play the whole file again"),
        "back": _action(win, "Seek Back", lambda: win.nudge(-1), "Left"),
        "forward": _action(win, "Seek Forward", lambda: win.nudge(1), "Right"),
        "zoom_in": _action(win, "Zoom &In", lambda: win.views.zoom(2.0),
                           [Std.ZoomIn, "Ctrl+="], "Zoom in on the time axis"),
        "zoom_out": _action(win, "Zoom &Out", lambda: win.views.zoom(0.5), Std.ZoomOut,
                            "Zoom out on the time axis"),
        "fit": _action(win, "&Fit", win.views.fit, "Ctrl+0", "Show the whole file"),
        "about": _action(win, "&About ldmz", win.about),
    }
    A["ab"].setCheckable(True)
    A["loop"].setCheckable(True)
    mb = win.menuBar()
    file_menu = mb.addMenu("&File")
    file_menu.addActions([A["open"], A["open_original"]])
    win.recent_menu = QMenu("Open &Recent", win)
    win.recent_menu.aboutToShow.connect(win.fill_recent_menu)
    file_menu.addMenu(win.recent_menu)
    file_menu.addSeparator()
    file_menu.addActions([A["save"], A["export_audio"], A["export_png"]])
    file_menu.addSeparator()
    file_menu.addAction(A["quit"])
    codec_menu = mb.addMenu("&Codec")
    codec_menu.addActions([A["compress"], A["decode"], A["cancel"]])
    play_menu = mb.addMenu("&Playback")
    play_menu.addActions([A["play"], A["stop"], A["ab"], A["play_a"], A["play_b"],
                          A["back"], A["forward"]])
    play_menu.addSeparator()
    play_menu.addActions([A["play_selection"], A["loop"], A["sel_start"], A["sel_end"],
                          A["sel_clear"]])
    play_menu.addSeparator()
    win.device_menu = QMenu("Output &Device", win)
    win.device_menu.aboutToShow.connect(win.fill_device_menu)
    play_menu.addMenu(win.device_menu)
    view_menu = mb.addMenu("&View")
    view_menu.addActions([A["zoom_in"], A["zoom_out"], A["fit"]])
    mb.addMenu("&Help").addAction(A["about"])

    tb = QToolBar("Main", win)
    tb.setObjectName("main_toolbar")
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    tb.addActions([A["open"], A["save"], A["export_audio"]])
    tb.addSeparator()
    tb.addActions([A["compress"], A["cancel"]])
    tb.addSeparator()
    tb.addActions([A["play"], A["stop"], A["ab"], A["loop"]])
    win.time_label = QLabel(" 0:00.000 ")
    tb.addWidget(win.time_label)
    tb.addSeparator()
    tb.addActions([A["zoom_in"], A["zoom_out"], A["fit"], A["export_png"]])
    win.addToolBar(tb)
    vt = QToolBar("View", win)
    vt.setObjectName("view_toolbar")
    vt.addWidget(win.view_controls)
    win.addToolBarBreak()
    win.addToolBar(vt)
    view_menu.addSeparator()
    view_menu.addActions([tb.toggleViewAction(), vt.toggleViewAction()])
    win.view_menu = view_menu
    return A
