"""What hashing and known-content matching cost, side by side in one run: ``screen_many``
throughput of the bench's bundle with ``ScreenerOptions(hashes=False)`` (no PDQ, no matching)
against the same bundle with a 1M-entry PDQ list added (every frame hashed, its 8 orientations
matched). Issue 15 asks the second to stay within 10% of the first."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..screener import Screener
from .stats import stat, stream_rates

ENTRIES = 1_000_000


def random_list(n: int = ENTRIES, seed: int = 15) -> bytes:
    """``n`` random 256-bit entries: a list's size without anyone's content."""
    return np.random.default_rng(seed).integers(0, 256, n * 32, dtype=np.uint8).tobytes()


def listed_bundle(source: Path, root: Path, data: bytes) -> Path:
    """A copy of the bundle at ``source`` with ``data`` (pdq256 entries) as its one hash list.
    The copy is unsigned: open it without trusted keys."""
    shutil.copytree(source, root)
    (root / "bench.pdq256").write_bytes(data)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["hash_lists"] = [{
        "id": "bench", "file": "bench.pdq256", "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data), "count": len(data) // 32, "label": "benchmark list",
    }]
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def measure_hashing(s: Screener, paths: Sequence[Path], rounds: int) -> dict[str, Any] | None:
    """Throughput with hashing off and with a 1M-entry list, interleaved round by round so a
    shared machine's load falls on both alike; None when the bundle has lists of its own (then
    hashing cannot be turned off)."""
    if s.known is not None:
        return None
    with tempfile.TemporaryDirectory(prefix="edge-screen-bench-list-") as tmp:
        bundle = listed_bundle(s.bundle.root, Path(tmp, "bundle"), random_list())
        base = replace(s.options, store=None, trusted_keys=())
        runs: dict[str, list[float]] = {"hashing_off": [], "list_1m": []}
        with Screener(replace(base, hashes=False)) as off, \
                Screener(replace(base, bundle=bundle)) as listed:
            for x in (off, listed):
                stream_rates(x, paths, 1)  # warm-up, both workers' interpreters too
            for _ in range(rounds):
                runs["hashing_off"] += stream_rates(off, paths, 1)
                runs["list_1m"] += stream_rates(listed, paths, 1)
    out: dict[str, Any] = {k: {"throughput": stat(v, "images/s")} for k, v in runs.items()}
    off_rate = out["hashing_off"]["throughput"]["median"]
    out["entries"] = ENTRIES
    out["ratio_to_hashing_off"] = round(out["list_1m"]["throughput"]["median"] / off_rate, 3)
    return out
