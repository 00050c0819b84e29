"""Entropy-coded chunks: integer frequency tables (from the model folder) and rANS via constriction.

A table set holds, for each quality ``q``, a quantizer step per latent channel (format
``ldmz-entropy-1``) or per latent channel and frequency bin (``ldmz-entropy-2``) and one integer
frequency table per (latent channel, frequency bin), each summing to ``2**PRECISION``. Integer
tables make the coder's model exact: decoding is bit-identical on any machine and thread count.
The tables file is a safetensors file read here with numpy only (no torch, no safetensors).
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import numpy as np

from ldmz.formats.errors import FormatError

PRECISION = 24  # bits of every frequency table: rows sum to 2**24 (constriction's default)
TOTAL = 1 << PRECISION
MAX_SYMBOLS = 4095  # alphabet size per table (odd: symbols -K..K)
MAX_QUALITIES = 64
TABLES_FORMAT = "ldmz-entropy-2"  # what the fit script writes: steps (Q, C, F)
TABLES_FORMATS = ("ldmz-entropy-1", TABLES_FORMAT)  # -1: steps (Q, C), one per latent channel


class TablesError(FormatError):
    """An entropy tables file is missing, damaged or does not fit the latents."""


# Contexts: a code's table is chosen by three already-coded neighbours, each clipped: the same
# channel and bin in the previous frame (-2..2), the previous bin of the same frame and channel
# (-1..1) and the previous latent channel at the same frame and bin (-1..1); 0 outside the chunk.
CTX_T, CTX_F, CTX_C = 2, 1, 1
CONTEXTS = (2 * CTX_T + 1) * (2 * CTX_F + 1) * (2 * CTX_C + 1)  # 45


@dataclass(frozen=True, eq=False)
class EntropyTables:
    """Per quality q: ``steps[q]`` (C,) or (C, F), ``freqs[q]`` (C, F, CONTEXTS, 2K+1); ``mean``
    (C, F)."""

    steps: np.ndarray
    mean: np.ndarray
    freqs: tuple[np.ndarray, ...]
    sha256: str = ""
    _weights: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def qualities(self) -> int:
        """Number of quality levels (0 = smallest files)."""
        return len(self.freqs)

    def radius(self, q: int) -> int:
        """``K``: quality ``q`` codes integers ``-K..K``."""
        return int((self.freqs[q].shape[3] - 1) // 2)

    def check(self, name: str = "<tables>") -> EntropyTables:
        """Raise TablesError unless shapes, sums and values are valid; return self."""
        c, f = self.mean.shape
        q = len(self.freqs)
        if not 1 <= q <= MAX_QUALITIES or self.steps.shape not in ((q, c), (q, c, f)):
            raise TablesError(name, f"entropy tables need 1..{MAX_QUALITIES} qualities with "
                                    f"one step per latent channel (and bin)")
        if not (np.isfinite(self.steps).all() and (self.steps > 0).all()
                and np.isfinite(self.mean).all()):
            raise TablesError(name, "entropy table steps must be finite and > 0, means finite")
        for q, t in enumerate(self.freqs):
            if (t.ndim != 4 or t.shape[:3] != (c, f, CONTEXTS) or t.shape[3] % 2 == 0
                    or t.shape[3] > MAX_SYMBOLS or (t < 1).any() or (t.sum(-1) != TOTAL).any()):
                raise TablesError(name, f"entropy table {q} must be (C, F, {CONTEXTS}, odd n <= "
                                        f"{MAX_SYMBOLS}) with entries >= 1 summing to 2^24")
        return self

    def step(self, q: int) -> np.ndarray:
        """float32 (C, F): quality ``q``'s step of every latent channel and bin."""
        st = self.steps[q].astype(np.float32)
        out: np.ndarray = np.broadcast_to(st[:, None] if st.ndim == 1 else st, self.mean.shape)
        return out

    def weights(self, q: int) -> np.ndarray:
        """float64 ``freqs[q] - 1``: what constriction is given (see :func:`_weights_note`)."""
        if q not in self._weights:
            self._weights[q] = (self.freqs[q] - 1).astype(np.float64)
        return self._weights[q]


def _weights_note() -> None:
    """Why ``freq - 1``: constriction gives symbol ``s`` the slot ``floor(sum(w[:s]) * scale) + s``
    of 2^24 with ``scale = (2^24 - n) / sum(w)``; with ``w = freq - 1``, which sums to
    ``2^24 - n``, the scale is exactly 1 and the coder's table is exactly ``freq``.
    """


def _coder() -> tuple[type, type]:
    """constriction's Categorical model and AnsCoder (imported on first use)."""
    import constriction  # its sub-modules are attributes, not importable paths

    return constriction.stream.model.Categorical, constriction.stream.stack.AnsCoder


@lru_cache(maxsize=16)
def coding_order(shape: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Symbol order of a chunk (A, C, T, F): flat C-order indices, and wavefront bounds.

    Codes go by wavefront ``w = t + c + f`` (each depends only on earlier wavefronts), and
    within one by audio channel, then frame, then latent channel (the bin follows).
    """
    a, c, n, f = shape
    ai, ci, ti, fi = (x.ravel() for x in np.meshgrid(np.arange(a), np.arange(c), np.arange(n),
                                                     np.arange(f), indexing="ij"))
    w = ti + ci + fi
    order = np.lexsort((ci, ti, ai, w))
    bounds = np.searchsorted(w[order], np.arange(max(n + c + f - 1, 0) + 1))
    order.flags.writeable = bounds.flags.writeable = False  # shared through the cache
    return order, bounds


def contexts(padded: np.ndarray, idx: tuple[np.ndarray, ...]) -> np.ndarray:
    """Context numbers (0..44) of the codes at ``idx`` = (a, c, t, f) index arrays.

    ``padded`` is the (A, C+1, T+1, F+1) code array with a zero border before each axis.
    """
    a, c, t, f = idx
    xt = np.minimum(np.maximum(padded[a, c + 1, t, f + 1], -CTX_T), CTX_T) + CTX_T
    xf = np.minimum(np.maximum(padded[a, c + 1, t + 1, f], -CTX_F), CTX_F) + CTX_F
    xc = np.minimum(np.maximum(padded[a, c, t + 1, f + 1], -CTX_C), CTX_C) + CTX_C
    ctx: np.ndarray = (xt * (2 * CTX_F + 1) + xf) * (2 * CTX_C + 1) + xc
    return ctx


def quantize_ec(z: np.ndarray, t: EntropyTables, q: int) -> np.ndarray:
    """Integer codes ``round((z - mean) / step)`` of latents (A, C, T, F), clipped to -K..K."""
    d = (np.asarray(z, np.float32) - t.mean[None, :, None, :]) / t.step(q)[None, :, None, :]
    r = t.radius(q)
    codes: np.ndarray = np.clip(np.rint(d), -r, r).astype(np.int32)
    return codes


def dequantize_ec(codes: np.ndarray, t: EntropyTables, q: int) -> np.ndarray:
    """Float32 latents ``mean[c, f] + step[q][c, f] * code`` of codes (A, C, T, F)."""
    step = t.step(q)[None, :, None, :]
    z: np.ndarray = (t.mean.astype(np.float32)[None, :, None, :]
                     + step * codes.astype(np.float32)).astype(np.float32)
    return z


def _pad(codes: np.ndarray) -> np.ndarray:
    return np.pad(codes, ((0, 0), (1, 0), (1, 0), (1, 0)))


# Inter-channel prediction (coding ``r24s``, SPEC.md 7.5): in a chunk, audio channel ``a`` may be
# coded as the residual of an earlier channel ``b``, ``s = wrap(k[a] - k[b])`` in -K..K, under one
# table built from JOINT_WEIGHTS integer weights of |s| = 0..5 (stored in the header). The
# decoded codes are exactly those of independent coding: only the rate changes.
JOINT_WEIGHTS = 6
MAX_JOINT_WEIGHT = 255
Joint = tuple[tuple[int, ...], ...]  # per audio channel 1..A-1: () independent, or (b, h_0..h_5)


def wrap(d: np.ndarray, r: int) -> np.ndarray:
    """``d`` reduced modulo ``2r + 1`` into ``-r..r``."""
    out: np.ndarray = np.mod(d + r, 2 * r + 1) - r
    return out


def residual_freqs(h: tuple[int, ...] | np.ndarray, r: int) -> np.ndarray:
    """Integer table (2r+1,) summing to 2^24 of residuals ``-r..r`` from weights ``h`` of |s|.

    ``w(s) = h[|s|]`` for ``|s| < len(h)``, else 0; ``freq(s) = 1 + floor(w(s) (2^24 - n) / W)``
    with ``W = sum(w)`` (>= 1: ``h[0] >= 1``), and what is left of 2^24 goes to ``s = 0``.
    """
    n = 2 * r + 1
    mag = np.abs(np.arange(-r, r + 1))
    hv = np.asarray(h, np.int64)
    w = np.where(mag < len(hv), hv[np.minimum(mag, len(hv) - 1)], 0)
    total = int(w.sum())
    if hv[0] < 1:
        raise ValueError("the weight of residual 0 must be >= 1")
    freq = 1 + (w * (TOTAL - n)) // total
    freq[r] += TOTAL - int(freq.sum())
    out: np.ndarray = freq
    return out


def _check_joint(joint: Joint, a: int, where: str) -> None:
    if joint and len(joint) != a - 1:
        raise ValueError(f"{where}: joint coding lists {len(joint)} channels, not {a - 1}")
    for i, j in enumerate(joint, 1):
        if j and (len(j) != 1 + JOINT_WEIGHTS or not 0 <= j[0] < i or j[1] < 1
                  or not all(0 <= v <= MAX_JOINT_WEIGHT for v in j[1:])):
            raise ValueError(f"{where}: channel {i}'s joint coding must be (b < {i}, "
                             f"{JOINT_WEIGHTS} weights 0..{MAX_JOINT_WEIGHT}, the first >= 1)")


def _symbols(codes: np.ndarray, joint: Joint, r: int) -> np.ndarray:
    """The coded values (A, C, T, F): codes, or residuals for predicted channels."""
    out: np.ndarray = codes.copy()
    for a, j in enumerate(joint, 1):
        if j:
            out[a] = wrap(codes[a] - codes[j[0]], r)
    return out


def encode_codes(codes: np.ndarray, t: EntropyTables, q: int, joint: Joint = ()) -> bytes:
    """rANS-code the integer codes (A, C, T, F) of one chunk: little-endian 32-bit words.

    ``joint`` (coding ``r24s``): per audio channel 1..A-1, ``()`` to code it on its own, or
    ``(b, h_0..h_5)`` to code its residual against channel ``b`` (see :func:`residual_freqs`).
    """
    Categorical, AnsCoder = _coder()
    codes = np.asarray(codes, np.int32)
    r = t.radius(q)
    if codes.size and int(np.abs(codes).max()) > r:
        raise ValueError(f"codes must lie in -{r}..{r} at quality {q}")
    _check_joint(joint, codes.shape[0], "encode")
    enc = AnsCoder()
    if codes.size:
        order, _ = coding_order(tuple(codes.shape))
        idx = np.unravel_index(order, codes.shape)
        rows = t.weights(q)[idx[1], idx[3], contexts(_pad(codes), idx)]
        for a, j in enumerate(joint, 1):
            if j:
                rows[idx[0] == a] = residual_freqs(j[1:], r) - 1
        syms = np.ascontiguousarray(_symbols(codes, joint, r).reshape(-1)[order] + r,
                                    dtype=np.int32)
        enc.encode_reverse(syms, Categorical(perfect=False), rows)  # a stack: decoded forwards
    return np.asarray(enc.get_compressed(), "<u4").tobytes()


def _bits(freq: np.ndarray) -> np.ndarray:
    out: np.ndarray = PRECISION - np.log2(freq.astype(np.float64))
    return out


def choose_joint(codes: np.ndarray, t: EntropyTables, q: int, side_bits: float = 128.0) -> Joint:
    """Per audio channel 1..A-1 of a chunk's codes, the cheapest coding: on its own, or as the
    residual of an earlier channel (its weights fitted here). ``()`` if no channel gains more
    than ``side_bits`` (what its header entry costs): then the chunk is coded as ``r24``.
    """
    codes = np.asarray(codes, np.int32)
    a, c, n, f = codes.shape
    r = t.radius(q)
    if a < 2 or not codes.size:
        return ()
    ai, ci, ti, fi = (x.ravel() for x in np.meshgrid(np.arange(a), np.arange(c), np.arange(n),
                                                     np.arange(f), indexing="ij"))
    ctx = contexts(_pad(codes), (ai, ci, ti, fi))
    alone = _bits(t.freqs[q][ci, fi, ctx, codes.reshape(-1) + r]).reshape(a, -1).sum(1)
    joint: list[tuple[int, ...]] = []
    for ch in range(1, a):
        best, pick = float(alone[ch]) - side_bits, cast(tuple[int, ...], ())
        for b in range(ch):
            s = wrap(codes[ch] - codes[b], r).reshape(-1)
            counts = np.bincount(np.minimum(np.abs(s), JOINT_WEIGHTS), minlength=JOINT_WEIGHTS + 1)
            per_sign = np.concatenate([counts[:1], (counts[1:JOINT_WEIGHTS] + 1) // 2])
            h = -(-per_sign * MAX_JOINT_WEIGHT // max(1, per_sign.max()))  # ceil: seen stay > 0
            h[0] = max(h[0], 1)
            cost = float(_bits(residual_freqs(h, r))[s + r].sum())
            if cost < best:
                best, pick = cost, (b, *(int(v) for v in h))
        joint.append(pick)
    return tuple(joint) if any(joint) else ()


@lru_cache(maxsize=16)
def _plan(shape: tuple[int, int, int, int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per wavefront: flat indices into the padded code array, and table-row bases (c*F + f)*X.

    Within a wavefront the codes come in ``A`` equal blocks, one per audio channel, and block
    ``a``'s ``i``-th code sits at the same (c, t, f) as block ``b``'s.
    """
    a, c, n, f = shape
    order, bounds = coding_order(shape)
    ai, ci, ti, fi = np.unravel_index(order, shape)
    pos = ((ai * (c + 1) + ci + 1) * (n + 1) + ti + 1) * (f + 1) + fi + 1
    base = (ci * f + fi) * CONTEXTS
    return [(pos[lo:hi], base[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


def decode_codes(blob: bytes, shape: tuple[int, int, int, int], t: EntropyTables, q: int,
                 name: str, i: int, joint: Joint = ()) -> np.ndarray:
    """Inverse of :func:`encode_codes`; FormatError unless the words decode to exactly ``shape``."""
    Categorical, AnsCoder = _coder()
    if len(blob) % 4:
        raise FormatError(name, f"chunk {i} is not a whole number of 32-bit words")
    a, c, n, f = shape
    r = t.radius(q)
    try:
        _check_joint(joint, a, f"chunk {i}")
    except ValueError as e:
        raise FormatError(name, str(e)) from e
    pred = [(ch, j[0], residual_freqs(j[1:], r) - 1) for ch, j in enumerate(joint, 1) if j]
    padded = np.zeros((a, c + 1, n + 1, f + 1), np.int32)
    flat = padded.reshape(-1)
    dt, df, dc = f + 1, 1, (n + 1) * (f + 1)  # flat offsets of the three context neighbours
    w = t.weights(q).reshape(-1, 2 * r + 1)
    model = Categorical(perfect=False)
    try:
        dec = AnsCoder(np.frombuffer(blob, "<u4").astype(np.uint32))
        for pos, base in _plan(tuple(shape)):
            xt = np.minimum(np.maximum(flat[pos - dt], -CTX_T), CTX_T) + CTX_T
            xf = np.minimum(np.maximum(flat[pos - df], -CTX_F), CTX_F) + CTX_F
            xc = np.minimum(np.maximum(flat[pos - dc], -CTX_C), CTX_C) + CTX_C
            ctx = (xt * (2 * CTX_F + 1) + xf) * (2 * CTX_C + 1) + xc
            if not pred:
                flat[pos] = dec.decode(model, w[base + ctx]) - r
                continue
            rows = w[base + ctx].reshape(a, -1, 2 * r + 1)
            for ch, _, res in pred:
                rows[ch] = res
            v = (dec.decode(model, rows.reshape(-1, 2 * r + 1)) - r).reshape(a, -1)
            for ch, b, _ in pred:  # ascending: a reference is final before it is used
                v[ch] = wrap(v[b] + v[ch], r)
            flat[pos] = v.reshape(-1)
        ok = dec.is_empty()
    except Exception as e:  # constriction raises its own errors on words it cannot take
        raise FormatError(name, f"chunk {i} entropy-coded data is invalid ({e})") from e
    if not ok:
        raise FormatError(name, f"chunk {i} entropy-coded data does not decode to exactly its "
                                f"{a * c * n * f} values (the file is damaged)")
    return np.ascontiguousarray(padded[:, 1:, 1:, 1:])


MAX_TABLES_BYTES = 256 << 20


def _inflate(stored: bytes) -> bytes:
    """The safetensors bytes of a tables file (zstd frame, at most MAX_TABLES_BYTES)."""
    import zstandard

    try:
        obj = zstandard.ZstdDecompressor().decompressobj()
        data = obj.decompress(stored[:MAX_TABLES_BYTES])
    except zstandard.ZstdError as e:
        raise ValueError(f"not zstd ({e})") from e
    if not obj.eof or len(data) >= MAX_TABLES_BYTES:
        raise ValueError("truncated or too large")
    return data


def read_tables_meta(path: str | Path) -> dict[str, str]:
    """The metadata map of a tables file."""
    return parse_safetensors(_inflate(Path(path).read_bytes()))[1]


def tables_bytes(tensors: dict[str, np.ndarray], meta: dict[str, str]) -> bytes:
    """A tables file's stored bytes: safetensors of ``tensors``, zstd level 19."""
    import zstandard

    names = {np.dtype("<i4"): "I32", np.dtype("<f4"): "F32"}
    head: dict[str, Any] = {"__metadata__": meta}
    pos, body = 0, []
    for k in sorted(tensors):
        v = np.ascontiguousarray(tensors[k])
        v = v.astype(v.dtype.newbyteorder("<"))
        head[k] = {"dtype": names[v.dtype], "shape": list(v.shape),
                   "data_offsets": [pos, pos + v.nbytes]}
        body.append(v.tobytes())
        pos += v.nbytes
    hj = json.dumps(head, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)
    raw = struct.pack("<Q", len(hj)) + hj + b"".join(body)
    return zstandard.ZstdCompressor(level=19).compress(raw)


def parse_safetensors(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Tensors and metadata of safetensors bytes (I32, I64, F32, F64 only), numpy only."""
    dtypes = {"I32": "<i4", "I64": "<i8", "F32": "<f4", "F64": "<f8"}
    if len(data) < 8:
        raise ValueError("too short")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8 or n > 1 << 24:
        raise ValueError("header length out of range")
    head = json.loads(data[8:8 + n])
    body = memoryview(data)[8 + n:]
    meta = head.pop("__metadata__", {}) or {}
    out = {}
    for k, v in head.items():
        a, b = v["data_offsets"]
        dt = np.dtype(dtypes[v["dtype"]])
        shape = tuple(int(s) for s in v["shape"])
        if not 0 <= a <= b <= len(body) or b - a != dt.itemsize * int(np.prod(shape)):
            raise ValueError(f"tensor {k} has bad offsets")
        out[k] = np.frombuffer(body[a:b], dt).reshape(shape).copy()
    return out, meta


def load_tables(path: str | Path) -> EntropyTables:
    """Read and check a tables file: safetensors (``step`` (Q, C) or (Q, C, F), ``mean`` (C, F),
    ``freq.q``), zstd-compressed. The SHA-256 of the stored bytes names the tables in files."""
    path = Path(path)
    name = str(path)
    try:
        stored = path.read_bytes()
        digest = hashlib.sha256(stored).hexdigest()
        arrs, meta = parse_safetensors(_inflate(stored))
        fmt = meta.get("format")
        if fmt not in TABLES_FORMATS:
            raise ValueError(f"format is {fmt!r}, not one of {', '.join(TABLES_FORMATS)}")
        steps = arrs["step"].astype(np.float32)
        if steps.ndim != (2 if fmt == TABLES_FORMATS[0] else 3):
            raise ValueError(f"{fmt} steps must have {2 if fmt == TABLES_FORMATS[0] else 3} axes")
        # int32: entries are at most 2^24 (int64 held ~15 MB for ldmz-small's 15 qualities)
        freqs = tuple(arrs[f"freq.{q}"].astype(np.int32) for q in range(len(steps)))
        t = EntropyTables(steps, arrs["mean"].astype(np.float32), freqs, digest)
    except OSError as e:
        raise TablesError(name, f"cannot read the entropy tables: {e.strerror or e}") from e
    except (ValueError, KeyError, TypeError) as e:
        raise TablesError(name, f"not a valid entropy tables file ({e})") from e
    return t.check(name)


def freqs_from_counts(counts: np.ndarray, prior: float = 0.05) -> np.ndarray:
    """Integer tables (.., n) summing to 2^24, every entry >= 1, from histograms (.., n)."""
    counts = np.asarray(counts, np.float64) + prior
    n = counts.shape[-1]
    p = counts / counts.sum(-1, keepdims=True)
    out = 1 + np.floor(p * (TOTAL - n)).astype(np.int64)
    short = TOTAL - out.sum(-1)  # 0 <= short < n: give it to the most probable symbol
    idx = np.argmax(out, axis=-1)
    np.put_along_axis(out, idx[..., None],
                      np.take_along_axis(out, idx[..., None], -1) + short[..., None], -1)
    freqs: np.ndarray = out
    return freqs
