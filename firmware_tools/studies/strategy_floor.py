"""How fast the ``centerface`` face strategy could ever be against ``tiles``, on one core.

A photo's CPU time is its face stage plus everything else (decode, hashes, classifiers, ages),
which both strategies share. The ``centerface`` strategy cannot cost less than that shared part
plus one CenterFace invoke, even with free preprocessing and no BlazeFace pass at all, so

    shared = CPU(tiles photo) - CPU(tiles face stage)
    best ratio = CPU(tiles photo) / (shared + CPU(CenterFace invoke))

bounds the throughput ratio any pipeline can reach on this machine with this model at that
input size. Everything runs on one thread, one worker, in interleaved rounds (CPU time of this
process, so a shared machine's load moves it less than wall time), on the bench's generated
12 MP photos::

    python -m firmware_tools.studies.strategy_floor [--bundle DIR] [--rounds N] [WxH ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edge_screen import Screener, ScreenerOptions
from edge_screen.bench.inputs import make_inputs
from edge_screen.decode import decode_image
from edge_screen.probe import probe

DEFAULT_BUNDLE = Path(__file__).resolve().parents[2] / "models" / "default"


def _cpu_ms(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return (time.process_time() - start) * 1e3


def run(bundle: Path, budgets: list[tuple[int, int]], rounds: int) -> dict[str, Any]:
    def options(faces: str) -> ScreenerOptions:
        return ScreenerOptions(faces=faces, threads=1, workers=1, bundle=bundle)

    inputs = make_inputs(5, 12.0)
    with tempfile.TemporaryDirectory(prefix="strategy-floor-") as tmp, \
            Screener(options("tiles")) as tiles, \
            Screener(options("centerface")) as dense:
        paths = []
        for name, data in inputs:
            paths.append(Path(tmp, name))
            paths[-1].write_bytes(data)
        limits, side = tiles.options.image_limits, tiles.options.working_min_side
        working = [decode_image(d, probe(d[:64]), limits, side).rgb for _, d in inputs]
        stage, dense_stage = tiles._extractor.faces, dense._extractor.faces
        assert stage is not None and dense_stage is not None and dense_stage.dense is not None
        model = dense_stage.dense
        samples: dict[str, list[float]] = {"tiles photo": [], "centerface photo": [],
                                           "tiles face stage": []}
        samples |= {f"centerface invoke {w}x{h}": [] for w, h in budgets}
        for p in paths:  # warm-up
            tiles.screen(p), dense.screen(p)
        for _ in range(rounds):
            for p, rgb in zip(paths, working, strict=True):
                samples["tiles photo"].append(_cpu_ms(partial(tiles.screen, p)))
                samples["centerface photo"].append(_cpu_ms(partial(dense.screen, p)))
                samples["tiles face stage"].append(_cpu_ms(partial(stage.detect, rgb, None)))
            for w, h in budgets:
                model.fit(h, w)
                model.run_pixels(np.zeros((h, w, 3), np.uint8))  # input filled once
                samples[f"centerface invoke {w}x{h}"] += [
                    _cpu_ms(model._interp.invoke) for _ in paths]  # the invoke alone
    med = {k: round(statistics.median(v), 1) for k, v in samples.items()}
    shared = med["tiles photo"] - med["tiles face stage"]
    best = {f"{w}x{h}": round(med["tiles photo"] / (shared + med[f"centerface invoke {w}x{h}"]), 3)
            for w, h in budgets}
    return {"cpu_ms_median": med, "shared_ms": round(shared, 1),
            "measured_ratio": round(med["tiles photo"] / med["centerface photo"], 3),
            "best_possible_ratio": best, "rounds": rounds, "photos": len(inputs)}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m firmware_tools.studies.strategy_floor",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("budgets", nargs="*", default=["1024x768", "896x672", "768x576"])
    args = ap.parse_args(argv)
    budgets = [(int(w), int(h)) for w, h in (b.split("x") for b in args.budgets)]
    print(json.dumps(run(args.bundle, budgets, args.rounds), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
