"""Pack the float16 log-mel training caches small enough to carry to a GPU machine, and back.

``pack``: data/cache_{train,val}.npz -> DIR/{train,val}.mels.zst (uint8 log-mels on a 1/16
grid from -11.6, delta-coded along the mel axis, zstd level 19) + DIR/{train,val}.meta.npz.
``unpack``: the reverse, into data/cache_*.npz for the trainer (dequantized to float16; the
grid adds at most 1/32 of rounding to each value, well under the codec's errors).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import zstandard

LO, STEP = -11.6, 1 / 16


def pack(data: Path, out: Path) -> None:
    """Write the packed form of ``data``/cache_*.npz into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        with np.load(data / f"cache_{split}.npz") as z:
            mels, starts, cat = z["mels"], z["starts"], z["category"]
        q = np.clip(np.rint((mels.astype(np.float32) - LO) / STEP), 0, 255).astype(np.uint8)
        d = np.diff(q, axis=1, prepend=np.zeros((len(q), 1), np.uint8))  # wraps mod 256
        blob = zstandard.ZstdCompressor(level=19, threads=-1).compress(d.tobytes())
        (out / f"{split}.mels.zst").write_bytes(blob)
        np.savez(out / f"{split}.meta.npz", starts=starts, category=cat, shape=np.array(q.shape))
        print(f"{split}: {mels.shape} -> {len(blob) / 1e6:.1f} MB")


def unpack(src: Path, data: Path) -> None:
    """Rebuild ``data``/cache_*.npz from the packed files in ``src``."""
    for split in ("train", "val"):
        with np.load(src / f"{split}.meta.npz") as m:
            starts, cat, shape = m["starts"], m["category"], tuple(m["shape"])
        raw = zstandard.ZstdDecompressor().decompress((src / f"{split}.mels.zst").read_bytes())
        d = np.frombuffer(raw, np.uint8).reshape(shape)
        q = np.cumsum(d, axis=1, dtype=np.uint8)  # mod 256 undoes the wrapped deltas
        mels = (q.astype(np.float32) * STEP + LO).astype(np.float16)
        np.savez(data / f"cache_{split}.npz", mels=mels, starts=starts, category=cat)
        print(f"{split}: {mels.shape}")


def main() -> None:
    """Command line: pack|unpack."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["pack", "unpack"])
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--packed", type=Path, default=Path("data/gpu"))
    a = ap.parse_args()
    pack(a.data, a.packed) if a.action == "pack" else unpack(a.packed, a.data)


if __name__ == "__main__":
    main()
