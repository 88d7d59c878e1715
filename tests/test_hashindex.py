"""The multi-index PDQ index finds exactly what brute force over the whole list finds."""

from __future__ import annotations

import numpy as np
import pytest

from edge_screen.hashindex import MAX_RADIUS, HashIndex


def _flip(h: np.ndarray, d: int, rng: np.random.Generator, bits: np.ndarray | None = None
          ) -> bytes:
    """``h`` with ``d`` of its bits flipped (chosen among ``bits`` when given)."""
    out = np.unpackbits(h.copy())
    pool = np.arange(256) if bits is None else bits
    out[rng.choice(pool, d, replace=False)] ^= 1
    return np.packbits(out).tobytes()


def _same(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    return bool((a[0] == b[0]).all() and (a[1] == b[1]).all())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_index_equals_brute_force_on_planted_near_duplicates(seed: int) -> None:
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 256, (20_000, 32), dtype=np.uint8)
    # Near-duplicates inside the list too, so a query has several answers at once.
    for i in range(0, 2000, 2):
        hashes[i + 1] = np.frombuffer(_flip(hashes[i], int(rng.integers(0, 40)), rng), np.uint8)
    index = HashIndex(hashes)
    for d in [*range(0, 41)] * 5:
        source = int(rng.integers(len(hashes)))
        q = _flip(hashes[source], d, rng)
        got, want = index.query(q), index.brute_force(q)
        assert _same(got, want), (d, got, want)
        assert (source in got[0]) == (d <= MAX_RADIUS)


def test_many_queries_at_once_answer_each_as_brute_force_does() -> None:
    """A photo's 8 orientations go in one call: each answer is its own query's, including a
    query with no candidate at all and two queries that are the same."""
    rng = np.random.default_rng(7)
    hashes = rng.integers(0, 256, (20_000, 32), dtype=np.uint8)
    queries = [_flip(hashes[int(rng.integers(len(hashes)))], int(d), rng)
               for d in rng.integers(0, 40, 30)]
    queries += [queries[0], bytes(32)]
    for q, got in zip(queries, HashIndex(hashes).query_many(queries), strict=True):
        assert _same(got, HashIndex(hashes).brute_force(q))
    with pytest.raises(ValueError):
        HashIndex(hashes).query_many([])


def test_the_worst_spread_of_31_bits_is_found_and_32_is_the_first_miss() -> None:
    """31 bits spread over the 16 chunks as evenly as can be (two each, one chunk with one):
    the chunk with one is probed through its one-bit neighbours; 32 bits two a chunk are
    outside the radius and are not returned."""
    rng = np.random.default_rng(7)
    hashes = rng.integers(0, 256, (5000, 32), dtype=np.uint8)
    index = HashIndex(hashes)
    for target in range(0, 5000, 97):
        chunks = [rng.choice(16, 2, replace=False) + 16 * c for c in range(16)]
        two_each = np.concatenate(chunks)
        q32 = _flip(hashes[target], 32, rng, two_each)
        q31 = _flip(hashes[target], 31, rng, two_each[1:])
        assert target in index.query(q31)[0]
        assert target not in index.query(q32)[0]
        assert _same(index.query(q31), index.brute_force(q31))
        assert _same(index.query(q32), index.brute_force(q32))


def test_a_radius_smaller_than_31_is_also_exact() -> None:
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    index = HashIndex(hashes)
    for d in range(0, 20):
        q = _flip(hashes[d], d, rng)
        for radius in (0, 5, 10, 16):
            assert _same(index.query(q, radius), index.brute_force(q, radius))


def test_duplicate_entries_and_identical_chunks_are_each_returned() -> None:
    one = np.arange(32, dtype=np.uint8)
    index = HashIndex(np.stack([one, one, one ^ 1, np.full(32, 255, np.uint8)]))
    entries, distances = index.query(one.tobytes())
    assert entries.tolist() == [0, 1] and distances.tolist() == [0, 0]  # one ^ 1: 32 bits off
    entries, distances = index.query((one ^ np.eye(1, 32, 5, np.uint8)[0]).tobytes())
    assert entries.tolist() == [0, 1, 2] and distances.tolist() == [1, 1, 31]


def test_bad_lists_and_queries_are_refused() -> None:
    with pytest.raises(ValueError):
        HashIndex.from_bytes(b"\0" * 33)
    index = HashIndex.from_bytes(b"\0" * 64)
    with pytest.raises(ValueError):
        index.query(b"\0" * 31)
    with pytest.raises(ValueError):
        index.query(b"\0" * 32, radius=32)  # beyond what the pigeonhole covers


def test_the_numpy_1_popcount_fallback_counts_as_numpy_2_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from edge_screen import hashindex

    rng = np.random.default_rng(5)
    words = rng.integers(0, 2**63, (500, 4), dtype=np.uint64) * 2 + 1
    want = hashindex.popcount(words)
    monkeypatch.delattr(np, "bitwise_count")
    assert (hashindex.popcount(words) == want).all()
    assert (want == [sum(bin(int(w)).count("1") for w in row) for row in words]).all()
