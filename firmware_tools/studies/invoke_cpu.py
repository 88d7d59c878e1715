"""CPU time of one invoke of TFLite files at several input sizes, 1 thread, interleaved.

For a fully convolutional model whose input the runtime resizes (CenterFace): each file's
interpreter is resized to each size, then all are invoked in turns for ``--rounds`` rounds, so a
shared machine's load falls on all of them alike. CPU time of the invoking thread
(``time.thread_time``), median over rounds, and wall time beside it::

    python -m firmware_tools.studies.invoke_cpu [--rounds N] [--size WxH ...] FILE.tflite...
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np


def _interpreter(path: Path, height: int, width: int) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    index = interp.get_input_details()[0]["index"]
    interp.resize_tensor_input(index, [1, height, width, 3])
    interp.allocate_tensors()
    pixels = np.random.default_rng(0).uniform(0, 255, (1, height, width, 3))
    interp.set_tensor(index, pixels.astype(np.float32))
    interp.invoke()  # warm-up
    return interp


def measure(files: list[Path], sizes: list[tuple[int, int]], rounds: int
            ) -> dict[tuple[str, str], tuple[float, float]]:
    """(file name, WxH) -> (median CPU ms, median wall ms) of one invoke."""
    interps = {(f.name, f"{w}x{h}"): _interpreter(f, h, w) for f in files for w, h in sizes}
    cpu: dict[tuple[str, str], list[float]] = {k: [] for k in interps}
    wall: dict[tuple[str, str], list[float]] = {k: [] for k in interps}
    for _ in range(rounds):
        for key, interp in interps.items():
            c, t = time.thread_time(), time.perf_counter()
            interp.invoke()
            cpu[key].append((time.thread_time() - c) * 1e3)
            wall[key].append((time.perf_counter() - t) * 1e3)
    return {k: (statistics.median(cpu[k]), statistics.median(wall[k])) for k in interps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--size", action="append", metavar="WxH",
                    help="input sizes (default: 1024x768 and 896x672)")
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.size or ["1024x768", "896x672"]]
    print(f"load average at start: {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
    for (name, size), (c, w) in measure(args.files, sizes, args.rounds).items():  # type: ignore[arg-type]
        print(f"{name:32s} {size:>9}  cpu {c:6.1f} ms  wall {w:6.1f} ms")


if __name__ == "__main__":
    main()
