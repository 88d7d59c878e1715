"""The soak's items screened with memory and threads read per process, to find where a creep
lives (docs/soak.md): every ``--every`` items, for this process and each worker process, RSS,
address space (``VmSize``), its peak (``VmPeak``) and thread count from /proc (Linux); a report
whose error code is not its item's is printed at once::

    python3 benchmarks/soak_processes.py 1250 --isolation     # screen_many, worker processes
    python3 benchmarks/soak_processes.py 500                   # screen() item by item, in-process
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from edge_screen import Screener

_spec = importlib.util.spec_from_file_location(
    "edge_screen_soak", Path(__file__).parent.parent / "tests" / "test_soak.py")
assert _spec is not None and _spec.loader is not None
soak = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = soak
_spec.loader.exec_module(soak)


def status(pid: int) -> dict[str, int]:
    """MB of RSS, VmSize and VmPeak, and the thread count, of one process."""
    out = {"threads": len(os.listdir(f"/proc/{pid}/task"))}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "VmSize", "VmPeak"):
            out[key] = int(line.split()[1]) // 1024
    return out


def children() -> list[int]:
    me, kids = str(os.getpid()), []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me:
                kids.append(int(entry.name))
    return kids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("items", type=int)
    ap.add_argument("--isolation", action="store_true")
    ap.add_argument("--every", type=int, default=250)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="edge-screen-soak-") as tmp:
        items = soak.lay_out(Path(tmp), args.items)
        options = {"isolation": "process"} if args.isolation else {"threads": 1, "workers": 1}
        with Screener(**options) as s:
            paths = [p for p, _ in items]
            reports = s.screen_many(paths) if args.isolation else map(s.screen, paths)
            for i, report in enumerate(reports, 1):
                path, t = items[i - 1]
                code = None if report.error is None else report.error.code
                if code != t.error:
                    print("WRONG", i, Path(path).name, code, report.error, flush=True)
                if i % args.every == 0:
                    procs = {pid: status(pid) for pid in [os.getpid(), *children()]}
                    print(i, procs, flush=True)


if __name__ == "__main__":  # spawned workers import this module again
    main()
