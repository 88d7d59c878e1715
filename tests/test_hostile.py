"""No input crashes or hangs the screener: mutated real files always end in a defined report."""

from __future__ import annotations

import random

import pytest
from conftest import astronaut, encode

from edge_screen import Screener
from edge_screen.report import ERROR_CODES

SEEDS = range(40)


def _mutants(data: bytes, seed: int) -> list[bytes]:
    """Byte flips, truncations, splices and zeroed runs of a valid file, reproducible by seed."""
    rng = random.Random(seed)
    out = []
    for _ in range(3):
        b = bytearray(data)
        kind = rng.choice(["flip", "truncate", "zero", "splice", "dup"])
        if kind == "flip":
            for _ in range(rng.randint(1, 20)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif kind == "truncate":
            b = b[: rng.randrange(1, len(b))]
        elif kind == "zero":
            start = rng.randrange(len(b))
            b[start : start + rng.randint(1, 512)] = bytes(min(512, len(b) - start))
        elif kind == "splice":
            start = rng.randrange(len(b))
            b[start:start] = rng.randbytes(rng.randint(1, 256))
        else:
            start = rng.randrange(len(b) // 2)
            b += b[start : start + rng.randint(1, 4096)]
        out.append(bytes(b))
    return out


@pytest.fixture(scope="module")
def originals() -> dict[str, bytes]:
    small = astronaut().resize((160, 120))
    return {fmt: encode(small, fmt) for fmt in ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")}


@pytest.mark.parametrize("seed", SEEDS)
def test_mutated_media_always_gets_a_defined_report(
    screener: Screener, originals: dict[str, bytes], seed: int
) -> None:
    for fmt, data in originals.items():
        for mutant in _mutants(data, seed * 31 + len(fmt)):
            r = screener.screen(mutant)
            assert r.verdict in ("allow", "review", "hold")
            if r.error is not None:
                assert r.error.code in ERROR_CODES, (fmt, r.error)
                assert r.error.code != "internal", (fmt, seed, r.error.message)
                assert r.verdict == "hold"
