"""``edge-screen-fw evaluate``: the command line over ``firmware_tools.evaluate.evaluate``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from edge_screen.errors import EdgeScreenError

from . import Evaluation, EvaluationOptions, LocalPool, RayData, evaluate
from .run import Executor
from .screen import Side, parse_variants

DESCRIPTION = """\
Screen a corpus with a candidate bundle (and a baseline), shard by shard, on a local process
pool or on Ray, and write metrics.json, report.md and report.png in --out. Without labels:
agreement between the two (verdict confusion, score deltas, faces found by one side only, the
items that differ most). With --labels: ROC-AUC and precision/recall at the policy's
thresholds, age error by band, calibration of P(minor), for each side. A rerun of the same
command screens only the shards its runs are missing (docs/evaluate.md)."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-screen-fw evaluate", description=DESCRIPTION)
    p.add_argument("--candidate", required=True, metavar="BUNDLE",
                   help="a bundle directory, or 'default' for the shipped bundle")
    p.add_argument("--baseline", metavar="BUNDLE",
                   help="the bundle to compare with (default: the candidate's bundle when "
                   "--baseline-variants is given, else none: accuracy only)")
    p.add_argument("--variants", action="append", metavar="MODEL=VARIANT[,...]",
                   help="the candidate's variant choices (repeatable)")
    p.add_argument("--baseline-variants", action="append", metavar="MODEL=VARIANT[,...]")
    p.add_argument("--corpus", required=True, metavar="SPEC",
                   help="a directory, a list file (one path or URI a line), or a Parquet/CSV "
                   "table with a 'path' or 'uri' column (and optionally 'key')")
    p.add_argument("--labels", metavar="FILE", help="JSONL, JSON, CSV or Parquet, by item key")
    p.add_argument("--out", required=True, type=Path, metavar="DIR")
    p.add_argument("--policy", metavar="FILE", help="the policy both sides decide with")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run on Ray Data: alone, a local instance of --workers CPUs; or an "
                   "address ('auto', 'ray://host:10001')")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes (local) or actors (Ray), one Screener each (default: CPUs)")
    p.add_argument("--shard-size", type=int, default=100, help="items per result shard")
    p.add_argument("--runs", type=Path, metavar="DIR",
                   help="where each side's shards go (default OUT/runs); share one between "
                   "comparisons to screen a common baseline once")
    p.add_argument("--max-shards", type=int, metavar="N",
                   help="screen at most N missing shards per side, then stop (exit 3); a "
                   "rerun goes on")
    p.add_argument("--top", type=int, default=20, help="items listed among those differing most")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def _bundle(text: str | None) -> str | None:
    return None if text in (None, "default") else text


def options(args: argparse.Namespace) -> EvaluationOptions:
    cand = Side(_bundle(args.candidate), parse_variants(args.variants), args.policy)
    baseline = None
    if args.baseline or args.baseline_variants:
        bundle = args.baseline if args.baseline else args.candidate
        baseline = Side(_bundle(bundle), parse_variants(args.baseline_variants), args.policy)
    return EvaluationOptions(cand, args.corpus, args.out, baseline, args.labels,
                             args.shard_size, args.runs, args.max_shards, args.top, args.quiet)


def executor(args: argparse.Namespace) -> Executor:
    if args.workers < 1:
        raise ValueError("--workers must be at least 1")
    if args.ray is None:
        return LocalPool(args.workers)
    return RayData(args.workers, None if args.ray == "local" else args.ray)


def summary(result: Evaluation, out: Path) -> str:
    lines = [f"  {s.side}: {s.items_screened} items screened in {s.seconds:.1f} s "
             f"({s.items_per_s:.2f} items/s, {s.workers} {s.executor} workers), "
             f"{s.shards_reused}/{s.shards} shards reused" for s in result.runs]
    if result.metrics is None:
        return "\n".join(["evaluate: stopped after --max-shards; rerun to finish", *lines])
    agree = result.metrics.get("agreement")
    head = f"evaluate: {out / 'report.md'}"
    if agree:
        head += f" (verdict agreement {agree['verdicts']['agreement']})"
    return "\n".join([head, *lines])


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result = evaluate(options(args), executor(args))
    except (EdgeScreenError, OSError, ValueError) as exc:
        print(f"edge-screen-fw evaluate: error: {exc}", file=sys.stderr)
        return 1
    print(summary(result, args.out))
    return 0 if result.complete else 3


if __name__ == "__main__":
    sys.exit(main())
