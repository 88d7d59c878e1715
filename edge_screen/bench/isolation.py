"""What process isolation costs on this device: the same photos screened in this process and in
worker processes (``ScreenerOptions(isolation="process")``), interleaved round by round so a
shared machine's load falls on both alike; the workers' start, their peak memory and address
space (what ``memory_limit_mb`` must leave room for)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..screener import Screener
from .device import read_text
from .stats import stat, stream_rates

MODES = ("none", "process")
# An input refused from its first bytes: its screen() is the round trip alone, no decode or
# model, so the two modes' difference is isolation's own per-item cost without their noise.
NOT_MEDIA = b"edge-screen bench: not a picture" * 4
ROUND_TRIPS = 20


def _status_mb(pid: int, key: str) -> float | None:
    for line in (read_text(f"/proc/{pid}/status") or "").splitlines():
        if line.startswith(f"{key}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None  # not Linux


def measure_isolation(s: Screener, paths: Sequence[Path], rounds: int) -> dict[str, Any]:
    """``screen_many`` throughput and ``screen`` latency in both modes, their ratio and
    difference, and the round trip of an input refused at once (isolation's own per-item
    cost), with ``s``'s options otherwise."""
    t = time.perf_counter()
    with Screener(replace(s.options, isolation="process")) as iso:
        start_s = time.perf_counter() - t
        if not all(r.ok for r in iso.screen_many(paths)):  # warm-up, as ``s`` had
            raise RuntimeError("a generated input failed to screen in a worker process")
        rates: dict[str, list[float]] = {m: [] for m in MODES}
        latency: dict[str, list[float]] = {m: [] for m in MODES}
        trip: dict[str, list[float]] = {m: [] for m in MODES}
        for _ in range(rounds):
            for mode, screener in zip(MODES, (s, iso), strict=True):
                rates[mode] += stream_rates(screener, paths, 1)
                for p in paths:
                    t = time.perf_counter()
                    if not screener.screen(p).ok:
                        raise RuntimeError(f"{p} failed to screen ({mode})")
                    latency[mode].append((time.perf_counter() - t) * 1e3)
                for _ in range(ROUND_TRIPS):
                    t = time.perf_counter()
                    r = screener.screen(NOT_MEDIA)
                    trip[mode].append((time.perf_counter() - t) * 1e3)
                    if r.error is None or r.error.code != "unsupported":
                        raise RuntimeError(f"the round-trip input was not refused ({mode})")
        pids = iso._worker_pids
        workers = [{"peak_rss_mb": _status_mb(p, "VmHWM"), "peak_vm_mb": _status_mb(p, "VmPeak")}
                   for p in pids]
    out: dict[str, Any] = {
        "workers": len(pids),
        "worker_start_s": round(start_s, 3),
        "throughput": {m: stat(rates[m], "images/s") for m in MODES},
        "latency_ms": {m: stat(latency[m], "ms") for m in MODES},
        "round_trip_ms": {m: stat(trip[m], "ms") for m in MODES},
        "worker_memory": workers,
    }
    rate, ms = out["throughput"], out["latency_ms"]
    out["throughput_ratio"] = round(rate["process"]["median"] / rate["none"]["median"], 3)
    out["latency_overhead_ms"] = round(ms["process"]["median"] - ms["none"]["median"], 2)
    trips = out["round_trip_ms"]
    out["round_trip_overhead_ms"] = round(
        trips["process"]["median"] - trips["none"]["median"], 3)
    return out
