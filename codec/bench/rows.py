"""What one `ldmz bench` row does to one clip: the codec, its variants, ceilings, Opus and MP3."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ldmz.codec.errors import ParamError, ToolError
from ldmz.codec.params import DecodeParams, EncodeParams
from ldmz.formats import LdmzFile, MelParams, kbps

if TYPE_CHECKING:
    from ldmz.codec.models import LoadedModel

# 128 mels, n_fft 2048, full band at 44.1 kHz: the widest mel configuration the bench tries.
FULLBAND_MEL = MelParams(sample_rate=44100, n_fft=2048, hop_length=512, win_length=2048,
                         n_mels=128, fmin=0.0, fmax=22050.0, log_floor=1e-5, frontend="hifigan")
MelFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Row:
    """One configuration of the matrix; ``label`` is unique and names it in the outputs."""

    group: str  # default|vocoder|bits|quality|normalization|postfilter|ceiling|classic
    label: str
    kind: str  # ldmz | normalization | postfilter | ceiling | opus | mp3
    model: str = ""
    vocoder: str = ""
    bits: int = 0
    option: str = ""  # ceiling id, normalization or post-filter name
    nominal_kbps: float = 0.0


@dataclass
class Output:
    """A row's decoded audio for one clip, with its bitrate (None: no file) and timings."""

    audio: np.ndarray  # (channels, samples)
    sr: int
    kbps: float | None
    enc_s: float
    dec_s: float
    child_mb: float | None = None  # peak RSS of an external encoder/decoder process


@dataclass
class Context:
    """What rows share: loaded models by name, decode settings, a scratch folder."""

    models: dict[str, LoadedModel] = field(default_factory=dict)
    precision: str = "fp32"
    griffinlim_iters: int = 32
    postfilter: str = "gauss"
    scratch: Path = Path(tempfile.gettempdir())


def _fit(y: np.ndarray, sr_in: int, sr_out: int, n: int) -> np.ndarray:
    from ldmz.codec.audio_io import resample

    y = resample(np.asarray(y, np.float32), sr_in, sr_out)
    return np.pad(y, (0, max(0, n - len(y))))[:n]


# --- the codec as users run it ------------------------------------------------------------


def encode_params(row: Row) -> EncodeParams:
    """A bits row codes affine (format 1) at its depth; a quality row entropy-codes (format 2)."""
    if row.option.startswith("q") and row.option[1:].isdigit():
        return EncodeParams(model=row.model, coding="rans", quality=int(row.option[1:]),
                            offline=True)
    return EncodeParams(model=row.model, bits=row.bits, coding="affine", offline=True)


def run_ldmz(row: Row, audio: np.ndarray, sr: int, ctx: Context) -> Output:
    """``api.encode`` -> file bytes -> ``api.decode`` with the row's vocoder."""
    from ldmz.codec.api import decode, encode

    t0 = time.perf_counter()
    data = encode(audio, sr, encode_params(row)).to_bytes()
    t1 = time.perf_counter()
    y, ysr = decode(LdmzFile.from_bytes(data), DecodeParams(
        vocoder=row.vocoder, griffinlim_iters=ctx.griffinlim_iters, precision=ctx.precision,
        offline=True, model=row.model))
    t2 = time.perf_counter()
    return Output(y, ysr, kbps(len(data), audio.shape[1] / sr), t1 - t0, t2 - t1)


# --- the seed's questions: front-end normalization and a post-filter ----------------------


def normalization(name: str, x: np.ndarray, gain: float, m_fn: Callable[[np.ndarray], np.ndarray]
                  ) -> tuple[np.ndarray, float, MelFn]:
    """Apply normalization ``name`` to the peak-normalized wave ``x`` before the VAE.

    Returns ``(log_mel seen by the VAE, gain that restores the level, undo for decoded mels)``.
    ``exact`` is the training front-end (mean removed, peak 0.5: what ``encode`` does);
    ``percentile`` scales the wave so its 99th percentile of |x| is 0.5 (a level change);
    ``zscore`` standardizes the log-mel per clip; ``tanh`` squashes that z-score into (-1, 1).
    """
    if name == "percentile":
        s = 0.5 / max(float(np.percentile(np.abs(x), 99)), 1e-8)
        return m_fn(x * s), gain / s, lambda y: y
    m = m_fn(x)
    mu, sd = float(m.mean()), max(float(m.std()), 1e-6)
    if name == "zscore":
        return (m - mu) / sd, gain, lambda y: y * sd + mu
    if name == "tanh":
        return (np.tanh((m - mu) / sd), gain,
                lambda y: np.arctanh(np.clip(y, -0.999, 0.999)) * sd + mu)
    if name == "exact":
        return m, gain, lambda y: y
    raise ParamError(f"unknown normalization '{name}'")


def postfilter(name: str, log_mel: np.ndarray) -> np.ndarray:
    """Spectral smoothing of a decoded (frames, n_mels) log-mel: ``gauss`` or ``median`` 3x3."""
    import scipy.ndimage

    out: np.ndarray
    if name == "gauss":
        out = scipy.ndimage.gaussian_filter(log_mel, sigma=(0.8, 0.6), mode="nearest")
        return out
    if name == "median":
        out = scipy.ndimage.median_filter(log_mel, size=(3, 3), mode="nearest")
        return out
    raise ParamError(f"unknown post-filter '{name}'")


def _encode_normalized(row: Row, audio: np.ndarray, sr: int, model: LoadedModel
                       ) -> tuple[LdmzFile, list[float], list[MelFn]]:
    """``api.encode`` with ``row.option``'s normalization as the mel front-end."""
    from ldmz.codec.api import encode_channels
    from ldmz.codec.dsp.frontend import log_mel_np, normalize

    undos: list[MelFn] = []

    def frontend(x: np.ndarray, n: int) -> tuple[np.ndarray, float]:
        x, gain = normalize(x)
        x = np.pad(x, (0, n - len(x)))
        m, gain, undo = normalization(row.option, x, gain, lambda w: log_mel_np(w, model.mel))
        undos.append(undo)
        return m, gain

    params = EncodeParams(model=row.model, bits=row.bits, offline=True)
    f = encode_channels(lambda c: audio[c], audio.shape[0], sr, params, frontend=frontend)
    return f, list(f.header.source.gain), undos


def run_variant(row: Row, audio: np.ndarray, sr: int, ctx: Context) -> Output:
    """A normalization row (custom encode) or a post-filter row (custom decode)."""
    from ldmz.codec.api import decode_mel, encode, vocode
    from ldmz.codec.vocoders import adapt_mel, load_vocoder

    model = ctx.models[row.model]
    t0 = time.perf_counter()
    if row.kind == "normalization":
        f, gains, undos = _encode_normalized(row, audio, sr, model)
        data = f.to_bytes()
    else:
        data = encode(audio, sr, encode_params(row)).to_bytes()
        gains, undos = None, [lambda y: postfilter(row.option, y)] * audio.shape[0]
    t1 = time.perf_counter()
    f = LdmzFile.from_bytes(data)
    gains = gains or list(f.header.source.gain)
    voc = load_vocoder(row.vocoder, model, model.device, ctx.griffinlim_iters, ctx.precision)
    chans = []
    for c in range(audio.shape[0]):
        m = undos[c](decode_mel(f, c, model, ctx.precision))
        y = vocode(adapt_mel(m, model.mel, voc.mel), voc) * gains[c]
        chans.append(_fit(y, voc.mel.sample_rate, sr, audio.shape[1]))
    t2 = time.perf_counter()
    return Output(np.stack(chans), sr, kbps(len(data), audio.shape[1] / sr), t1 - t0, t2 - t1)


# --- ceilings: a vocoder from its own exact mel, no VAE ------------------------------------


def ceiling_mel(option: str, models: dict[str, LoadedModel]) -> MelParams:
    """The mel configuration a ceiling row analyses with."""
    from ldmz.codec.models import AUDIOLDM_MEL
    from ldmz.codec.vocoders import UNIVERSAL_MEL

    if option.startswith("own:"):
        return models[option[4:]].mel
    return {"universal80": UNIVERSAL_MEL, "gl80": UNIVERSAL_MEL, "gl64": AUDIOLDM_MEL,
            "adapt64": AUDIOLDM_MEL, "gl128": FULLBAND_MEL, "ldmzvoc80": UNIVERSAL_MEL}[option]


def run_ceiling(row: Row, audio: np.ndarray, sr: int, ctx: Context) -> Output:
    """Copy-synthesis: exact log-mel of the (peak-normalized) clip straight into a vocoder."""
    from ldmz.codec.api import vocode
    from ldmz.codec.audio_io import resample
    from ldmz.codec.dsp.frontend import log_mel_np, normalize
    from ldmz.codec.vocoders import adapt_mel, load_vocoder

    mel = ceiling_mel(row.option, ctx.models)
    if row.vocoder == "griffinlim":  # as load_vocoder sets it up, on this mel
        voc = replace(load_vocoder("griffinlim", None, "cpu", ctx.griffinlim_iters), mel=mel)
    elif row.option.startswith("own:"):
        model = ctx.models[row.option[4:]]
        voc = load_vocoder("hifigan", model, model.device, precision=ctx.precision)
    else:  # universal or ldmzvoc: both on the 80-mel
        voc = load_vocoder(row.vocoder, precision=ctx.precision)
    enc_s = dec_s = 0.0
    chans = []
    for ch in audio:
        t0 = time.perf_counter()
        x, gain = normalize(resample(ch, sr, mel.sample_rate))
        m = log_mel_np(x, mel)
        t1 = time.perf_counter()
        y = vocode(adapt_mel(m, mel, voc.mel), voc) * gain
        chans.append(_fit(y, voc.mel.sample_rate, sr, audio.shape[1]))
        t2 = time.perf_counter()
        enc_s, dec_s = enc_s + t1 - t0, dec_s + t2 - t1
    return Output(np.stack(chans), sr, None, enc_s, dec_s)


# --- classic codecs through ffmpeg -----------------------------------------------------------


@lru_cache(maxsize=1)
def ffmpeg_encoders() -> frozenset[str]:
    """Audio encoders of the ffmpeg on PATH (empty when there is none)."""
    exe = shutil.which("ffmpeg")
    if not exe:
        return frozenset()
    out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True,
                         check=False).stdout
    return frozenset(line.split()[1] for line in out.splitlines()
                     if line.startswith(" A") and len(line.split()) > 1)


def classic_missing(kind: str) -> str:
    """Why the classic codec ``kind`` cannot run here, or "" when it can."""
    enc = {"opus": "libopus", "mp3": "libmp3lame"}[kind]
    if not shutil.which("ffmpeg"):
        return "ffmpeg not found on PATH (apt-get install ffmpeg)"
    return "" if enc in ffmpeg_encoders() else f"this ffmpeg has no {enc} encoder"


def _ffmpeg(args: list[str], scratch: Path) -> tuple[float, float | None]:
    """Run ffmpeg; return (seconds, its peak RSS in MB from /proc polled every 5 ms, or None).

    (``ru_maxrss`` from wait4 would count the forking Python's size, which exec keeps.)
    """
    peak = 0
    with tempfile.TemporaryFile(dir=scratch) as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *args],
                             stdout=subprocess.DEVNULL, stderr=err)
        status = Path(f"/proc/{p.pid}/status")
        while p.poll() is None:
            try:
                peak = max(peak, next(int(line.split()[1]) for line in
                                      status.read_text().splitlines() if line.startswith("VmHWM")))
            except (OSError, StopIteration, ValueError):
                pass
            time.sleep(0.005)
        seconds = time.perf_counter() - t0
        if p.returncode:
            err.seek(0)
            msg = err.read().decode(errors="replace").strip()[-300:]
            raise ToolError(f"ffmpeg {' '.join(args)} failed: {msg}")
    return seconds, (peak / 1024 if peak else None)


def run_classic(row: Row, audio: np.ndarray, sr: int, ctx: Context) -> Output:
    """Opus (libopus, VBR) or MP3 (libmp3lame, CBR at the lowest rate its layer allows)."""
    import soundfile as sf

    with tempfile.TemporaryDirectory(dir=ctx.scratch) as tmp:
        src, coded, out = Path(tmp, "in.wav"), Path(tmp, f"coded.{row.kind}"), Path(tmp, "out.wav")
        sf.write(src, audio.T, sr, subtype="FLOAT")
        rate = f"{row.nominal_kbps:g}k"
        if row.kind == "opus":
            opts = ["-c:a", "libopus", "-b:a", rate, "-vbr", "on"]
        else:  # MPEG-2.5 / MPEG-2 layer III: 8 kbps needs 8 kHz, 16 kbps 16 kHz
            ar = 8000 if row.nominal_kbps <= 8 else 16000 if row.nominal_kbps <= 24 else 22050
            opts = ["-c:a", "libmp3lame", "-b:a", rate, "-ar", str(ar)]
        enc_s, enc_mb = _ffmpeg(["-i", str(src), *opts, str(coded)], ctx.scratch)
        dec_s, dec_mb = _ffmpeg(["-i", str(coded), "-c:a", "pcm_f32le", str(out)], ctx.scratch)
        y, ysr = sf.read(out, dtype="float32", always_2d=True)
        bitrate = kbps(coded.stat().st_size, audio.shape[1] / sr)
    mbs = [m for m in (enc_mb, dec_mb) if m is not None]
    return Output(y.T, ysr, bitrate, enc_s, dec_s, max(mbs) if mbs else None)


RUNNERS: dict[str, Callable[[Row, np.ndarray, int, Context], Output]] = {
    "ldmz": run_ldmz, "normalization": run_variant, "postfilter": run_variant,
    "ceiling": run_ceiling, "opus": run_classic, "mp3": run_classic,
}
