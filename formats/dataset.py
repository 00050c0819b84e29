"""Latents as a training dataset: a manifest or folder of `.ldmz` files -> numpy crops, no torch.

Only the header and the chunks a crop overlaps are read, so a random crop of N latent frames from
an hour-long file costs one header read and one or two chunk reads. The torch ``Dataset`` and the
Ray Data reader in ``ldmz.codec`` go through :func:`read_item`, so all three parse alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ldmz.formats.container import LdmzFile
from ldmz.formats.entropy import EntropyTables
from ldmz.formats.errors import LdmzError

MANIFEST = "manifest.parquet"


@dataclass(frozen=True)
class Item:
    """One `.ldmz` file of a dataset: its path, latent frames and audio channels."""

    path: str
    frames: int
    channels: int


def _manifest_items(manifest: Path) -> list[Item]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise LdmzError(f"{manifest}: reading a manifest needs pyarrow: pip install "
                        f"'ldmz[cluster]' (or pass the folder of .ldmz files)") from None
    t = pq.read_table(manifest, columns=["output", "status", "frames", "channels"]).to_pylist()
    root = manifest.parent
    return [Item(str(root / r["output"]), int(r["frames"]), int(r["channels"]))
            for r in t if r["status"] == "ok"]


def _header_item(path: Path) -> Item:
    h = LdmzFile.load(path, lazy=True).header
    return Item(str(path), h.latent.frames, h.source.channels)


def list_items(source: str | os.PathLike[str]) -> list[Item]:
    """The files of a dataset: a manifest.parquet, a folder (its manifest if it has one, else
    every `.ldmz` below it, headers read) or one `.ldmz` file; sorted by path."""
    p = Path(source)
    if p.is_dir():
        if (p / MANIFEST).is_file():
            return _manifest_items(p / MANIFEST)
        return [_header_item(q) for q in sorted(p.rglob("*.ldmz")) if q.is_file()]
    if p.suffix == ".parquet":
        return _manifest_items(p)
    if p.is_file():
        return [_header_item(p)]
    raise FileNotFoundError(f"{p}: no such manifest, folder or .ldmz file")


def read_frames(f: LdmzFile, start: int, n: int, channel: int = 0) -> np.ndarray:
    """Latent frames ``[start, start + n)`` of one audio channel: float32 (latent_ch, n, freq).

    Reads only the chunks that overlap the range.
    """
    h = f.header
    lat = h.latent
    if not (0 <= start and n > 0 and start + n <= lat.frames):
        raise ValueError(f"{f.name}: frames [{start}, {start + n}) outside 0..{lat.frames}")
    if not 0 <= channel < h.source.channels:
        raise IndexError(f"{f.name}: audio channel {channel} out of range "
                         f"for {h.source.channels} channels")
    out = np.empty((lat.channels, n, lat.freq_bins), np.float32)
    end = start + n
    for i, c in enumerate(h.chunks):
        a, b = c.frame_start, c.frame_start + min(lat.frames_per_chunk, c.frames)
        if b <= start or a >= end:
            continue
        lo, hi = max(a, start), min(b, end)
        out[:, lo - start:hi - start] = f.read_chunk(i)[channel, :, lo - a:hi - a]
    return out


def read_item(item: Item | str | os.PathLike[str], crop: int | None = None,
              rng: np.random.Generator | None = None, channel: int | None = None,
              tables: EntropyTables | None = None) -> np.ndarray:
    """Latents of one file, one audio channel: float32 (latent_ch, frames, freq).

    ``crop`` takes N frames at a random start (the whole file if None); ``channel`` None picks
    an audio channel at random. A file shorter than ``crop`` raises ValueError. Entropy-coded
    (format 2) files need the model folder's ``tables`` (``load_tables``).
    """
    path = item.path if isinstance(item, Item) else os.fspath(item)
    f = LdmzFile.load(path, lazy=True)
    if tables is not None:
        f.use_tables(tables)
    rng = rng if rng is not None else np.random.default_rng()
    h = f.header
    ch = int(rng.integers(h.source.channels)) if channel is None else channel
    total = h.latent.frames
    if crop is None:
        return read_frames(f, 0, total, ch)
    if crop > total:
        raise ValueError(f"{path}: {total} latent frames, shorter than the crop of {crop}")
    return read_frames(f, int(rng.integers(total - crop + 1)), crop, ch)


class LatentDataset:
    """Map-style dataset of latents: ``ds[i]`` is file i (a random crop of ``crop`` frames).

    Files shorter than ``crop`` are left out. ``seed`` makes the crops reproducible.
    """

    def __init__(self, source: str | os.PathLike[str], crop: int | None = None,
                 channel: int | None = None, seed: int | None = None,
                 tables: EntropyTables | None = None) -> None:
        items = list_items(source)
        self.items = [it for it in items if crop is None or it.frames >= crop]
        self.crop, self.channel, self.tables = crop, channel, tables
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.read(i, self.rng)

    def read(self, i: int, rng: np.random.Generator) -> np.ndarray:
        """Item ``i`` with the random numbers of ``rng``."""
        return read_item(self.items[i], self.crop, rng, self.channel, self.tables)
