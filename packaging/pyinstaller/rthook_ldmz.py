"""PyInstaller runtime hook: ctypes.util.find_library prefers the libraries inside the bundle."""

import ctypes.util
import glob
import os
import sys

_system_find_library = ctypes.util.find_library


def _find_library(name: str) -> str | None:
    """``lib<name>.so*`` from the bundle (e.g. sounddevice's portaudio), else the system's."""
    base = getattr(sys, "_MEIPASS", None)
    if base:
        hits = sorted(glob.glob(os.path.join(base, f"lib{name}.so*")))
        if hits:
            return hits[0]
    return _system_find_library(name)


ctypes.util.find_library = _find_library
