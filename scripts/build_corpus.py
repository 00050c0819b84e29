"""Rebuild bench/corpus and examples/example.flac from Debian packages (corpus_sources.json)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import prepare_training_data as ptd
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent


def source_for(package: str, category: str) -> ptd.Source:
    """The training-data source entry of a package (for its licence rules), or a plain one."""
    for src in ptd.SOURCES:
        if src.package == package:
            return src
    return ptd.Source(package, package, category)


def load_clip(clip: dict) -> tuple[np.ndarray, int]:
    """Decode a clip's files at their own rate, join several with gaps, and cut the segment."""
    pieces, rates = [], set()
    for path in clip["files"]:
        x, sr = ptd.read_native(path, clip["kind"])
        rates.add(sr)
        if len(clip["files"]) > 1:
            a, b = ptd.trim_bounds(x.mean(axis=1), sr)
            x = np.stack([ptd.fade(c, sr) for c in x[a:b].T], axis=1)
        pieces.append(x)
    if len(rates) != 1 or len({p.shape[1] for p in pieces}) != 1:
        raise SystemExit(f"{clip['out']}: files differ in rate or channels")
    sr = rates.pop()
    x = ptd.concat(pieces, sr, clip.get("gap_s", ptd.GAP_S)) if len(pieces) > 1 else pieces[0]
    start = int(round(clip.get("start_s", 0.0) * sr))
    stop = start + int(round(clip["duration_s"] * sr)) if "duration_s" in clip else len(x)
    if start >= len(x) or stop > len(x):
        raise SystemExit(f"{clip['out']}: segment is outside the source ({len(x) / sr:.2f} s)")
    return x[start:stop], sr


def finish(x: np.ndarray) -> tuple[np.ndarray, str]:
    """Store identical channels once; scale decoded overshoot under full scale (never clip)."""
    notes = []
    if x.shape[1] == 2 and np.max(np.abs(x[:, 0] - x[:, 1])) < 1e-4:
        x = x[:, :1]
        notes.append("identical channels stored as mono")
    peak = float(np.max(np.abs(x)))
    if peak > 1.0:
        x = x * (0.999 / peak)
        notes.append(f"scaled by {20 * np.log10(0.999 / peak):.1f} dB (decoded peak {peak:.2f})")
    return x, "; ".join(notes)


def build(spec: Path, root: Path, install: bool = True) -> list[dict[str, str]]:
    """Write every clip of the spec under root; return one description row per clip."""
    clips = json.loads(spec.read_text())["clips"]
    tools = [t for c in clips for t in ptd.TOOLS.get(c["kind"], [])]
    have = ptd.ensure_packages([c["package"] for c in clips] + tools, install=install)
    rows = []
    for clip in clips:
        if clip["package"] not in have:
            raise SystemExit(f"{clip['out']}: package {clip['package']} is not installed")
        x, sr = load_clip(clip)
        x, note = finish(x)
        out = root / clip["out"]
        out.parent.mkdir(parents=True, exist_ok=True)
        sf.write(out, x, sr, subtype="PCM_16", format="FLAC", compression_level=1.0)
        src = source_for(clip["package"], clip["category"])
        licences = sorted({ptd.licence_for(src, f) for f in clip["files"]})
        segment = ""
        if "duration_s" in clip:
            start = clip.get("start_s", 0.0)
            segment = f"{start:.2f}-{start + clip['duration_s']:.2f} s"
        if len(clip["files"]) > 1:
            segment = (
                f"{len(clip['files'])} files trimmed and joined with {clip.get('gap_s')} s gaps"
            )
        rows.append(
            {
                "out": clip["out"],
                "role": clip.get("role", "corpus"),
                "category": clip["category"],
                "package": clip["package"],
                "version": ptd.package_version(clip["package"]),
                "files": clip["files"],
                "segment": segment,
                "licence": " and ".join(licences),
                "format": f"{sr} Hz, {('mono', 'stereo')[x.shape[1] - 1]}, {len(x) / sr:.2f} s",
                "note": clip.get("note", ""),
                "processing": note,
                "bytes": out.stat().st_size,
            }
        )
        print(f"{clip['out']}: {rows[-1]['format']}, {out.stat().st_size // 1024} KiB", flush=True)
    return rows


def files_cell(row: dict) -> str:
    """Original file paths for a Markdown table cell."""
    return "<br>".join(f"`{f}`" for f in row["files"])


def write_sources_md(rows: list[dict], path: Path) -> None:
    """bench/corpus/SOURCES.md: one table row per clip."""
    corpus = [r for r in rows if r["role"] == "corpus"]
    lines = [
        "# Benchmark corpus: sources",
        "",
        "Real recordings taken from Debian packages, at their own sample rate and channel count,",
        "as 16-bit FLAC. `scripts/build_corpus.py` rebuilds every clip from",
        "`scripts/corpus_sources.json` (it installs the packages with apt-get when run as root).",
        "No file used here is used for training: `scripts/prepare_training_data.py` excludes every",
        "file listed in that JSON. Decoded peaks above full scale are scaled down, never clipped;",
        "identical channels are stored once. Licences are read from",
        "`/usr/share/doc/<package>/copyright` (the DEP-5 stanza matching the file).",
        "",
        f"{len(corpus)} clips, {sum(r['bytes'] for r in corpus) / 1e6:.1f} MB.",
        "",
        "| file | category | format | package (version) | original file(s) | segment | licence "
        "| what |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in corpus:
        what = r["note"] + (f" ({r['processing']})" if r["processing"] else "")
        name = r["out"].removeprefix("bench/corpus/")
        lines.append(
            f"| `{name}` | {r['category']} | {r['format']} | {r['package']} ({r['version']}) "
            f"| {files_cell(r)} | {r['segment'] or 'whole file'} | {r['licence']} | {what} |"
        )
    path.write_text("\n".join(lines) + "\n")


def write_example_md(row: dict, path: Path) -> None:
    """examples/README.md for the bundled example."""
    lines = [
        "# Bundled example",
        "",
        f"`example.flac`: {row['note']}. {row['format']}, 16-bit FLAC"
        + (f" ({row['processing']})." if row["processing"] else "."),
        "",
        f"- Source package: Debian `{row['package']}`, version {row['version']}",
        f"- Licence: {row['licence']} (from `/usr/share/doc/{row['package']}/copyright`; "
        "redistribution allowed under its terms)",
        f"- Processing: {row['segment']}",
        "- Original files:",
        *[f"  - `{f}`" for f in row["files"]],
        "",
        "Rebuilt by `scripts/build_corpus.py` (listed in `scripts/corpus_sources.json`). It is not",
        "one of the benchmark clips and none of its files is used for training.",
    ]
    path.write_text("\n".join(lines) + "\n")


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--spec", type=Path, default=ptd.SPEC)
    p.add_argument("--root", type=Path, default=ROOT, help="repository root to write into")
    p.add_argument("--no-install", action="store_true", help="only print the apt-get line")
    return p


def main(argv: list[str] | None = None) -> int:
    """Rebuild the corpus, the example and their source notes."""
    args = build_parser().parse_args(argv)
    rows = build(args.spec, args.root, install=not args.no_install)
    write_sources_md(rows, args.root / "bench/corpus/SOURCES.md")
    for row in rows:
        if row["role"] == "example":
            write_example_md(row, args.root / Path(row["out"]).parent / "README.md")
    total = sum(r["bytes"] for r in rows)
    print(f"{len(rows)} clips, {total / 1e6:.2f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
