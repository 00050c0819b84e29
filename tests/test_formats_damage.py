"""Hostile input: truncation, byte flips, forged headers, zstd bombs, versions: all fail cleanly."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zstandard

from ldmz.formats import (
    ChecksumError,
    FormatError,
    LdmzError,
    LdmzFile,
    MelParams,
    ModelInfo,
    SourceInfo,
    VersionError,
    pack_latents,
)
from ldmz.formats.header import MAX_CHUNK_RAW_BYTES, MAX_HEADER_BYTES

NAME = "damaged.ldmz"


def make(bits: object = (2, 4, 0), a: int = 2, frames: int = 7, per: int = 3, overlap: int = 1,
         freq: int = 3) -> bytes:
    lc = len(bits) if isinstance(bits, tuple) else 2
    z = np.random.default_rng(1).normal(size=(a, lc, frames, freq)).astype(np.float32)
    return pack_latents(z, model=ModelInfo("m"), mel=MelParams(),
                        source=SourceInfo(16000, a, 1000, (1.0,) * a), bits=bits,
                        frames_per_chunk=per, overlap=overlap, tags={"title": "é"}).to_bytes()


SMALL = make()
F16 = make(bits="float16")


def split(data: bytes) -> tuple[dict, bytes]:
    hlen = struct.unpack("<I", data[8:12])[0]
    return msgpack.unpackb(data[16:16 + hlen]), data[16 + hlen:]


def assemble(header: object, body: bytes, major: int = 1, minor: int = 0, flags: int = 0) -> bytes:
    hb = msgpack.packb(header)
    head = struct.pack("<4sBBHI", b"LDMZ", major, minor, flags, len(hb))
    return head + struct.pack("<I", zlib.crc32(head + hb)) + hb + body


def forge(mutate: Callable[[dict], object], data: bytes = SMALL) -> bytes:
    """Edit the header map (valid CRC re-computed); ``mutate`` may return replacement chunks."""
    h, body = split(data)
    new_body = mutate(h)
    return assemble(h, new_body if isinstance(new_body, bytes) else body)


def chunk_blobs(data: bytes) -> list[bytes]:
    h, body = split(data)
    return [body[c["offset"]:c["offset"] + c["size"]] for c in h["chunks"]]


def set_chunk(h: dict, i: int, blob: bytes, data: bytes = SMALL) -> bytes:
    """Replace chunk ``i`` with ``blob`` and fix offsets, sizes and CRC; returns the new body."""
    blobs = chunk_blobs(data)
    blobs[i] = blob
    pos = 0
    for c, b in zip(h["chunks"], blobs, strict=True):
        c["offset"], c["size"] = pos, len(b)
        pos += len(b)
    h["chunks"][i]["crc32"] = zlib.crc32(blob)
    return b"".join(blobs)


def rejects(data: bytes, match: str | None = None) -> FormatError:
    with pytest.raises(FormatError, match=match) as e:
        LdmzFile.from_bytes(data, name=NAME)
    assert e.value.source == NAME and str(e.value).startswith(f"{NAME}: ")
    assert isinstance(e.value, (LdmzError, ValueError))
    return e.value


def test_reference_files_are_valid() -> None:
    assert LdmzFile.from_bytes(SMALL).header.latent.frames == 7
    assert len(LdmzFile.from_bytes(F16).header.chunks) == 3


@pytest.mark.parametrize("data", [SMALL, F16], ids=["affine", "float16"])
def test_truncation_at_every_offset(data: bytes, tmp_path: Path) -> None:
    for n in range(len(data)):
        rejects(data[:n])
    path = tmp_path / "cut.ldmz"
    for n in (0, 3, 15, 16, 40, len(data) - 1):
        path.write_bytes(data[:n])
        for lazy in (False, True):
            with pytest.raises(FormatError) as e:
                LdmzFile.load(path, lazy=lazy)
            assert str(e.value).startswith(f"{path}: ")


@pytest.mark.parametrize("data", [SMALL, F16], ids=["affine", "float16"])
def test_byte_flips_at_every_offset(data: bytes) -> None:
    for i in range(len(data)):
        for x in (0x01, 0xFF):
            bad = bytearray(data)
            bad[i] ^= x
            rejects(bytes(bad))


def test_trailing_bytes_and_magic() -> None:
    rejects(SMALL + b"\0", "trailing bytes")
    rejects(b"RIFF" + SMALL[4:], "magic")
    rejects(b"", "truncated")
    rejects(forge(lambda h: None)[:16] + b"x" * 100)


def test_future_major_version_names_both() -> None:
    h, body = split(SMALL)
    with pytest.raises(VersionError) as e:
        LdmzFile.from_bytes(assemble(h, body, major=3, minor=3), name=NAME)
    assert "3.3" in str(e.value) and "2." in str(e.value) and str(e.value).startswith(NAME)
    with pytest.raises(VersionError, match="255"):
        LdmzFile.from_bytes(assemble(h, body, major=255))


def test_higher_minor_version_and_unknown_keys_are_accepted() -> None:
    ref = LdmzFile.from_bytes(SMALL).header
    h, body = split(SMALL)
    assert LdmzFile.from_bytes(assemble(h, body, minor=200)).header == ref

    def add_keys(h: dict) -> None:
        h["future"] = {"anything": [1, 2.5, b"\0", None]}
        h["model"]["license"] = "cc-by"
        h["latent"]["new_axis"] = 3
        h["chunks"][1]["hint"] = "x"
        h["quantizer"]["dither"] = True

    assert LdmzFile.from_bytes(forge(add_keys)).header == ref


def test_optional_keys_may_be_missing() -> None:
    def drop(h: dict) -> None:
        for k in ("tags", "writer", "vocoder"):
            del h[k]
        for k in ("revision", "weights_sha256", "scaling_factor", "decoder_sha256"):
            del h["model"][k]
        del h["latent"]["mel_frames"], h["latent"]["time_downsample"], h["mel"]["frontend"]

    f = LdmzFile.from_bytes(forge(drop))
    assert f.header.tags == {} and f.header.model.scaling_factor == 1.0
    assert f.header.latent.time_downsample == 4


def test_bad_preamble_fields() -> None:
    h, body = split(SMALL)
    rejects(assemble(h, body, flags=1), "flags")
    big = bytearray(SMALL)
    big[8:12] = struct.pack("<I", MAX_HEADER_BYTES + 1)
    rejects(bytes(big), "header length")
    rejects(SMALL[:12] + b"\0\0\0\0" + SMALL[16:], "checksum")


FORGERIES: dict[str, Callable[[dict], object]] = {
    "huge frames": lambda h: h["latent"].update(frames=1 << 40),
    "frames over limit": lambda h: h["latent"].update(frames=1 << 41),
    "huge raw_size": lambda h: h["chunks"][0].update(raw_size=1 << 40),
    "raw_size at limit": lambda h: h["chunks"][0].update(raw_size=MAX_CHUNK_RAW_BYTES),
    "wrong raw_size": lambda h: h["chunks"][0].update(raw_size=h["chunks"][0]["raw_size"] + 1),
    "huge size": lambda h: h["chunks"][0].update(size=1 << 40),
    "size off by one": lambda h: h["chunks"][0].update(size=h["chunks"][0]["size"] + 1),
    "extra chunk": lambda h: h["chunks"].append(dict(h["chunks"][-1])),
    "missing chunk": lambda h: h["chunks"].pop(),
    "no chunks": lambda h: h.update(chunks=[]),
    "swapped chunks": lambda h: h["chunks"].reverse(),
    "wrong frame_start": lambda h: h["chunks"][1].update(frame_start=4),
    "wrong frames": lambda h: h["chunks"][2].update(frames=2),
    "wrong offset": lambda h: h["chunks"][1].update(offset=0),
    "overlap >= chunk": lambda h: h["latent"].update(overlap=3),
    "values over limit": lambda h: (
        h["latent"].update(freq_bins=4096, frames_per_chunk=2048, frames=2048, overlap=0),
        h["quantizer"].update(bits=[1, 1, 1]),
        h.update(chunks=[dict(h["chunks"][0], frames=2048, raw_size=6 << 20)])),
    "too many channels": lambda h: h["source"].update(channels=65),
    "gain count": lambda h: h["source"]["gain"].append(1.0),
    "negative frames": lambda h: h["latent"].update(frames=-1),
    "negative samples": lambda h: h["source"].update(samples=-5),
    "bool channels": lambda h: h["source"].update(channels=True),
    "str freq_bins": lambda h: h["latent"].update(freq_bins="3"),
    "float frames": lambda h: h["latent"].update(frames=7.0),
    "NaN q_offset": lambda h: h["chunks"][0]["q_offset"][0].__setitem__(0, float("nan")),
    "inf q_step": lambda h: h["chunks"][0]["q_step"][1].__setitem__(1, float("inf")),
    "huge q_step": lambda h: h["chunks"][0]["q_step"][1].__setitem__(1, 1e300),
    "bool q_step": lambda h: h["chunks"][0]["q_step"][1].__setitem__(1, True),
    "short q_offset row": lambda h: h["chunks"][0]["q_offset"][0].pop(),
    "q_offset rows": lambda h: h["chunks"][0]["q_offset"].pop(),
    "missing q_step": lambda h: h["chunks"][0].pop("q_step"),
    "NaN fmax": lambda h: h["mel"].update(fmax=float("nan")),
    "fmax below fmin": lambda h: h["mel"].update(fmin=9000.0),
    "zero log_floor": lambda h: h["mel"].update(log_floor=0.0),
    "NaN gain": lambda h: h["source"]["gain"].__setitem__(0, float("nan")),
    "scaling_factor 0": lambda h: h["model"].update(scaling_factor=0.0),
    "unknown mode": lambda h: h["quantizer"].update(mode="int4"),
    "mode not str": lambda h: h["quantizer"].update(mode=1),
    "bits 9": lambda h: h["quantizer"]["bits"].__setitem__(0, 9),
    "bits -1": lambda h: h["quantizer"]["bits"].__setitem__(0, -1),
    "bits count": lambda h: h["quantizer"]["bits"].append(2),
    "bits bool": lambda h: h["quantizer"]["bits"].__setitem__(0, True),
    "crc32 negative": lambda h: h["chunks"][0].update(crc32=-1),
    "crc32 too big": lambda h: h["chunks"][0].update(crc32=1 << 32),
    "missing model id": lambda h: h["model"].pop("id"),
    "model not map": lambda h: h.update(model=["m"]),
    "chunks not list": lambda h: h.update(chunks={}),
    "chunk not map": lambda h: h["chunks"].__setitem__(0, 5),
    "long string": lambda h: h["model"].update(id="x" * 5000),
    "tag not str": lambda h: h["tags"].update(year=2024),
    "too many tags": lambda h: h.update(tags={str(i): "" for i in range(65)}),
    "long tag key": lambda h: h["tags"].update({"k" * 65: "v"}),
    "tags not map": lambda h: h.update(tags=["a"]),
    "bin string": lambda h: h.update(writer=b"w"),
}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_forged_header_is_rejected(name: str) -> None:
    rejects(forge(FORGERIES[name]))


@pytest.mark.parametrize("header", [[1, 2], "x", None, 7, {"model": 1}, {1: 2}, {b"model": {}}])
def test_header_of_the_wrong_shape(header: object) -> None:
    rejects(assemble(header, b""))


@pytest.mark.parametrize("hb", [b"", b"\xc1", b"\x92\x01", b"\x81\xa1a\x01\x02",
                                b"\xdd" + b"\xff" * 4, b"\x91" * 5000, b"\xa2\xff\xfe",
                                b"\xd6\xff\x00\x00\x00\x00"])
def test_header_that_is_not_msgpack(hb: bytes) -> None:
    head = struct.pack("<4sBBHI", b"LDMZ", 1, 0, 0, len(hb))
    rejects(head + struct.pack("<I", zlib.crc32(head + hb)) + hb)


def test_unknown_mode_names_it() -> None:
    assert "int4" in str(rejects(forge(FORGERIES["unknown mode"])))


def test_chunk_checksum_error_type() -> None:
    bad = bytearray(SMALL)
    bad[-1] ^= 0x10
    assert isinstance(rejects(bytes(bad)), ChecksumError)


def _rle_frame(declared: int, blocks: int, block_size: int = 1 << 17) -> bytes:
    """A zstd frame declaring ``declared`` bytes but holding ``blocks`` RLE blocks of zeros."""
    fhd = 0b1010_0000  # 4-byte content size, single segment
    out = b"\x28\xb5\x2f\xfd" + bytes([fhd]) + struct.pack("<I", declared)
    for i in range(blocks):
        last = int(i == blocks - 1)
        bh = last | (1 << 1) | (block_size << 3)  # block type 1 = RLE
        out += struct.pack("<I", bh)[:3] + b"\0"
    return out


def test_zstd_bomb_is_stopped() -> None:
    h, _ = split(SMALL)
    raw = h["chunks"][0]["raw_size"]
    bomb = _rle_frame(raw, 4096)  # would inflate to 512 MiB
    assert zstandard.get_frame_parameters(bomb).content_size == raw
    rejects(forge(lambda h: set_chunk(h, 0, bomb)), "zstd")


def test_zstd_bomb_memory_is_bounded() -> None:
    """A 16 GiB bomb in a CRC-correct file fails without touching more than a little memory."""
    code = (
        "import resource, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_formats_damage import SMALL, _rle_frame, forge, set_chunk, split\n"
        "from ldmz.formats import FormatError, LdmzFile\n"
        "raw = split(SMALL)[0]['chunks'][0]['raw_size']\n"
        "data = forge(lambda h: set_chunk(h, 0, _rle_frame(raw, 1 << 17)))\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n    LdmzFile.from_bytes(data)\nexcept FormatError:\n    pass\n"
        "else:\n    sys.exit('accepted')\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    here = str(__import__("pathlib").Path(__file__).parent)
    r = subprocess.run([sys.executable, "-c", code, here], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) < 64 * 1024, f"max RSS grew by {r.stdout} KiB"


def test_zstd_frame_problems() -> None:
    h, _ = split(SMALL)
    raw = zstandard.ZstdDecompressor().decompress(chunk_blobs(SMALL)[0])
    no_size = zstandard.ZstdCompressor(write_content_size=False).compress(raw)
    rejects(forge(lambda h: set_chunk(h, 0, no_size)), "content size")
    short = zstandard.ZstdCompressor().compress(raw[:-1])
    rejects(forge(lambda h: set_chunk(h, 0, short)), "declares")
    two = chunk_blobs(SMALL)[0] + zstandard.ZstdCompressor().compress(b"")
    rejects(forge(lambda h: set_chunk(h, 0, two)), "one zstd frame")
    rejects(forge(lambda h: set_chunk(h, 0, b"")), "zstd")
    rejects(forge(lambda h: set_chunk(h, 0, b"\x28\xb5\x2f\xfd" + b"\xff" * 30)), "zstd")
    lying = bytearray(_rle_frame(len(raw), 1, block_size=len(raw) - 1))
    rejects(forge(lambda h: set_chunk(h, 0, bytes(lying))), "zstd")


def test_float16_non_finite_is_rejected() -> None:
    h, _ = split(F16)
    raw = bytearray(zstandard.ZstdDecompressor().decompress(chunk_blobs(F16)[1]))
    raw[0:2] = np.array([np.inf], "<f2").tobytes()
    blob = zstandard.ZstdCompressor().compress(bytes(raw))
    rejects(forge(lambda h: set_chunk(h, 1, blob, F16), F16), "non-finite")
    raw[0:2] = np.array([np.nan], "<f2").tobytes()
    blob = zstandard.ZstdCompressor().compress(bytes(raw))
    rejects(forge(lambda h: set_chunk(h, 1, blob, F16), F16), "non-finite")


def test_mode_switch_is_caught_by_sizes() -> None:
    def to_f16(h: dict) -> None:
        h["quantizer"] = {"mode": "float16"}

    rejects(forge(to_f16))


def test_duplicate_or_non_string_keys_are_rejected() -> None:
    h, body = split(SMALL)
    hb = msgpack.packb(h)
    assert hb[0] == 0x89  # fixmap of 9 entries: append a second "writer" entry
    dup = b"\x8a" + hb[1:] + msgpack.packb("writer") + msgpack.packb("again")
    head = struct.pack("<4sBBHI", b"LDMZ", 1, 0, 0, len(dup))
    rejects(head + struct.pack("<I", zlib.crc32(head + dup)) + dup + body, "msgpack")
    rejects(forge(lambda h: h["model"].update({b"bin-key": 1})), "msgpack")
