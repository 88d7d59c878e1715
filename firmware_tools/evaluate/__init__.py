"""``edge-screen-fw evaluate``: a candidate bundle against a baseline on a corpus, one machine
or a Ray cluster (issue 17; docs/evaluate.md).

One module per stage: ``corpus`` (which items, in which shards), ``screen`` (a side and the
batch screener), ``run`` (local process pool or Ray Data), ``shards`` (Parquet shards and the
record that makes reruns resume), ``metrics`` / ``stats`` (agreement, accuracy against
``labels``), ``report`` / ``figure`` (JSON, Markdown, PNG), ``progress``; ``cli`` the command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_screen import Screener
from edge_screen.policy import Policy

from . import corpus as corpus_mod
from . import labels as labels_mod
from . import metrics as metrics_mod
from . import report
from .errors import EvaluationError
from .run import Executor, LocalPool, RayData, RunStats, screen_side
from .screen import Side, run_key

__all__ = ["Evaluation", "EvaluationError", "EvaluationOptions", "LocalPool", "RayData",
           "RunStats", "Side", "evaluate"]


@dataclass(frozen=True)
class EvaluationOptions:
    """What to compare on which corpus, and where the results go."""

    candidate: Side
    corpus: str
    out: Path
    baseline: Side | None = None
    labels: str | None = None
    shard_size: int = 100
    runs: Path | None = None  # the sides' shards; default OUT/runs (share it to reuse a side)
    max_shards: int | None = None  # screen at most this many missing shards per side, then stop
    top: int = metrics_mod.TOP_DIFFERENCES
    quiet: bool = False


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, Any] | None  # None when a side stopped early (max_shards)
    runs: tuple[RunStats, ...] = field(default_factory=tuple)

    @property
    def complete(self) -> bool:
        return self.metrics is not None


def evaluate(opts: EvaluationOptions, executor: Executor) -> Evaluation:
    """Screen what is missing of each side, then (once both are complete) compute the metrics
    and write ``metrics.json``, ``report.md``, ``report.png`` and ``run.json`` in ``out``."""
    if opts.shard_size < 1:
        raise EvaluationError("--shard-size must be at least 1")
    items = corpus_mod.load(opts.corpus)
    labels = labels_mod.load(opts.labels) if opts.labels else None
    runs_dir = opts.runs or opts.out / "runs"
    sides = {"candidate": opts.candidate, **({"baseline": opts.baseline} if opts.baseline
                                             else {})}
    described, stats, tables = {}, [], {}
    for label, side in sides.items():
        with Screener(side.options()) as s:  # a bad bundle or variant fails here, not per worker
            described[label] = side.describe(s)
            policy = s.policy
        store, st = screen_side(label, side, described[label], items,
                                runs_dir / run_key(described[label]), opts.shard_size, executor,
                                opts.max_shards, opts.quiet)
        stats.append(st)
        if st.complete:
            tables[label] = metrics_mod.SideResults.from_table(
                store.read(list(range(st.shards))))
    if len(tables) < len(sides):
        return Evaluation(None, tuple(stats))
    metrics = compute(items, described, tables, labels, policy, opts.top)
    report.write(metrics, _run_record(stats), opts.out)
    return Evaluation(metrics, tuple(stats))


def compute(items: corpus_mod.Corpus, described: dict[str, Any],
            tables: dict[str, metrics_mod.SideResults], labels: dict[str, Any] | None,
            policy: Policy, top: int) -> dict[str, Any]:
    cand = tables["candidate"]
    m: dict[str, Any] = {
        "schema": report.SCHEMA,
        "corpus": {"spec": items.spec, "items": len(items)},
        "sides": described,
        "thresholds": metrics_mod.policy_thresholds(policy),
        "overview": {k: t.overview() for k, t in tables.items()},
    }
    if "baseline" in tables:
        m["agreement"] = {**metrics_mod.agreement(cand, tables["baseline"], top),
                          "face_iou": metrics_mod.FACE_IOU}
    if labels is not None:
        known = set(cand.keys)
        m["labels"] = {"records": len(labels), "matched": sum(k in known for k in labels)}
        m["accuracy"] = {k: metrics_mod.accuracy(t, labels, policy) for k, t in tables.items()}
    return m


def _run_record(stats: list[RunStats]) -> dict[str, Any]:
    return {"runs": [{**st.__dict__, "items_per_s": round(st.items_per_s, 3)} for st in stats]}
