"""The codec: ``encode(audio, sr, params) -> LdmzFile`` and ``decode(file) -> (audio, sr)``."""

from __future__ import annotations

import bisect
import itertools
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ldmz import __version__
from ldmz.codec.audio_io import (
    RESAMPLE_QUALITY,
    check_audio,
    read_audio,
    read_channels,
    resample,
)
from ldmz.codec.dsp.chunking import OLA, fade_len, fade_weights, growing_spans, spans, windows
from ldmz.codec.errors import AudioError, ParamError
from ldmz.codec.params import DecodeParams, EncodeParams
from ldmz.codec.vocoders import trim_heap
from ldmz.formats import FormatError, LdmzFile, MelParams, SourceInfo, kbps, pack_latents
from ldmz.formats.header import MAX_AUDIO_CHANNELS, MAX_CHUNKS, MAX_HEADER_BYTES, MAX_SAMPLE_RATE

if TYPE_CHECKING:  # torch-importing modules: for annotations only
    from ldmz.codec.models import LoadedModel
    from ldmz.codec.vocoders import Vocoder

Progress = Callable[[int, int], None] | None
# The mel front-end of an encode: (waveform at the model's rate, samples to cover in whole latent
# frames) -> (log-mel (frames, n_mels), gain that restores the input level).
MelFrontend = Callable[[np.ndarray, int], tuple[np.ndarray, float]]


def model_frontend(x: np.ndarray, n: int, mel: MelParams) -> tuple[np.ndarray, float]:
    """The training front-end: mean removed, peak 0.5, then the model's log-mel over ``n``."""
    from ldmz.codec.dsp.frontend import log_mel_np, normalize

    x, gain = normalize(x)
    return log_mel_np(x, mel, length=n), gain
VOCODER_WINDOW = 1024  # mel frames per vocoder call
OVER_RANGE = 4.0  # decoded samples beyond +-4 (12 dB over full scale) are garbage, not audio
OUTPUT_BLOCK = 1 << 16  # samples per block of zero padding


def model_window(model: LoadedModel) -> int:
    """Latent frames per VAE call: the default chunk length in the model's frames.

    Decoding takes its window from the model, never from the file, so a header cannot make
    one call to the VAE as large as it likes.
    """
    mel = model.mel
    return max(1, round(EncodeParams().chunk_seconds * mel.sample_rate
                        / (mel.hop_length * model.geometry.time_downsample)))


def encode_latents(x: np.ndarray, sr: int, model: LoadedModel, window: int,
                   progress: Callable[[], None] | None = None,
                   frontend: MelFrontend | None = None) -> tuple[np.ndarray, float, int]:
    """One channel -> (latent mean (C, T, F), gain, mel frames), in windows of latent frames."""
    import torch

    mel, down = model.mel, model.geometry.time_downsample
    unit = mel.hop_length * down
    x = resample(x, sr, mel.sample_rate)
    n = -(-max(len(x), mel.n_fft) // unit) * unit  # whole latent frames
    m, gain = frontend(x, n) if frontend else model_frontend(x, n, mel)
    del x
    frames, out = len(m) // down, None
    for a, s, e, b in spans(frames, window, model.context):
        with torch.inference_mode():
            z = model.encode(torch.from_numpy(m[a * down:b * down])[None, None].to(model.device))
        if out is None:
            out = np.empty((z.shape[1], frames, z.shape[3]), np.float32)
        out[:, s:e] = z[0, :, s - a:e - a].float().cpu().numpy()
        if progress:
            progress()
    assert out is not None, "a channel has at least one latent frame"
    return out, gain, frames * down


def encode(audio: np.ndarray, sr: int, params: EncodeParams = EncodeParams(),
           tags: Mapping[str, str] | None = None, progress: Progress = None) -> LdmzFile:
    """Encode float audio (samples,) or (channels, samples) at rate ``sr`` to an LdmzFile."""
    audio = check_audio(audio)
    return encode_channels(lambda c: audio[c], audio.shape[0], sr, params, tags, progress)


def encode_channels(read: Callable[[int], np.ndarray], channels: int, sr: int,
                    params: EncodeParams = EncodeParams(),
                    tags: Mapping[str, str] | None = None, progress: Progress = None,
                    source: str = "<audio>", frontend: MelFrontend | None = None) -> LdmzFile:
    """Encode ``channels`` channels that ``read(c)`` returns one at a time (float, samples,).

    ``frontend`` replaces the model's mel front-end (the bench's normalization variants).
    """
    from ldmz.codec.dsp.quant import CLIP_PERCENTILE, allocate_bits
    from ldmz.codec.models import load_model
    from ldmz.codec.vocoders import check_vocoder

    if not 1 <= params.bits <= 8:
        raise ParamError(f"bits must be 1..8, got {params.bits}")
    if params.coding not in ("auto", "affine", "rans"):
        raise ParamError(f"coding must be auto, affine or rans, got {params.coding!r}")
    if params.kbps < 0 or params.kbps != params.kbps:
        raise ParamError(f"kbps must be >= 0, got {params.kbps}")
    if not 0 < params.chunk_seconds < 3600:
        raise ParamError(f"chunk_seconds must be > 0 and < 3600, got {params.chunk_seconds}")
    if int(sr) != sr or not 0 < sr <= MAX_SAMPLE_RATE:
        raise ParamError(f"{source}: sample rate must be an integer in 1..{MAX_SAMPLE_RATE}, "
                         f"got {sr}")
    if not 1 <= channels <= MAX_AUDIO_CHANNELS:
        raise AudioError(f"{source}: {channels} channels; ldmz takes 1 to {MAX_AUDIO_CHANNELS}"
                         f" (split or down-mix the file first)")
    if params.vocoder:
        check_vocoder(params.vocoder)
    model = load_model(params.model_name(), params.device, params.offline or None)
    mel, down = model.mel, model.geometry.time_downsample
    win = max(1, round(params.chunk_seconds * mel.sample_rate / (mel.hop_length * down)))
    z: np.ndarray | None = None
    gains: list[float] = []
    state, samples = {"done": 0, "steps": 1}, 0

    def tick() -> None:
        state["done"] += 1
        if progress:
            progress(min(state["done"], state["steps"]), state["steps"])

    for ci in range(channels):
        x = check_audio(read(ci), source)[0]
        if ci == 0:
            samples = len(x)
            n_model = max(-(-samples * mel.sample_rate // int(sr)), mel.n_fft)
            n_frames = -(-n_model // (mel.hop_length * down))
            _check_header_size(channels, model.geometry.channels, -(-n_frames // win), source)
            state["steps"] = channels * len(windows(n_frames, win))
        elif len(x) != samples:
            raise AudioError(f"{source}: channel {ci} has {len(x)} samples, channel 0 "
                             f"{samples}; re-export the file")
        zc, gain, total_mel = encode_latents(x, sr, model, win, tick, frontend)
        del x
        if z is None:
            z = np.empty((channels, *zc.shape), np.float32)
        z[ci] = zc
        gains.append(gain)
    if z is None:
        raise AudioError(f"{source}: no audio channels")
    common: dict[str, Any] = dict(
        model=model.info, mel=mel,
        source=SourceInfo(sample_rate=int(sr), channels=channels, samples=samples,
                          gain=tuple(float(g) for g in gains)),
        frames_per_chunk=win, overlap=0, time_downsample=down, mel_frames=total_mel, tags=tags,
        vocoder=params.vocoder or model.vocoder, writer=f"ldmz {__version__}")
    if _coding(params, model) == "rans":
        return _encode_rans(z, model, params, common)
    return pack_latents(z, bits=allocate_bits(z, params.bits), clip_percentile=CLIP_PERCENTILE,
                        **common)


def _coding(params: EncodeParams, model: LoadedModel) -> str:
    """The payload coding ``params`` asks for with ``model``: ``rans`` or ``affine``."""
    from ldmz.codec.models import ModelError

    wants = params.coding
    if wants == "auto":
        wants = "rans" if model.tables is not None or params.quality >= 0 or params.kbps \
            else "affine"
    if wants == "rans" and model.tables is None:
        raise ModelError(f"model '{model.info.id}' has no entropy tables, so it cannot use "
                         f"--quality/--kbps; use --bits, or a model with tables")
    return wants


def _encode_rans(z: np.ndarray, model: LoadedModel, params: EncodeParams,
                 common: dict[str, Any]) -> LdmzFile:
    """Entropy-code ``z`` at the asked quality, or the best one whose file fits ``kbps``."""
    t = model.tables
    assert t is not None, "_coding checked that the model has tables"
    if params.quality >= t.qualities:
        raise ParamError(f"quality must be 0..{t.qualities - 1} for model "
                         f"'{model.info.id}', got {params.quality}")
    if not params.kbps:
        q = params.quality if params.quality >= 0 else model.default_quality
        return pack_latents(z, tables=t, quality=q, **common)
    secs = common["source"].samples / common["source"].sample_rate
    best: LdmzFile | None = None
    for q in range(t.qualities):  # qualities are ordered by rate: stop at the first too big
        f = pack_latents(z, tables=t, quality=q, **common)
        if best is not None and (kbps(len(f.to_bytes()), secs) or math.inf) > params.kbps:
            break
        best = f
    assert best is not None, "tables have at least one quality"
    return best


def _check_header_size(channels: int, latent_channels: int, chunks: int, source: str) -> None:
    """Refuse up front a chunking whose header readers would reject (too many chunks)."""
    per_chunk = 64 + channels * latent_channels * 2 * 9  # entry + q_offset/q_step float64s
    if chunks > MAX_CHUNKS or chunks * per_chunk > MAX_HEADER_BYTES:
        raise ValueError(f"{source}: {chunks} chunks of {channels} channels would need a "
                         f"header over {MAX_HEADER_BYTES} bytes; use a larger --chunk-seconds")


class _Latents:
    """Latent frames ``[a, b)`` of every audio channel, read chunk by chunk as windows advance."""

    def __init__(self, f: LdmzFile) -> None:
        self.f, self.cache = f, dict[int, np.ndarray]()
        self.starts = [c.frame_start for c in f.header.chunks]

    def get(self, a: int, b: int) -> np.ndarray:
        h = self.f.header
        first = max(0, bisect.bisect_right(self.starts, a) - 1)
        self.cache = {i: v for i, v in self.cache.items() if i >= first}
        parts, i = [], first
        while i < len(self.starts) and self.starts[i] < b:
            c = h.chunks[i]
            if i not in self.cache:
                self.cache[i] = self.f.read_chunk(i)
            end = c.frame_start + min(h.latent.frames_per_chunk, c.frames)
            parts.append(self.cache[i][:, :, max(a, c.frame_start) - c.frame_start:
                                       min(b, end) - c.frame_start])
            i += 1
        return np.concatenate(parts, axis=2)


def _mel_stream(f: LdmzFile, model: LoadedModel, precision: str = "fp32",
                window: int | None = None, first: int = 0) -> Iterator[np.ndarray]:
    """Decoded log-mel blocks (frames, audio_channels, n_mels), in order, by windowed OLA.

    ``first`` (latent frames, 0 = off) makes the first windows that long, then twice as long
    ... (:func:`growing_spans`), so the first block comes after a short VAE call.
    """
    import torch

    from ldmz.codec.models import FADE_LATENT
    from ldmz.codec.vocoders import autocast

    h = f.header
    if f.entropy_coded and f.tables is None:
        use_model_tables(f, model)
    down, total, ctx = h.latent.time_downsample, decoded_frames(f), model.context
    if total == 0:
        return
    wins = growing_spans(total, window or model_window(model), ctx, first)
    fade = fade_len(FADE_LATENT, wins, down)
    ola, lat = OLA(), _Latents(f)
    for i, (a, s, e, b) in enumerate(wins):
        z = torch.from_numpy(lat.get(a, b))
        ys = []
        for zc in z:  # one audio channel at a time: memory does not grow with channels
            with torch.inference_mode(), autocast(precision, model.device):
                ys.append(model.decode(zc[None].to(model.device))[0, 0].float().cpu().numpy())
        w = fade_weights(a * down, s * down, e * down, b * down, fade)
        ola.add(a * down, np.stack(ys, axis=1) * w[:, None, None])
        yield ola.take(total * down if i == len(wins) - 1 else e * down - fade // 2)


def decoded_frames(f: LdmzFile) -> int:
    """Latent frames that decoding uses: those ``source.samples`` need, at most."""
    return min(f.header.latent.frames, f.header.frames_needed)


def _wave_stream(mels: Iterator[np.ndarray], total: int, voc: Vocoder,
                 progress: Progress = None, window: int = 0,
                 first: int = 0) -> Iterator[np.ndarray]:
    """Vocoded blocks (samples, channels) from log-mel blocks (frames, channels, n_mels)."""
    hop = voc.mel.hop_length
    first = first if voc.window_exact else 0  # a growing start would change Griffin-Lim's phase
    size = min(window or VOCODER_WINDOW, voc.window or VOCODER_WINDOW)  # voc's memory bound
    wins = growing_spans(total, size, voc.context, first)
    fade = fade_len(voc.fade, wins, hop)
    ola, pend, p0 = OLA(), None, 0
    for i, (a, s, e, b) in enumerate(wins):
        while pend is None or p0 + len(pend) < b:
            blk = next(mels)
            pend = blk if pend is None else np.concatenate([pend, blk])
        trim_heap()  # the VAE's and the last window's freed memory: not kept under this peak
        y = voc(np.ascontiguousarray(pend[a - p0:b - p0].transpose(1, 0, 2)))  # (ch, samples)
        n = (b - a) * hop
        y = np.pad(y, ((0, 0), (0, max(0, n - y.shape[1]))))[:, :n]
        w = fade_weights(a * hop, s * hop, e * hop, b * hop, fade)
        ola.add(a * hop, (y * w).T)
        nxt = wins[i + 1][0] if i + 1 < len(wins) else b
        pend, p0 = pend[nxt - p0:], nxt
        if progress:
            progress(i + 1, len(wins))
        yield ola.take(total * hop if i == len(wins) - 1 else e * hop - fade // 2)


@dataclass
class DecodeStream:
    """A decode in progress: iterate for float32 blocks (samples, channels), in order."""

    sample_rate: int
    channels: int
    samples: int
    vocoder: str
    blocks: Iterator[np.ndarray]

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.blocks


def _check_model(f: LdmzFile, model: LoadedModel) -> None:
    from ldmz.codec.models import ModelError

    h, info = f.header, model.info
    same = (info.weights_sha256.startswith(h.model.weights_sha256)  # format 2 keeps a prefix
            if info.weights_sha256 and h.model.weights_sha256 else info.id == h.model.id)
    if not same:
        raise ModelError(
            f"{f.name}: made by model '{h.model.id}' (weights {h.model.weights_sha256[:12]}), "
            f"but '{info.id}' has weights {info.weights_sha256[:12]}; decode with the model "
            f"that made it (--model NAME_or_FOLDER)")
    g = model.geometry
    if (g.channels, model.mel.n_mels // g.freq_downsample, g.time_downsample) != (
            h.latent.channels, h.latent.freq_bins, h.latent.time_downsample) \
            or model.mel != h.mel:
        raise ModelError(f"{f.name}: its latent/mel layout does not match model '{info.id}'; "
                         f"decode with the model that made it (--model)")


def use_model_tables(f: LdmzFile, model: LoadedModel) -> None:
    """Attach ``model``'s entropy tables to an entropy-coded file (ModelError if it has none)."""
    from ldmz.codec.models import ModelError

    if model.tables is None:
        raise ModelError(f"{f.name}: entropy-coded, but model '{model.info.id}' has no entropy "
                         f"tables; decode with the model that made it (--model)")
    f.use_tables(model.tables_for(f.header.quantizer.tables_sha256) or model.tables)


def decode_stream(f: LdmzFile, params: DecodeParams = DecodeParams(), *,
                  vocoder: str | None = None, progress: Progress = None,
                  vocoder_window: int = 0, first_window: int = 0) -> DecodeStream:
    """Load and check the model and vocoder now; decode lazily, block by block, as iterated.

    Memory does not grow with duration: latents are read one chunk at a time, the VAE and the
    vocoder run in windows, and the output is resampled as a stream. ``vocoder_window`` (mel
    frames, default ``VOCODER_WINDOW``) trades throughput for latency: players that want the
    first block soon pass a few hundred frames; the output is the same (windows join exactly).
    ``first_window`` (mel frames, 0 = off) makes the first vocoder windows that long, then
    twice, four times ... as long, up to ``vocoder_window``: the first block comes after a
    short vocoder call, and the samples stay the same (vocoders whose output depends on the
    window, such as Griffin-Lim, ignore it).
    """
    from ldmz.codec.models import FADE_LATENT, load_model, load_named_model
    from ldmz.codec.vocoders import MelAdapter, load_vocoder

    h = f.header
    if params.model:  # the user's choice: a name or a folder, whose weights must match
        model = load_model(params.model, params.device, params.offline or None)
    else:  # the file's: only a registered, embedded or plug-in name, never a path
        model = load_named_model(h.model.id, params.device, params.offline or None, f.name)
    _check_model(f, model)
    if f.entropy_coded:
        use_model_tables(f, model)
    name = vocoder or params.vocoder or h.vocoder or model.vocoder
    voc = load_vocoder(name, model, model.device, params.griffinlim_iters, params.precision)
    sr_out = int(params.sr or h.source.sample_rate)
    n = round(h.source.samples * sr_out / h.source.sample_rate)
    total = decoded_frames(f) * h.latent.time_downsample
    down = h.latent.time_downsample
    # with a growing vocoder start, the VAE starts small too: enough latent frames for the
    # first vocoder window and its context (and the latent cross-fade), then doubling
    vae_first = -(-(first_window + voc.context) // down) + FADE_LATENT // 2 \
        if first_window and voc.window_exact and getattr(model.autoencoder, "window_exact",
                                                         False) else 0
    mels = _mel_stream(f, model, params.precision, first=vae_first)
    if voc.mel != h.mel:
        adapter = MelAdapter(h.mel, voc.mel, total)
        mels, total = adapter.stream(mels), adapter.n_dst
    waves = _wave_stream(mels, total, voc, progress, vocoder_window, first_window)
    gain = np.asarray(h.source.gain, np.float32)
    return DecodeStream(sr_out, h.source.channels, n, voc.name,
                        _output(waves, gain, voc.mel.sample_rate, sr_out, n, f.name))


def _check_output(y: np.ndarray, name: str) -> None:
    """Refuse decoded audio that is not finite or is mostly far beyond full scale."""
    if not np.isfinite(y).all():
        raise FormatError(name, "decoding gave NaN or infinite samples (its latents, quantizer "
                                "or gain values are not sane); nothing was written")
    if y.size and np.count_nonzero(np.abs(y) > OVER_RANGE) > 0.01 * y.size:
        raise FormatError(name, f"decoding gave samples far beyond full scale (over "
                                f"+-{OVER_RANGE:g}; its latents, quantizer or gain values are "
                                f"not sane); nothing was written")


def _output(waves: Iterator[np.ndarray], gain: np.ndarray, sr_in: int, sr_out: int,
            n: int, name: str = "<file>") -> Iterator[np.ndarray]:
    """Undo the gain, check, resample as a stream, and cut or pad to exactly ``n`` samples."""
    rs = None
    if sr_in != sr_out:
        import soxr

        rs = soxr.ResampleStream(sr_in, sr_out, len(gain), dtype="float32",
                                 quality=RESAMPLE_QUALITY)
    done, end = 0, [(np.zeros((0, len(gain)), np.float32), True)]
    for blk, last in itertools.chain(((w, False) for w in waves), end):
        with np.errstate(over="ignore", invalid="ignore"):
            y = np.ascontiguousarray(blk * gain, np.float32)
        _check_output(y, name)
        y = rs.resample_chunk(y, last=last) if rs is not None else y
        y = y[:n - done]
        done += len(y)
        if len(y):
            yield y
    while done < n:  # fewer frames than samples: silence, in bounded blocks
        k = min(OUTPUT_BLOCK, n - done)
        done += k
        yield np.zeros((k, len(gain)), np.float32)


def decode(f: LdmzFile, params: DecodeParams = DecodeParams(), *, vocoder: str | None = None,
           progress: Progress = None) -> tuple[np.ndarray, int]:
    """Decode an LdmzFile to float32 audio (channels, samples) at the source (or asked) rate."""
    st = decode_stream(f, params, vocoder=vocoder, progress=progress)
    out = np.empty((st.channels, st.samples), np.float32)
    pos = 0
    for blk in st:
        out[:, pos:pos + len(blk)] = blk.T
        pos += len(blk)
    return out, st.sample_rate


def decode_mel(f: LdmzFile, channel: int, model: LoadedModel, precision: str = "fp32",
               window: int | None = None) -> np.ndarray:
    """Decode one audio channel's latents to its whole (mel_frames, n_mels) log-mel."""
    return np.concatenate(list(_mel_stream(f, model, precision, window)))[:, channel]


def vocode(log_mel: np.ndarray, vocoder: Vocoder) -> np.ndarray:
    """Run ``vocoder`` over a whole (frames, n_mels) log-mel in cross-faded windows."""
    blocks = _wave_stream(iter([log_mel[:, None]]), len(log_mel), vocoder)
    return np.concatenate(list(blocks))[:, 0]


def encode_file(src: str | os.PathLike[str], params: EncodeParams = EncodeParams(),
                tags: Mapping[str, str] | None = None, progress: Progress = None) -> LdmzFile:
    """Read an audio file, one channel at a time where it can, and encode it."""
    read, channels, sr = read_channels(src)
    return encode_channels(read, channels, sr, params, tags, progress, str(src))


def load(path: str | os.PathLike[str], sr: int | None = None,
         model: str = "") -> tuple[np.ndarray, int]:
    """Audio of ``path`` as ``(float32 (channels, samples), rate)``; `.ldmz` files are decoded.

    ``model`` is the model name or folder to decode with (default: the file's, by name).
    """
    if Path(path).suffix.lower() == ".ldmz":
        with LdmzFile.load(path, lazy=True) as f:
            return decode(f, DecodeParams(sr=sr or 0, model=model))
    audio, rate = read_audio(path)
    if sr and sr != rate:
        return resample(audio, rate, sr), sr
    return audio, rate
