"""A dark Fusion palette matching the plots' dark background."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication


def apply_dark(app: QApplication) -> None:
    """Use Fusion with a dark palette."""
    app.setStyle("Fusion")
    p = QPalette()
    R, C = QPalette.ColorRole, QColor
    for role, color in (
        (R.Window, "#22252b"), (R.WindowText, "#e3e6eb"), (R.Base, "#1a1c21"),
        (R.AlternateBase, "#262a31"), (R.ToolTipBase, "#2d3139"), (R.ToolTipText, "#e3e6eb"),
        (R.Text, "#e3e6eb"), (R.Button, "#2b2f36"), (R.ButtonText, "#e3e6eb"),
        (R.BrightText, "#ff6b6b"), (R.Highlight, "#3d7bd9"), (R.HighlightedText, "#ffffff"),
        (R.Link, "#6aa9ff"), (R.PlaceholderText, "#7c8494"),
    ):
        p.setColor(role, C(color))
    for role in (R.Text, R.ButtonText, R.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, C("#6c7380"))
    app.setPalette(p)
