"""The ldmz desktop app (PySide6 + pyqtgraph): a thin view over ldmz.codec and ldmz.formats."""
