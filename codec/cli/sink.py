"""Where `ldmz decode` puts audio: a file or standard output, float or integer samples, the peak
measured (and normalized when asked, or when integer samples would clip), salvaged spans silent."""

from __future__ import annotations

import shutil
import struct
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

PEAK_TARGET_DB = -1.0  # where --peak normalize (and auto, for integer output) puts the peak
PEAK_MODES = ("auto", "keep", "normalize")


@dataclass
class Written:
    """What was written: the decoded peak (before any gain), the gain applied, the damage done."""

    samples: int = 0
    peak: float = 0.0  # absolute peak of the decoded audio, linear
    over: int = 0  # decoded samples beyond full scale
    gain_db: float = 0.0  # applied by --peak
    clipped: int = 0  # samples clipped in the written file (integer formats only)
    bytes: int = 0

    @property
    def peak_db(self) -> float:
        """The decoded peak in dBFS (-inf for silence)."""
        return 20 * np.log10(self.peak) if self.peak > 0 else float("-inf")


def _measure(blocks: Iterable[np.ndarray], w: Written,
             mute: Sequence[tuple[int, int]]) -> Iterator[np.ndarray]:
    """Pass blocks through, silencing the ``mute`` sample spans and recording peak and overs."""
    for blk in blocks:
        a = w.samples
        hit = [(s, e) for s, e in mute if s < a + len(blk) and e > a]
        if hit:
            blk = blk.copy()
            for s, e in hit:
                blk[max(s - a, 0):min(e - a, len(blk))] = 0
        w.samples += len(blk)
        if len(blk):
            mag = np.abs(blk)
            w.peak = max(w.peak, float(mag.max()))
            w.over += int(np.count_nonzero(mag > 1.0))
        yield blk


def _gain(w: Written, peak_mode: str, is_float: bool) -> float:
    target = 10 ** (PEAK_TARGET_DB / 20)
    if w.peak <= 0 or peak_mode == "keep":
        return 1.0
    if peak_mode == "normalize" or (not is_float and w.peak > 1.0):
        return target / w.peak
    return 1.0


def _scaled(staged: BinaryIO, gain: float, w: Written, is_float: bool) -> Iterator[np.ndarray]:
    import soundfile as sf

    staged.seek(0)
    for blk in sf.blocks(staged, blocksize=1 << 16, dtype="float32", always_2d=True):
        y = blk * np.float32(gain) if gain != 1.0 else blk
        if not is_float:
            w.clipped += int(np.count_nonzero(np.abs(y) > 1.0))
        yield y


def write_decoded(dst: Path | None, blocks: Iterable[np.ndarray], sr: int, channels: int, *,
                  container: str = "wav", sample_format: str = "f32", peak: str = "auto",
                  tags: Mapping[str, str] | None = None,
                  mute: Sequence[tuple[int, int]] = (), overwrite: bool = False,
                  total: int | None = None) -> Written:
    """Write decoded blocks to ``dst`` (None: standard output, as ``container``) atomically.

    Float output is written in one pass. Integer output, and ``peak="normalize"``, first go to
    a float file beside the target, so the whole file's peak is known before any gain. A float
    WAV of ``total`` known samples streams to standard output as it is decoded; other formats
    are staged and then copied. Staged data lives in unnamed temporary files (O_TMPFILE on
    Linux): a killed decode leaves none.
    """
    from ldmz.codec.audio_io import (
        SAMPLE_FORMATS,
        WRITE_FORMATS,
        write_audio_stream,
        write_audio_to,
    )

    if dst is None and container == "wav" and sample_format == "f32" and peak != "normalize" \
            and total is not None and total * channels * 4 < 2**32 - 1024:
        return _stream_wav(blocks, sr, channels, total, tags or {}, mute)
    if dst is None:  # a complete file with a correct header, then copied to the pipe
        import soundfile as sf

        from ldmz.codec.errors import AudioError

        fmt = (WRITE_FORMATS[f".{container}"][0], SAMPLE_FORMATS.get(sample_format,
                                                                     sample_format))
        if not sf.check_format(*fmt):
            raise AudioError(f"-: {fmt[0]} cannot hold {sample_format} samples; choose another "
                             f"sample format ({', '.join(SAMPLE_FORMATS)}) or --format")
        with tempfile.TemporaryFile() as out:
            w = _write_two_pass(lambda b: write_audio_to(out, b, sr, channels, fmt, tags, "-"),
                                blocks, sr, channels, sample_format, peak, mute, None)
            out.seek(0)
            shutil.copyfileobj(out, sys.stdout.buffer, 1 << 20)
            sys.stdout.buffer.flush()
            w.bytes = out.tell()
            return w
    w = _write_two_pass(
        lambda b: write_audio_stream(dst, b, sr, channels, overwrite, sample_format, tags),
        blocks, sr, channels, sample_format, peak, mute, dst.parent)
    w.bytes = dst.stat().st_size
    return w


def _write_two_pass(write: Callable[[Iterable[np.ndarray]], None],
                    blocks: Iterable[np.ndarray], sr: int, channels: int, sample_format: str,
                    peak: str, mute: Sequence[tuple[int, int]], folder: Path | None
                    ) -> Written:
    """``write(blocks)`` once (float, no normalizing) or via a float stage (integer output)."""
    from ldmz.codec.audio_io import write_audio_to

    w = Written()
    is_float = sample_format == "f32"
    if is_float and peak != "normalize":
        write(_measure(blocks, w, mute))
        return w
    with tempfile.TemporaryFile(dir=folder) as stage:
        write_audio_to(stage, _measure(blocks, w, mute), sr, channels, ("WAV", "FLOAT"))
        g = _gain(w, peak, is_float)
        w.gain_db = float(20 * np.log10(g))
        write(_scaled(stage, g, w, is_float))
    return w


# RIFF INFO ids of the tags (the ones libsndfile reads back as the same names)
_INFO_IDS = {"title": b"INAM", "artist": b"IART", "album": b"IPRD", "genre": b"IGNR",
             "comment": b"ICMT", "date": b"ICRD", "tracknumber": b"ITRK", "copyright": b"ICOP",
             "license": b"ILIC", "software": b"ISFT"}


def _info_chunk(tags: Mapping[str, str]) -> bytes:
    body = b"INFO"
    for k, v in tags.items():
        if k in _INFO_IDS and v:
            data = v.encode("utf-8") + b"\0"
            body += _INFO_IDS[k] + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2)
    return b"LIST" + struct.pack("<I", len(body)) + body if len(body) > 4 else b""


def _stream_wav(blocks: Iterable[np.ndarray], sr: int, channels: int, total: int,
                tags: Mapping[str, str], mute: Sequence[tuple[int, int]]) -> Written:
    """A 32-bit float WAV to standard output block by block: its length is known up front."""
    data = total * channels * 4
    fmt = struct.pack("<HHIIHH", 3, channels, sr, sr * channels * 4, channels * 4, 32)
    info = _info_chunk(tags)
    head = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"fact" + struct.pack("<II", 4, total) + info + b"data" + struct.pack("<I", data))
    out = sys.stdout.buffer
    out.write(b"RIFF" + struct.pack("<I", len(head) + data) + head)
    w = Written()
    for blk in _measure(blocks, w, mute):
        out.write(np.ascontiguousarray(blk, "<f4").tobytes())
    if w.samples != total:  # cannot happen with DecodeStream, which pads or cuts to its length
        raise RuntimeError(f"decoded {w.samples} samples, the header promised {total}")
    out.flush()
    w.bytes = 8 + len(head) + data
    return w


def peak_notes(name: str, w: Written, sample_format: str) -> list[str]:
    """Warnings about the written file's level: kept overs, clipping, or the gain applied."""
    out = []
    if w.gain_db < -0.005 and w.peak > 1.0:
        out.append(f"{name}: the decode peaks at {w.peak_db:+.1f} dBFS ({w.over} samples over "
                   f"full scale): lowered {-w.gain_db:.1f} dB to {PEAK_TARGET_DB:.0f} dBFS so "
                   f"nothing clips (--peak keep keeps the level)")
    elif w.clipped:
        out.append(f"warning: {name}: {w.clipped} samples clipped (peak {w.peak_db:+.1f} dBFS); "
                   f"use --sample-format f32 or --peak normalize to keep them")
    elif w.over and sample_format == "f32":
        out.append(f"warning: {name}: peak {w.peak_db:+.1f} dBFS, {w.over} samples over full "
                   f"scale, kept as float; players that convert to integers will clip them "
                   f"(--peak normalize lowers the level)")
    return out
