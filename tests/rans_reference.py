"""An independent, slow decoder of format-2 chunks written from SPEC.md section 7 (tests only)."""

from __future__ import annotations

import numpy as np

PRECISION = 24


def residual_row(entry: list[int], radius: int) -> list[int]:
    """SPEC.md 7.5: the table R of a ``j`` entry ``[b, h_0..h_5]``."""
    n = 2 * radius + 1
    w = [entry[1 + abs(d)] if abs(d) <= 5 else 0 for d in range(-radius, radius + 1)]
    total = sum(w)
    row = [1 + (x * ((1 << PRECISION) - n)) // total for x in w]
    row[radius] += (1 << PRECISION) - sum(row)
    return row


def decode_chunk(blob: bytes, shape: tuple[int, int, int, int], freqs: np.ndarray,
                 radius: int, joint: list | None = None) -> np.ndarray | None:
    """Codes (A, C, T, F) of one chunk, or None where SPEC.md says the chunk is invalid.

    ``freqs`` is the quality's (C, F, 45, 2 * radius + 1) table, ``radius`` its K; ``joint``
    the chunk's row of header key ``j`` (format 2.1), or None.
    """
    joint = joint or [0] * (shape[0] - 1)
    rows = {a: residual_row(e, radius) for a, e in enumerate(joint, 1) if e != 0}
    if len(blob) % 4:
        return None
    words = [int.from_bytes(blob[i:i + 4], "little") for i in range(0, len(blob), 4)]
    state = words.pop() if words else 0
    if words:
        state = (state << 32) | words.pop()
    a_n, c_n, t_n, f_n = shape
    k = np.zeros(shape, np.int64)

    def at(a: int, c: int, t: int, f: int) -> int:
        return int(k[a, c, t, f]) if min(c, t, f) >= 0 else 0

    for w in range(t_n + c_n + f_n - 2 + 1):
        for a in range(a_n):
            for t in range(t_n):
                for c in range(c_n):
                    f = w - t - c
                    if not 0 <= f < f_n:
                        continue
                    xt = min(max(at(a, c, t - 1, f), -2), 2) + 2
                    xf = min(max(at(a, c, t, f - 1), -1), 1) + 1
                    xc = min(max(at(a, c - 1, t, f), -1), 1) + 1
                    if a in rows:
                        row = rows[a]
                    else:
                        row = [int(v) for v in freqs[c, f, (xt * 3 + xf) * 3 + xc]]
                    quantile = state & ((1 << PRECISION) - 1)
                    s, low = 0, 0
                    while low + row[s] <= quantile:
                        low += row[s]
                        s += 1
                    state = (state >> PRECISION) * row[s] + quantile - low
                    if state < (1 << 32) and words:
                        state = (state << 32) | words.pop()
                    if a in rows:
                        ref = int(k[joint[a - 1][0], c, t, f])
                        k[a, c, t, f] = (ref + s - radius + radius) % (2 * radius + 1) - radius
                    else:
                        k[a, c, t, f] = s - radius
    if words or state != 0:
        return None
    return k
