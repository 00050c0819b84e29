"""Read any common audio file and write WAV/FLAC atomically, as float32 (channels, samples)."""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ldmz.codec.errors import AudioError, AudioWarning
from ldmz.formats.fileio import atomic_file

FULL_DISK = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


RESAMPLE_QUALITY = "HQ"  # soxr's high quality, for every resampler (streaming ones too)
WRITE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16")}
# every audio suffix read_audio takes (libsndfile, then librosa/audioread): the one list
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif", ".m4a")
# sample formats of written files (libsndfile subtypes); FLAC has no float
SAMPLE_FORMATS = {"f32": "FLOAT", "s24": "PCM_24", "s16": "PCM_16"}
# tags libsndfile reads and writes in WAV (LIST INFO), FLAC and Ogg (Vorbis comments), MP3 (ID3)
TAG_KEYS = ("title", "artist", "album", "genre", "comment", "date", "tracknumber", "copyright",
            "license")
WRITTEN_BY = "software"  # the tag naming the program that wrote a file (not carried along)


def _existing(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file") from None
    except OSError as e:
        raise AudioError(f"{path}: cannot open ({e.strerror}); check the path and its "
                         f"permissions") from None
    if not stat.S_ISREG(mode):
        raise AudioError(f"{path}: not a regular file (a folder, FIFO or device)")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{path}: permission denied; check the file's permissions")
    return path


@contextmanager
def _opened(path: Path) -> Iterator[int]:
    """A descriptor for libsndfile: any file name works (non-UTF-8 too), FIFOs never block."""
    from ldmz.formats import FormatError
    from ldmz.formats.fileio import open_regular

    try:
        fd = open_regular(path)
    except FormatError as e:
        raise AudioError(f"{path}: {e.problem}") from None
    try:
        yield fd
    finally:
        os.close(fd)


@contextmanager
def _quiet_stderr(on: bool) -> Iterator[None]:
    """Hold back what C decoders (mpg123) write to stderr: one line per problem is ours."""
    if not on:
        yield
        return
    try:
        sys.stderr.flush()
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError):
        yield
        return
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _check_truncated(f: Any, path: Path) -> None:  # f: a soundfile.SoundFile
    """Warn when a WAV header promises more audio than the file holds."""
    m = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", f.extra_info or "", re.M)
    if m and int(m.group(2)) < int(m.group(1)):
        warnings.warn(AudioWarning(
            f"{path}: truncated: its header promises {int(m.group(1))} bytes of audio, the file "
            f"holds {int(m.group(2))}; only the part present is used"), stacklevel=3)


def _read_sf(path: Path, channel: int | None = None) -> tuple[np.ndarray, int]:
    """libsndfile decode, block by block: all channels (C, N) or one channel (1, N)."""
    import soundfile as sf

    with _opened(path) as fd, _quiet_stderr(path.suffix.lower() == ".mp3"), \
            sf.SoundFile(fd, closefd=False) as f:
        if channel in (None, 0):
            _check_truncated(f, path)
        rows = slice(None) if channel is None else slice(channel, channel + 1)
        n_ch = f.channels if channel is None else 1
        out, extra, pos = np.empty((n_ch, f.frames), np.float32), [], 0
        for block in f.blocks(blocksize=1 << 18, dtype="float32", always_2d=True):
            block = block[:, rows]
            k = max(0, min(len(block), out.shape[1] - pos))  # frames may be an estimate
            out[:, pos:pos + k] = block[:k].T
            if k < len(block):
                extra.append(block[k:].T.copy())
            pos += len(block)
        if extra:
            return np.concatenate([out, *extra], axis=1), int(f.samplerate)
        return out[:, :pos], int(f.samplerate)


def read_channels(path: str | os.PathLike[str]) -> tuple[Callable[[int], np.ndarray], int, int]:
    """``(read, channels, rate)``: ``read(c)`` gives channel ``c`` as float32 (samples,).

    Files libsndfile decodes are read again for each channel, so only one channel is held in
    memory at a time; other formats are decoded whole first.
    """
    import soundfile as sf

    path = _existing(path)
    try:
        with _opened(path) as fd, _quiet_stderr(path.suffix.lower() == ".mp3"), \
                sf.SoundFile(fd, closefd=False) as info:
            pass
    except (sf.LibsndfileError, RuntimeError, TypeError):
        audio, sr = read_audio(path)
        return (lambda c: audio[c]), audio.shape[0], sr

    def read(c: int) -> np.ndarray:
        try:
            channel: np.ndarray = _read_sf(path, c)[0][0]
            return channel
        except (sf.LibsndfileError, RuntimeError) as e:
            why = getattr(e, "error_string", "") or str(e)
            raise AudioError(f"{path}: cannot decode audio ({why}); check that it is not "
                             f"damaged") from e

    return read, info.channels, int(info.samplerate)


def read_tags(src: str | os.PathLike[str] | BinaryIO) -> dict[str, str]:
    """The source's tags among TAG_KEYS: FLAC/Vorbis/Opus comments, ID3 and WAV INFO through
    libsndfile, MP4 atoms (.m4a) through mutagen; {} if none or unreadable."""
    import soundfile as sf

    found: dict[str, str] = {}
    try:
        if isinstance(src, str | os.PathLike):  # by descriptor: any file name, no FIFO waits
            with _opened(Path(src)) as fd, sf.SoundFile(fd, closefd=False) as f:
                found = f.copy_metadata()
        else:
            with sf.SoundFile(src) as f:
                found = f.copy_metadata()
    except AudioError:  # not a regular file or not readable: no tags (the read says why)
        return {}
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError):
        found = _mutagen_tags(src)
    finally:
        if hasattr(src, "seek"):
            src.seek(0)
    return {k: str(found[k]).replace("\0", " ")[:4096] for k in TAG_KEYS
            if str(found.get(k, "")).strip()}


def _mutagen_tags(src: str | os.PathLike[str] | BinaryIO) -> dict[str, str]:
    """Tags of formats libsndfile cannot open (MP4/M4A), via mutagen's easy interface."""
    try:
        import mutagen
    except ImportError:
        return {}
    try:
        if hasattr(src, "seek"):
            src.seek(0)
        f = mutagen.File(src, easy=True)
    except Exception:  # noqa: BLE001 - mutagen raises many types on odd files: no tags then
        return {}
    if f is None or not f.tags:
        return {}
    return {k: "; ".join(map(str, v)) if isinstance(v, list) else str(v)
            for k, v in f.tags.items() if k in TAG_KEYS}


def read_audio_bytes(data: bytes, name: str = "-") -> tuple[np.ndarray, int]:
    """Decode audio held in memory (standard input): float32 (channels, samples) and its rate."""
    import io

    import soundfile as sf

    try:
        y, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        why = getattr(e, "error_string", "") or str(e)
        raise AudioError(f"{name}: cannot decode audio from a stream ({why.rstrip('.')}); pipe "
                         f"WAV, FLAC, Ogg or MP3, e.g. ffmpeg -i IN -f wav -") from e
    return np.ascontiguousarray(y.T), int(sr)


def read_audio(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Decode ``path`` (wav, flac, ogg, mp3, ...) to float32 (channels, samples) and its rate."""
    import soundfile as sf

    path = _existing(path)
    try:
        return _read_sf(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        first = getattr(e, "error_string", "") or str(e).replace(f"'{path}'", "").strip()
    import gc
    import warnings

    import librosa

    y = None
    with warnings.catch_warnings():  # formats libsndfile lacks: let librosa/audioread try
        warnings.simplefilter("ignore")
        try:
            y, sr = librosa.load(path, sr=None, mono=False)
        except Exception:  # noqa: BLE001 - report the first decoder's reason below
            pass
        if y is None:
            gc.collect()  # audioread may leave the file open when it fails: close it quietly
    if y is None:
        raise AudioError(f"{path}: cannot decode audio ({first.rstrip('.')}); convert it to "
                         f"WAV or FLAC, or check that it is not damaged")
    return np.atleast_2d(y).astype(np.float32, copy=False), int(sr)


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
    if a.shape[1] == 0 or a.shape[0] == 0:
        raise AudioError(f"{source}: audio has no samples")
    if not np.issubdtype(a.dtype, np.floating):
        a = a / float(np.iinfo(a.dtype).max) if np.issubdtype(a.dtype, np.integer) else a
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        bad = int(np.count_nonzero(~np.isfinite(a)))
        raise AudioError(f"{source}: audio contains {bad} NaN or inf samples; replace them "
                         f"(e.g. with 0) or re-export the file")
    return a


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample (samples,) or (channels, samples) with one soxr HQ call for every channel.

    The result has ceil(samples * sr_out / sr_in) samples (as librosa's), float64 for float64
    input and float32 otherwise.
    """
    x = np.asarray(audio)
    if sr_in == sr_out or x.shape[-1] == 0:
        return x
    import soxr

    x = x if x.dtype == np.float64 else x.astype(np.float32, copy=False)
    y = soxr.resample(np.ascontiguousarray(x.T), sr_in, sr_out, quality=RESAMPLE_QUALITY).T
    n = -(-x.shape[-1] * sr_out // sr_in)
    pad = [(0, 0)] * (y.ndim - 1) + [(0, max(0, n - y.shape[-1]))]
    return np.ascontiguousarray(np.pad(y, pad)[..., :n])


def _check_target(path: Path, overwrite: bool, subtype: str | None) -> tuple[str, str]:
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"{path}: can only write .wav or .flac; change the output suffix")
    if subtype:
        fmt = (fmt[0], SAMPLE_FORMATS.get(subtype, subtype))
        import soundfile as sf

        if not sf.check_format(*fmt):
            raise AudioError(f"{path}: {fmt[0]} cannot hold {subtype} samples; choose another "
                             f"sample format ({', '.join(SAMPLE_FORMATS)}) or suffix")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (use --force to overwrite)")
    return fmt


def write_audio(path: str | os.PathLike[str], audio: np.ndarray, sr: int,
                overwrite: bool = False) -> None:
    """Write 16-bit PCM WAV or FLAC (by suffix) atomically; refuse to overwrite unless asked."""
    a = np.atleast_2d(audio)
    step = 1 << 18
    write_audio_stream(path, (a[:, i:i + step].T for i in range(0, a.shape[1], step)),
                       sr, a.shape[0], overwrite)


def write_audio_stream(path: str | os.PathLike[str], blocks: Iterable[np.ndarray], sr: int,
                       channels: int, overwrite: bool = False, subtype: str | None = None,
                       tags: Mapping[str, str] | None = None) -> None:
    """Write blocks of float audio (samples, channels) to WAV/FLAC atomically.

    ``subtype`` is a SAMPLE_FORMATS key or a libsndfile subtype (default 16-bit PCM); integer
    formats are clipped to +-1, float is written as it is. ``tags`` among TAG_KEYS and
    WRITTEN_BY are written as the format's tags (WAV INFO, FLAC Vorbis comments); other keys
    are left out.

    Written through :func:`ldmz.formats.fileio.atomic_file` (fsync, umask permissions, never
    a partial or hidden file left behind); errors name ``path``, never a temporary file.
    """
    path = Path(path)
    fmt = _check_target(path, overwrite, subtype)
    try:
        with atomic_file(path, overwrite=overwrite) as out:
            write_audio_to(out, blocks, sr, channels, fmt, tags, path)
    except OSError as e:
        raise _write_error(path, e) from e


def write_audio_to(out: BinaryIO, blocks: Iterable[np.ndarray], sr: int, channels: int,
                   fmt: tuple[str, str], tags: Mapping[str, str] | None = None,
                   name: str | os.PathLike[str] = "<stream>") -> None:
    """Write blocks of float audio to an open, seekable binary file as ``fmt`` (format,
    subtype); integer subtypes are clipped to +-1. Errors name ``name`` with the errno's
    meaning (a full disk says so), never a temporary file."""
    import soundfile as sf

    is_float = fmt[1] in ("FLOAT", "DOUBLE")
    sink = _Sink(out)
    try:
        with sf.SoundFile(sink, "w", samplerate=int(sr), channels=channels,
                          format=fmt[0], subtype=fmt[1]) as f:
            for k, v in (tags or {}).items():
                if k in (*TAG_KEYS, WRITTEN_BY) and v:
                    setattr(f, k, v)
            for block in blocks:
                f.write(block if is_float else np.clip(block, -1.0, 1.0))
                sink.check()
        sink.flush()
    except Exception as e:  # soundfile asserts on a short write: the sink knows why
        err = sink.error if sink.error is not None else e
        if not isinstance(err, sf.LibsndfileError | RuntimeError | OSError):
            raise
        raise _write_error(Path(name), err) from e


class _Sink:
    """The temporary file as libsndfile sees it: a failed write is kept (with its errno)
    instead of becoming a traceback inside a C callback and a vague "System error"."""

    def __init__(self, f: BinaryIO) -> None:
        self.f: Any = getattr(f, "raw", f)  # unbuffered: errors show at once
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        """Write all of ``data``, or record the error and report nothing written."""
        view, done = memoryview(data), 0
        while self.error is None and done < len(view):
            try:
                done += self.f.write(view[done:]) or 0
            except OSError as e:
                self.error = e
        return done if self.error is None else 0

    def read(self, n: int = -1) -> bytes:
        """Read back (libsndfile re-reads headers it patches)."""
        return bytes(self.f.read(n))

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move in the file (-1 after an error, which is kept)."""
        try:
            return int(self.f.seek(offset, whence))
        except OSError as e:
            self.error = self.error or e
            return -1

    def tell(self) -> int:
        """Where in the file."""
        return int(self.f.tell())

    def check(self) -> None:
        """Raise the recorded write error, if any."""
        if self.error is not None:
            raise self.error

    def flush(self) -> None:
        """Nothing is buffered here; raise a recorded error."""
        self.check()


def _write_error(path: Path, e: BaseException) -> BaseException:
    """The error to report for a failed write: named after the output, never the temp file."""
    if isinstance(e, FileExistsError | AudioError) or not isinstance(e, OSError | RuntimeError):
        return e
    code = getattr(e, "errno", None)
    text = getattr(e, "error_string", "") or getattr(e, "strerror", "") or str(e)
    if code in FULL_DISK or any(os.strerror(c) in text for c in FULL_DISK):
        return AudioError(f"{path}: disk full ({text.strip().rstrip('.')}); free some space "
                          f"or write elsewhere (-o)")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return AudioError(f"{path}: cannot write ({getattr(e, 'strerror', '')}); check the "
                          f"folder's permissions or write elsewhere (-o)")
    why = " ".join(str(text).split()).rstrip(".")
    return AudioError(f"{path}: cannot write ({why}); check the folder and free space")
