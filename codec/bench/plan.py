"""`ldmz bench`: its parameters, the corpus clips and the plan of rows (running: bench_run)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ldmz.codec.audio_io import AUDIO_SUFFIXES
from ldmz.codec.bench.rows import Context, Row, classic_missing
from ldmz.codec.params import EncodeParams

if TYPE_CHECKING:
    from ldmz.codec.models import LoadedModel

# spectral_convergence is left out by default: it costs as much as mr_stft and tells the same
METRICS = ("snr", "si_sdr", "lsd", "mel_l1", "mr_stft", "pesq_wb", "stoi")
METRIC_CHOICES = (*METRICS, "spectral_convergence")  # ViSQOL: --visqol
NORMALIZATIONS = ("percentile", "zscore", "tanh")
# (option, label, vocoder) of the copy-synthesis ceilings; models' own HiFi-GANs are added
CEILINGS = (
    ("universal80", "ceiling: universal HiFi-GAN ← exact 80-mel 22.05 kHz", "universal"),
    ("gl80", "ceiling: Griffin-Lim ← exact 80-mel 22.05 kHz", "griffinlim"),
    ("gl64", "ceiling: Griffin-Lim ← exact 64-mel 16 kHz (AudioLDM2 mel)", "griffinlim"),
    ("adapt64", "ceiling: universal HiFi-GAN ← 64-mel 16 kHz via adapter", "universal"),
    ("gl128", "ceiling: Griffin-Lim ← exact 128-mel n_fft 2048 44.1 kHz full band", "griffinlim"),
    ("ldmzvoc80", "ceiling: ldmzvoc ← exact 80-mel 22.05 kHz", "ldmzvoc"),
)


@dataclass(frozen=True)
class BenchParams:
    """What `ldmz bench` runs; ``quick`` shrinks it to a smoke test (see :meth:`effective`)."""

    models: tuple[str, ...] = ()  # () = every available model
    bits: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
    opus_kbps: tuple[float, ...] = (6, 8, 12, 16)
    mp3_kbps: tuple[float, ...] = (8, 16)
    normalizations: tuple[str, ...] = NORMALIZATIONS
    postfilter: str = "gauss"  # "" = no post-filter row
    precision: str = "fp32"  # VAE decoder and HiFi-GAN: "fp32" (the codec's default) or "bf16"
    griffinlim_iters: int = 32
    visqol: bool = False
    metrics: tuple[str, ...] = METRICS
    quick: bool = False
    max_seconds: float = 0.0  # cut clips to this length; 0 = whole clips
    threads: int = 0  # torch threads per process; 0 = 1 (robust on a shared machine)
    mono: bool = True  # mix clips to mono (halves the time; leaves out inter-channel prediction)
    qualities: tuple[int, ...] = ()  # entropy-coded (format 2) rows, for models with tables
    groups: tuple[str, ...] = ()  # keep only rows of these groups (() = all)
    rows: tuple[str, ...] = ()  # keep only rows whose label matches one of these globs

    def effective(self) -> BenchParams:
        """``quick``: one clip per category, at most 3 s, bits 2/4/8, Opus 6/16, MP3 8."""
        if not self.quick:
            return self
        return replace(self, bits=tuple(b for b in self.bits if b in (2, 4, 8)) or (4,),
                       opus_kbps=self.opus_kbps[:1] + self.opus_kbps[-1:],
                       mp3_kbps=self.mp3_kbps[:1], max_seconds=self.max_seconds or 3.0)


@dataclass
class Clip:
    """One corpus file; its category is the name of its top folder under the corpus."""

    path: Path
    category: str
    audio: np.ndarray  # (channels, samples) float32
    sr: int

    @property
    def name(self) -> str:
        """``category/file``."""
        return f"{self.category}/{self.path.name}"

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return float(self.audio.shape[1] / self.sr)


@dataclass
class Plan:
    """Clips x rows to run, the rows that cannot run (label, reason), and the shared context."""

    params: BenchParams
    clips: list[Clip]
    rows: list[Row]
    skipped: list[tuple[str, str]]
    ctx: Context
    default_label: str = ""  # the first model's default row (for the spectrogram figure)
    opus_label: str = ""

    @property
    def metric_names(self) -> list[str]:
        """The metrics every run is scored with."""
        return [*self.params.metrics, *(["visqol"] if self.params.visqol else [])]

    @property
    def jobs(self) -> int:
        """Number of (clip, row) runs."""
        return len(self.clips) * len(self.rows)


@dataclass
class BenchResult:
    """Per-clip records, per-(row, category) aggregates and what the figures need."""

    plan: Plan
    records: list[dict[str, Any]]
    aggregates: list[dict[str, Any]]
    keep: dict[str, tuple[np.ndarray, int]] = field(default_factory=dict)
    runtime_s: float = 0.0
    machine: dict[str, str] = field(default_factory=dict)
    spectrogram_clip: str = ""


def find_clips(corpus: Path, quick: bool = False, max_seconds: float = 0.0,
               mono: bool = False) -> list[Clip]:
    """Audio files under ``corpus``; category = first folder level (``other`` at the top)."""
    from ldmz.codec.audio_io import read_audio

    files = sorted(p for p in Path(corpus).rglob("*")
                   if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    clips, seen = [], set()
    for p in files:
        parts = p.relative_to(corpus).parts
        cat = parts[0] if len(parts) > 1 else "other"
        if quick and cat in seen:
            continue
        seen.add(cat)
        audio, sr = read_audio(p)
        if max_seconds:
            audio = audio[:, :int(max_seconds * sr)]
        if mono:
            audio = audio.mean(axis=0, keepdims=True)
        clips.append(Clip(p, cat, np.ascontiguousarray(audio, np.float32), int(sr)))
    return clips


def tag(name: str) -> str:
    """A short name for a model: a folder's last part, else the registry name."""
    return Path(name).name if Path(name).is_dir() else name


def _model_rows(name: str, model: LoadedModel, p: BenchParams, first: bool,
                skipped: list[tuple[str, str]]) -> list[Row]:
    from ldmz.codec.vocoders import VOCODERS, load_vocoder

    t, voc, b = tag(name), model.vocoder, EncodeParams().bits
    rows = [Row("default", f"{t} · {voc} · {b} bit", "ldmz", name, voc, b)]
    for v in VOCODERS:
        if v == voc:
            continue
        if v == "hifigan" and load_vocoder(v, model, model.device).name != v:
            skipped.append((f"{t} · hifigan", f"{t} has no HiFi-GAN of its own (it falls back "
                            f"to the universal one: the {voc} row)"))
            continue
        rows.append(Row("vocoder", f"{t} · {v} · {b} bit", "ldmz", name, v, b))
        if model.tables is not None:  # and at the default coding (format 2, default quality)
            q = model.default_quality
            rows.append(Row("vocoder", f"{t} · {v} · quality {q}", "ldmz", name, v, 0, f"q{q}"))
    rows += [Row("bits", f"{t} · {voc} · {n} bit", "ldmz", name, voc, n)
             for n in p.bits if n != b]
    if model.tables is not None:
        rows += [Row("quality", f"{t} · {voc} · quality {q}", "ldmz", name, voc, 0, f"q{q}")
                 for q in p.qualities if 0 <= q < model.tables.qualities]
    if first:
        rows += [Row("normalization", f"{t} · {voc} · {b} bit · {n} normalization",
                     "normalization", name, voc, b, n) for n in p.normalizations]
        if p.postfilter:
            rows.append(Row("postfilter", f"{t} · {voc} · {b} bit · {p.postfilter} post-filter",
                            "postfilter", name, voc, b, p.postfilter))
    return rows


def plan_rows(p: BenchParams, models: dict[str, LoadedModel],
              skipped: list[tuple[str, str]]) -> list[Row]:
    """Every row for the loaded ``models`` (name -> LoadedModel); appends what cannot run."""
    rows: list[Row] = []
    for i, (name, model) in enumerate(models.items()):
        rows += _model_rows(name, model, p, i == 0, skipped)
    rows += [Row("ceiling", label, "ceiling", vocoder=v, option=o) for o, label, v in CEILINGS]
    own = [n for n, m in models.items() if m.load_own_vocoder(m.device) is not None]
    for n in own:
        rows.append(Row("ceiling", f"ceiling: {tag(n)} HiFi-GAN ← its exact mel", "ceiling",
                        vocoder="hifigan", option=f"own:{n}"))
    if not own:
        skipped.append(("ceiling: AudioLDM2 HiFi-GAN ← exact 64-mel 16 kHz",
                        "no model with a HiFi-GAN of its own (AudioLDM2 family) is available"))
    for kind, rates in (("opus", p.opus_kbps), ("mp3", p.mp3_kbps)):
        why = classic_missing(kind)
        for k in rates:
            label = f"{'Opus' if kind == 'opus' else 'MP3'} {k:g} kbps"
            if why:
                skipped.append((label, why))
            else:
                rows.append(Row("classic", label, kind, nominal_kbps=float(k)))
    return rows


def plan(corpus: str | os.PathLike[str], params: BenchParams = BenchParams()) -> Plan:
    """Find the clips, load every available model, and lay out the rows."""
    from ldmz.codec.models import available_models

    p = params.effective()
    clips = find_clips(Path(corpus), p.quick, p.max_seconds, p.mono)
    if not clips:
        raise FileNotFoundError(f"{corpus}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})")
    skipped: list[tuple[str, str]] = []
    models = load_models(p.models or tuple(available_models()), skipped)
    ctx = make_context(p, models)
    rows = plan_rows(p, models, skipped)
    if p.groups:
        rows = [r for r in rows if r.group in p.groups]
    if p.rows:
        rows = [r for r in rows if any(fnmatchcase(r.label, g) for g in p.rows)]
        if not rows:
            from ldmz.codec.errors import UsageError

            raise UsageError(f"--rows {' '.join(p.rows)} matches no row; see the row labels "
                             f"in a full run's results.md")
    default = next((r.label for r in rows if r.group == "default"), "")
    opus = next((r.label for r in rows if r.kind == "opus"), "")
    return Plan(p, clips, rows, skipped, ctx, default, opus)


def load_models(names: tuple[str, ...] | list[str],
                skipped: list[tuple[str, str]]) -> dict[str, LoadedModel]:
    """Load each model (offline) by name; the ones that fail go to ``skipped`` with the reason."""
    from ldmz.codec.models import ModelError, load_model

    models = {}
    for name in names:
        try:
            models[name] = load_model(name, "auto", True)
        except (ModelError, OSError) as e:
            skipped.append((tag(name), f"model not available: {e}"))
    return models


def make_context(p: BenchParams, models: dict[str, LoadedModel]) -> Context:
    """The shared state of the rows: loaded models and decode settings."""
    return Context(models=models, precision=p.precision, griffinlim_iters=p.griffinlim_iters,
                   postfilter=p.postfilter)


def warm_up(p: BenchParams) -> None:
    """Load the universal HiFi-GAN and run it once, so the first row's time and memory are fair."""
    from ldmz.codec.errors import VocoderError
    from ldmz.codec.vocoders import load_vocoder

    try:
        voc = load_vocoder("universal", precision=p.precision)
    except VocoderError:
        return  # its rows will report the error
    voc(np.full((32, voc.mel.n_mels), -5.0, np.float32))
