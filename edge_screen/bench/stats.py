"""Timing and its summary: every figure in a report is a median with its interquartile range."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..screener import Screener

Stat = dict[str, Any]  # {"median", "q1", "q3", "iqr", "n", "unit"}


def stat(values: Sequence[float], unit: str) -> Stat:
    """Median and interquartile range: robust to the odd preempted sample on a shared machine."""
    q1, med, q3 = (float(v) for v in np.percentile(np.asarray(values, float), [25, 50, 75]))
    r = {"median": med, "q1": q1, "q3": q3, "iqr": q3 - q1}
    return {**{k: round(v, 4) for k, v in r.items()}, "n": len(values), "unit": unit}


def time_ms(fn: Callable[[], object], reps: int, budget_s: float = math.inf) -> list[float]:
    """Wall times of ``fn`` after one warm-up call; stops early past ``budget_s`` (min 3)."""
    fn()
    out: list[float] = []
    end = time.perf_counter() + budget_s
    while len(out) < reps and (len(out) < 3 or time.perf_counter() < end):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


STREAM = 12  # items per screen_many() throughput sample


def stream_rates(s: Screener, paths: Sequence[Path], rounds: int) -> list[float]:
    """Images per second of ``screen_many``, ``rounds`` samples. Steady state: each sample is a
    stream of >= ``STREAM`` items (the set repeated), so the workers' start and drain do not
    weigh on a set of 3 or 5 photos. Every item must screen."""
    stream = list(paths) * -(-STREAM // len(paths))
    rates = []
    for _ in range(rounds):
        t = time.perf_counter()
        done = sum(r.ok for r in s.screen_many(stream))
        rates.append(done / (time.perf_counter() - t))
        if done != len(stream):
            raise RuntimeError(f"{len(stream) - done} of {len(stream)} inputs failed to screen")
    return rates
