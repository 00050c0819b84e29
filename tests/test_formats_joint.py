"""Format 2.1 (coding r24s): inter-channel prediction of entropy-coded chunks (SPEC.md 7.5)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import msgpack
import numpy as np
import pytest

from ldmz.formats import FormatError, LdmzFile, MelParams, ModelInfo, SourceInfo, pack_latents
from ldmz.formats.container import PREAMBLE
from ldmz.formats.entropy import (
    TOTAL,
    choose_joint,
    decode_codes,
    encode_codes,
    residual_freqs,
    wrap,
)

DATA = Path(__file__).parent / "data"


def _load(name: str, path: Path):  # noqa: ANN202 - a module
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_RANS = _load("formats_rans_tests", Path(__file__).with_name("test_formats_rans.py"))
_make_golden, _tables = _RANS._make_golden, _RANS._tables
EXPECT = json.loads((DATA / "golden_v21.json").read_text(encoding="utf-8"))


def _stereo(noise: float, channels: int = 2, seconds: float = 6.0, joint: bool = True,
            seed: int = 0) -> LdmzFile:
    """Latents whose channels are channel 0 plus ``noise`` (a near-mono recording at 0.1), or
    unrelated ones (``noise >= 1``)."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * 22050 / 1024) + 1
    z0 = rng.normal(size=(1, 8, frames, 20)).astype(np.float32)
    z = z0 + noise * rng.normal(size=(channels, 8, frames, 20)).astype(np.float32)
    z[0] = z0[0]
    if noise >= 1:  # unrelated channels
        z = rng.normal(size=z.shape).astype(np.float32)
    return pack_latents(z, model=ModelInfo("m"), mel=MelParams(),
                        source=SourceInfo(44100, channels, int(seconds * 44100),
                                          (0.5,) * channels),
                        frames_per_chunk=64, tables=_tables(), quality=1, joint=joint)


def test_golden_v21_generator_and_bytes() -> None:
    mk = _make_golden()
    data = (DATA / EXPECT["name"]).read_bytes()
    assert mk.build_rans_joint().to_bytes() == data, "v2.1 bytes changed: run make_golden.py"
    assert hashlib.sha256(data).hexdigest() == EXPECT["sha256"]
    assert PREAMBLE.unpack(data[:16])[:4] == (b"LDMZ", 2, 1, 0)


def test_golden_v21_reads_as_expected() -> None:
    mk = _make_golden()
    f = LdmzFile.load(DATA / EXPECT["name"])
    assert f.header.to_dict() == EXPECT["header"]
    assert [c.joint for c in f.header.chunks] == [mk.V21_JOINT[0], mk.V21_JOINT[1], ()]
    f.use_tables(mk.golden_tables())
    f.verify()
    for i, codes in enumerate(EXPECT["codes"]):
        np.testing.assert_array_equal(f.chunk_codes(i), np.array(codes))
    assert f.chunk_codes(0)[0, 0, 1, 0] == -3 and f.chunk_codes(0)[1, 0, 1, 0] == 3  # wraps
    np.testing.assert_array_equal(f.latents(), np.array(EXPECT["latents"], np.float32))


def test_golden_v21_header_layout() -> None:
    data = (DATA / EXPECT["name"]).read_bytes()
    hlen = PREAMBLE.unpack(data[:16])[4]
    h = msgpack.unpackb(data[16:16 + hlen])
    assert list(h) == ["m", "e", "s", "l", "c", "k", "j", "f", "w", "v", "t"]
    assert h["c"][0] == "r24s"  # an r24-only reader refuses the file (SPEC 7.1)
    assert h["j"] == [[[0, 255, 20, 3, 0, 0, 0], 0], [[0, 200, 40, 0, 0, 0, 1],
                                                      [1, 255, 5, 1, 1, 1, 1]], [0, 0]]


def test_spec_reference_decoder_agrees_on_v21() -> None:
    decode_chunk = _load("rans_reference", Path(__file__).parent / "rans_reference.py").decode_chunk
    mk = _make_golden()
    t = mk.golden_tables()
    f = LdmzFile.load(DATA / EXPECT["name"])
    data = (DATA / EXPECT["name"]).read_bytes()
    start = len(data) - f.header.data_size
    hlen = PREAMBLE.unpack(data[:16])[4]
    j = msgpack.unpackb(data[16:16 + hlen])["j"]
    for i, c in enumerate(f.header.chunks):
        blob = data[start + c.offset:start + c.offset + c.size]
        got = decode_chunk(blob, f.header.chunk_shape(i), t.freqs[1], t.radius(1), j[i])
        np.testing.assert_array_equal(got, np.array(EXPECT["codes"][i]))
    g = _stereo(0.1, channels=3, seconds=2.0)
    assert any(c.joint for c in g.header.chunks)
    big = _tables()
    for i, c in enumerate(g.header.chunks):
        row = [list(e) if e else 0 for e in (c.joint or ((), ()))]
        got = decode_chunk(g._blob(i), g.header.chunk_shape(i), big.freqs[1], big.radius(1), row)
        np.testing.assert_array_equal(got, g.chunk_codes(i))


def test_near_mono_stereo_costs_far_less_and_decodes_the_same_codes() -> None:
    alone, joint = _stereo(0.1, joint=False), _stereo(0.1)
    assert alone.to_bytes()[4:6] == b"\x02\x00" and joint.to_bytes()[4:6] == b"\x02\x01"
    assert all(c.joint and c.joint[0][0] == 0 for c in joint.header.chunks)
    for i in range(len(joint.header.chunks)):
        np.testing.assert_array_equal(joint.chunk_codes(i), alone.chunk_codes(i))
    back = LdmzFile.from_bytes(joint.to_bytes())
    back.use_tables(_tables())
    np.testing.assert_array_equal(back.latents(), alone.latents())
    # the second channel went from as much as the first to a small fraction of it
    assert len(joint.to_bytes()) < 0.7 * len(alone.to_bytes())


def test_never_larger_than_format_2_0() -> None:
    for noise in (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 3.0):
        for seconds in (0.5, 6.0):
            f, g = _stereo(noise, seconds=seconds), _stereo(noise, seconds=seconds, joint=False)
            assert len(f.to_bytes()) <= len(g.to_bytes())
            assert (f.to_bytes()[5] == 1) == any(c.joint for c in f.header.chunks)


def test_independent_channels_and_mono_keep_format_2_0_bytes() -> None:
    for f, g in ((_stereo(3.0), _stereo(3.0, joint=False)),
                 (_stereo(0.1, channels=1), _stereo(0.1, channels=1, joint=False))):
        assert all(not c.joint for c in f.header.chunks)
        assert f.to_bytes() == g.to_bytes() and f.to_bytes()[5] == 0


def test_residual_table_and_wrap() -> None:
    for r in (1, 3, 6, 24):
        for h in ((255, 0, 0, 0, 0, 0), (1, 0, 0, 0, 0, 255), (255, 200, 100, 50, 10, 1)):
            t = residual_freqs(h, r)
            assert t.shape == (2 * r + 1,) and t.sum() == TOTAL and t.min() >= 1
        k = np.arange(-r, r + 1)
        a, b = np.meshgrid(k, k)
        d = wrap(a - b, r)
        assert np.abs(d).max() <= r
        np.testing.assert_array_equal(wrap(b + d, r), a)
    with pytest.raises(ValueError, match="residual 0"):
        residual_freqs((0, 255, 0, 0, 0, 0), 3)


def test_chooser_picks_the_closest_earlier_channel() -> None:
    rng = np.random.default_rng(3)
    c0 = rng.integers(-4, 5, (8, 40, 20))
    c2 = rng.integers(-4, 5, (8, 40, 20))  # unrelated to 0 and 1
    c1 = np.clip(c2 + (rng.random(c2.shape) < 0.05), -6, 6)  # channel 2 plus a little
    codes = np.stack([c0, c2, c1]).astype(np.int32)
    j = choose_joint(codes, _tables(), 1)
    assert j[0] == () and j[1][0] == 1
    blob = encode_codes(codes, _tables(), 1, j)
    np.testing.assert_array_equal(decode_codes(blob, codes.shape, _tables(), 1, "x", 0, j), codes)
    assert len(blob) < len(encode_codes(codes, _tables(), 1)) * 0.8


@pytest.mark.parametrize("bad", [
    [[[1, 255, 0, 0, 0, 0, 0]]],        # b must be < the channel
    [[[0, 0, 255, 0, 0, 0, 0]]],        # h_0 must be >= 1
    [[[0, 256, 0, 0, 0, 0, 0]]],        # weight over 255
    [[[0, 255, 0, 0, 0, 0]]],           # 6 values, not 7
    [[1]],                              # not 0 and not a list
    [[0, 0]],                           # two entries for one predicted channel
    [],                                 # no row for the chunk
    None,                               # r24s without "j"
])
def test_bad_joint_entries_are_refused(bad: object) -> None:
    f = _stereo(0.1, seconds=1.0)
    data = f.to_bytes()
    hlen = PREAMBLE.unpack(data[:16])[4]
    h = msgpack.unpackb(data[16:16 + hlen])
    assert h["c"][0] == "r24s" and len(h["k"]) == 2
    if bad is None:
        del h["j"]
    else:
        h["j"] = bad
    from ldmz.formats.compact import header_from_compact

    with pytest.raises(FormatError, match="'j'"):
        header_from_compact(h, "bad.ldmz")


@pytest.mark.parametrize("i", [5, 6, 7])
def test_mel_floats_beyond_float32_are_one_line(i: int) -> None:
    """fmin / fmax / log_floor of 1e300 (found by the fuzz test): a FormatError, not an
    overflow warning on a cast and an infinite mel parameter."""
    data = _stereo(0.1, seconds=1.0).to_bytes()
    hlen = PREAMBLE.unpack(data[:16])[4]
    h = msgpack.unpackb(data[16:16 + hlen])
    h["e"][i] = 1e300
    from ldmz.formats.compact import header_from_compact

    with pytest.raises(FormatError, match=f"'e\\[{i}\\]'.*float32"):
        header_from_compact(h, "bad.ldmz")


def test_float64_fields_read_back_the_same_after_a_rewrite() -> None:
    """A header whose scaling factor and gains are float 64 (a foreign writer; found by the
    fuzz test: f = 5e19) reads as float 32, the precision ldmz writes, so writing it again
    gives the same header."""
    from ldmz.formats.compact import header_from_compact, header_to_compact

    data = _stereo(0.1, seconds=1.0).to_bytes()
    hlen = PREAMBLE.unpack(data[:16])[4]
    d = msgpack.unpackb(data[16:16 + hlen])
    d["f"], d["s"][3] = 5e19, [0.1, 1 / 3]
    h = header_from_compact(d, "f64.ldmz")
    assert h.model.scaling_factor == float(np.float32(5e19))
    assert h.source.gain == (float(np.float32(0.1)), float(np.float32(1 / 3)))
    again = msgpack.unpackb(msgpack.packb(header_to_compact(h), use_bin_type=True,
                                          use_single_float=True))
    assert header_from_compact(again, "f64.ldmz") == h


@pytest.mark.parametrize("seed", range(12))
def test_forged_joint_chunks_fail_cleanly(seed: int) -> None:
    t = _tables()
    rng = np.random.default_rng(seed)
    shape = (2, 8, int(rng.integers(1, 30)), 20)
    j = ((0, *(int(v) for v in rng.integers(0, 256, 6))),)
    if not any(j[0][1:]):
        j = ((0, 1, 0, 0, 0, 0, 0),)
    codes = rng.integers(-3, 4, shape).astype(np.int32)
    words = bytearray(encode_codes(codes, t, 0, j))
    if words:
        words[int(rng.integers(0, len(words)))] ^= 1 << int(rng.integers(0, 8))
    try:
        out = decode_codes(bytes(words), shape, t, 0, "forged.ldmz", 0, j)
    except FormatError as e:
        assert "forged.ldmz: chunk 0" in str(e)
    else:
        assert out.shape == shape and np.abs(out).max() <= t.radius(0)
