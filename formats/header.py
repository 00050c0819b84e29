"""The `.ldmz` header: frozen dataclasses, conversion to and from the msgpack map, validation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ldmz.formats.errors import FormatError
from ldmz.formats.quantize import MAX_BITS, packed_size

# Limits every reader enforces (see SPEC.md, "Limits").
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_CHUNKS = 1 << 20
MAX_CHUNK_RAW_BYTES = 64 * 1024 * 1024
MAX_AUDIO_CHANNELS = 64
MAX_LATENT_CHANNELS = 256
MAX_FREQ_BINS = 4096
MAX_FRAMES_PER_CHUNK = 1 << 16
MAX_TAGS = 64
MAX_TAG_KEY = 64
MAX_TAG_VALUE = 64 * 1024
MAX_STRING = 4096
QUANT_MODES = ("affine", "float16")


@dataclass(frozen=True)
class ModelInfo:
    """Which model made the latents: the decoder must match it."""

    id: str
    revision: str = ""
    weights_sha256: str = ""
    scaling_factor: float = 1.0
    decoder_sha256: str = ""


@dataclass(frozen=True)
class MelParams:
    """The mel front-end the latents were computed from."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    log_floor: float = 1e-5
    frontend: str = "hifigan"


@dataclass(frozen=True)
class SourceInfo:
    """The input audio: rate, channel count, length in samples and the gain removed per channel."""

    sample_rate: int
    channels: int
    samples: int
    gain: tuple[float, ...] = ()


@dataclass(frozen=True)
class LatentInfo:
    """Latent geometry: (channels, frames, freq_bins) per audio channel, stored in chunks."""

    channels: int
    freq_bins: int
    frames: int
    frames_per_chunk: int
    overlap: int = 0
    mel_frames: int = 0
    time_downsample: int = 4


@dataclass(frozen=True)
class QuantizerInfo:
    """How latents are stored: ``affine`` codes, ``bits`` per latent channel, or ``float16``."""

    mode: str = "affine"
    bits: tuple[int, ...] = ()


@dataclass(frozen=True)
class ChunkEntry:
    """One chunk: where its bytes are (relative to the data section) and how to dequantize them."""

    frame_start: int
    frames: int
    offset: int
    size: int
    raw_size: int
    crc32: int
    q_offset: tuple[tuple[float, ...], ...] = ()
    q_step: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True)
class Header:
    """Everything decode needs, as stored in the msgpack header."""

    model: ModelInfo
    mel: MelParams
    source: SourceInfo
    latent: LatentInfo
    quantizer: QuantizerInfo
    chunks: tuple[ChunkEntry, ...]
    writer: str = ""
    vocoder: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The header as plain Python types (the msgpack map, also JSON-ready)."""
        return _plain(asdict(self))

    @property
    def duration(self) -> float:
        """Duration of the source audio in seconds."""
        return self.source.samples / self.source.sample_rate

    @property
    def data_size(self) -> int:
        """Bytes of the data section (all chunks)."""
        return sum(c.size for c in self.chunks)

    def chunk_shape(self, index: int) -> tuple[int, int, int, int]:
        """Shape (audio_channels, latent_channels, frames, freq_bins) of chunk ``index``."""
        c = self.chunks[index]
        return (self.source.channels, self.latent.channels, c.frames, self.latent.freq_bins)

    def chunk_raw_size(self, index: int) -> int:
        """Decompressed byte size that chunk ``index`` must have."""
        a, lc, t, f = self.chunk_shape(index)
        if self.quantizer.mode == "float16":
            return a * lc * t * f * 2
        return a * sum(packed_size(b, t * f) for b in self.quantizer.bits)


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _get(d: Any, key: str, kind: type | tuple[type, ...], src: str, where: str, default: Any = ...):
    if not isinstance(d, dict):
        raise FormatError(src, f"header field '{where}' must be a map")
    if key not in d:
        if default is ...:
            raise FormatError(src, f"header field '{where}.{key}' is missing")
        return default
    v = d[key]
    if kind is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if isinstance(v, bool) or not isinstance(v, kind):
        raise FormatError(src, f"header field '{where}.{key}' has the wrong type")
    if isinstance(v, float) and not math.isfinite(v):
        raise FormatError(src, f"header field '{where}.{key}' is not a finite number")
    if isinstance(v, str) and len(v) > MAX_STRING:
        raise FormatError(src, f"header field '{where}.{key}' is longer than {MAX_STRING}")
    return v


def _int(d: Any, key: str, src: str, where: str, lo: int, hi: int, default: Any = ...) -> int:
    v = _get(d, key, int, src, where, default)
    if not lo <= v <= hi:
        raise FormatError(src, f"header field '{where}.{key}' = {v} is outside {lo}..{hi}")
    return v


def _floats(v: Any, n: int, src: str, where: str) -> tuple[float, ...]:
    if not isinstance(v, list) or len(v) != n:
        raise FormatError(src, f"header field '{where}' must be a list of {n} numbers")
    out = []
    for x in v:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise FormatError(src, f"header field '{where}' holds a non-finite or non-number value")
        out.append(float(x))
    return tuple(out)


def header_from_dict(d: Any, src: str) -> Header:
    """Validate a decoded msgpack map and build a :class:`Header`; unknown keys are ignored."""
    m = _get({"h": d}, "h", dict, src, "")
    md = _get(m, "model", dict, src, "")
    model = ModelInfo(
        id=_get(md, "id", str, src, "model"),
        revision=_get(md, "revision", str, src, "model", ""),
        weights_sha256=_get(md, "weights_sha256", str, src, "model", ""),
        scaling_factor=_get(md, "scaling_factor", float, src, "model", 1.0),
        decoder_sha256=_get(md, "decoder_sha256", str, src, "model", ""),
    )
    ed = _get(m, "mel", dict, src, "")
    mel = MelParams(
        sample_rate=_int(ed, "sample_rate", src, "mel", 1000, 768000),
        n_fft=_int(ed, "n_fft", src, "mel", 16, 1 << 16),
        hop_length=_int(ed, "hop_length", src, "mel", 1, 1 << 16),
        win_length=_int(ed, "win_length", src, "mel", 1, 1 << 16),
        n_mels=_int(ed, "n_mels", src, "mel", 1, MAX_FREQ_BINS),
        fmin=_get(ed, "fmin", float, src, "mel"),
        fmax=_get(ed, "fmax", float, src, "mel"),
        log_floor=_get(ed, "log_floor", float, src, "mel"),
        frontend=_get(ed, "frontend", str, src, "mel", ""),
    )
    sd = _get(m, "source", dict, src, "")
    channels = _int(sd, "channels", src, "source", 1, MAX_AUDIO_CHANNELS)
    source = SourceInfo(
        sample_rate=_int(sd, "sample_rate", src, "source", 1, 10_000_000),
        channels=channels,
        samples=_int(sd, "samples", src, "source", 0, 1 << 48),
        gain=_floats(_get(sd, "gain", list, src, "source"), channels, src, "source.gain"),
    )
    ld = _get(m, "latent", dict, src, "")
    latent = LatentInfo(
        channels=_int(ld, "channels", src, "latent", 1, MAX_LATENT_CHANNELS),
        freq_bins=_int(ld, "freq_bins", src, "latent", 1, MAX_FREQ_BINS),
        frames=_int(ld, "frames", src, "latent", 0, 1 << 40),
        frames_per_chunk=_int(ld, "frames_per_chunk", src, "latent", 1, MAX_FRAMES_PER_CHUNK),
        overlap=_int(ld, "overlap", src, "latent", 0, MAX_FRAMES_PER_CHUNK),
        mel_frames=_int(ld, "mel_frames", src, "latent", 0, 1 << 44, 0),
        time_downsample=_int(ld, "time_downsample", src, "latent", 1, 1024, 4),
    )
    qd = _get(m, "quantizer", dict, src, "")
    mode = _get(qd, "mode", str, src, "quantizer")
    if mode not in QUANT_MODES:
        raise FormatError(src, f"unknown quantizer mode (dtype) '{mode}'; known: {QUANT_MODES}")
    bits: tuple[int, ...] = ()
    if mode == "affine":
        raw_bits = _get(qd, "bits", list, src, "quantizer")
        if len(raw_bits) != latent.channels or not all(
            isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= MAX_BITS for b in raw_bits
        ):
            raise FormatError(src, f"quantizer.bits must list {latent.channels} values in 0..8")
        bits = tuple(raw_bits)
    quantizer = QuantizerInfo(mode=mode, bits=bits)
    chunk_list = _get(m, "chunks", list, src, "")
    if len(chunk_list) > MAX_CHUNKS:
        raise FormatError(src, f"{len(chunk_list)} chunks exceed the limit of {MAX_CHUNKS}")
    chunks = tuple(_chunk(c, i, channels, latent, mode, src) for i, c in enumerate(chunk_list))
    tags = _get(m, "tags", dict, src, "", {})
    if len(tags) > MAX_TAGS or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= MAX_TAG_KEY
        and len(v.encode("utf-8", "surrogatepass")) <= MAX_TAG_VALUE
        for k, v in tags.items()
    ):
        raise FormatError(src, "tags must be at most 64 UTF-8 string pairs within the size limits")
    header = Header(
        model=model, mel=mel, source=source, latent=latent, quantizer=quantizer, chunks=chunks,
        writer=_get(m, "writer", str, src, "", ""), vocoder=_get(m, "vocoder", str, src, "", ""),
        tags=dict(tags),
    )
    check_layout(header, src)
    return header


def _chunk(c: Any, i: int, channels: int, latent: LatentInfo, mode: str, src: str) -> ChunkEntry:
    w = f"chunks[{i}]"
    entry = ChunkEntry(
        frame_start=_int(c, "frame_start", src, w, 0, 1 << 40),
        frames=_int(c, "frames", src, w, 0, MAX_FRAMES_PER_CHUNK + MAX_FRAMES_PER_CHUNK),
        offset=_int(c, "offset", src, w, 0, 1 << 48),
        size=_int(c, "size", src, w, 0, MAX_CHUNK_RAW_BYTES + 1024),
        raw_size=_int(c, "raw_size", src, w, 0, MAX_CHUNK_RAW_BYTES),
        crc32=_int(c, "crc32", src, w, 0, 0xFFFFFFFF),
    )
    if mode != "affine":
        return entry
    qo = _get(c, "q_offset", list, src, w)
    qs = _get(c, "q_step", list, src, w)
    if len(qo) != channels or len(qs) != channels:
        raise FormatError(src, f"{w}: q_offset and q_step need one row per audio channel")
    return ChunkEntry(
        **{k: getattr(entry, k) for k in ("frame_start", "frames", "offset", "size", "raw_size",
                                          "crc32")},
        q_offset=tuple(_floats(r, latent.channels, src, f"{w}.q_offset") for r in qo),
        q_step=tuple(_floats(r, latent.channels, src, f"{w}.q_step") for r in qs),
    )


def check_layout(h: Header, src: str) -> None:
    """Check that chunks tile the latent frames and the data section; raise FormatError if not."""
    lat = h.latent
    if lat.overlap >= lat.frames_per_chunk:
        raise FormatError(src, "latent.overlap must be smaller than latent.frames_per_chunk")
    expected_chunks = -(-lat.frames // lat.frames_per_chunk) if lat.frames else 0
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
        if c.raw_size != h.chunk_raw_size(i):
            raise FormatError(src, f"chunks[{i}] declares {c.raw_size} bytes decompressed, its "
                                   f"shape needs {h.chunk_raw_size(i)}")
        pos += c.size
