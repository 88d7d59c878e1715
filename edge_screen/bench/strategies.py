"""Face strategies side by side, in one run on one device: photo throughput, faces found, model
invocations and multiply-accumulates (MACs) per photo, each strategy's throughput as a ratio to
the tiles strategy's.

MACs are counted from the models' graphs at the sizes each invocation ran at
(``edge_screen.macs``): the same figure on every device, so QA can compare strategies on a
board where one of them cannot be timed, and see which figure (MACs, or time on that board)
decides the ARM default (docs/qa.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..face_stage import STRATEGIES
from ..screener import Screener, ScreenerOptions
from .stats import stat, stream_rates


def available(s: Screener) -> list[str]:
    """The strategies this bundle can run."""
    stage = s._extractor.faces
    if stage is None:
        return []
    return [x for x in STRATEGIES if x == "tiles" or stage.dense is not None]


def measure_strategy(opts: ScreenerOptions, paths: Sequence[Path], rounds: int) -> dict[str, Any]:
    """One strategy: per photo faces, invokes and MACs (from ``screen``), then throughput."""
    with Screener(opts) as s:
        models = s._extractor.models()
        invokes = {m.spec.id: m.invocations for m in models}
        macs = sum(m.macs() for m in models)
        reports = [s.screen(p) for p in paths]
        n = len(paths)
        per_image = {m.spec.id: round((m.invocations - invokes[m.spec.id]) / n, 3)
                     for m in models}
        gmacs = (sum(m.macs() for m in models) - macs) / n / 1e9
        stream_rates(s, paths, 1)  # the workers' interpreters warm up too
        rates = stream_rates(s, paths, rounds)
    return {"throughput": stat(rates, "images/s"),
            "faces_per_image": round(sum(len(r.faces) for r in reports) / n, 3),
            "invokes_per_image": per_image, "gmacs_per_image": round(gmacs, 3)}


def measure_strategies(
    s: Screener, paths: Sequence[Path], rounds: int
) -> dict[str, dict[str, Any]]:
    """Every strategy the bundle can run, interleaved round by round so a shared machine's load
    falls on all of them alike; ``ratio_to_tiles`` compares their median throughputs."""
    names = available(s)
    out: dict[str, dict[str, Any]] = {}
    samples: dict[str, list[dict[str, Any]]] = {x: [] for x in names}
    for _ in range(rounds):
        for x in names:
            samples[x].append(measure_strategy(replace(s.options, faces=x), paths, 1))
    for x in names:
        first = samples[x][0]
        rates = [r["throughput"]["median"] for r in samples[x]]
        out[x] = first | {"throughput": stat(rates, "images/s")}
    if "tiles" in out:
        base = out["tiles"]["throughput"]["median"]
        for x in names:
            out[x]["ratio_to_tiles"] = round(out[x]["throughput"]["median"] / base, 3)
    return out
