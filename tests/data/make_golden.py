"""Write (or, without --write, check) the golden v1 and v2 `.ldmz` files and their expectations."""

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
    EntropyTables,
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

# Format 2 (entropy-coded): the file and the model-folder tables it names.
V2_FILE, V2_TABLES, V2_EXPECT = "golden_v2.ldmz", "golden_v2_tables.safetensors.zst", \
    HERE / "golden_v2.json"


def build_tables_bytes() -> bytes:
    """Tables for 2 latent channels x 3 bins, 2 qualities (codes -2..2 and -3..3)."""
    from ldmz.formats.entropy import CONTEXTS, freqs_from_counts, tables_bytes

    tensors = {"mean": np.array([[0.5, -0.25, 0.0], [1.0, 0.125, -2.0]], np.float32),
               "step": np.array([[1.0, 0.5], [0.25, 0.125]], np.float32)}
    for q, n in enumerate((5, 7)):
        c, f, x, s = np.meshgrid(np.arange(2), np.arange(3), np.arange(CONTEXTS), np.arange(n),
                                 indexing="ij")
        counts = (c * 7 + f * 3 + x + s * s) % 11 + 40 * (s == n // 2)
        tensors[f"freq.{q}"] = freqs_from_counts(counts).astype(np.int32)
    return tables_bytes(tensors, {"format": "ldmz-entropy-1", "default": "1"})


def golden_tables() -> EntropyTables:
    """The committed golden tables, read as a model folder's would be."""
    from ldmz.formats import load_tables

    return load_tables(HERE / V2_TABLES)


def build_rans(tables: EntropyTables | None = None) -> LdmzFile:
    """1 audio ch, 2 latent ch, 3 bins, 7 frames in chunks of 3 + 1, quality 1, fixed codes."""
    from ldmz.formats.entropy import dequantize_ec

    t = tables or golden_tables()
    frames, per, ov = 7, 3, 1
    tt, c, f = np.meshgrid(np.arange(frames), np.arange(2), np.arange(3), indexing="xy")
    codes = ((tt * 5 + c * 3 + f * 2) % 7 - 3)[None]  # (1, 2, 7, 3)
    z = dequantize_ec(codes.astype(np.int32), t, 1)
    from ldmz.formats import pack_latents

    return pack_latents(
        z, model=MODEL, mel=MEL,
        source=SourceInfo(sample_rate=48000, channels=1, samples=13579, gain=(0.75,)),
        frames_per_chunk=per, overlap=ov, time_downsample=4, mel_frames=28, tags=TAGS,
        writer="ldmz-golden/2", vocoder="hifigan-golden", tables=t, quality=1)


V21_FILE, V21_EXPECT = "golden_v21.ldmz", HERE / "golden_v21.json"
# Format 2.1, per chunk: channel 1 from 0 and 2 alone; 2 from 1 from 0; all alone.
V21_JOINT = (((0, 255, 20, 3, 0, 0, 0), ()),
             ((0, 200, 40, 0, 0, 0, 1), (1, 255, 5, 1, 1, 1, 1)),
             ((), ()))


def build_rans_joint(tables: EntropyTables | None = None) -> LdmzFile:
    """3 audio ch, 2 latent ch, 3 bins, 7 frames in chunks of 3 + 1, quality 1, the
    inter-channel prediction of V21_JOINT (fixed, not chosen), one residual wrapping mod 7."""
    from dataclasses import replace


    t = tables or golden_tables()
    base = build_rans(t)
    c0 = np.concatenate([base.chunk_codes(i)[:, :, :3] for i in range(3)], axis=2)[0]
    c1 = np.clip(c0 + (np.arange(c0.size).reshape(c0.shape) % 5 == 0), -3, 3)
    c2 = np.where(np.arange(c0.size).reshape(c0.shape) % 3 == 0, -c1, c1)
    codes = np.stack([c0, c1, c2]).astype(np.int32)
    codes[0, 0, 1, 0], codes[1, 0, 1, 0] = -3, 3  # residual 6 wraps to -1
    src = replace(base.header.source, channels=3, gain=(0.75, 0.5, 0.25))
    entries = tuple(replace(c, joint=j) for c, j in zip(base.header.chunks, V21_JOINT,
                                                         strict=True))
    h = replace(base.header, source=src, chunks=entries, writer="ldmz-golden/2.1")
    arrays = [codes[:, :, c.frame_start:c.frame_start + c.frames] for c in entries]
    return LdmzFile.from_latents(h, arrays, t)


def expectations_v21() -> dict:
    """What the committed v2.1 file must contain: its hash, header fields and codes."""
    return _expect(build_rans_joint(), V21_FILE)


def expectations_v2() -> dict:
    """What the committed v2 file must contain: its hash, header fields and codes."""
    return _expect(build_rans(), V2_FILE)


def _expect(f: LdmzFile, name: str) -> dict:
    data = f.to_bytes()
    return {"name": name, "tables": V2_TABLES, "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "tables_sha256": hashlib.sha256((HERE / V2_TABLES).read_bytes()).hexdigest(),
            "header": f.header.to_dict(), "latents": f.latents().tolist(),
            "codes": [f.chunk_codes(i).tolist() for i in range(len(f.header.chunks))]}


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
        (HERE / V2_TABLES).write_bytes(build_tables_bytes())
        (HERE / V2_FILE).write_bytes(build_rans().to_bytes())
        V2_EXPECT.write_text(json.dumps(expectations_v2(), indent=1, ensure_ascii=False) + "\n",
                             encoding="utf-8")
        (HERE / V21_FILE).write_bytes(build_rans_joint().to_bytes())
        V21_EXPECT.write_text(json.dumps(expectations_v21(), indent=1, ensure_ascii=False)
                              + "\n", encoding="utf-8")
        print(f"wrote {', '.join(FILES.values())}, {EXPECT.name}, {V2_FILE}, {V2_TABLES} and "
              f"{V2_EXPECT.name}")
        return 0
    bad = [name for kind, name in FILES.items()
           if (HERE / name).read_bytes() != BUILDERS[kind]().to_bytes()]
    bad += [V2_TABLES] if (HERE / V2_TABLES).read_bytes() != build_tables_bytes() else []
    bad += [V2_FILE] if (HERE / V2_FILE).read_bytes() != build_rans().to_bytes() else []
    bad += [V21_FILE] if (HERE / V21_FILE).read_bytes() != build_rans_joint().to_bytes() else []
    print("differ: " + ", ".join(bad) if bad else "golden files match")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
