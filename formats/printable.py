"""Text from a file, made safe to print: control characters and stray surrogates escaped."""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, bidirectional overrides and isolates, line/paragraph separators,
# and lone surrogates (how Python holds the bytes of a non-UTF-8 file name).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                     "\ud800-\udfff]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    if 0xDC80 <= c <= 0xDCFF:  # an undecodable byte of a file name, shown as that byte
        return f"\\x{c - 0xDC00:02x}"
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(text: object) -> str:
    """``str(text)`` with every control character escaped (``\\x1b``, ``\\u202e``), one line.

    Everything ldmz prints that came from a file (header strings, tags, file names, error
    messages quoting them) goes through here, so a file cannot move the cursor, clear the
    screen, fake a line of output or make the terminal's encoder fail.
    """
    return _UNSAFE.sub(_escape, str(text))
