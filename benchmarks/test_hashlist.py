"""Known-content matching against a 1M-entry hash list: index build, one query, and ``screen()``
of a 12 MP phone photo with the list against the same bundle without it.

The list is random PDQ-sized entries with the photo's own hash planted in it, so every timed
screen also finds its match. ``python3 benchmarks/test_hashlist.py`` prints the numbers that
docs/report.md#known-content quotes.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_screen import Screener, bench
from edge_screen.bench.hashing import ENTRIES, listed_bundle, random_list
from edge_screen.bundle import default_bundle_dir
from edge_screen.hashindex import HashIndex


@pytest.fixture(scope="module")
def data() -> bytes:
    return random_list()


@pytest.fixture(scope="module")
def index(data: bytes) -> HashIndex:
    return HashIndex.from_bytes(data)


def test_build_index_1m(benchmark: Any, data: bytes) -> None:
    index = benchmark.pedantic(HashIndex.from_bytes, (data,), rounds=3)
    assert len(index) == ENTRIES


def test_query_1m(benchmark: Any, index: HashIndex) -> None:
    q = bytes(np.frombuffer(index.hashes[123].tobytes(), np.uint8) ^ 1)  # 32 bits off: a miss
    near = bytearray(index.hashes[456].tobytes())
    near[0] ^= 0xFF  # 8 bits off: a match
    entries, _ = benchmark(index.query, bytes(near))
    assert 456 in entries and 123 not in index.query(q)[0]


def _photo_and_hash() -> tuple[bytes, bytes]:
    _, photo = bench.make_inputs(1, 12.0)[0]
    with Screener(threads=2) as s:
        r = s.screen(photo)
    assert r.hashes is not None and r.hashes.pdq is not None
    return photo, r.hashes.pdq.to_bytes()


@pytest.mark.parametrize("listed", [False, True], ids=["hashing-only", "1m-list"])
def test_screen_with_a_1m_list(benchmark: Any, tmp_path: Path, data: bytes, listed: bool) -> None:
    photo, pdq = _photo_and_hash()
    planted = pdq + data[32:]
    bundle = listed_bundle(default_bundle_dir(), tmp_path / "b", planted) if listed else None
    with Screener(bundle=bundle, threads=2) as s:
        r = benchmark.pedantic(s.screen, (photo,), rounds=15, warmup_rounds=2)
    assert r.ok and r.signals["known_match"] == (1.0 if listed else None)


def main() -> int:
    import tempfile

    data = random_list()
    t = time.perf_counter()
    index = HashIndex.from_bytes(data)
    build = time.perf_counter() - t
    rng = np.random.default_rng(1)
    queries = [index.hashes[i].tobytes() for i in rng.integers(0, ENTRIES, 200)]
    t = time.perf_counter()
    for q in queries:
        index.query(q)
    query_ms = (time.perf_counter() - t) / len(queries) * 1e3
    t = time.perf_counter()
    for q in queries[:10]:
        index.brute_force(q)
    brute_ms = (time.perf_counter() - t) / 10 * 1e3
    print(f"1M entries: index built in {build:.2f} s, {index.nbytes / 1e6:.0f} MB "
          f"({len(data) / 1e6:.0f} MB of hashes); query {query_ms:.2f} ms "
          f"(brute force {brute_ms:.0f} ms)")
    photo, pdq = _photo_and_hash()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = listed_bundle(default_bundle_dir(), Path(tmp) / "b", pdq + data[32:])
        t = time.perf_counter()
        plain = Screener(threads=2)
        t_plain = time.perf_counter() - t
        t = time.perf_counter()
        listed = Screener(bundle=bundle, threads=2)
        t_listed = time.perf_counter() - t
        runs: dict[str, list[float]] = {"hashing only": [], "1M list": []}
        match = []
        with plain, listed:
            plain.screen(photo), listed.screen(photo)
            for _ in range(20):  # interleaved: a busy neighbour slows both alike
                runs["hashing only"].append(plain.screen(photo).timing_ms["total"])
                r = listed.screen(photo)
                assert r.signals["known_match"] == 1.0
                runs["1M list"].append(r.timing_ms["total"])
                match.append(r.timing_ms["match"])
        med = {k: statistics.median(v) for k, v in runs.items()}
        print(f"Screener(): {t_plain:.2f} s, with the 1M list {t_listed:.2f} s")
        print(f"screen() 12 MP photo, median of 20 interleaved: hashing only "
              f"{med['hashing only']:.1f} ms, with the 1M list {med['1M list']:.1f} ms "
              f"({(med['1M list'] / med['hashing only'] - 1) * 100:+.1f}%); matching itself "
              f"{statistics.median(match):.2f} ms (8 orientations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
