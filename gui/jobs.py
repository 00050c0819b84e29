"""The work the worker threads do: read, encode, decode, measure and analyse (no widgets here)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ldmz.codec.params import DecodeParams, EncodeParams
from ldmz.formats import LdmzFile, kbps
from ldmz.gui import analysis
from ldmz.gui.settings import ViewParams
from ldmz.gui.worker import Report

TAG_KEYS = ("title", "artist", "comment")


@dataclass
class Audio:
    """Audio in memory: float32 (channels, samples) at ``sr``."""

    data: np.ndarray
    sr: int
    path: str = ""

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.data.shape[1] / self.sr if self.sr else 0.0


@dataclass
class Coded:
    """An encoded file with its decoded audio and (when an original exists) its metrics."""

    ldmz: LdmzFile
    size: int  # bytes of the file as written
    audio: Audio
    report: object = None  # ldmz.codec.metrics.MetricReport, or None
    vocoder: str = ""  # the vocoder that made ``audio``


@dataclass
class Opened:
    """A `.ldmz` read from disk with every checksum verified."""

    ldmz: LdmzFile
    size: int
    path: str


@dataclass
class Side:
    """What one pane draws: one lane per channel (signal and overview envelope) and the
    spectrogram of the channel chosen in the view (or of their mix)."""

    lanes: np.ndarray  # float32 (channels, samples), at most analysis.MAX_LANES channels
    sr: int
    envelopes: list[tuple[np.ndarray, np.ndarray]]
    spec: analysis.Spectrogram
    channel: str = ""  # what the spectrogram shows: "L", "R", "ch 3", "L+R mix" ...

    @property
    def samples(self) -> int:
        """Samples per channel."""
        return int(self.lanes.shape[1])


@dataclass
class Analysis:
    """Both panes plus the difference image."""

    sides: list[Side | None] = field(default_factory=lambda: [None, None])
    diff: analysis.Spectrogram | None = None


def read(path: str, report: Report) -> Audio:
    """Read an audio file."""
    from ldmz.codec.audio_io import check_audio, read_audio

    report(0, 1, "Reading")
    data, sr = read_audio(path)
    return Audio(check_audio(data, path), sr, path)


def open_ldmz(path: str, report: Report) -> Opened:
    """Read a `.ldmz` and verify every chunk's checksum (in the worker: a big file takes time)."""
    report(0, 0, "Verifying")
    return Opened(LdmzFile.load(path), file_size(path), path)


_loaded: set[tuple[str, str]] = set()  # (model, device) loaded in this process (codec caches)


def _loading_stage(model: str, device: str) -> str:
    first = (model, device) not in _loaded
    _loaded.add((model, device))
    return "Loading the model (once per session)" if first else "Preparing"


def decode(f: LdmzFile, params: DecodeParams, sr: int, report: Report) -> tuple[Audio, str]:
    """Decode ``f`` at rate ``sr`` (0: the source's): the audio and the vocoder that made it."""
    from ldmz.codec.api import decode_stream

    p = replace(params, sr=sr or params.sr)
    report(0, 0, _loading_stage(p.model or f.header.model.id, p.device))
    st = decode_stream(f, p, progress=lambda d, t: report(d, t, "Decoding"))
    out = np.empty((st.channels, st.samples), np.float32)
    pos = 0
    for blk in st:
        out[:, pos:pos + len(blk)] = blk.T
        pos += len(blk)
    return Audio(out, st.sample_rate), st.vocoder


def measure(ref: Audio, deg: Audio, report: Report) -> object:
    """The metrics of the reconstruction against the original, or None if they are missing.

    The same comparison as `ldmz eval REF FILE.ldmz`: decoded `.ldmz` audio is sample-aligned,
    so there is no delay search (cross-correlation misplaces phase-free vocoder output).
    """
    report(0, 0, "Measuring")
    try:
        from ldmz.codec.metrics import CompareParams, compare
    except ImportError:
        return None
    return compare(ref.data, ref.sr, deg.data, deg.sr, CompareParams(align=False))


def compress(orig: Audio, enc: EncodeParams, dec: DecodeParams, tags: Mapping[str, str],
             report: Report) -> Coded:
    """Encode the original, decode it back at the original rate and measure the result."""
    from ldmz.codec.api import encode

    report(0, 0, _loading_stage(enc.model_name(), enc.device))
    f = encode(orig.data, orig.sr, enc, tags=clean_tags(tags),
               progress=lambda d, t: report(d, t, "Encoding"))
    size = len(f.to_bytes())
    dec = replace(dec, vocoder=dec.vocoder or enc.vocoder, model=dec.model or enc.model)
    audio, voc = decode(f, dec, orig.sr, report)
    return Coded(f, size, audio, measure(orig, audio, report), voc)


def decode_file(f: LdmzFile, size: int, dec: DecodeParams, orig: Audio | None,
                report: Report) -> Coded:
    """Decode an opened file (at the original's rate when there is one) and measure it."""
    audio, voc = decode(f, dec, orig.sr if orig else 0, report)
    return Coded(f, size, audio, measure(orig, audio, report) if orig else None, voc)


def analyse(audios: list[Audio | None], view: ViewParams, report: Report) -> Analysis:
    """Envelopes and spectrograms of both sides and their difference."""
    out = Analysis()
    for i, a in enumerate(audios):
        if a is None:
            continue
        report(i, 3, "Analysing")
        lanes = np.atleast_2d(np.asarray(a.data, np.float32))[:analysis.MAX_LANES]
        x, label = analysis.pick_channel(a.data, view.channel)
        spec = analysis.spectrogram(x, a.sr, view.n_fft, view.spectrogram, view.log_freq)
        out.sides[i] = Side(lanes, a.sr, [analysis.envelope(c, a.sr) for c in lanes], spec,
                            label)
    s0, s1 = out.sides
    if s0 is not None and s1 is not None and s0.sr == s1.sr:
        report(2, 3, "Analysing")
        out.diff = analysis.difference(s1.spec, s0.spec, view.db_floor)
    return out


def clean_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags without empty values, stripped."""
    return {k: v.strip() for k, v in tags.items() if v and v.strip()}


def retag(f: LdmzFile, tags: Mapping[str, str]) -> LdmzFile:
    """A copy of ``f`` whose title/artist/comment tags are replaced (other tags are kept)."""
    merged = {k: v for k, v in f.header.tags.items() if k not in TAG_KEYS}
    merged.update(clean_tags(tags))
    if merged == f.header.tags:
        return f
    return f.with_tags(merged)


def bitrate_kbps(size: int, duration: float) -> float | None:
    """File bits per second of audio, in kbps."""
    return kbps(size, duration)


def compression_ratio(size: int, f: LdmzFile) -> float | None:
    """16-bit PCM size at the source rate over the file size (as `ldmz info` computes it)."""
    return f.header.compression_ratio(size)


def file_size(path: str | os.PathLike) -> int:
    """Size in bytes."""
    return Path(path).stat().st_size
