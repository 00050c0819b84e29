"""Windowed processing: balanced windows, cross-fade weights and a streaming overlap-add."""

from __future__ import annotations

import numpy as np


def windows(total: int, size: int) -> list[tuple[int, int]]:
    """Split ``[0, total)`` into ``ceil(total / size)`` windows of near-equal length."""
    n = max(1, -(-total // max(1, size)))
    edges = [round(i * total / n) for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def spans(total: int, size: int, ctx: int) -> list[tuple[int, int, int, int]]:
    """Windows as ``(a, s, e, b)``: balanced cores ``[s, e)`` and equal-length spans ``[a, b)``.

    Every span is ``min(total, longest core + 2 * ctx)`` long, so it holds at least ``ctx`` of
    context each side of its core (less only at the ends of the signal), and a model sees one
    input shape for every window (kernels are planned once, normalization sees equal lengths).
    """
    wins = windows(total, size)
    length = min(total, max(e - s for s, e in wins) + 2 * ctx)
    out = []
    for s, e in wins:
        a = min(max(0, s - ctx), total - length)
        out.append((a, s, e, a + length))
    return out


def growing_spans(total: int, size: int, ctx: int, first: int) -> list[tuple[int, int, int, int]]:
    """Like :func:`spans`, but the first cores are ``first``, ``2 * first``, ... (while below
    ``size``), so the first window's output comes soon; the rest are ``spans``' balanced cores.

    A leading core is taken only while at least as much signal follows it, so no core is shorter
    than ``first``. Each span holds ``ctx`` of context each side of its core, as in ``spans``,
    so a model whose receptive field fits in ``ctx`` gives the same samples as with ``spans``.
    The leading spans hold just that context (the first one none before its core), so the
    first call is as short as it can be.
    """
    head: list[tuple[int, int]] = []
    s, c = 0, first
    while 0 < c < size and total - s - c >= c:
        head.append((s, s + c))
        s, c = s + c, 2 * c
    if not head:
        return spans(total, size, ctx)
    tail = [(s + a, s + b) for a, b in windows(total - s, size)]
    longest = max(e - b for b, e in tail)
    out = [(max(0, s0 - ctx), s0, e, min(total, e + ctx)) for s0, e in head]
    length = min(total, longest + 2 * ctx)
    for s0, e in tail:
        a = min(max(0, s0 - ctx), total - length)
        out.append((a, s0, e, a + length))
    return out


def fade_weights(a: int, s: int, e: int, b: int, fade: int) -> np.ndarray:
    """Weights over ``[a, b)`` for the core ``[s, e)``: linear cross-fades of ``fade`` centred
    on ``s`` and ``e`` (none where the window touches the signal's ends). The weights of two
    neighbouring windows sum to exactly 1 when ``fade`` is even and fits in both."""
    p = np.arange(a, b, dtype=np.float64) + 0.5
    w = np.ones(b - a)
    if s > a:
        w = np.minimum(w, np.clip((p - s) / fade + 0.5, 0, 1))
    if b > e:
        w = np.minimum(w, np.clip((e - p) / fade + 0.5, 0, 1))
    return w.astype(np.float32)


def fade_len(fade: int, wins: list[tuple[int, int, int, int]], unit: int = 1) -> int:
    """The cross-fade in samples (``unit`` per frame) for ``fade`` frames: even, within the
    context each side of every join and no longer than any core, so weights sum to one."""
    total = wins[-1][3]
    lim = [e - s for _, s, e, _ in wins]
    lim += [2 * (s - a) for a, s, _, _ in wins if s > 0]
    lim += [2 * (b - e) for _, _, e, b in wins if e < total]
    return max(2, 2 * (min(fade, *lim) * unit // 2))


class OLA:
    """Streaming overlap-add along axis 0: add windows in order, take what no later one touches."""

    def __init__(self) -> None:
        self.start = 0
        self.buf: np.ndarray | None = None

    def add(self, a: int, y: np.ndarray) -> None:
        """Add ``y`` (already weighted) at position ``a``."""
        if a < self.start:  # weights there are 0: that part was already taken
            y, a = y[self.start - a:], self.start
        end = a + len(y) - self.start
        buf = np.zeros((0, *y.shape[1:]), np.float32) if self.buf is None else self.buf
        if end > len(buf):
            buf = np.concatenate([buf, np.zeros((end - len(buf), *y.shape[1:]), np.float32)])
        buf[a - self.start:end] += y
        self.buf = buf

    def take(self, upto: int) -> np.ndarray:
        """Remove and return everything before ``upto``: no later window may touch it."""
        n = upto - self.start
        assert self.buf is not None, "take() before add()"
        out, self.buf = self.buf[:n], self.buf[n:]
        self.start = upto
        return out
