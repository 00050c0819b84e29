"""Build a stereo test set (not the bench corpus): real stereo music from installed Debian
packages, and stereo mixes of the validation split's mono speech clips.

    python scripts/make_stereo_set.py OUT_DIR [--data data] [--seconds 6]

Real stereo (music: no installed package has stereo ambience): a fixed segment of each file in
REAL, none listed in scripts/corpus_sources.json (the bench corpus and the example; checked).
Synthetic speech (from ``DATA/manifest.csv``'s val rows, 22.05 kHz mono): dual mono; a panned
source with a level difference and per-channel decorrelated room tails; two voices panned
apart; a voice over real stereo music. Writes 44.1 kHz 16-bit FLAC and
``OUT_DIR/stereo_set.csv`` (file, kind, source, inter-channel correlation). Deterministic
(seeded). Uses only what is installed; a missing file is skipped with a note.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SR = 44100
ROOT = Path(__file__).resolve().parents[1]

# (path, start s): stereo music from packages whose other files trained ldmz-small
# (as mono mixes) or that the corpus uses; the corpus's own files are refused below.
REAL = [
    ("/usr/share/games/singularity/music/Awakening.ogg", 30.0),
    ("/usr/share/games/singularity/music/Coherence.ogg", 40.0),
    ("/usr/share/hyperrogue/music/hr3-caves.ogg", 20.0),
    ("/usr/share/hyperrogue/music/hr-savino-ocean.ogg", 30.0),
    ("/usr/share/planetblupi/music/music005.ogg", 20.0),
    ("/usr/share/planetblupi/music/music008.ogg", 10.0),
    ("/usr/share/scummvm/drascula/audio/track3.ogg", 30.0),
]


def _read(path: str, start: float, seconds: float) -> np.ndarray | None:
    """(channels, samples) float64 at SR, ``seconds`` from ``start``; None if unreadable."""
    try:
        x, sr = sf.read(path, dtype="float64", always_2d=True)
    except (OSError, RuntimeError, sf.LibsndfileError) as e:
        print(f"skip {path}: {e}", file=sys.stderr)
        return None
    x = x[int(start * sr):int((start + seconds) * sr)]
    if sr != SR:
        x = soxr.resample(x, sr, SR, quality="HQ")
    return np.ascontiguousarray(x.T)


def _room(x: np.ndarray, rng: np.random.Generator, rt60: float = 0.35) -> np.ndarray:
    """A decaying-noise room tail of ``x`` (one independent tail per call)."""
    n = int(rt60 * SR)
    ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
    ir[0] = 0.0
    return np.convolve(x, ir / np.sqrt((ir ** 2).sum()))[:len(x)]


def _save(out: Path, name: str, y: np.ndarray, rows: list[list[str]], kind: str,
          src: str) -> None:
    y = y / max(1.0, float(np.abs(y).max()) / 0.97)
    sf.write(out / name, y.T, SR, subtype="PCM_16")
    c = float(np.corrcoef(y[0], y[1])[0, 1]) if y[0].std() and y[1].std() else 1.0
    rows.append([name, kind, src, f"{c:.4f}"])


def main(argv: list[str] | None = None) -> int:
    """Write the set; return 0."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--data", type=Path, default=ROOT / "data")
    ap.add_argument("--seconds", type=float, default=6.0)
    a = ap.parse_args(argv)
    corpus = json.loads((ROOT / "scripts" / "corpus_sources.json").read_text())
    banned = {f.split("::")[0] for c in corpus["clips"] for f in c["files"]}
    a.out.mkdir(parents=True, exist_ok=True)
    rows: list[list[str]] = []
    rng = np.random.default_rng(13)
    music: list[np.ndarray] = []
    for path, start in REAL:
        if path in banned:
            raise SystemExit(f"{path} is in the bench corpus; pick another file")
        x = _read(path, start, a.seconds)
        if x is None or x.shape[0] != 2 or x.shape[1] < SR:
            print(f"skip {path}: not a stereo file of >= 1 s", file=sys.stderr)
            continue
        music.append(x)
        _save(a.out, f"real_{Path(path).stem.replace(' ', '_')}.flac", x, rows, "real",
              path)
    with open(a.data / "manifest.csv", newline="") as fh:
        speech = sorted(r["path"] for r in csv.DictReader(fh)
                        if r["split"] == "val" and r["category"] == "speech")
    picks = [speech[i] for i in rng.choice(len(speech), size=8, replace=False)]
    voices = [_read(str(a.data / p), 0.0, a.seconds) for p in picks]
    v = [x[0] / (np.abs(x[0]).max() + 1e-9) * 0.5 for x in voices if x is not None]
    for i, s in enumerate(v[:2]):  # dual mono
        _save(a.out, f"syn_dualmono_{i}.flac", np.stack([s, s]), rows, "dual mono", picks[i])
    for i, s in enumerate(v[2:4]):  # one voice panned, a level difference, own room tails
        g = 0.8 - 0.3 * i
        y = np.stack([g * s + 0.3 * _room(s, rng), (1 - g) * s + 0.3 * _room(s, rng)])
        _save(a.out, f"syn_room_{i}.flac", y, rows, "panned voice + room", picks[2 + i])
    n = min(len(v[4]), len(v[5]))  # two voices panned apart
    s1, s2 = v[4][:n], v[5][:n]
    _save(a.out, "syn_twovoices.flac", np.stack([0.8 * s1 + 0.3 * s2, 0.3 * s1 + 0.8 * s2]),
          rows, "two voices panned", f"{picks[4]};{picks[5]}")
    for i, s in enumerate(v[6:8]):  # a voice over real stereo music, centred
        if i < len(music):
            m = music[i][:, :len(s)]
            s = s[:m.shape[1]]
            _save(a.out, f"syn_voicemusic_{i}.flac", s[None] + 0.3 * m, rows,
                  "voice over stereo music", f"{picks[6 + i]};{REAL[i][0]}")
    with open(a.out / "stereo_set.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["file", "kind", "source", "corr"], *rows])
    for r in rows:
        print(*r, sep="\t")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
