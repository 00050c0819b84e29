"""Read any common audio file and write WAV/FLAC atomically, as float32 (channels, samples)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ldmz.formats import LdmzError


class AudioError(LdmzError, ValueError):
    """Audio cannot be read, is unusable (NaN, empty) or cannot be written."""


WRITE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16")}


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode ``path`` (wav, flac, ogg, mp3, ...) to float32 (channels, samples) and its rate."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.T), int(sr)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        first = str(e)
    try:  # formats libsndfile lacks: let librosa/audioread try
        import warnings

        import librosa

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y, sr = librosa.load(path, sr=None, mono=False)
        y = np.atleast_2d(y).astype(np.float32)
        return y, int(sr)
    except Exception as e:  # noqa: BLE001 - report the first decoder's reason
        raise AudioError(f"{path}: cannot decode audio ({first}); convert it to WAV or FLAC"
                         ) from e


def check_audio(audio: np.ndarray, source: str = "<audio>") -> np.ndarray:
    """Validate and shape audio to float32 (channels, samples); refuse NaN/inf and empty input."""
    a = np.asarray(audio)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2:
        raise AudioError(f"{source}: audio must be 1-D or (channels, samples), got {a.shape}")
    if a.shape[0] > a.shape[1] and a.shape[0] > 64:
        raise AudioError(f"{source}: {a.shape[0]} channels: pass (channels, samples), "
                         f"not (samples, channels)")
    if a.shape[1] == 0:
        raise AudioError(f"{source}: audio has no samples")
    if not np.issubdtype(a.dtype, np.floating):
        a = a / float(np.iinfo(a.dtype).max) if np.issubdtype(a.dtype, np.integer) else a
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise AudioError(f"{source}: audio contains NaN or inf samples; clean the input first")
    return a


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample along the last axis with soxr (high quality), via librosa."""
    if sr_in == sr_out:
        return audio
    import librosa

    return librosa.resample(audio, orig_sr=sr_in, target_sr=sr_out, res_type="soxr_hq",
                            axis=-1).astype(np.float32)


def write_audio(path: str | os.PathLike, audio: np.ndarray, sr: int,
                overwrite: bool = False) -> None:
    """Write 16-bit PCM WAV or FLAC (by suffix) atomically; refuse to overwrite unless asked."""
    import soundfile as sf

    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"{path}: can only write .wav or .flac")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (use --force to overwrite)")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        data = np.clip(np.atleast_2d(audio).T, -1.0, 1.0)
        sf.write(tmp, data, sr, format=fmt[0], subtype=fmt[1])
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            os.unlink(tmp)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
