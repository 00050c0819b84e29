"""read_header / header_end: a stream reader learns the header from the first bytes only."""

from __future__ import annotations

import numpy as np
import pytest

from ldmz.formats import FormatError, LdmzFile, MelParams, ModelInfo, SourceInfo, pack_latents
from ldmz.formats.container import header_end, read_header


def _file() -> bytes:
    z = np.random.default_rng(0).normal(size=(2, 8, 40, 16)).astype(np.float32)
    f = pack_latents(z, model=ModelInfo(id="m", revision="r", weights_sha256="0" * 64),
                     mel=MelParams(), source=SourceInfo(16000, 2, 16000, (1.0, 1.0)), bits=4,
                     frames_per_chunk=16, tags={"title": "T"})
    return f.to_bytes()


def test_header_from_the_first_bytes_only() -> None:
    data = _file()
    for n in range(16):
        assert header_end(data[:n]) is None  # not yet a preamble, but nothing wrong so far
    end = header_end(data[:16])
    assert end is not None and end < len(data)
    header, start = read_header(data[:end], "s.ldmz")
    assert header == LdmzFile.from_bytes(data).header and start == end
    assert start + header.data_size == len(data)
    with pytest.raises(FormatError, match="truncated"):
        read_header(data[:end - 1])


@pytest.mark.parametrize("prefix,why", [(b"RIFF", "not an ldmz file"), (b"L\0", "not an ldmz"),
                                        (b"LDMZ\x09\0\0\0" + bytes(8), "version 9"),
                                        (b"LDMZ\x01\0\0\0\xff\xff\xff\x7f" + bytes(4),
                                         "header length")])
def test_refused_before_buffering(prefix: bytes, why: str) -> None:
    with pytest.raises(FormatError, match=why):
        header_end(prefix, "x.ldmz")
