"""Golden bytes: the committed v1 files must never silently change, and must keep reading back."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import msgpack
import numpy as np
import pytest
import zstandard

from ldmz.formats import LdmzFile
from ldmz.formats.container import PREAMBLE

DATA = Path(__file__).parent / "data"
EXPECT = json.loads((DATA / "golden_v1.json").read_text(encoding="utf-8"))
KINDS = sorted(EXPECT["files"])


def _make_golden() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_golden", DATA / "make_golden.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MAKE = _make_golden()
SAME_ZSTD = list(zstandard.ZSTD_VERSION) == EXPECT["zstd_version"]


def _committed(kind: str) -> bytes:
    return (DATA / EXPECT["files"][kind]["name"]).read_bytes()


def _split(data: bytes) -> tuple[bytes, dict, list[bytes]]:
    hlen = PREAMBLE.unpack(data[:16])[4]
    header = msgpack.unpackb(data[16:16 + hlen])
    start = 16 + hlen
    blobs = [data[start + c["offset"]:start + c["offset"] + c["size"]] for c in header["chunks"]]
    return data[:16 + hlen], header, blobs


def _without_zstd_fields(header: dict) -> dict:
    h = json.loads(json.dumps(header))
    for c in h["chunks"]:
        for k in ("offset", "size", "crc32"):
            c.pop(k)
    return h


def test_generator_matches_committed_expectations() -> None:
    assert MAKE.FILES == {k: v["name"] for k, v in EXPECT["files"].items()}


@pytest.mark.parametrize("kind", KINDS)
def test_rebuild_is_byte_identical(kind: str) -> None:
    fresh = MAKE.BUILDERS[kind]().to_bytes()
    old = _committed(kind)
    if SAME_ZSTD:
        assert fresh == old, f"v1 bytes of {kind} changed: run tests/data/make_golden.py"
    _, h_new, blobs_new = _split(fresh)
    _, h_old, blobs_old = _split(old)
    # Independent of the libzstd version: the header (less the zstd-dependent sizes and CRCs)
    # and the decompressed chunk payloads are identical.
    assert _without_zstd_fields(h_new) == _without_zstd_fields(h_old)
    dctx = zstandard.ZstdDecompressor()
    assert [dctx.decompress(b) for b in blobs_new] == [dctx.decompress(b) for b in blobs_old]


@pytest.mark.parametrize("kind", KINDS)
def test_committed_file_reserializes_exactly(kind: str) -> None:
    """Reading and writing back the committed file reproduces it: the header encoding is fixed."""
    old = _committed(kind)
    assert LdmzFile.from_bytes(old).to_bytes() == old


@pytest.mark.parametrize("kind", KINDS)
def test_committed_file_reads_as_expected(kind: str) -> None:
    exp = EXPECT["files"][kind]
    old = _committed(kind)
    assert len(old) == exp["size"]
    f = LdmzFile.load(DATA / exp["name"])
    assert f.header.to_dict() == exp["header"]
    np.testing.assert_array_equal(f.latents(), np.array(exp["latents"], np.float32))
    lazy = LdmzFile.load(DATA / exp["name"], lazy=True)
    for i, c in enumerate(lazy.header.chunks):
        got = lazy.read_chunk(i)
        keep = min(c.frames, lazy.header.latent.frames_per_chunk)
        np.testing.assert_array_equal(got[:, :, :keep],
                                      f.latents()[:, :, c.frame_start:c.frame_start + keep])


def test_golden_details() -> None:
    """Spot checks of the v1 layout that SPEC.md describes."""
    old = _committed("affine")
    magic, major, minor, flags, hlen, _ = PREAMBLE.unpack(old[:16])
    assert (magic, major, minor, flags) == (b"LDMZ", 1, 0, 0)
    _, h, blobs = _split(old)
    assert list(h) == ["model", "mel", "source", "latent", "quantizer", "chunks", "writer",
                       "vocoder", "tags"]
    assert h["tags"]["title"] == "Grüße ☃"
    assert [(c["frame_start"], c["frames"]) for c in h["chunks"]] == [(0, 4), (3, 4), (6, 1)]
    # chunk 2: 1 frame x 3 freq = 3 codes per plane; 2 bits -> 1 byte, 4 bits -> 2, 0 bits -> 0
    assert [c["raw_size"] for c in h["chunks"]] == [2 * (3 + 6), 2 * (3 + 6), 2 * (1 + 2)]
    assert len(old) == 16 + hlen + sum(len(b) for b in blobs)
    codes = LdmzFile.from_bytes(old).chunk_codes(2)
    raw = zstandard.ZstdDecompressor().decompress(blobs[2])
    # first plane (audio 0, latent 0, 2 bits): codes LSB-first, padded with zero bits
    c0 = codes[0, 0].reshape(-1)
    assert raw[0] == c0[0] | c0[1] << 2 | c0[2] << 4
