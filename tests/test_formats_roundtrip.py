"""Round-trip property tests: any shape, bit depth, chunking and tags survive write and read."""

from __future__ import annotations

import io
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldmz.formats import LdmzFile, MelParams, ModelInfo, SourceInfo, pack_latents
from ldmz.formats.quantize import pack_plane, packed_size, unpack_plane

# LDMZ_PROPERTY_EXAMPLES=5000 pytest tests/test_formats_roundtrip.py  for a longer run by hand
SETTINGS = settings(max_examples=int(os.environ.get("LDMZ_PROPERTY_EXAMPLES", "60")),
                    deadline=None, suppress_health_check=[HealthCheck.too_slow])

tag_text = st.text(max_size=12)
tags = st.dictionaries(st.text(min_size=1, max_size=16), tag_text, max_size=4)


@st.composite
def cases(draw: st.DrawFn) -> dict:
    a = draw(st.integers(1, 3))
    lc = draw(st.integers(1, 4))
    frames = draw(st.integers(0, 40))
    freq = draw(st.integers(1, 6))
    per = draw(st.integers(1, 16))
    overlap = draw(st.integers(0, per - 1))
    bits = draw(st.one_of(
        st.just("float16"),
        st.integers(0, 8),
        st.lists(st.integers(0, 8), min_size=lc, max_size=lc),
    ))
    kind = draw(st.sampled_from(["normal", "constant", "wide", "tiny", "integers"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shape = (a, lc, frames, freq)
    z = {
        "normal": lambda: rng.normal(size=shape) * 3,
        "constant": lambda: np.full(shape, rng.normal()),
        "wide": lambda: rng.normal(size=shape) * 1e4,
        "tiny": lambda: rng.normal(size=shape) * 1e-6,
        "integers": lambda: rng.integers(-8, 8, size=shape),
    }[kind]().astype(np.float32)
    return dict(z=z, bits=bits, per=per, overlap=overlap, tags=draw(tags))


def _build(c: dict) -> LdmzFile:
    a = c["z"].shape[0]
    return pack_latents(
        c["z"], model=ModelInfo(id="m", revision="r", weights_sha256="0" * 64),
        mel=MelParams(), source=SourceInfo(22050, a, 1234, tuple(1.0 + i for i in range(a))),
        bits=c["bits"], frames_per_chunk=c["per"], overlap=c["overlap"], tags=c["tags"],
        writer="test", vocoder="v",
    )


def _expected_error(f: LdmzFile, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per value: the allowed error (step / 2) and the value a 0-bit channel decodes to."""
    h = f.header
    step = np.zeros(z.shape, np.float32)
    zero = np.zeros(z.shape, np.float32)
    for c in h.chunks:
        sl = slice(c.frame_start, c.frame_start + min(c.frames, h.latent.frames_per_chunk))
        step[:, :, sl] = np.array(c.q_step, np.float32)[:, :, None, None] / 2
        zero[:, :, sl] = np.array(c.q_offset, np.float32)[:, :, None, None]
    return step, zero


@SETTINGS
@given(cases())
def test_round_trip(c: dict) -> None:
    f = _build(c)
    data = f.to_bytes()
    g = LdmzFile.from_bytes(data)
    assert g.header == f.header
    assert g.header.tags == c["tags"]
    assert g.to_bytes() == data
    z = c["z"]
    out = g.latents()
    assert out.dtype == np.float32 and out.shape == z.shape
    if c["bits"] == "float16":
        np.testing.assert_array_equal(out, z.astype(np.float16).astype(np.float32))
        return
    half_step, zero = _expected_error(g, z)
    bits = c["bits"] if isinstance(c["bits"], list) else [c["bits"]] * z.shape[1]
    tol = half_step * (1 + 1e-5) + 1e-6 * (np.abs(z) + np.abs(zero)) + 1e-30
    for ci, b in enumerate(bits):
        if b == 0:
            np.testing.assert_array_equal(out[:, ci], zero[:, ci])
        else:
            assert (np.abs(out[:, ci] - z[:, ci]) <= tol[:, ci]).all()
    for i in range(len(g.header.chunks)):
        codes = g.chunk_codes(i)
        assert all(int(codes[:, ci].max(initial=0)) < (1 << b) or b == 0
                   for ci, b in enumerate(bits))
    # per-channel reads and a lazy read through a file object agree with the full read
    for ch in range(z.shape[0]):
        np.testing.assert_array_equal(g.latents(ch)[0], out[ch])
    lazy = LdmzFile.load(io.BytesIO(data), lazy=True)
    np.testing.assert_array_equal(lazy.latents(), out)


@SETTINGS
@given(st.integers(0, 8), st.lists(st.integers(0, 255), max_size=70))
def test_pack_unpack_plane(bits: int, values: list[int]) -> None:
    codes = np.array(values, np.uint8) & np.uint8((1 << bits) - 1 if bits else 0)
    packed = pack_plane(codes, bits)
    assert len(packed) == packed_size(bits, len(values))
    if bits == 0:
        assert packed == b""
    np.testing.assert_array_equal(unpack_plane(packed, bits, len(values)), codes)


def test_chunk_at_and_geometry() -> None:
    z = np.zeros((1, 2, 30, 3), np.float32)
    f = pack_latents(z, model=ModelInfo("m"), mel=MelParams(sample_rate=16000, hop_length=160),
                     source=SourceInfo(16000, 1, 48000, (1.0,)), bits=4, frames_per_chunk=8,
                     overlap=2, time_downsample=4)
    assert [(c.frame_start, c.frames) for c in f.header.chunks] == [(0, 10), (8, 10), (16, 10),
                                                                    (24, 6)]
    # 25 latent frames per second (16000 / 160 / 4)
    assert [f.chunk_at(t) for t in (-1.0, 0.0, 0.33, 0.7, 1.0, 99.0, float("inf"))] == [
        0, 0, 1, 2, 3, 3, 3]


def test_tail_is_the_file_from_a_chunk_on() -> None:
    z = np.random.default_rng(3).normal(size=(2, 2, 30, 3)).astype(np.float32)
    f = pack_latents(z, model=ModelInfo("m"), mel=MelParams(sample_rate=16000, hop_length=160),
                     source=SourceInfo(16000, 2, 48000, (1.0, 0.5)), bits=6, frames_per_chunk=8,
                     overlap=2, time_downsample=4, mel_frames=120)
    assert f.tail(0) == (f, 0)
    for k in (1, 3):
        sub, start = f.tail(k)
        first = f.header.chunks[k].frame_start
        assert start == first * 4 * 160  # mel frames x hop, at the source rate
        assert sub.header.source.samples == 48000 - start
        assert sub.header.latent.mel_frames == 120 - first * 4
        again = LdmzFile.from_bytes(sub.to_bytes())  # a valid file: offsets from 0, CRCs kept
        np.testing.assert_array_equal(again.latents(), f.latents()[:, :, first:])
