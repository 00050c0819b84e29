"""Frozen entry point of `ldmz-gui` (the desktop app)."""

from ldmz.gui.app import entry

if __name__ == "__main__":
    entry()
