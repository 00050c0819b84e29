"""The codec: ``encode(audio, sr, params) -> LdmzFile`` and ``decode(file) -> (audio, sr)``."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from ldmz import __version__
from ldmz.codec.audio_io import check_audio, read_audio, resample
from ldmz.codec.params import DecodeParams, EncodeParams
from ldmz.formats import LdmzFile, SourceInfo, pack_latents

Progress = Callable[[int, int], None] | None
CONTEXT_LATENT = 16  # latent frames of context each side of a window (>= decoder receptive field)


def _windows(total: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(s + size, total)) for s in range(0, total, size)] or [(0, 0)]


def _torch_setup() -> None:
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))


def encode(audio: np.ndarray, sr: int, params: EncodeParams = EncodeParams(),
           tags: Mapping[str, str] | None = None, progress: Progress = None) -> LdmzFile:
    """Encode float audio (samples,) or (channels, samples) at rate ``sr`` to an LdmzFile."""
    import torch

    from ldmz.codec.frontend import log_mel, normalize
    from ldmz.codec.models import load_model
    from ldmz.codec.quant import CLIP_PERCENTILE, allocate_bits

    audio = check_audio(audio)
    if not 1 <= params.bits <= 8:
        raise ValueError(f"bits must be 1..8, got {params.bits}")
    _torch_setup()
    model = load_model(params.model, params.device, params.offline or None)
    mel, down = model.mel, model.time_downsample
    unit = mel.hop_length * down
    win = max(1, round(params.chunk_seconds * mel.sample_rate / unit))  # latent frames
    ctx = CONTEXT_LATENT
    lats, gains, total_mel = [], [], 0
    n_steps = audio.shape[0]
    for ci, ch in enumerate(audio):
        x, gain = normalize(resample(ch, sr, mel.sample_rate))
        n = max(len(x), mel.n_fft)
        x = np.pad(x, (0, -(-n // unit) * unit - len(x)))
        with torch.inference_mode():
            m = log_mel(torch.from_numpy(x).to(model.device), mel)  # (frames, n_mels)
            frames = m.shape[0] // down
            z_parts = []
            for s, e in _windows(frames, win):
                a, b = max(0, s - ctx), min(frames, e + ctx)
                z = model.encode(m[a * down:b * down][None, None])
                z_parts.append(z[0, :, s - a:s - a + (e - s)].float().cpu().numpy())
        lats.append(np.concatenate(z_parts, axis=1))
        gains.append(gain)
        total_mel = frames * down
        if progress:
            progress(ci + 1, n_steps)
    z = np.stack(lats)  # (A, C, T, F)
    bits = allocate_bits(z, params.bits)
    return pack_latents(
        z, model=model.info, mel=mel,
        source=SourceInfo(sample_rate=int(sr), channels=audio.shape[0], samples=audio.shape[1],
                          gain=tuple(float(g) for g in gains)),
        bits=bits, frames_per_chunk=win, overlap=0, time_downsample=down, mel_frames=total_mel,
        clip_percentile=CLIP_PERCENTILE, tags=tags, vocoder=params.vocoder or model.vocoder,
        writer=f"ldmz {__version__}")


def _ramp(n_ctx_left: int, n_core: int, n_ctx_right: int) -> np.ndarray:
    """Overlap-add weights: 1 on the core, linear fades over the context on each side."""
    left = np.linspace(0, 1, n_ctx_left + 2)[1:-1]
    right = np.linspace(1, 0, n_ctx_right + 2)[1:-1]
    return np.concatenate([left, np.ones(n_core), right]).astype(np.float32)


def decode_mel(f: LdmzFile, channel: int, model, precision: str = "fp32",  # noqa: ANN001
               progress: Progress = None) -> np.ndarray:
    """Decode one audio channel's latents to a (mel_frames, n_mels) log-mel by windowed OLA."""
    import torch

    h = f.header
    z = torch.from_numpy(f.latents(channel)[0])  # (C, T, F)
    down, total = h.latent.time_downsample, h.latent.frames
    win, ctx = h.latent.frames_per_chunk, CONTEXT_LATENT
    out = np.zeros((total * down, h.mel.n_mels), np.float32)
    wsum = np.zeros(total * down, np.float32)
    cast = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16"
            else nullcontext())
    wins = _windows(total, win)
    for i, (s, e) in enumerate(wins):
        a, b = max(0, s - ctx), min(total, e + ctx)
        with torch.inference_mode(), cast:
            y = model.decode(z[None, :, a:b].to(model.device))[0, 0].float().cpu().numpy()
        w = _ramp((s - a) * down, (e - s) * down, (b - e) * down)
        out[a * down:b * down] += y * w[:, None]
        wsum[a * down:b * down] += w
        if progress:
            progress(i + 1, len(wins))
    return out / np.maximum(wsum, 1e-8)[:, None]


def vocode(log_mel: np.ndarray, vocoder, window: int = 1024, ctx: int = 32) -> np.ndarray:  # noqa: ANN001
    """Run ``vocoder`` over a long log-mel in windows of frames with waveform crossfades."""
    hop = vocoder.mel.hop_length
    total = len(log_mel)
    out = np.zeros(total * hop, np.float32)
    wsum = np.zeros(total * hop, np.float32)
    for s, e in _windows(total, window):
        a, b = max(0, s - ctx), min(total, e + ctx)
        y = vocoder(log_mel[a:b])
        need = (b - a) * hop
        y = np.pad(y, (0, max(0, need - len(y))))[:need]
        w = _ramp((s - a) * hop, (e - s) * hop, (b - e) * hop)
        out[a * hop:b * hop] += y * w
        wsum[a * hop:b * hop] += w
    return out / np.maximum(wsum, 1e-8)


def decode(f: LdmzFile, params: DecodeParams = DecodeParams(), *, vocoder: str | None = None,
           progress: Progress = None) -> tuple[np.ndarray, int]:
    """Decode an LdmzFile to float32 audio (channels, samples) at the source (or asked) rate."""
    from ldmz.codec.models import ModelError, load_model
    from ldmz.codec.vocoders import adapt_mel, load_vocoder

    _torch_setup()
    h = f.header
    model = load_model(params.model or h.model.id, params.device, params.offline or None)
    if h.model.weights_sha256 and model.info.weights_sha256 != h.model.weights_sha256:
        raise ModelError(
            f"{f.name}: made by model '{h.model.id}' (weights {h.model.weights_sha256[:12]}), "
            f"but the loaded '{model.info.id}' has weights {model.info.weights_sha256[:12]}; "
            f"decode with the same model (--model)")
    if (model.latent_channels, model.mel.n_mels // model.freq_downsample) != (
            h.latent.channels, h.latent.freq_bins) or model.mel != h.mel:
        raise ModelError(f"{f.name}: its latent/mel layout does not match model '{model.info.id}'")
    name = vocoder or params.vocoder or h.vocoder or model.vocoder
    voc = load_vocoder(name, model, model.device, params.griffinlim_iters)
    sr_out = params.sr or h.source.sample_rate
    chans = []
    for c in range(h.source.channels):
        m = decode_mel(f, c, model, params.precision)
        m = adapt_mel(m, h.mel, voc.mel)
        y = vocode(m, voc) * h.source.gain[c]
        y = resample(y, voc.mel.sample_rate, sr_out)
        n = round(h.source.samples * sr_out / h.source.sample_rate)
        chans.append(np.pad(y, (0, max(0, n - len(y))))[:n])
        if progress:
            progress(c + 1, h.source.channels)
    return np.stack(chans).astype(np.float32), int(sr_out)


def encode_file(src: str | os.PathLike, params: EncodeParams = EncodeParams(),
                tags: Mapping[str, str] | None = None) -> LdmzFile:
    """Read an audio file and encode it."""
    audio, sr = read_audio(src)
    return encode(check_audio(audio, str(src)), sr, params, tags)


def load(path: str | os.PathLike, sr: int | None = None) -> tuple[np.ndarray, int]:
    """Audio of ``path`` as ``(float32 (channels, samples), rate)``; `.ldmz` files are decoded."""
    if Path(path).suffix.lower() == ".ldmz":
        return decode(LdmzFile.load(path), DecodeParams(sr=sr or 0))
    audio, rate = read_audio(path)
    if sr and sr != rate:
        return resample(audio, rate, sr), sr
    return audio, rate
