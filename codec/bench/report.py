"""Outputs of `ldmz bench`: results.md, results.csv, results_clips.csv and the PNG figures."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from ldmz.codec.bench.plan import BenchResult
from ldmz.formats.fileio import atomic_file, write_atomic

REPORTS = ("results.md", "results.csv", "results_clips.csv", "rate_quality.png",
           "spectrogram.png")

PLOT_METRICS = (("mel_l1", "log-mel L1 (64-bin 16 kHz) ↓"), ("pesq_wb", "PESQ-WB ↑"),
                ("stoi", "STOI ↑"))
CEILING_STYLE = {"universal80": ("--", "black"), "gl80": (":", "gray"), "own": ("-.", "black")}
TITLES = {"snr": "SNR dB", "si_sdr": "SI-SDR dB", "lsd": "LSD dB", "mel_l1": "mel L1",
          "mr_stft": "MR-STFT", "spectral_convergence": "SC", "pesq_wb": "PESQ", "stoi": "STOI",
          "visqol": "ViSQOL"}


def _fmt(v: object, digits: int = 3) -> str:
    if v is None or v == "":
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def _csv(path: Path, rows: list[dict[str, Any]]) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    fh = io.StringIO(newline="")
    w = csv.DictWriter(fh, keys)
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r[k] for k in keys})
    write_atomic(path, fh.getvalue().encode("utf-8"), overwrite=True)


def _save_fig(fig: Any, path: Path) -> None:  # fig: a matplotlib Figure
    """A figure as PNG, written atomically like every other output."""
    with atomic_file(path, overwrite=True) as fh:
        fig.savefig(fh, format="png", dpi=110)


def _table(head: list[str], body: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in body]


def summary_table(res: BenchResult) -> list[str]:
    """One line per row: bitrate, mel L1 per category, PESQ/STOI on speech, speed, memory."""
    agg = {(a["row"], a["category"]): a for a in res.aggregates}
    cats = list(dict.fromkeys(c.category for c in res.plan.clips))
    focus = "speech" if "speech" in cats else "all"
    head = ["group", "row", "kbps", *[f"mel L1 {c}" for c in cats], f"PESQ {focus}",
            f"STOI {focus}", "MR-STFT", "SNR dB", "enc ×RT", "dec ×RT", "peak MB"]
    body = []
    for row in res.plan.rows:
        a = agg.get((row.label, "all"))
        if a is None:
            body.append([row.group, row.label, "failed", *["–"] * (len(head) - 3)])
            continue
        f = agg.get((row.label, focus), {})
        body.append([row.group, row.label, _fmt(a["kbps"], 2),
                     *[_fmt(agg.get((row.label, c), {}).get("mel_l1")) for c in cats],
                     _fmt(f.get("pesq_wb"), 2), _fmt(f.get("stoi")), _fmt(a.get("mr_stft")),
                     _fmt(a.get("snr"), 1), _fmt(a["enc_rtf"], 1), _fmt(a["dec_rtf"], 1),
                     _fmt(a["peak_mem_mb"], 0)])
    return _table(head, body)


def category_tables(res: BenchResult) -> list[str]:
    """Every metric per category (means over the category's clips)."""
    names = [k for k in TITLES if any(k in a for a in res.aggregates)]
    lines = []
    for cat in [*dict.fromkeys(c.category for c in res.plan.clips), "all"]:
        rows = [a for a in res.aggregates if a["category"] == cat]
        n = len([c for c in res.plan.clips if cat in ("all", c.category)])
        lines += ["", f"### {cat} ({_n(n, 'clip')})", ""]
        lines += _table(["row", "kbps", *[TITLES[k] for k in names]],
                        [[a["row"], _fmt(a["kbps"], 2), *[_fmt(a.get(k)) for k in names]]
                         for a in rows])
    return lines


def _n(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def write_markdown(res: BenchResult, path: Path) -> None:
    """results.md: the summary table, per-category tables, skipped rows and how to read them."""
    p, m = res.plan.params, res.machine
    cats: dict[str, list[float]] = {}
    for c in res.plan.clips:
        cats.setdefault(c.category, []).append(c.seconds)
    corpus = ", ".join(f"{k} {_n(len(v), 'clip')} ({sum(v):.0f} s)" for k, v in cats.items())
    errors = [r for r in res.records if r["error"]]
    lines = [
        "# ldmz bench", "",
        f"{m['date']} on {m['cpu']} ({m['platform']}; Python {m['python']}; torch "
        f"{m['torch']}; {m.get('workers', '0')} worker process(es) running the jobs).",
        f"Corpus: {corpus}{' (quick subset)' if p.quick else ''}. "
        f"Wall time {res.runtime_s / 60:.1f} min for {_n(res.plan.jobs, 'run')}.", "",
        "## Summary", "",
        *summary_table(res), "",
        "How to read it:",
        "- kbps: real file size (header and container included) x 8 / duration; ceilings store "
        "no file.",
        "- mel L1: AudioLDM2's 64-bin 16 kHz log-mel L1 (lower is better); PESQ-WB and STOI at "
        "16 kHz (higher is better); MR-STFT and SNR at the clip's own rate. Waveform SNR is no "
        "yardstick for phase-free vocoders. Opus and MP3 are delay-compensated by "
        "cross-correlation; ldmz and the ceilings are sample-aligned by construction and "
        "compared as they are (cross-correlation misplaces phase-free output by tens of ms).",
        "- enc/dec ×RT: audio seconds per processing second (higher is faster; the clip is in "
        f"memory, file reading excluded), each job on {m['torch'].split(', ')[-1]} with "
        f"{m.get('workers', '0')} jobs at a time. ldmz decode runs the VAE decoder and HiFi-GAN "
        f"in {p.precision}; Griffin-Lim: {p.griffinlim_iters} iterations.",
        "- peak MB: the most resident memory a single clip's encode + decode added to the "
        "process (kernel high-water mark reset before it, models already loaded); for Opus/MP3 "
        "the peak RSS of the ffmpeg process.",
        "- normalization rows (default model, default bits): `percentile` scales the wave so "
        "its 99th percentile |x| is 0.5 instead of its peak; `zscore` standardizes the log-mel "
        "per clip before the VAE and undoes it after; `tanh` squashes that z-score into (-1, 1) "
        "and undoes it with artanh. The `exact` training front-end (mean removed, peak 0.5) is "
        "the default row.",
        f"- post-filter: `{p.postfilter}` smoothing of the decoded log-mel before the vocoder "
        "(gauss: sigma 0.8 frames x 0.6 bins; median: 3x3).",
        "- ceilings: the clip's exact log-mel in that configuration straight into the vocoder, "
        "no VAE: the best any VAE on that mel can do.", "",
    ]
    if res.plan.skipped or errors:
        lines += ["## Not run", ""]
        lines += [f"- {label}: {why}" for label, why in res.plan.skipped]
        lines += [f"- {r['row']} on {r['clip']}: {r['error']}" for r in errors]
        lines.append("")
    lines += ["## Per category", *category_tables(res), ""]
    lines += ["![rate-quality](rate_quality.png)", "", "![spectrograms](spectrogram.png)", ""]
    write_atomic(path, "\n".join(lines).encode("utf-8"), overwrite=True)


def _series(res: BenchResult, cat: str) -> dict[str, list[dict[str, Any]]]:
    rows = {r.label: r for r in res.plan.rows}
    series: dict[str, list[dict[str, Any]]] = {}
    for a in res.aggregates:
        r = rows[a["row"]]
        if a["category"] != cat or a["kbps"] is None:
            continue
        model = res.plan.ctx.models.get(r.model)
        if r.kind == "ldmz" and model is not None and r.vocoder == model.vocoder:
            key = f"{a['model']} ({r.vocoder}), bits"
        elif r.kind in ("opus", "mp3"):
            key = "Opus" if r.kind == "opus" else "MP3"
        elif r.kind in ("ldmz", "postfilter"):
            key = r.label
        else:
            continue
        series.setdefault(key, []).append({**a, "_bits": r.bits})
    return series


def _rate_axes(res: BenchResult, cat: str, axes: list[Any]) -> None:
    opts = {r.label: r.option for r in res.plan.rows}
    ceil = [(a, opts[a["row"]]) for a in res.aggregates
            if a["category"] == cat and a["group"] == "ceiling"]
    for (metric, title), ax in zip(PLOT_METRICS, axes, strict=True):
        for key, pts in _series(res, cat).items():
            pts = sorted((p for p in pts if p.get(metric) is not None), key=lambda p: p["kbps"])
            if not pts:
                continue
            x, y = [p["kbps"] for p in pts], [p[metric] for p in pts]
            ax.plot(x, y, marker="o" if len(pts) > 1 else "s", ls="-" if len(pts) > 1 else "",
                    label=key)
            if key.endswith("bits"):
                for p in pts:
                    ax.annotate(str(p["_bits"]), (p["kbps"], p[metric]), fontsize=7,
                                xytext=(3, 3), textcoords="offset points")
        for a, opt in ceil:
            style = CEILING_STYLE.get("own" if opt.startswith("own:") else opt)
            if style and a.get(metric) is not None:
                ax.axhline(a[metric], ls=style[0], color=style[1], lw=1,
                           label=a["row"].replace("ceiling: ", "ceiling ")
                           .replace(" 22.05 kHz", ""))
        if metric == "mel_l1":  # MP3 and band-limited Opus sit far above the codec and ceilings
            from matplotlib.ticker import LogLocator, ScalarFormatter

            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.yaxis.set_minor_formatter("")
        ax.set_title(f"{cat}: {title}", fontsize=9)
        ax.set_xlabel("kbps (from file size)", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)


def plot_rate_quality(res: BenchResult, out: Path) -> list[Path]:
    """rate_quality.png (categories x metrics) and one rate_quality_<category>.png each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = list(dict.fromkeys(c.category for c in res.plan.clips))
    paths = []
    fig, grid = plt.subplots(len(cats), 3, figsize=(14, 3.6 * len(cats)), squeeze=False)
    for cat, axes in zip(cats, grid, strict=True):
        _rate_axes(res, cat, list(axes))
    handles, labels = grid[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0.04 + 0.1 / len(cats), 1, 1))
    paths.append(out / "rate_quality.png")
    _save_fig(fig, paths[-1])
    plt.close(fig)
    for cat in cats:
        fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
        _rate_axes(res, cat, list(axes))
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        paths.append(out / f"rate_quality_{cat}.png")
        _save_fig(fig, paths[-1])
        plt.close(fig)
    return paths


def plot_spectrogram(res: BenchResult, out: Path) -> Path:
    """spectrogram.png: one speech clip, original vs the default codec row vs Opus."""
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ldmz.codec.audio_io import resample

    kbps = {r["row"]: r["kbps"] for r in res.records if r["clip"] == res.spectrogram_clip}
    panels = list(res.keep.items())
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.6 * len(panels)), squeeze=False)
    for (name, (audio, sr)), ax in zip(panels, axes[:, 0], strict=True):
        y = resample(np.asarray(audio, np.float32).mean(axis=0), sr, 22050)
        s = librosa.amplitude_to_db(np.abs(librosa.stft(y, n_fft=1024, hop_length=256)) + 1e-9,
                                    ref=1.0, top_db=None)
        ax.imshow(s, origin="lower", aspect="auto", vmin=-80, vmax=max(-30, float(s.max())),
                  extent=(0, len(y) / 22050, 0, 11.025), cmap="magma")
        rate = kbps.get(name)
        title = f"{res.spectrogram_clip}: original" if name == "original" else name
        ax.set_title(title + (f" ({rate:.2f} kbps)" if rate else ""), fontsize=9)
        ax.set_ylabel("kHz")
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    path = out / "spectrogram.png"
    _save_fig(fig, path)
    plt.close(fig)
    return path


def write_all(res: BenchResult, out: str | Path) -> list[Path]:
    """Write every output into ``out`` and return the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _csv(out / "results.csv", res.aggregates)
    _csv(out / "results_clips.csv", res.records)
    write_markdown(res, out / "results.md")
    pngs = [*plot_rate_quality(res, out), plot_spectrogram(res, out)]
    return [out / "results.md", out / "results.csv", out / "results_clips.csv", *pngs]
