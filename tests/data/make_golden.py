"""Write (or, without --write, check) the golden v1 `.ldmz` files and their expectations JSON."""

# The files are built from fixed integer codes and exact binary fractions (no RNG, no quantizer),
# so they depend only on the container code and libzstd. Usage:
#     python tests/data/make_golden.py          # compare with the committed files
#     python tests/data/make_golden.py --write  # regenerate (only for a deliberate format change)

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import zstandard

from ldmz.formats import (
    ChunkEntry,
    Header,
    LatentInfo,
    LdmzFile,
    MelParams,
    ModelInfo,
    QuantizerInfo,
    SourceInfo,
)

HERE = Path(__file__).resolve().parent
FILES = {"affine": "golden_v1.ldmz", "float16": "golden_v1_f16.ldmz"}
EXPECT = HERE / "golden_v1.json"

MODEL = ModelInfo(id="ldmz-golden", revision="r1", weights_sha256="ab" * 32,
                  scaling_factor=0.5, decoder_sha256="cd" * 32)
MEL = MelParams(sample_rate=16000, n_fft=1024, hop_length=160, win_length=1024, n_mels=64,
                fmin=0.0, fmax=8000.0, log_floor=1e-5, frontend="hifigan")
TAGS = {"title": "Grüße ☃", "artist": "Åsa Nørgaard", "comment": "golden v1 — 日本語"}


def _chunks(frames: int, per: int, overlap: int) -> list[tuple[int, int]]:
    return [(s, min(per + overlap, frames - s)) for s in range(0, frames, per)]


def build_affine() -> LdmzFile:
    """2 audio ch, 3 latent ch at (2, 4, 0) bits, 3 freq bins, 7 frames in chunks of 3 + 1."""
    bits, a, lc, f, frames, per, ov = (2, 4, 0), 2, 3, 3, 7, 3, 1
    entries, arrays = [], []
    for i, (start, n) in enumerate(_chunks(frames, per, ov)):
        codes = np.zeros((a, lc, n, f), np.uint8)
        for ai in range(a):
            for ci, b in enumerate(bits):
                if b:
                    t, k = np.meshgrid(np.arange(n), np.arange(f), indexing="ij")
                    codes[ai, ci] = (ai * 7 + ci * 5 + (start + t) * 3 + k + i) % (1 << b)
        q_offset = tuple(tuple(-1.5 + ai + 0.25 * ci for ci in range(lc)) for ai in range(a))
        q_step = tuple(tuple(0.125 * (ci + 1) if bits[ci] else 0.0 for ci in range(lc))
                       for _ in range(a))
        entries.append(ChunkEntry(start, n, 0, 0, 0, 0, q_offset, q_step))
        arrays.append(codes)
    header = Header(
        model=MODEL, mel=MEL,
        source=SourceInfo(sample_rate=44100, channels=a, samples=12345, gain=(0.5, 0.25)),
        latent=LatentInfo(channels=lc, freq_bins=f, frames=frames, frames_per_chunk=per,
                          overlap=ov, mel_frames=28, time_downsample=4),
        quantizer=QuantizerInfo(mode="affine", bits=bits), chunks=tuple(entries),
        writer="ldmz-golden/1", vocoder="hifigan-golden", tags=TAGS,
    )
    return LdmzFile.from_latents(header, arrays)


def build_float16() -> LdmzFile:
    """1 audio ch, 2 latent ch of float16, 2 freq bins, 5 frames in chunks of 4, no overlap."""
    a, lc, f, frames, per = 1, 2, 2, 5, 4
    full = (np.arange(a * lc * frames * f, dtype=np.float32).reshape(a, lc, frames, f) - 9) / 8
    entries, arrays = [], []
    for start, n in _chunks(frames, per, 0):
        entries.append(ChunkEntry(start, n, 0, 0, 0, 0))
        arrays.append(full[:, :, start:start + n].astype(np.float16))
    header = Header(
        model=MODEL, mel=MEL,
        source=SourceInfo(sample_rate=16000, channels=a, samples=3200, gain=(1.0,)),
        latent=LatentInfo(channels=lc, freq_bins=f, frames=frames, frames_per_chunk=per),
        quantizer=QuantizerInfo(mode="float16"), chunks=tuple(entries),
        writer="ldmz-golden/1", tags={"title": "ƒloat16"},
    )
    return LdmzFile.from_latents(header, arrays)


BUILDERS = {"affine": build_affine, "float16": build_float16}


def expectations() -> dict:
    """What the committed files must contain: zstd version, hashes, headers and latents."""
    out: dict = {"zstd_version": list(zstandard.ZSTD_VERSION), "files": {}}
    for kind, build in BUILDERS.items():
        f = build()
        data = f.to_bytes()
        out["files"][kind] = {
            "name": FILES[kind], "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "header": f.header.to_dict(), "latents": f.latents().tolist(),
        }
    return out


def main(argv: list[str]) -> int:
    """Check the committed files against a fresh build, or rewrite them with ``--write``."""
    if "--write" in argv:
        for kind, build in BUILDERS.items():
            (HERE / FILES[kind]).write_bytes(build().to_bytes())
        EXPECT.write_text(json.dumps(expectations(), indent=1, ensure_ascii=False) + "\n",
                          encoding="utf-8")
        print(f"wrote {', '.join(FILES.values())} and {EXPECT.name}")
        return 0
    bad = [name for kind, name in FILES.items()
           if (HERE / name).read_bytes() != BUILDERS[kind]().to_bytes()]
    print("differ: " + ", ".join(bad) if bad else "golden files match")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
