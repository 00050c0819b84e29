"""A brief CI fuzz run: random mutations and splices of valid files let only FormatError escape."""

from __future__ import annotations

import importlib.util
import os
import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_spec = importlib.util.spec_from_file_location("fuzz_ldmz", Path(__file__).parent / "fuzz_ldmz.py")
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

GOLDEN = tuple(p.read_bytes() for p in sorted((Path(__file__).parent / "data").glob("*.ldmz")))
# LDMZ_FUZZ_EXAMPLES=100000 pytest tests/test_formats_fuzz.py  for a longer run by hand
FUZZ = settings(max_examples=int(os.environ.get("LDMZ_FUZZ_EXAMPLES", "400")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_seeds_are_valid() -> None:
    for data in fuzz.seeds() + GOLDEN:
        fuzz.check(data)


@FUZZ
@given(st.integers(0, 10**6), st.integers(0, 2**64), st.integers(1, 4))
def test_mutated_files(which: int, seed: int, rounds: int) -> None:
    pool = fuzz.seeds() + GOLDEN
    data = pool[which % len(pool)]
    rnd = random.Random(seed)
    for _ in range(rounds):
        data = fuzz.mutate(data, rnd, pool)
    fuzz.check(data)


@FUZZ
@given(st.binary(max_size=600))
def test_raw_bytes(data: bytes) -> None:
    fuzz.check(data)
    fuzz.check(b"LDMZ\x01\x00\x00\x00" + data)
    fuzz.check(b"LDMZ\x02\x00\x00\x00" + data)
