"""An exact Hamming-radius index over 256-bit PDQ hashes: multi-index hashing in numpy.

The 256 bits are cut into 16 chunks of 16 bits (the hash's 16 big-endian words). Two hashes
within distance ``d`` differ in ``d`` bits spread over the 16 chunks, so by pigeonhole some chunk
differs in at most ``d // 16`` bits: for ``d <= 31``, in at most one. A query therefore probes, in
each chunk's table, the bucket of its own chunk value and the 16 buckets one bit away (16 x 17 =
272 buckets), and checks the candidates found with XOR and popcount. Nothing within the radius
is missed (tests/test_hashindex.py checks it against brute force over the whole list).

Memory per entry: the 32-byte hash and a 4-byte position per chunk (64 bytes), plus 16 bucket
tables of 65,537 offsets (8 MB) whatever the list's size: for 1M entries, 32 MB of hashes and
72 MB of index, 104 MB in all (``benchmarks/test_hashlist.py``). 32 chunks of 8 bits would need
no neighbour probes, but each bucket would then hold 1/256 of the list: ~125,000 candidates a
query on 1M entries, against ~4,000 here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

HASH_BYTES = 32
CHUNKS = 16  # of 16 bits each
MAX_RADIUS = 2 * CHUNKS - 1  # 31: some chunk is then within one bit; Meta's match threshold
_BUCKETS = 1 << 16
# A chunk value's own bucket and the 16 one bit away.
_FLIPS = np.array([0, *(1 << b for b in range(16))], dtype=np.intp)


class HashIndex:
    """Entries (N x 32 bytes, PDQ's printed byte order) and, per chunk, their positions sorted
    by that chunk's value with the offset of each value's bucket."""

    def __init__(self, hashes: NDArray[np.uint8]) -> None:
        if hashes.ndim != 2 or hashes.shape[1] != HASH_BYTES or hashes.dtype != np.uint8:
            raise ValueError(f"expected N x {HASH_BYTES} uint8 hashes, got {hashes.shape} "
                             f"{hashes.dtype}")
        if len(hashes) >= 1 << 32:
            raise ValueError("more than 2**32 - 1 entries")
        self.hashes = np.ascontiguousarray(hashes)
        self._u64 = self.hashes.view(np.uint64)  # N x 4, for XOR and popcount
        n = len(self.hashes)
        words = self.hashes.view(">u2")  # N x 16: the chunks
        self._order = np.empty((CHUNKS, n), np.uint32)
        self._offsets = np.zeros((CHUNKS, _BUCKETS + 1), np.int64)
        for k in range(CHUNKS):
            values = words[:, k].astype(np.uint16)
            self._order[k] = np.argsort(values, kind="stable")
            np.cumsum(np.bincount(values, minlength=_BUCKETS), out=self._offsets[k, 1:])
        self._flat = self._order.reshape(-1)

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def nbytes(self) -> int:
        """Memory held: the hashes and the index."""
        return self.hashes.nbytes + self._order.nbytes + self._offsets.nbytes

    @classmethod
    def from_bytes(cls, data: bytes) -> HashIndex:
        """From concatenated 32-byte hashes (the bytes are not copied for the hashes)."""
        if len(data) % HASH_BYTES:
            raise ValueError(f"{len(data)} bytes is not a whole number of {HASH_BYTES}-byte "
                             "hashes")
        return cls(np.frombuffer(data, np.uint8).reshape(-1, HASH_BYTES))

    def query(self, query: bytes, radius: int = MAX_RADIUS
              ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Every entry within ``radius`` bits of the 32-byte ``query``: (entries, distances),
        sorted by entry."""
        return self.query_many([query], radius)[0]

    def query_many(self, queries: Sequence[bytes], radius: int = MAX_RADIUS
                   ) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
        """``query`` for each of ``queries`` (a photo's 8 orientations) in one pass over the
        tables: the per-call cost of numpy is paid once, not once per query."""
        if not 0 <= radius <= MAX_RADIUS:
            raise ValueError(f"radius {radius} is outside 0-{MAX_RADIUS}")
        if not queries or any(len(q) != HASH_BYTES for q in queries):
            raise ValueError(f"queries are {HASH_BYTES} bytes each, at least one")
        qs = np.frombuffer(b"".join(queries), ">u2").reshape(len(queries), CHUNKS)
        # Per query, chunk and flip: the bucket's row in the flattened offset table.
        rows = np.arange(CHUNKS)[:, None] * (_BUCKETS + 1)
        buckets = (qs.astype(np.intp)[:, :, None] ^ _FLIPS) + rows
        offsets = self._offsets.reshape(-1)
        starts = offsets[buckets].ravel()
        sizes = offsets[buckets + 1].ravel() - starts
        total = int(sizes.sum())
        # Positions in the flat order table: each bucket's run, chunk k's row starting at k*N.
        per_query = len(_FLIPS) * CHUNKS
        starts += np.tile(np.repeat(np.arange(CHUNKS, dtype=np.int64) * len(self), len(_FLIPS)),
                          len(queries))
        ends = np.cumsum(sizes)
        positions = np.repeat(starts - (ends - sizes), sizes) + np.arange(total)
        # Candidates are checked with their duplicates (an entry near in several chunks):
        # cheaper than de-duplicating thousands of them; only the hits are de-duplicated.
        candidates = self._flat[positions].astype(np.int64)
        owner = np.repeat(np.arange(len(queries)), sizes.reshape(len(queries), per_query).sum(1))
        q64 = np.frombuffer(b"".join(queries), np.uint64).reshape(len(queries), 4)
        distances = popcount(self._u64[candidates] ^ q64[owner])
        keep = distances <= radius
        hits, hit_owner, hit_dist = candidates[keep], owner[keep], distances[keep]
        out = []
        for i in range(len(queries)):
            mine = hit_owner == i
            entries, first = np.unique(hits[mine], return_index=True)
            out.append((entries, hit_dist[mine][first]))
        return out

    def brute_force(self, query: bytes, radius: int = MAX_RADIUS
                    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """``query`` by comparing every entry: the reference the index is tested against."""
        return _within(self._u64, query, radius, np.arange(len(self), dtype=np.int64))


_BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def popcount(words: NDArray[np.uint64]) -> NDArray[np.int64]:
    """Set bits per row of an N x 4 uint64 array: numpy's own popcount where it has one (2.0),
    a byte table on numpy 1.x (the tflite-runtime backend needs numpy < 2)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words).sum(axis=1, dtype=np.int64)  # type: ignore[no-any-return]
    as_bytes = np.ascontiguousarray(words).view(np.uint8).reshape(len(words), -1)
    return _BYTE_BITS[as_bytes].sum(axis=1, dtype=np.int64)  # type: ignore[no-any-return]


def _within(rows: NDArray[np.uint64], query: bytes, radius: int, ids: NDArray[np.int64]
            ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    q = np.frombuffer(query, np.uint64)
    distances = popcount(rows ^ q)
    keep = distances <= radius
    return ids[keep], distances[keep]
