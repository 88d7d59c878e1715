"""Photo throughput of the face strategies at several CenterFace pixel budgets, in one run.

Each budget is a copy of the bundle with ``input.budgets`` set for this machine; every setting
and the tiles strategy are measured in turns (``edge_screen.bench.strategies.measure_strategy``
on the bench's generated 12 MP photos), so a shared machine's load falls on all of them alike::

    python -m firmware_tools.studies.face_budgets --bundle DIR [--rounds N] WxH...
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from edge_screen import ScreenerOptions
from edge_screen.bench.inputs import make_inputs
from edge_screen.bench.strategies import measure_strategy


def run(bundle: Path, budgets: list[tuple[int, int]], rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="face-budgets-") as tmp:
        options = {"tiles": ScreenerOptions(bundle=bundle, faces="tiles")}
        for w, h in budgets:
            copy = Path(tmp, f"{w}x{h}")
            shutil.copytree(bundle, copy)
            manifest = json.loads((copy / "manifest.json").read_text())
            dense = next(m for m in manifest["models"]
                         if m["output"].get("decoder") == "centerface")
            dense["input"]["budgets"] = {platform.machine(): [h, w]}
            (copy / "manifest.json").write_text(json.dumps(manifest))
            options[f"centerface {w}x{h}"] = ScreenerOptions(bundle=copy, faces="centerface")
        paths = []
        for name, data in make_inputs(5, 12.0):
            paths.append(Path(tmp, name))
            paths[-1].write_bytes(data)
        rates: dict[str, list[float]] = {k: [] for k in options}
        last: dict[str, dict[str, Any]] = {}
        for _ in range(rounds):
            for k, o in options.items():
                last[k] = measure_strategy(o, paths, 2)
                rates[k].append(last[k]["throughput"]["median"])
    base = statistics.median(rates["tiles"])
    return {k: {"images_per_s": round(statistics.median(v), 2),
                "ratio_to_tiles": round(statistics.median(v) / base, 2),
                "gmacs_per_image": last[k]["gmacs_per_image"]} for k, v in rates.items()}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m firmware_tools.studies.face_budgets",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("budgets", nargs="+", metavar="WxH")
    args = ap.parse_args(argv)
    budgets = [(int(b.split("x")[0]), int(b.split("x")[1])) for b in args.budgets]
    for k, v in run(args.bundle, budgets, args.rounds).items():
        print(f"{k:22} {v['images_per_s']:6.2f} images/s  {v['ratio_to_tiles']:.2f}x tiles  "
              f"{v['gmacs_per_image']} GMACs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
