"""Rate-quality of entropy coding vs the affine coding: one panel per category, two metrics.

Top row: ``ldmz bench`` figures (64-mel 16 kHz log-mel L1 after the universal HiFi-GAN) from
results.csv files: the affine rows (bits), the entropy-coded rows (quality), Opus and MP3.
Bottom row: ``scripts/rate_quality_mel.py`` output (80-mel L1 of the decoded mel, no vocoder),
with the PCA floor's points from MODEL_CARD.md.

``--bench-new``/``--mel-new``: the same for the second tables (per-bin sensitivity steps, 15
qualities), drawn as their own series; ``--bench-rd``/``--mel-rd``: ldmz-small-rd (rate-distortion
fine-tuned, the entropy coding's default model), its own series.

    python scripts/plot_ec_curves.py --bench docs/bench/results.csv docs/ec/results.csv \\
        --mel docs/ec/rate_quality_mel.txt --bench-new docs/ec/results_steps.csv \\
        --mel-new docs/ec/rate_quality_mel_steps.txt --bench-rd docs/ec/results_rd.csv \\
        --mel-rd docs/ec/rate_quality_mel_rd.txt --out docs/ec/rate_quality_ec.png
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

CATS = ("ambient", "music", "speech")
# MODEL_CARD.md, "At the same bitrate": the PCA floor at 2-5 bits (kbps, 80-mel L1) per category
PCA_FLOOR = {"ambient": [(3.1, 1.102), (5.5, 0.609), (7.8, 0.269), (11.0, 0.179)],
             "music": [(3.3, 1.479), (5.4, 0.716), (7.7, 0.322), (11.2, 0.190)],
             "speech": [(3.4, 1.601), (5.9, 0.827), (7.6, 0.375), (10.8, 0.221)]}
OLD_EC, NEW_EC = ("ldmz-small, entropy-coded, first tables",
                  "ldmz-small, entropy-coded, sensitivity steps")
RD_EC = "ldmz-small-rd, entropy-coded (default)"
COLORS = {"ldmz-small, affine (--bits)": "tab:orange", OLD_EC: "tab:olive",
          NEW_EC: "tab:green", RD_EC: "tab:purple", "PCA floor (affine)": "tab:gray",
          "Opus": "tab:blue", "MP3": "tab:red"}
LINE = re.compile(r" (bits|quality) (\d+): (.*)")
CELL = re.compile(r"(\w+) ([\d.]+) kbps L1 ([\d.]+)")


def bench_points(paths: list[Path], ec: str = OLD_EC,
                 out: dict | None = None) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """{series: {category: [(kbps, mel_l1)]}} from bench results.csv files (quality rows: the
    series ``ec``)."""
    out = {} if out is None else out
    for p in paths:
        for r in csv.DictReader(p.open()):
            g, row = r["group"], r["row"]
            if g in ("default", "bits") and "universal" in row and "normalization" not in row:
                s = "ldmz-small, affine (--bits)"
            elif g == "quality":
                s = ec
            elif g == "classic":
                s = row.split()[0]
            else:
                continue
            out.setdefault(s, {}).setdefault(r["category"], []).append(
                (float(r["kbps"]), float(r["mel_l1"])))
    return out


def mel_points(path: Path, ec: str = OLD_EC,
               out: dict | None = None) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """The same from rate_quality_mel.py's lines, plus the PCA floor."""
    out = {"PCA floor (affine)": PCA_FLOOR} if out is None else out
    for line in path.read_text().splitlines():
        m = LINE.search(line)
        if not m:
            continue
        s = "ldmz-small, affine (--bits)" if m.group(1) == "bits" else ec
        for cat, kbps, l1 in CELL.findall(m.group(3)):
            out.setdefault(s, {}).setdefault(cat, []).append((float(kbps), float(l1)))
    return out


def main() -> None:
    """Command line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", nargs="+", type=Path, required=True)
    ap.add_argument("--mel", type=Path, required=True)
    ap.add_argument("--bench-new", nargs="*", type=Path, default=[])
    ap.add_argument("--mel-new", type=Path)
    ap.add_argument("--bench-rd", nargs="*", type=Path, default=[])
    ap.add_argument("--mel-rd", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    bench = bench_points(a.bench)
    bench = bench_points(a.bench_new, NEW_EC, bench)
    bench = bench_points(a.bench_rd, RD_EC, bench)
    mel = mel_points(a.mel)
    if a.mel_new:
        mel = mel_points(a.mel_new, NEW_EC, mel)  # (run with no --bits rows: those are old)
    if a.mel_rd:
        mel = mel_points(a.mel_rd, RD_EC, mel)  # (run with no --bits rows)
    rows = [("ldmz bench: 64-mel L1 after the vocoder", bench),
            ("mel domain: 80-mel L1, no vocoder", mel)]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    for r, (title, series) in enumerate(rows):
        for c, cat in enumerate(CATS):
            ax = axes[r][c]
            for name, per in sorted(series.items()):
                pts = sorted(per.get(cat, []))
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name,
                            color=COLORS.get(name), ls="--" if name == OLD_EC else "-",
                            ms=4 if name == OLD_EC else 6)
            ax.set_title(f"{cat} — {title}", fontsize=9)
            ax.set_xlabel("kbps (file size, header included)")
            ax.set_ylabel("log-mel L1 (lower is better)")
            ax.set_xlim(0, 20)
            ax.set_yscale("log")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    axes[1][0].legend(fontsize=7)
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=90)


if __name__ == "__main__":
    main()
