"""Survive PySide6 6.12.0's reference leaks of True and None (fatal bool_dealloc crashes)."""

from __future__ import annotations

import ctypes
import sys

# PySide6 6.12.0 drops a reference to True on every Python-side Signal.emit() and to None on
# void C++ calls (QPainter.drawLine, ...), so on Python < 3.12 a session ends within minutes in
# "Fatal Python error: bool_dealloc" (or none_dealloc). 6.11.x is sound: pin PySide6 < 6.12.

PROBE_EMITS = 16


def leaks_references() -> bool:
    """Whether emitting a signal from Python drops references to True (the 6.12.0 defect)."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(PROBE_EMITS):
        probe.ping.emit()
    return sys.getrefcount(True) <= before - PROBE_EMITS


def apply() -> bool:
    """If the defect is present (and the singletons are mortal, Python < 3.12), give True, False
    and None 2**40 extra references so they can never reach zero; True if applied."""
    if sys.version_info >= (3, 12) or not leaks_references():
        return False  # from 3.12 on the singletons are immortal and the leak is harmless
    for obj in (True, False, None):
        ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40
    return True
