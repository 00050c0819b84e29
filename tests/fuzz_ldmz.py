"""Fuzz harness for the `.ldmz` reader: only FormatError escapes, accepted input is consistent."""

# Run by hand, with atheris if installed (`pip install atheris`) or a plain random loop:
#     python tests/fuzz_ldmz.py -max_total_time=300      # atheris (libFuzzer flags)
#     python tests/fuzz_ldmz.py --seconds 300            # without atheris
# tests/test_formats_fuzz.py drives the same mutate() and check() briefly in CI.

from __future__ import annotations

import copy
import math
import random
import struct
import sys
import time
import zlib
from functools import cache
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from ldmz.formats import (
    FormatError,
    LdmzFile,
    MelParams,
    ModelInfo,
    SourceInfo,
    load_tables,
    pack_latents,
)

NAME = "fuzz.ldmz"
INTERESTING: list[Any] = [
    0, 1, -1, 2, 3, 7, 8, 9, 255, 256, 65535, 65536, 1 << 16, (1 << 24) + 1, (1 << 31) - 1,
    1 << 32, (1 << 40) + 1, (1 << 63) - 1, -(1 << 63), (1 << 64) - 1, 0.0, -0.0, 0.5, 1e300,
    -1e300, 1e30, float("nan"), float("inf"), float("-inf"), True, False, None, "", "affine",
    "float16", "x" * 5000, "\u2603", b"", b"\0" * 8, [], {}, [0] * 3, {"a": 1},
]


@cache
def seeds() -> tuple[bytes, ...]:
    """Small valid files covering affine (mixed bits, overlap), float16 and an empty latent."""
    rng = np.random.default_rng(0)
    out = []
    for a, lc, frames, per, ov, bits in [(2, 3, 7, 3, 1, (2, 4, 0)), (1, 2, 5, 4, 0, "float16"),
                                          (1, 1, 9, 2, 1, 8), (3, 2, 0, 4, 0, (1, 3))]:
        z = rng.normal(size=(a, lc, frames, 3)).astype(np.float32)
        out.append(pack_latents(z, model=ModelInfo("m", weights_sha256="ab" * 32), mel=MelParams(),
                                source=SourceInfo(16000, a, 999, (1.0,) * a), bits=bits,
                                frames_per_chunk=per, overlap=ov, tags={"t": "é"}).to_bytes())
    z = rng.normal(size=(2, 2, 9, 3)).astype(np.float32)  # format 2: entropy-coded
    out.append(pack_latents(z, model=ModelInfo("m", weights_sha256="ab" * 32), mel=MelParams(),
                            source=SourceInfo(16000, 2, 999, (1.0, 0.5)), frames_per_chunk=4,
                            overlap=1, tags={"t": "é"}, tables=tables(), quality=0).to_bytes())
    return tuple(out)


@cache
def tables():  # noqa: ANN201 - EntropyTables
    """The golden format-2 tables (tests/data), which the fuzzed rans files are decoded with."""
    return load_tables(Path(__file__).parent / "data" / "golden_v2_tables.safetensors.zst")


def split(data: bytes) -> tuple[bytes, Any, bytes]:
    """Preamble, decoded header map and data section of a valid file."""
    hlen = struct.unpack_from("<I", data, 8)[0]
    return data[:16], msgpack.unpackb(data[16:16 + hlen], strict_map_key=False), data[16 + hlen:]


def assemble(pre: bytes, header: Any, body: bytes) -> bytes:
    """Re-encode ``header`` after ``pre``'s first 8 bytes with a correct length and CRC-32."""
    hb = msgpack.packb(header)
    head = pre[:8] + struct.pack("<I", len(hb))
    return head + struct.pack("<I", zlib.crc32(head + hb)) + hb + body


def _nodes(x: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if len(path) > 6:
        return out
    if isinstance(x, dict):
        for k, v in x.items():
            out += _nodes(v, (*path, k))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            out += _nodes(v, (*path, i))
    return out


def _set(root: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    node = root
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return root


def _tweak(rnd: random.Random, v: Any) -> Any:
    if isinstance(v, bool) or v is None or rnd.random() < 0.4:
        return copy.deepcopy(rnd.choice(INTERESTING))  # a copy: later edits must not leak
    if isinstance(v, int):
        return v + rnd.choice([-1, 1, -v, v, 1 << rnd.randrange(64)])
    if isinstance(v, float):
        return v * rnd.choice([-1.0, 0.0, 2.0, 1e20, math.nan])
    if isinstance(v, list):
        return v[:-1] if v and rnd.random() < 0.5 else v + v[-1:] * rnd.randrange(1, 3)
    if isinstance(v, dict) and v:
        v = dict(v)
        v.pop(rnd.choice(list(v)))
    return v


def mutate(data: bytes, rnd: random.Random, others: tuple[bytes, ...] = ()) -> bytes:
    """One random mutation: raw bytes, the header map (CRC fixed) or a chunk (CRC fixed)."""
    op = rnd.randrange(6)
    b = bytearray(data)
    if op == 0 and b:  # raw byte edits
        for _ in range(rnd.randrange(1, 4)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        return bytes(b)
    if op == 1:  # cut, duplicate or insert a byte range
        i, j = sorted(rnd.randrange(len(b) + 1) for _ in range(2))
        return bytes(rnd.choice([b[:i] + b[j:], b[:j] + b[i:], b[:i] + bytes(j - i) + b[i:]]))
    if op == 2 and others:  # splice with another file
        o = rnd.choice(others)
        return data[:rnd.randrange(len(data) + 1)] + o[rnd.randrange(len(o) + 1):]
    try:
        return _structured(data, op, rnd)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, struct.error):
        if b:  # no longer a well-formed file: plain byte edit
            b[rnd.randrange(len(b))] ^= 0xFF
        return bytes(b)


def _structured(data: bytes, op: int, rnd: random.Random) -> bytes:
    pre, h, body = split(data)
    if op == 5 and "k" in h:  # format 2: edit a chunk, fix its CRC in the (size, crc) list
        i = rnd.randrange(len(h["k"]) // 2)
        start = sum(h["k"][0:2 * i:2])
        blob = bytearray(body[start:start + h["k"][2 * i]])
        if blob:
            blob[rnd.randrange(len(blob))] ^= 1 << rnd.randrange(8)
        body = body[:start] + bytes(blob) + body[start + len(blob):]
        h["k"][2 * i + 1] = zlib.crc32(bytes(blob))
        return assemble(pre, h, body)
    if op == 5:  # edit a chunk, fix its CRC
        c = rnd.choice(h["chunks"])
        blob = bytearray(body[c["offset"]:c["offset"] + c["size"]])
        if blob:
            blob[rnd.randrange(len(blob))] ^= 1 << rnd.randrange(8)
        body = body[:c["offset"]] + bytes(blob) + body[c["offset"] + c["size"]:]
        c["crc32"] = zlib.crc32(bytes(blob))
        return assemble(pre, h, body)
    for _ in range(rnd.randrange(1, 3)):  # edit the header map, fix its CRC
        path = rnd.choice(_nodes(h))
        node = h
        for k in path:
            node = node[k]
        h = _set(h, path, _tweak(rnd, node))
    if op == 4:
        pre = pre[:5] + bytes([rnd.choice([0, 1, 255])]) + pre[6:]  # any minor version
    return assemble(pre, h, body)


def check(data: bytes) -> None:
    """Parse ``data``: either a FormatError naming the source, or a self-consistent file."""
    try:
        f = LdmzFile.from_bytes(data, name=NAME)
        if f.entropy_coded:  # the chunks decode only with the model's tables
            f.use_tables(tables())
            f.verify()
    except FormatError as e:
        assert e.source == NAME and str(e).startswith(NAME + ": "), e
        assert "\n" not in str(e), repr(str(e))
        return
    h = f.header
    x = f.latents()
    assert x.shape == (h.source.channels, h.latent.channels, h.latent.frames, h.latent.freq_bins)
    assert x.dtype == np.float32 and bool(np.isfinite(x).all())
    again = LdmzFile.from_bytes(f.to_bytes())
    assert again.header == h
    if f.entropy_coded:
        again.use_tables(tables())
        assert np.array_equal(again.latents(), x)


def _atheris_main() -> None:
    import atheris

    def one(data: bytes) -> None:
        if len(data) < 2:
            return
        if data[0] & 1:  # raw bytes straight from the fuzzer
            check(data[1:])
        else:  # a structured mutation of a seed file, driven by the fuzzer's bytes
            s = seeds()
            check(mutate(s[data[1] % len(s)], random.Random(data[2:]), s))

    atheris.instrument_all()  # coverage feedback from the (already imported) reader
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()


def _loop(seconds: float) -> None:
    s, rnd, n = seeds(), random.Random(), 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        data = rnd.choice(s)
        for _ in range(rnd.randrange(1, 4)):
            data = mutate(data, rnd, s)
        check(data)
        n += 1
    print(f"{n} inputs, no unexpected exception")


if __name__ == "__main__":
    if "--seconds" in sys.argv:
        _loop(float(sys.argv[sys.argv.index("--seconds") + 1]))
    else:
        try:
            _atheris_main()
        except ImportError:
            print("atheris is not installed; running the plain loop for 60 s")
            _loop(60.0)
