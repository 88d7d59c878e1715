"""Cold start and peak RSS, each measured in a fresh interpreter so nothing else is counted: the
parent's ``measure_cold`` starts ``child`` and reads the one JSON line it prints."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..screener import Screener
from .device import read_text
from .options import Plan, forward_args, parser, screener_options
from .stats import stat

# The cold-start child times its own import of edge_screen, so it starts from ``-c``, not ``-m``.
_CHILD = "import sys,time;t=time.perf_counter();import edge_screen.bench as b;b.child(t,sys.argv)"


def _peak_rss_mb() -> float:
    """This process's own peak RSS. Not ``ru_maxrss``: on Linux a child started from a big
    parent inherits the parent's high-water mark through fork/exec, so read ``VmHWM``."""
    status = read_text("/proc/self/status") or ""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource  # not on Linux: the best there is, in KiB (bytes on macOS)

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(rss / (1 << 20) if sys.platform == "darwin" else rss / 1024)


def child(t0: float, argv: Sequence[str]) -> None:
    """In a fresh process: import + load time, cold first call, then peak RSS over N photos."""
    args = parser().parse_args(argv[1:])  # argv[0] is "-c"
    t_import = time.perf_counter() - t0
    t = time.perf_counter()
    s = Screener(screener_options(args))
    t_load = time.perf_counter() - t
    paths = sorted(Path(args.child_dir).iterdir())
    t = time.perf_counter()
    assert s.screen(paths[0]).ok
    cold_ms = (time.perf_counter() - t) * 1e3
    n = sum(r.ok for r in s.screen_many(paths[i % len(paths)] for i in range(args.child_count)))
    assert n == args.child_count
    rss_mb = _peak_rss_mb()
    print(json.dumps({"import_s": t_import, "model_load_s": t_load, "import_and_load_s":
                      t_import + t_load, "cold_first_call_ms": cold_ms, "peak_rss_mb": rss_mb}))


def measure_cold(args: argparse.Namespace, folder: Path, plan: Plan) -> dict[str, Any]:
    """Cold start and peak RSS, each run in a new interpreter so nothing else is counted."""
    argv = ["--child-dir", str(folder), "--child-count", str(plan.rss_images), *forward_args(args)]
    env = dict(os.environ)
    pkg_parent = str(Path(__file__).resolve().parents[2])  # holds edge_screen/
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent, *filter(None, [env.get("PYTHONPATH")])])
    runs = []
    for _ in range(plan.cold_runs):
        proc = subprocess.run([sys.executable, "-c", _CHILD, *argv], capture_output=True,
                              text=True, env=env, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"cold-start run failed: {proc.stderr.strip()[-2000:]}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    units = {"import_s": "s", "model_load_s": "s", "import_and_load_s": "s",
             "cold_first_call_ms": "ms", "peak_rss_mb": "MB"}
    return {"rss_images": plan.rss_images} | {k: stat([r[k] for r in runs], u)
                                               for k, u in units.items()}
