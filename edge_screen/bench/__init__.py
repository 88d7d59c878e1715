"""``edge-screen bench``: a device report QA can compare across devices, versions and bundles.

It needs only the installed package and a bundle: inputs are phone-like JPEGs made in code. It
measures each stage apart (decode, preprocess, invoke on a preallocated input: the limit), the
pipeline end to end, cold start and peak RSS in a fresh process (so nothing else inflates them),
and the reference peers on the same images when they are installed.

The modules follow the data flow: ``options`` (command line, plan), ``inputs`` (the photos),
``device`` (where it ran), ``stages`` and ``measure`` (each stage, then end to end and the whole
report), ``cold`` (fresh processes), ``peers``, ``report`` (the table), ``compare`` (a baseline);
``stats`` holds the median-and-IQR summary they all use.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..errors import EdgeScreenError
from .cold import child, measure_cold
from .compare import comparability, compare
from .device import device_info
from .inputs import LAYOUTS, make_inputs
from .measure import SCHEMA, TARGETS, measure, measure_end_to_end
from .options import QUICK, Plan, parser
from .peers import PEERS, measure_peers
from .report import table
from .stages import (
    Box,
    InvokeOnly,
    face_box,
    full_decode,
    measure_stages,
    model_input,
    working_decode,
)
from .stats import Stat, stat, time_ms

__all__ = [
    "LAYOUTS",
    "PEERS",
    "QUICK",
    "SCHEMA",
    "TARGETS",
    "Box",
    "InvokeOnly",
    "Plan",
    "Stat",
    "child",
    "comparability",
    "compare",
    "device_info",
    "face_box",
    "full_decode",
    "make_inputs",
    "measure",
    "measure_cold",
    "measure_end_to_end",
    "measure_peers",
    "measure_stages",
    "model_input",
    "run",
    "stat",
    "table",
    "time_ms",
    "working_decode",
]


def run(argv: Sequence[str]) -> int:
    """``edge-screen bench``: 0 done, 1 a measurement failed, 2 usage or bundle error,
    3 regressions under --compare."""
    args = parser().parse_args(argv)
    counts = (args.threads, args.workers)
    if any(n is not None and n < 1 for n in counts) or any("=" not in v for v in args.variant):
        print("edge-screen bench: --threads and --workers must be >= 1, --variant MODEL=VARIANT",
              file=sys.stderr)
        return 2
    plan = QUICK if args.quick else Plan()
    plan = replace(plan, images=args.images or plan.images,
                   megapixels=args.megapixels or plan.megapixels)
    baseline = None
    try:
        if args.compare:
            baseline = json.loads(Path(args.compare).read_text())
        report = measure(args, plan)
    except (EdgeScreenError, OSError, ValueError) as exc:
        print(f"edge-screen bench: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, AssertionError) as exc:  # a stage gave a wrong answer: not a number
        print(f"edge-screen bench: measurement failed: {exc!r}", file=sys.stderr)
        return 1
    print(table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    if baseline is None:
        return 0
    rows = compare(baseline, report, args.threshold)
    print(f"\ncompared with {args.compare}:")
    for note in comparability(baseline, report):
        print(f"  caution: {note}")
    flagged = [r for r in rows if r["verdict"] != "same"]
    for r in flagged:
        verdict = r["verdict"] + ("" if r["conclusive"] else "?")
        print(f"  {verdict:<12} {r['metric']:<44} {r['baseline']:>9.2f} -> "
              f"{r['current']:>9.2f} {r['unit']} ({r['change']:+.0%})")
    print(f"  {len(rows) - len(flagged)} of {len(rows)} measurements within noise"
          + ("; '?': fewer than 3 samples, not counted" if any(
              not r["conclusive"] for r in flagged) else ""))
    return 3 if any(r["verdict"] == "regression" and r["conclusive"] for r in rows) else 0
