"""Format 2's compact header: short keys, positional lists, no per-chunk quantizer parameters.

Format 2 stores entropy-coded (``rans``) latents. Everything the model folder already says (the
quantizer steps, the probability tables) is named by hash, not repeated; see SPEC.md, section 7.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ldmz.formats.entropy import JOINT_WEIGHTS, MAX_JOINT_WEIGHT
from ldmz.formats.errors import FormatError
from ldmz.formats.header import (
    MAX_AUDIO_CHANNELS,
    MAX_CHUNK_BYTES,
    MAX_CHUNKS,
    MAX_FRAMES,
    MAX_FRAMES_PER_CHUNK,
    MAX_FREQ_BINS,
    MAX_LATENT_CHANNELS,
    MAX_SAMPLES,
    RANS,
    ChunkEntry,
    Header,
    LatentInfo,
    MelParams,
    ModelInfo,
    QuantizerInfo,
    SourceInfo,
)
from ldmz.formats.parse import _get, _utf8_len, check_layout, check_tags

CODING = "r24"  # rANS, 32-bit words, 64-bit state, 24-bit integer tables
CODING_JOINT = "r24s"  # r24 with inter-channel prediction (format 2.1; per-chunk key "j")
HASH_BYTES = 8  # SHA-256 prefixes stored for the weights and the tables


def _f32(x: float) -> float | int:
    """An integer when exact, else a float (the map is packed with floats as float 32)."""
    return int(x) if float(x).is_integer() and abs(x) < 1 << 53 else float(x)


def _mel_float(v: float) -> float:
    """The shortest decimal that rounds to the same float 32 (``1e-05``, not 9.99999974e-06)."""
    return float(str(np.float32(v)))


def header_to_compact(h: Header) -> dict[str, Any]:
    """The format-2 map of a ``rans`` header."""
    mel, src, lat, q = h.mel, h.source, h.latent, h.quantizer
    d: dict[str, Any] = {
        "m": [h.model.id, bytes.fromhex(h.model.weights_sha256[:2 * HASH_BYTES])],
        "e": [mel.sample_rate, mel.n_fft, mel.hop_length, mel.win_length, mel.n_mels,
              _f32(mel.fmin), _f32(mel.fmax), _f32(mel.log_floor), mel.frontend],
        "s": [src.sample_rate, src.channels, src.samples, [_f32(g) for g in src.gain]],
        "l": [lat.channels, lat.freq_bins, lat.frames, lat.frames_per_chunk, lat.overlap,
              lat.mel_frames, lat.time_downsample],
        "c": [CODING, bytes.fromhex(q.tables_sha256[:2 * HASH_BYTES]), q.quality],
        "k": [v for c in h.chunks for v in (c.size, c.crc32)],
    }
    if is_joint(h):
        d["c"][0] = CODING_JOINT
        d["j"] = [[list(j) if j else 0 for j in (c.joint or ((),) * (src.channels - 1))]
                  for c in h.chunks]
    if h.model.decoder_sha256:
        d["m"].append(bytes.fromhex(h.model.decoder_sha256[:2 * HASH_BYTES]))
    if h.model.scaling_factor != 1.0:
        d["f"] = float(h.model.scaling_factor)
    if h.writer:
        d["w"] = h.writer
    if h.vocoder:
        d["v"] = h.vocoder
    if h.tags:
        d["t"] = dict(h.tags)
    return d


def is_joint(h: Header) -> bool:
    """Whether any chunk codes a channel from another (coding ``r24s``, format 2.1)."""
    return any(any(c.joint) for c in h.chunks)


def _joint(d: dict[str, Any], n: int, a: int, src: str) -> list[tuple[tuple[int, ...], ...]]:
    """The per-chunk inter-channel coding of key ``j``: n lists of a-1 entries."""
    j = _get(d, "j", list, src, "")
    what = (f"header field 'j' must list {n} chunks of {a - 1} entries, each 0 or [b, "
            f"{JOINT_WEIGHTS} weights 0..{MAX_JOINT_WEIGHT}] (b < the channel, the first "
            f"weight >= 1)")
    if len(j) != n or a < 2:
        raise FormatError(src, what)
    out = []
    for row in j:
        if not isinstance(row, list) or len(row) != a - 1:
            raise FormatError(src, what)
        entries: list[tuple[int, ...]] = []
        for ch, e in enumerate(row, 1):
            if isinstance(e, int) and not isinstance(e, bool) and e == 0:
                entries.append(())
                continue
            if (not isinstance(e, list) or len(e) != 1 + JOINT_WEIGHTS
                    or any(isinstance(v, bool) or not isinstance(v, int) for v in e)
                    or not 0 <= e[0] < ch or e[1] < 1
                    or not all(0 <= v <= MAX_JOINT_WEIGHT for v in e[1:])):
                raise FormatError(src, what)
            entries.append(tuple(e))
        out.append(tuple(entries) if any(entries) else ())
    return out


def _list(d: dict[str, Any], key: str, n: int | tuple[int, int], src: str) -> list[Any]:
    v: list[Any] = _get(d, key, list, src, "")
    lo, hi = (n, n) if isinstance(n, int) else n
    if not lo <= len(v) <= hi:
        raise FormatError(src, f"header field '{key}' must hold {lo}..{hi} values")
    return v


def _int(v: Any, name: str, lo: int, hi: int, src: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise FormatError(src, f"header field '{name}' must be an integer in {lo}..{hi}")
    return v


def _num(v: Any, name: str, src: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
        raise FormatError(src, f"header field '{name}' must be a finite number")
    return float(v)


def _float32(v: Any, name: str, src: str) -> float:
    """A float field as the writer stores it (float 32): finite and within float 32's range,
    rounded to float 32, so a header reads back the same after it is written again."""
    x = _num(v, name, src)
    if abs(x) > float(np.finfo(np.float32).max):
        raise FormatError(src, f"header field '{name}' is out of float32 range")
    return float(np.float32(x))


def _num32(v: Any, name: str, src: str) -> float:
    """A mel float field: the shortest decimal of its float 32 (see ``_mel_float``)."""
    return _mel_float(_float32(v, name, src))


def _str(v: Any, name: str, src: str) -> str:
    if not isinstance(v, str) or _utf8_len(v) > 4096:
        raise FormatError(src, f"header field '{name}' must be a string of at most 4096 bytes")
    return v


def _hash(v: Any, name: str, src: str, empty: bool = True) -> str:
    if not isinstance(v, bytes) or len(v) not in ((0, HASH_BYTES) if empty else (HASH_BYTES,)):
        raise FormatError(src, f"header field '{name}' must be {HASH_BYTES} bytes (bin)")
    return v.hex()


def header_from_compact(d: Any, src: str) -> Header:
    """Validate a decoded format-2 map and build a :class:`Header`; unknown keys are ignored."""
    if not isinstance(d, dict):
        raise FormatError(src, "the header is not a msgpack map")
    m = _list(d, "m", (2, 3), src)
    sf = _float32(d.get("f", 1.0), "f", src)
    if sf <= 0:
        raise FormatError(src, "header field 'f' (scaling factor) must be > 0")
    model = ModelInfo(id=_str(m[0], "m[0]", src), weights_sha256=_hash(m[1], "m[1]", src),
                      scaling_factor=sf,
                      decoder_sha256=_hash(m[2], "m[2]", src) if len(m) > 2 else "")
    e = _list(d, "e", 9, src)
    fmin, fmax, floor = (_num32(e[i], f"e[{i}]", src) for i in (5, 6, 7))
    if not (0 <= fmin < fmax and floor > 0):
        raise FormatError(src, "header field 'e': need 0 <= fmin < fmax and log_floor > 0")
    mel = MelParams(sample_rate=_int(e[0], "e[0]", 1000, 768000, src),
                    n_fft=_int(e[1], "e[1]", 16, 1 << 16, src),
                    hop_length=_int(e[2], "e[2]", 1, 1 << 16, src),
                    win_length=_int(e[3], "e[3]", 1, 1 << 16, src),
                    n_mels=_int(e[4], "e[4]", 1, MAX_FREQ_BINS, src),
                    fmin=fmin, fmax=fmax, log_floor=floor, frontend=_str(e[8], "e[8]", src))
    s = _list(d, "s", 4, src)
    channels = _int(s[1], "s[1]", 1, MAX_AUDIO_CHANNELS, src)
    if not isinstance(s[3], list) or len(s[3]) != channels:
        raise FormatError(src, f"header field 's[3]' (gain) must list {channels} numbers")
    source = SourceInfo(sample_rate=_int(s[0], "s[0]", 1, 10_000_000, src), channels=channels,
                        samples=_int(s[2], "s[2]", 0, MAX_SAMPLES, src),
                        gain=tuple(_float32(g, "s[3]", src) for g in s[3]))
    la = _list(d, "l", 7, src)
    latent = LatentInfo(channels=_int(la[0], "l[0]", 1, MAX_LATENT_CHANNELS, src),
                        freq_bins=_int(la[1], "l[1]", 1, MAX_FREQ_BINS, src),
                        frames=_int(la[2], "l[2]", 0, MAX_FRAMES, src),
                        frames_per_chunk=_int(la[3], "l[3]", 1, MAX_FRAMES_PER_CHUNK, src),
                        overlap=_int(la[4], "l[4]", 0, MAX_FRAMES_PER_CHUNK - 1, src),
                        mel_frames=_int(la[5], "l[5]", 0, MAX_FRAMES * 1024, src),
                        time_downsample=_int(la[6], "l[6]", 1, 1024, src))
    c = _list(d, "c", 3, src)
    if c[0] not in (CODING, CODING_JOINT):
        raise FormatError(src, f"unknown payload coding {str(c[0])[:40]!r}; known: {CODING}, "
                               f"{CODING_JOINT}")
    quant = QuantizerInfo(mode=RANS, quality=_int(c[2], "c[2]", 0, 63, src),
                          tables_sha256=_hash(c[1], "c[1]", src, empty=False))
    k = _get(d, "k", list, src, "")
    if len(k) % 2 or len(k) // 2 > MAX_CHUNKS:
        raise FormatError(src, f"header field 'k' must list (size, crc32) of at most "
                               f"{MAX_CHUNKS} chunks")
    n = len(k) // 2
    joint = _joint(d, n, channels, src) if c[0] == CODING_JOINT else [()] * n
    per, ov, chunks, pos = latent.frames_per_chunk, latent.overlap, [], 0
    for i in range(len(k) // 2):
        size = _int(k[2 * i], f"k[{2 * i}]", 0, MAX_CHUNK_BYTES, src)
        crc = _int(k[2 * i + 1], f"k[{2 * i + 1}]", 0, 0xFFFFFFFF, src)
        start = i * per
        frames = max(0, min(per + ov, latent.frames - start))
        chunks.append(ChunkEntry(start, frames, pos, size, 0, crc, joint=joint[i]))
        pos += size
    h = Header(model=model, mel=mel, source=source, latent=latent, quantizer=quant,
               chunks=tuple(chunks), writer=_str(d.get("w", ""), "w", src),
               vocoder=_str(d.get("v", ""), "v", src), tags=check_tags(d.get("t", {}), src))
    check_layout(h, src)
    return h
