"""Format 2 (entropy-coded chunks): golden bytes, round trips, damage, bit-exactness, size."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import msgpack
import numpy as np
import pytest

from ldmz.formats import (
    ChecksumError,
    EntropyTables,
    FormatError,
    LdmzFile,
    MelParams,
    ModelInfo,
    SourceInfo,
    TablesError,
    load_tables,
    pack_latents,
)
from ldmz.formats.container import PREAMBLE
from ldmz.formats.entropy import (
    CONTEXTS,
    TOTAL,
    _coder,
    decode_codes,
    dequantize_ec,
    encode_codes,
    freqs_from_counts,
    quantize_ec,
    tables_bytes,
)

DATA = Path(__file__).parent / "data"
EXPECT = json.loads((DATA / "golden_v2.json").read_text(encoding="utf-8"))


def _load(name: str, path: Path):  # noqa: ANN202 - a module
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _make_golden() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_golden", DATA / "make_golden.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tables(c: int = 8, f: int = 20, k: int = 6, qualities: int = 3, seed: int = 0,
            steps: tuple[float, ...] = (1.5, 1.0, 0.5)) -> EntropyTables:
    rng = np.random.default_rng(seed)
    n = 2 * k + 1
    sym = np.arange(n) - k
    base = np.exp(-np.abs(sym) * 1.2)[None, None, None] * 1000
    freqs = tuple(freqs_from_counts(base * rng.uniform(0.5, 1.5, (c, f, CONTEXTS, n)))
                  for _ in range(qualities))
    st = np.array([[s] * c for s in steps[:qualities]], np.float32)
    return EntropyTables(st, rng.normal(size=(c, f)).astype(np.float32) * 0.1, freqs,
                         hashlib.sha256(str(seed).encode()).hexdigest()).check()


def _file(seconds: float = 10.0, channels: int = 1, tables: EntropyTables | None = None,
          quality: int = 1, seed: int = 0) -> LdmzFile:
    t = tables or _tables()
    mel = MelParams()  # the universal vocoder's 22.05 kHz / hop 256, like ldmz-small
    frames = -(-int(seconds * mel.sample_rate) // (mel.hop_length * 4)) + 1  # as encode pads
    z = np.random.default_rng(seed).normal(size=(channels, 8, frames, 20)).astype(np.float32)
    z[:, :, frames // 2:] *= 0.1  # a quiet half: cheap codes
    return pack_latents(z, model=ModelInfo("ldmz-small", revision="h200-step-5617",
                                           weights_sha256="ab" * 32),
                        mel=mel, source=SourceInfo(44100, channels, int(seconds * 44100),
                                                   (0.731,) * channels),
                        frames_per_chunk=215, tables=t, quality=quality,
                        writer="ldmz 0.1.0", vocoder="universal")


def test_golden_v2_generator_and_bytes() -> None:
    mk = _make_golden()
    assert (DATA / EXPECT["tables"]).read_bytes() == mk.build_tables_bytes()
    data = (DATA / EXPECT["name"]).read_bytes()
    assert mk.build_rans().to_bytes() == data, "v2 bytes changed: run make_golden.py"
    assert hashlib.sha256(data).hexdigest() == EXPECT["sha256"]
    assert PREAMBLE.unpack(data[:16])[:4] == (b"LDMZ", 2, 0, 0)


def test_golden_v2_reads_as_expected() -> None:
    t = load_tables(DATA / EXPECT["tables"])
    assert t.sha256 == EXPECT["tables_sha256"]
    f = LdmzFile.load(DATA / EXPECT["name"])  # CRCs only: no tables yet
    assert f.entropy_coded and f.header.to_dict() == EXPECT["header"]
    with pytest.raises(FormatError, match="entropy tables are needed"):
        f.read_chunk(0)
    f.use_tables(t)
    f.verify()
    np.testing.assert_array_equal(f.latents(), np.array(EXPECT["latents"], np.float32))
    for i, codes in enumerate(EXPECT["codes"]):
        np.testing.assert_array_equal(f.chunk_codes(i), np.array(codes))
    assert LdmzFile.load(DATA / EXPECT["name"], lazy=True).to_bytes() == \
        (DATA / EXPECT["name"]).read_bytes()


def test_golden_v2_header_layout() -> None:
    data = (DATA / EXPECT["name"]).read_bytes()
    hlen = PREAMBLE.unpack(data[:16])[4]
    h = msgpack.unpackb(data[16:16 + hlen])
    assert list(h) == ["m", "e", "s", "l", "c", "k", "f", "w", "v", "t"]
    assert h["c"][0] == "r24" and h["c"][2] == 1 and len(h["c"][1]) == 8
    assert h["m"][1] == bytes.fromhex("ab" * 8)
    assert data[16 + hlen + 0:16 + hlen + 4]  # chunk 0 starts right after the header
    assert len(h["k"]) == 2 * 3


def test_other_tables_are_refused() -> None:
    f = LdmzFile.load(DATA / EXPECT["name"])
    with pytest.raises(FormatError, match="entropy tables"):
        f.use_tables(_tables(2, 3))


def test_round_trip_codes_and_values() -> None:
    t = _tables()
    for q in range(t.qualities):
        f = _file(tables=t, quality=q, channels=2, seconds=3.0)
        g = LdmzFile.from_bytes(f.to_bytes())
        g.use_tables(t)
        z = f.latents()
        np.testing.assert_array_equal(g.latents(), z)
        for i in range(len(f.header.chunks)):
            np.testing.assert_array_equal(g.chunk_codes(i), f.chunk_codes(i))


def test_values_within_half_a_step() -> None:
    t = _tables(k=40)
    rng = np.random.default_rng(1)
    z = rng.normal(size=(1, 8, 30, 20)).astype(np.float32)
    f = pack_latents(z, model=ModelInfo("m"), mel=MelParams(),
                     source=SourceInfo(22050, 1, 1000, (1.0,)), frames_per_chunk=7, overlap=2,
                     tables=t, quality=2)
    err = np.abs(f.latents() - z)
    assert err.max() <= 0.5 * 0.5 + 1e-6


def test_header_of_10_seconds_mono_fits_200_bytes() -> None:
    f = _file(10.0)
    data = f.to_bytes()
    assert len(data) - f.header.data_size <= 200, len(data) - f.header.data_size
    assert len(f.header.chunks) == 2


def test_tables_must_sum_to_2_pow_24() -> None:
    t = _tables(2, 3)
    bad = t.freqs[0].copy()
    bad[0, 0, 0, 0] += 1
    with pytest.raises(TablesError):
        EntropyTables(t.steps, t.mean, (bad,) + t.freqs[1:]).check()
    assert (t.freqs[0].sum(-1) == TOTAL).all()


def test_tables_file_round_trip_and_damage(tmp_path: Path) -> None:
    t = _tables(2, 3)
    tensors = {"mean": t.mean, "step": t.steps,
               **{f"freq.{q}": t.freqs[q].astype(np.int32) for q in range(t.qualities)}}
    p = tmp_path / "t.zst"
    p.write_bytes(tables_bytes(tensors, {"format": "ldmz-entropy-1"}))
    back = load_tables(p)
    assert all((a == b).all() for a, b in zip(back.freqs, t.freqs, strict=True))
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(TablesError, match=str(p)):
        load_tables(p)


def test_coder_uses_the_integer_table_exactly() -> None:
    """With weights freq - 1 constriction codes exactly ``freq``: symbol of freq 3 costs
    24 - log2(3) bits, to within the final state's words."""
    categorical, ans = _coder()
    freq = np.array([3, TOTAL - 5, 1, 1], np.int64)
    enc = ans()
    syms = np.array([0] * 1000 + [2, 2], np.int32)
    enc.encode_reverse(syms, categorical((freq - 1).astype(np.float64), perfect=False))
    bits = 32 * len(enc.get_compressed())
    ideal = 1000 * (24 - np.log2(3)) + 2 * 24
    assert ideal <= bits <= ideal + 64


def test_every_byte_flip_in_a_chunk_is_caught() -> None:
    f = _file(2.0)
    data = bytearray(f.to_bytes())
    start = len(data) - f.header.data_size
    for pos in range(start, len(data)):
        bad = bytearray(data)
        bad[pos] ^= 0x41
        with pytest.raises(ChecksumError):
            LdmzFile.from_bytes(bytes(bad))


@pytest.mark.parametrize("seed", range(40))
def test_forged_chunks_fail_cleanly(seed: int) -> None:
    """Words that pass the CRC (recomputed) but were not written by the encoder: a FormatError
    (or, rarely, a valid decode), never a crash or a hang."""
    t = _tables()
    rng = np.random.default_rng(seed)
    shape = (1, 8, int(rng.integers(1, 40)), 20)
    n = int(rng.integers(0, 80))
    blob = rng.integers(0, 2**32, n, dtype=np.uint64).astype("<u4").tobytes()
    if seed % 4 == 0:  # a real chunk with one word changed, or cut short
        codes = rng.integers(-3, 4, shape).astype(np.int32)
        words = bytearray(encode_codes(codes, t, 0))
        if len(words) >= 4:
            words[int(rng.integers(0, len(words)))] ^= 1 << int(rng.integers(0, 8))
        blob = bytes(words[: len(words) - 4 * (seed % 8 == 0)])
    try:
        out = decode_codes(blob, shape, t, 0, "forged.ldmz", 0)
    except FormatError as e:
        assert "forged.ldmz: chunk 0" in str(e)
    else:
        assert out.shape == shape and np.abs(out).max() <= t.radius(0)


def test_odd_length_chunk_is_refused() -> None:
    with pytest.raises(FormatError, match="32-bit words"):
        decode_codes(b"abc", (1, 8, 2, 20), _tables(), 0, "x", 0)


_DECODE = """
import hashlib, sys, numpy as np, torch
torch.set_num_threads(int(sys.argv[2]))
from ldmz.formats import LdmzFile
sys.path.insert(0, sys.argv[3])
from test_formats_rans import _tables
f = LdmzFile.load(sys.argv[1])
f.use_tables(_tables())
codes = [f.chunk_codes(i) for i in range(len(f.header.chunks))]
print(hashlib.sha256(b"".join(c.astype("<i4").tobytes() for c in codes)).hexdigest())
"""


def test_bit_exact_in_another_process_with_other_threads(tmp_path: Path) -> None:
    f = _file(12.0, channels=2)
    path = tmp_path / "x.ldmz"
    f.save(path)
    codes = [f.chunk_codes(i) for i in range(len(f.header.chunks))]
    mine = hashlib.sha256(b"".join(c.astype("<i4").tobytes() for c in codes)).hexdigest()
    env = dict(os.environ, OMP_NUM_THREADS="3", MKL_NUM_THREADS="3")
    got = subprocess.run([sys.executable, "-c", _DECODE, str(path), "3",
                          str(Path(__file__).parent)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == mine


def test_spec_reference_decoder_agrees() -> None:
    """tests/rans_reference.py follows SPEC.md section 7 alone; it decodes what the codec wrote."""
    decode_chunk = _load("rans_reference", Path(__file__).parent / "rans_reference.py").decode_chunk

    t = load_tables(DATA / EXPECT["tables"])
    f = LdmzFile.load(DATA / EXPECT["name"])
    data = (DATA / EXPECT["name"]).read_bytes()
    start = len(data) - f.header.data_size
    for i, c in enumerate(f.header.chunks):
        blob = data[start + c.offset:start + c.offset + c.size]
        got = decode_chunk(blob, f.header.chunk_shape(i), t.freqs[1], t.radius(1))
        np.testing.assert_array_equal(got, np.array(EXPECT["codes"][i]))
    big = _tables(k=5)
    g = _file(1.5, channels=2, tables=big, quality=0)
    for i in range(len(g.header.chunks)):
        got = decode_chunk(g._blob(i), g.header.chunk_shape(i), big.freqs[0], big.radius(0))
        np.testing.assert_array_equal(got, g.chunk_codes(i))
    assert decode_chunk(g._blob(0)[:-4], g.header.chunk_shape(0), big.freqs[0], 5) is None


def test_dataset_reader_takes_the_tables(tmp_path: Path) -> None:
    from ldmz.formats.dataset import LatentDataset, read_item

    t = _tables()
    f = _file(3.0, tables=t)
    f.save(tmp_path / "a.ldmz")
    with pytest.raises(FormatError, match="entropy tables"):
        read_item(tmp_path / "a.ldmz", channel=0)
    got = read_item(tmp_path / "a.ldmz", channel=0, tables=t)
    np.testing.assert_array_equal(got, f.latents()[0])
    ds = LatentDataset(tmp_path, crop=16, seed=0, tables=t)
    assert ds[0].shape == (8, 16, 20)


def test_steps_per_channel_and_bin(tmp_path: Path) -> None:
    """ldmz-entropy-2 tables carry a step per latent channel and bin; each value is coded at its
    own bin's step, and the format names the shape (a 2-axis step is refused in -2 and back)."""
    t1 = _tables(2, 3)
    steps = np.repeat(t1.steps[:, :, None], 3, axis=2).copy()
    steps[:, 1, 2] *= 4.0  # one coarse bin
    tensors = {"mean": t1.mean, "step": steps,
               **{f"freq.{q}": t1.freqs[q].astype(np.int32) for q in range(t1.qualities)}}
    p = tmp_path / "t2.zst"
    p.write_bytes(tables_bytes(tensors, {"format": "ldmz-entropy-2"}))
    t2 = load_tables(p)
    assert t2.step(1).shape == (2, 3) and t2.step(1)[1, 2] == pytest.approx(4 * t1.step(1)[1, 2])
    z = np.random.default_rng(3).normal(size=(1, 2, 40, 3)).astype(np.float32)
    err = np.abs(dequantize_ec(quantize_ec(z, t2, 1), t2, 1) - z)
    assert err[:, 1, :, 2].max() <= t2.step(1)[1, 2] / 2 + 1e-6
    assert err[:, 1, :, 2].max() > t1.step(1)[1, 2] / 2  # the coarse bin really is coarser
    assert np.array_equal(quantize_ec(z[:, :, :, :2], _sub(t2), 1),
                          quantize_ec(z[:, :, :, :2], _sub(t1), 1))  # other bins unchanged
    for fmt, st in (("ldmz-entropy-1", steps), ("ldmz-entropy-2", t1.steps)):
        p.write_bytes(tables_bytes({**tensors, "step": st}, {"format": fmt}))
        with pytest.raises(TablesError, match="axes"):
            load_tables(p)


def _sub(t: EntropyTables) -> EntropyTables:
    """The first two bins of 3-bin tables."""
    st = t.steps[:, :, :2] if t.steps.ndim == 3 else t.steps
    return EntropyTables(st, t.mean[:, :2], tuple(f[:, :2] for f in t.freqs))
