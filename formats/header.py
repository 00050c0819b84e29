"""The `.ldmz` header: frozen dataclasses and the limits readers enforce (parsing: parse.py)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from ldmz.formats.quantize import packed_size

# Limits every reader enforces (see SPEC.md, "Limits").
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_CHUNKS = 1 << 16  # 182 h of 10 s chunks; keeps `ldmz info` on a full header within seconds
MAX_CHUNK_RAW_BYTES = 64 * 1024 * 1024
MAX_CHUNK_BYTES = 65 * 1024 * 1024  # zstd's worst case for MAX_CHUNK_RAW_BYTES, rounded up
MAX_CHUNK_VALUES = 1 << 24  # latent values in one chunk: audio_ch * latent_ch * frames * freq
MAX_AUDIO_CHANNELS = 64
MAX_LATENT_CHANNELS = 256
MAX_FREQ_BINS = 4096
MAX_FRAMES_PER_CHUNK = 1 << 16
MAX_TAGS = 64
MAX_TAG_KEY = 64
MAX_TAG_VALUE = 64 * 1024
MAX_STRING = 4096
MAX_QUANT_ABS = 1e6  # |q_offset| and |q_step| bound: latents are O(1), float16 tops at 65504
MAX_GAIN = 1e4  # source.gain bound: 0 (silence) .. a peak 20000x full scale
MAX_SAMPLE_RATE = 768_000  # source.sample_rate bound, as for the mel rate
MAX_VALUES_PER_SECOND = 1 << 20  # latent values per second of audio per audio channel
MAX_FRAMES = 1 << 40
MAX_SAMPLES = 1 << 48
QUANT_MODES = ("affine", "float16")  # format 1.x; 2.x codes "rans" (compact.py)
RANS = "rans"


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
    """How latents are stored: ``affine`` codes, ``bits`` per latent channel, or ``float16``.

    ``rans`` (format 2): integer codes at ``quality`` of the model's entropy tables, whose
    file's SHA-256 starts with ``tables_sha256``, rANS-coded.
    """

    mode: str = "affine"
    bits: tuple[int, ...] = ()
    quality: int = 0
    tables_sha256: str = ""


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
    # rans: per audio channel 1..A-1, () coded on its own or (b, h_0..h_5) as the residual of
    # channel b (format 2.1, coding r24s; SPEC.md 7.5); () for every chunk of an r24 file
    joint: tuple[tuple[int, ...], ...] = ()


def kbps(n_bytes: int, seconds: float) -> float | None:
    """Bitrate of ``n_bytes`` of coded audio lasting ``seconds``, in kbps (None for 0 s)."""
    return n_bytes * 8 / seconds / 1000 if seconds > 0 else None


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
        """The header as plain Python types (format 1's msgpack map, also JSON-ready).

        Field by field rather than ``dataclasses.asdict`` (which deep-copies every value): a
        header of 65536 chunk entries takes a fraction of a second, not a minute.
        """
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self)
               if f.name != "chunks"}
        out["chunks"] = [_chunk_dict(c) for c in self.chunks]
        d: dict[str, Any] = {f.name: out[f.name] for f in fields(self)}
        if self.quantizer.mode != RANS:  # format 1 has no such keys
            del d["quantizer"]["quality"], d["quantizer"]["tables_sha256"]
        return d

    @property
    def values_per_chunk(self) -> list[int]:
        """Latent values stored in each chunk (audio_ch * latent_ch * frames * freq)."""
        a, lc, f = self.source.channels, self.latent.channels, self.latent.freq_bins
        return [a * lc * c.frames * f for c in self.chunks]

    @property
    def duration(self) -> float:
        """Duration of the source audio in seconds."""
        return self.source.samples / self.source.sample_rate

    def bitrate_kbps(self, file_size: int) -> float | None:
        """The file's bits (header included) per second of audio, in kbps; None if empty."""
        return kbps(file_size, self.duration)

    def compression_ratio(self, file_size: int) -> float | None:
        """16-bit PCM of the source (its rate and channels) over ``file_size``; None if 0."""
        s = self.source
        return s.sample_rate * s.channels * 2 * self.duration / file_size if file_size else None

    @property
    def data_size(self) -> int:
        """Bytes of the data section (all chunks)."""
        return sum(c.size for c in self.chunks)

    @property
    def frames_needed(self) -> int:
        """Latent frames that ``source.samples`` of audio take (what a writer stores).

        The source is resampled to the mel rate, padded to at least ``n_fft`` and to whole
        latent frames. Cost follows this number, not ``latent.frames``.
        """
        s, m = self.source, self.mel
        n = -(-s.samples * m.sample_rate // s.sample_rate)
        return -(-max(n, m.n_fft) // (m.hop_length * self.latent.time_downsample))

    def chunk_shape(self, index: int) -> tuple[int, int, int, int]:
        """Shape (audio_channels, latent_channels, frames, freq_bins) of chunk ``index``."""
        c = self.chunks[index]
        return (self.source.channels, self.latent.channels, c.frames, self.latent.freq_bins)

    def chunk_raw_size(self, index: int) -> int:
        """Decompressed byte size that chunk ``index`` must have."""
        a, lc, t, f = self.chunk_shape(index)
        if self.quantizer.mode == "float16":
            return a * lc * t * f * 2
        if self.quantizer.mode == RANS:
            return 0  # entropy-coded chunks are not zstd frames: no decompressed size
        return a * sum(packed_size(b, t * f) for b in self.quantizer.bits)


def _chunk_dict(c: ChunkEntry) -> dict[str, Any]:
    d = {"frame_start": c.frame_start, "frames": c.frames, "offset": c.offset,
         "size": c.size, "raw_size": c.raw_size, "crc32": c.crc32,
         "q_offset": [list(r) for r in c.q_offset], "q_step": [list(r) for r in c.q_step]}
    if c.joint:  # format 2.1 only (never in a format-1 map)
        d["joint"] = [list(j) for j in c.joint]
    return d


def _plain(x: Any) -> Any:
    if is_dataclass(x) and not isinstance(x, type):
        return {f.name: _plain(getattr(x, f.name)) for f in fields(x)}
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x
