"""Validation of a decoded `.ldmz` header map into a Header: types, ranges, limits, layout."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ldmz.formats.errors import FormatError
from ldmz.formats.header import (
    MAX_AUDIO_CHANNELS,
    MAX_CHUNK_BYTES,
    MAX_CHUNK_RAW_BYTES,
    MAX_CHUNK_VALUES,
    MAX_CHUNKS,
    MAX_FRAMES,
    MAX_FRAMES_PER_CHUNK,
    MAX_FREQ_BINS,
    MAX_GAIN,
    MAX_LATENT_CHANNELS,
    MAX_QUANT_ABS,
    MAX_SAMPLE_RATE,
    MAX_SAMPLES,
    MAX_STRING,
    MAX_TAG_KEY,
    MAX_TAG_VALUE,
    MAX_TAGS,
    MAX_VALUES_PER_SECOND,
    QUANT_MODES,
    ChunkEntry,
    Header,
    LatentInfo,
    MelParams,
    ModelInfo,
    QuantizerInfo,
    SourceInfo,
)
from ldmz.formats.quantize import MAX_BITS


def _utf8_len(s: str) -> int:
    try:
        return len(s.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates cannot be stored
        return 1 << 62


def _get(d: Any, key: str, kind: type | tuple[type, ...], src: str, where: str,
         default: Any = ...) -> Any:
    name = f"{where}.{key}" if where else key
    if not isinstance(d, dict):
        raise FormatError(src, f"header field '{where}' must be a map")
    if key not in d:
        if default is ...:
            raise FormatError(src, f"header field '{name}' is missing")
        return default
    v = d[key]
    if kind is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if isinstance(v, bool) or not isinstance(v, kind):
        raise FormatError(src, f"header field '{name}' has the wrong type")
    if isinstance(v, float) and not math.isfinite(v):
        raise FormatError(src, f"header field '{name}' is not a finite number")
    if isinstance(v, str) and _utf8_len(v) > MAX_STRING:
        raise FormatError(src, f"header field '{name}' is not UTF-8 of at most {MAX_STRING} bytes")
    return v


def _int(d: Any, key: str, src: str, where: str, lo: int, hi: int, default: Any = ...) -> int:
    v: int = _get(d, key, int, src, where, default)
    if not lo <= v <= hi:
        raise FormatError(src, f"header field '{where}.{key}' = {v} is outside {lo}..{hi}")
    return v


def _float(d: Any, key: str, src: str, where: str, ok: Callable[[float], bool] | None = None,
           default: Any = ...) -> float:
    v: float = _get(d, key, float, src, where, default)
    if ok is not None and not ok(v):
        raise FormatError(src, f"header field '{where}.{key}' = {v} is out of range")
    return v


def _floats(v: Any, n: int, src: str, where: str, bound: float = math.inf) -> tuple[float, ...]:
    if not isinstance(v, list) or len(v) != n:
        raise FormatError(src, f"header field '{where}' must be a list of {n} numbers")
    out = []
    for x in v:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not abs(x) <= bound:
            what = "a finite number" if bound == math.inf else f"a number within +-{bound:g}"
            raise FormatError(src, f"header field '{where}' holds a value that is not {what}")
        out.append(float(x))
    return tuple(out)


def header_from_dict(d: Any, src: str) -> Header:
    """Validate a decoded msgpack map and build a :class:`Header`; unknown keys are ignored."""
    if not isinstance(d, dict):
        raise FormatError(src, "the header is not a msgpack map")
    md = _get(d, "model", dict, src, "")
    model = ModelInfo(
        id=_get(md, "id", str, src, "model"),
        revision=_get(md, "revision", str, src, "model", ""),
        weights_sha256=_get(md, "weights_sha256", str, src, "model", ""),
        scaling_factor=_float(md, "scaling_factor", src, "model", lambda v: v > 0, 1.0),
        decoder_sha256=_get(md, "decoder_sha256", str, src, "model", ""),
    )
    ed = _get(d, "mel", dict, src, "")
    fmin = _float(ed, "fmin", src, "mel", lambda v: v >= 0)
    mel = MelParams(
        sample_rate=_int(ed, "sample_rate", src, "mel", 1000, 768000),
        n_fft=_int(ed, "n_fft", src, "mel", 16, 1 << 16),
        hop_length=_int(ed, "hop_length", src, "mel", 1, 1 << 16),
        win_length=_int(ed, "win_length", src, "mel", 1, 1 << 16),
        n_mels=_int(ed, "n_mels", src, "mel", 1, MAX_FREQ_BINS),
        fmin=fmin,
        fmax=_float(ed, "fmax", src, "mel", lambda v: v > fmin),
        log_floor=_float(ed, "log_floor", src, "mel", lambda v: v > 0),
        frontend=_get(ed, "frontend", str, src, "mel", ""),
    )
    sd = _get(d, "source", dict, src, "")
    channels = _int(sd, "channels", src, "source", 1, MAX_AUDIO_CHANNELS)
    source = SourceInfo(
        sample_rate=_int(sd, "sample_rate", src, "source", 1, MAX_SAMPLE_RATE),
        channels=channels,
        samples=_int(sd, "samples", src, "source", 0, MAX_SAMPLES),
        gain=_floats(_get(sd, "gain", list, src, "source"), channels, src, "source.gain",
                     MAX_GAIN),
    )
    if any(g < 0 for g in source.gain):
        raise FormatError(src, "header field 'source.gain' holds a negative value")
    ld = _get(d, "latent", dict, src, "")
    latent = LatentInfo(
        channels=_int(ld, "channels", src, "latent", 1, MAX_LATENT_CHANNELS),
        freq_bins=_int(ld, "freq_bins", src, "latent", 1, MAX_FREQ_BINS),
        frames=_int(ld, "frames", src, "latent", 0, MAX_FRAMES),
        frames_per_chunk=_int(ld, "frames_per_chunk", src, "latent", 1, MAX_FRAMES_PER_CHUNK),
        overlap=_int(ld, "overlap", src, "latent", 0, MAX_FRAMES_PER_CHUNK - 1),
        mel_frames=_int(ld, "mel_frames", src, "latent", 0, MAX_FRAMES * 1024, 0),
        time_downsample=_int(ld, "time_downsample", src, "latent", 1, 1024, 4),
    )
    qd = _get(d, "quantizer", dict, src, "")
    mode = _get(qd, "mode", str, src, "quantizer")
    if mode not in QUANT_MODES:
        raise FormatError(src, f"unknown quantizer mode (dtype) {mode[:40]!r}; "
                               f"known: {', '.join(QUANT_MODES)}")
    bits: tuple[int, ...] = ()
    if mode == "affine":
        raw_bits = _get(qd, "bits", list, src, "quantizer")
        if len(raw_bits) != latent.channels or not all(
            isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= MAX_BITS for b in raw_bits
        ):
            raise FormatError(src, f"quantizer.bits must list {latent.channels} values in 0..8")
        bits = tuple(raw_bits)
    quantizer = QuantizerInfo(mode=mode, bits=bits)
    chunk_list = _get(d, "chunks", list, src, "")
    if len(chunk_list) > MAX_CHUNKS:
        raise FormatError(src, f"{len(chunk_list)} chunks exceed the limit of {MAX_CHUNKS}")
    chunks = tuple(_chunk(c, i, channels, latent, mode, src) for i, c in enumerate(chunk_list))
    tags = check_tags(_get(d, "tags", dict, src, "", {}), src)
    header = Header(
        model=model, mel=mel, source=source, latent=latent, quantizer=quantizer, chunks=chunks,
        writer=_get(d, "writer", str, src, "", ""), vocoder=_get(d, "vocoder", str, src, "", ""),
        tags=tags,
    )
    check_layout(header, src)
    return header


def check_tags(tags: Any, src: str) -> dict[str, str]:
    """The tags map, checked: at most MAX_TAGS pairs of bounded UTF-8 strings."""
    if not isinstance(tags, dict) or len(tags) > MAX_TAGS or not all(
        isinstance(k, str) and isinstance(v, str) and _utf8_len(k) <= MAX_TAG_KEY
        and _utf8_len(v) <= MAX_TAG_VALUE
        for k, v in tags.items()
    ):
        raise FormatError(src, f"tags must be at most {MAX_TAGS} UTF-8 string pairs, keys of at "
                               f"most {MAX_TAG_KEY} bytes, values of at most {MAX_TAG_VALUE}")
    return dict(tags)


_CHUNK_INTS = (("frame_start", MAX_FRAMES), ("frames", 2 * MAX_FRAMES_PER_CHUNK),
               ("offset", MAX_CHUNKS * MAX_CHUNK_BYTES), ("size", MAX_CHUNK_BYTES),
               ("raw_size", MAX_CHUNK_RAW_BYTES), ("crc32", 0xFFFFFFFF))


def _chunk_fast(c: Any, channels: int, lc: int, mode: str) -> ChunkEntry | None:
    """A well-formed chunk entry, checked in one pass; None sends it to the slow path, which
    finds and names the problem. Keeps parsing a header of 65536 entries to about a second."""
    if type(c) is not dict:
        return None
    try:
        ints = [c[k] for k, _ in _CHUNK_INTS]
    except KeyError:
        return None
    for v, (_, hi) in zip(ints, _CHUNK_INTS, strict=True):
        if type(v) is not int or not 0 <= v <= hi:
            return None
    if mode != "affine":
        return ChunkEntry(ints[0], ints[1], ints[2], ints[3], ints[4], ints[5])
    qo, qs = c.get("q_offset"), c.get("q_step")
    if type(qo) is not list or type(qs) is not list or len(qo) != channels \
            or len(qs) != channels:
        return None
    rows = []
    for r in (*qo, *qs):
        if type(r) is not list or len(r) != lc:
            return None
        for x in r:
            if type(x) not in (float, int) or not abs(x) <= MAX_QUANT_ABS:  # NaN fails too
                return None
        rows.append(tuple(float(x) for x in r))
    fs, fr, off, size, raw, crc = ints
    return ChunkEntry(fs, fr, off, size, raw, crc, tuple(rows[:channels]),
                      tuple(rows[channels:]))


def _chunk(c: Any, i: int, channels: int, latent: LatentInfo, mode: str, src: str) -> ChunkEntry:
    fast = _chunk_fast(c, channels, latent.channels, mode)
    if fast is not None:
        return fast
    w = f"chunks[{i}]"
    fields: dict[str, Any] = dict(
        frame_start=_int(c, "frame_start", src, w, 0, MAX_FRAMES),
        frames=_int(c, "frames", src, w, 0, 2 * MAX_FRAMES_PER_CHUNK),
        offset=_int(c, "offset", src, w, 0, MAX_CHUNKS * MAX_CHUNK_BYTES),
        size=_int(c, "size", src, w, 0, MAX_CHUNK_BYTES),
        raw_size=_int(c, "raw_size", src, w, 0, MAX_CHUNK_RAW_BYTES),
        crc32=_int(c, "crc32", src, w, 0, 0xFFFFFFFF),
    )
    if mode != "affine":
        return ChunkEntry(**fields)
    qo = _get(c, "q_offset", list, src, w)
    qs = _get(c, "q_step", list, src, w)
    if len(qo) != channels or len(qs) != channels:
        raise FormatError(src, f"{w}: q_offset and q_step need one row per audio channel")
    return ChunkEntry(
        **fields,
        q_offset=tuple(_floats(r, latent.channels, src, f"{w}.q_offset", MAX_QUANT_ABS)
                       for r in qo),
        q_step=tuple(_floats(r, latent.channels, src, f"{w}.q_step", MAX_QUANT_ABS) for r in qs),
    )


def check_cost(h: Header, src: str) -> None:
    """Tie the work a file can ask for to the audio it claims to hold.

    Latent frames may not run far beyond what ``source.samples`` needs (decoders stop there
    anyway), and the latent values per second of audio are bounded, so reading and decoding
    cost a bounded multiple of the audio's duration, whatever the header's other numbers say.
    """
    s = h.source
    if not 1 <= s.sample_rate <= MAX_SAMPLE_RATE:
        raise FormatError(src, f"header field 'source.sample_rate' = {s.sample_rate} is outside "
                               f"1..{MAX_SAMPLE_RATE}")
    if not all(0 <= g <= MAX_GAIN for g in s.gain):
        raise FormatError(src, f"header field 'source.gain' holds a value outside 0..{MAX_GAIN:g}")
    lat, need = h.latent, h.frames_needed
    if lat.frames > 2 * need + 64:
        raise FormatError(src, f"latent.frames = {lat.frames}, but {h.source.samples} samples "
                               f"need {need}: the header is inconsistent")
    frame_rate = h.mel.sample_rate / (h.mel.hop_length * lat.time_downsample)
    per_second = lat.channels * lat.freq_bins * frame_rate
    if per_second > MAX_VALUES_PER_SECOND:
        raise FormatError(src, f"{per_second:.0f} latent values per second of audio, over the "
                               f"limit of {MAX_VALUES_PER_SECOND}")


def check_layout(h: Header, src: str) -> None:
    """Check the cost bounds (check_cost), then that chunks tile the latent frames and the data
    section; raise FormatError if not. Both header formats end here."""
    check_cost(h, src)
    lat = h.latent
    if lat.overlap >= lat.frames_per_chunk:
        raise FormatError(src, "latent.overlap must be smaller than latent.frames_per_chunk")
    expected_chunks = -(-lat.frames // lat.frames_per_chunk)
    if len(h.chunks) != expected_chunks:
        raise FormatError(
            src, f"{len(h.chunks)} chunks listed, {expected_chunks} needed for {lat.frames} frames"
        )
    pos = 0
    for i, c in enumerate(h.chunks):
        start = i * lat.frames_per_chunk
        frames = min(lat.frames_per_chunk + lat.overlap, lat.frames - start)
        if c.frame_start != start or c.frames != frames:
            raise FormatError(src, f"chunks[{i}] covers frames {c.frame_start}+{c.frames}, "
                                   f"expected {start}+{frames}")
        if c.offset != pos:
            raise FormatError(src, f"chunks[{i}] starts at {c.offset}, expected {pos}")
        values = h.source.channels * lat.channels * frames * lat.freq_bins
        if values > MAX_CHUNK_VALUES:
            raise FormatError(src, f"chunks[{i}] holds {values} latent values, over the limit of "
                                   f"{MAX_CHUNK_VALUES}")
        if c.raw_size != h.chunk_raw_size(i):
            raise FormatError(src, f"chunks[{i}] declares {c.raw_size} bytes decompressed, its "
                                   f"shape needs {h.chunk_raw_size(i)}")
        pos += c.size
