"""Smoke test of `ldmz bench --quick` on three short synthetic clips with a tiny seeded model."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ldmz.codec.cli import main

SECONDS = 0.6


def _clips(root: Path) -> None:
    rng = np.random.default_rng(0)
    for cat, sr in (("speech", 16000), ("music", 22050), ("ambient", 44100)):
        t = np.arange(int(SECONDS * sr)) / sr
        if cat == "speech":  # a gliding harmonic voice with syllable-rate gating
            phase = 2 * np.pi * np.cumsum(120 + 30 * np.sin(2 * np.pi * 2 * t)) / sr
            gate = np.sin(2 * np.pi * 4 * t) > -0.5
            x = sum(np.sin(k * phase) / k for k in range(1, 30)) * gate
        elif cat == "music":  # a decaying C-major chord
            x = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) * np.exp(-3 * t)
        else:  # noise
            x = rng.standard_normal(len(t))
        (root / cat).mkdir(parents=True)
        sf.write(root / cat / f"{cat}.flac", (0.3 * x / np.abs(x).max()).astype(np.float32), sr)


@pytest.fixture(scope="module")
def bench_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from ldmz.codec.models.patchvae import PatchVAE
    from ldmz.codec.train.trainer import export

    root = tmp_path_factory.mktemp("bench")
    torch.manual_seed(0)
    export(PatchVAE(), root / "tiny")
    _clips(root / "corpus")
    rc = main(["bench", str(root / "corpus"), "--out", str(root / "out"), "--quick",
               "--models", str(root / "tiny"), "--workers", "1"])
    assert rc == 0
    return root / "out"


def _summary(md: str) -> tuple[list[str], list[list[str]]]:
    lines = md.split("## Summary", 1)[1].strip().splitlines()
    table = lines[:next(i for i, ln in enumerate(lines) if not ln.startswith("|"))]
    head = [c.strip() for c in table[0].strip("|").split("|")]
    return head, [[c.strip() for c in ln.strip("|").split("|")] for ln in table[2:]]


def test_outputs_exist(bench_out: Path) -> None:
    for name in ("results.md", "results.csv", "results_clips.csv", "rate_quality.png",
                 "rate_quality_speech.png", "rate_quality_music.png",
                 "rate_quality_ambient.png", "spectrogram.png"):
        assert (bench_out / name).stat().st_size > 0, name


def test_table_rows_and_columns(bench_out: Path) -> None:
    head, body = _summary((bench_out / "results.md").read_text(encoding="utf-8"))
    for col in ("group", "row", "kbps", "mel L1 speech", "mel L1 music", "mel L1 ambient",
                "PESQ speech", "STOI speech", "enc ×RT", "dec ×RT", "peak MB"):
        assert col in head
    rows = {r[1]: dict(zip(head, r, strict=True)) for r in body}
    from ldmz.codec.params import EncodeParams

    d = EncodeParams().bits  # the default-bits rows follow the codec's default
    expected = [f"tiny · universal · {d} bit", f"tiny · griffinlim · {d} bit",
                f"tiny · ldmzvoc · {d} bit", "ceiling: ldmzvoc ← exact 80-mel 22.05 kHz",
                "tiny · universal · 2 bit", "tiny · universal · 8 bit",
                *[f"tiny · universal · {d} bit · {n} normalization"
                  for n in ("percentile", "zscore", "tanh")],
                f"tiny · universal · {d} bit · gauss post-filter",
                "ceiling: universal HiFi-GAN ← exact 80-mel 22.05 kHz",
                "ceiling: Griffin-Lim ← exact 64-mel 16 kHz (AudioLDM2 mel)",
                "ceiling: universal HiFi-GAN ← 64-mel 16 kHz via adapter",
                "ceiling: Griffin-Lim ← exact 128-mel n_fft 2048 44.1 kHz full band"]
    if shutil.which("ffmpeg"):
        expected += ["Opus 6 kbps", "Opus 16 kbps", "MP3 8 kbps"]
    for label in expected:
        assert label in rows, label
        assert rows[label]["mel L1 speech"] not in ("–", "failed"), label
    assert float(rows["tiny · universal · 2 bit"]["kbps"]) < float(
        rows["tiny · universal · 8 bit"]["kbps"])
    assert rows["ceiling: universal HiFi-GAN ← exact 80-mel 22.05 kHz"]["kbps"] == "–"
    md = (bench_out / "results.md").read_text(encoding="utf-8")
    assert "tiny · hifigan: tiny has no HiFi-GAN of its own" in md
    assert "(1 clip)" in md and "1 clips" not in md  # one clip per category, said right


def test_csvs(bench_out: Path) -> None:
    with open(bench_out / "results.csv", encoding="utf-8") as fh:
        agg = list(csv.DictReader(fh))
    with open(bench_out / "results_clips.csv", encoding="utf-8") as fh:
        clips = list(csv.DictReader(fh))
    assert {r["category"] for r in agg} == {"speech", "music", "ambient", "all"}
    assert {"kbps", "enc_rtf", "dec_rtf", "peak_mem_mb", "mel_l1", "pesq_wb", "stoi"} <= set(agg[0])
    assert len(clips) == 3 * len({r["row"] for r in agg})
    assert not [r for r in clips if r["error"]]
    default = [r for r in agg if r["row"] == "tiny · universal · 4 bit" and r["category"] == "all"]
    assert float(default[0]["kbps"]) > 0 and float(default[0]["dec_rtf"]) > 0


@pytest.mark.parametrize("name", ["exact", "percentile", "zscore", "tanh"])
def test_normalizations_undo(name: str) -> None:
    from ldmz.codec.bench.rows import normalization

    x = np.random.default_rng(1).standard_normal(4000).astype(np.float32) * 0.1
    mel_fn = lambda w: np.log(np.abs(w[:3900]).reshape(-1, 78) + 1e-5)  # noqa: E731
    m, gain, undo = normalization(name, x, 2.0, mel_fn)
    if name == "percentile":  # a level change: the gain absorbs it, the mel moves by log(s)
        s = 2.0 / gain
        assert s > 1 and np.allclose(m, mel_fn(x * s))
    else:  # tanh clips at +-0.999 (|z| > 3.8) before artanh
        ok = np.abs(m) < 0.999 if name == "tanh" else np.ones(m.shape, bool)
        assert gain == 2.0 and np.allclose(undo(m)[ok], mel_fn(x)[ok], atol=1e-3)
    if name in ("zscore", "tanh"):
        assert abs(float(m.mean())) < 0.5 and float(np.abs(m).max()) < 10


def test_postfilter_smooths() -> None:
    from ldmz.codec.bench.rows import postfilter

    m = np.random.default_rng(2).standard_normal((64, 80)).astype(np.float32)
    for name in ("gauss", "median"):
        y = postfilter(name, m)
        assert y.shape == m.shape and y.std() < m.std()


def test_rows_filter(tmp_path: Path) -> None:
    """--rows keeps only the rows whose label matches a pattern; no match is an error."""
    import torch

    from ldmz.codec.bench.plan import BenchParams, plan
    from ldmz.codec.models.patchvae import PatchVAE
    from ldmz.codec.train.trainer import export

    torch.manual_seed(0)
    export(PatchVAE(), tmp_path / "tiny")
    _clips(tmp_path / "corpus")
    p = BenchParams(models=(str(tmp_path / "tiny"),), quick=True,
                    rows=("tiny · * · 2 bit", "ceiling: * 80-mel*"))
    labels = [r.label for r in plan(tmp_path / "corpus", p).rows]
    assert sorted(labels) == sorted([
        "tiny · universal · 2 bit", "tiny · griffinlim · 2 bit", "tiny · ldmzvoc · 2 bit",
        "ceiling: universal HiFi-GAN ← exact 80-mel 22.05 kHz",
        "ceiling: Griffin-Lim ← exact 80-mel 22.05 kHz",
        "ceiling: ldmzvoc ← exact 80-mel 22.05 kHz"])
    with pytest.raises(ValueError, match="matches no row"):
        plan(tmp_path / "corpus", BenchParams(models=(str(tmp_path / "tiny"),), quick=True,
                                              rows=("nothing*",)))


def test_vocoder_rows_at_the_default_quality(tmp_path: Path) -> None:
    """A model with entropy tables gets each other vocoder's row at its default quality too."""
    import importlib.util

    import torch

    from ldmz.codec.bench.plan import BenchParams, plan
    from ldmz.codec.models.patchvae import PatchVAE
    from ldmz.codec.train.trainer import export

    spec = importlib.util.spec_from_file_location("rans", Path(__file__).with_name(
        "test_codec_rans.py"))
    assert spec is not None and spec.loader is not None
    rans = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rans)  # its tiny Laplace tables
    torch.manual_seed(0)
    export(PatchVAE(), tmp_path / "plain")
    model = rans._with_tables(tmp_path / "plain", tmp_path / "tiny", default=2)
    _clips(tmp_path / "corpus")
    p = BenchParams(models=(str(model),), quick=True, groups=("vocoder",))
    rows = {r.label: r for r in plan(tmp_path / "corpus", p).rows}
    for voc in ("griffinlim", "ldmzvoc"):
        assert rows[f"tiny · {voc} · quality 2"].vocoder == voc
        assert f"tiny · {voc} · 2 bit" in rows
    assert "tiny · universal · quality 2" not in rows  # the default vocoder: the quality rows
