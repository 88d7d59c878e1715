"""What the workers' shared CenterFace interpreter costs ``screen_many``: time spent waiting.

With ``workers`` > 1 every worker has its own interpreters but one CenterFace (its arena is
~130 MB at 1024x768), under a lock (``models.ModelSet._shared_dense``), run with all the
screener's threads. This screens the bench's generated 12 MP photos with ``screen_many`` and
times, per photo, the wall time workers wait for that lock and hold it, with the shared
interpreter at each of ``--dense-threads`` (default: 2, as shipped, and 1), in interleaved
rounds; throughput and the process's peak RSS beside them::

    python -m firmware_tools.studies.dense_lock [--rounds N] [--workers W] [--dense-threads T ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from edge_screen import Screener, ScreenerOptions
from edge_screen.bench.inputs import make_inputs
from edge_screen.infer import Model
from edge_screen.manifest import CenterFaceOutput
from edge_screen.models import ModelSet

DEFAULT_BUNDLE = Path(__file__).resolve().parents[2] / "models" / "default"
STREAM = 40  # photos per sample: the five repeated


class TimedLock:
    """A lock that adds up the wall time spent waiting for it and holding it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.wait_s = self.hold_s = 0.0
        self.passes = 0
        self._since = 0.0

    def __enter__(self) -> TimedLock:
        t = time.perf_counter()
        self._lock.acquire()
        self._since = time.perf_counter()
        self.wait_s += self._since - t
        self.passes += 1
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.hold_s += time.perf_counter() - self._since
        self._lock.release()


def _screener(bundle: Path, workers: int, dense_threads: int) -> tuple[Screener, TimedLock]:
    """A screener whose shared CenterFace runs ``dense_threads`` threads under a ``TimedLock``."""
    lock = TimedLock()
    original = ModelSet._shared_dense

    def shared(ms: ModelSet) -> list[Model]:
        ms._dense_lock = lock  # type: ignore[assignment]  # the workers made later take it
        if ms._dense is None:
            ms._dense = [Model(spec, v, content, ms._backend, dense_threads)
                         for spec, v, content in ms._chosen
                         if isinstance(spec.output, CenterFaceOutput)]
        return ms._dense

    setattr(ModelSet, "_shared_dense", shared)  # noqa: B010 (mypy: a method)
    try:
        s = Screener(ScreenerOptions(workers=workers, threads=2, bundle=bundle))
    finally:
        setattr(ModelSet, "_shared_dense", original)  # noqa: B010
    worker = s._worker_made
    if worker is not None and worker.extractor.faces is not None:
        worker.extractor.faces.dense_lock = lock
    return s, lock


def run(bundle: Path, rounds: int, workers: int, dense_threads: list[int]) -> dict[str, Any]:
    out: dict[str, dict[str, list[float]]] = {
        str(t): {"images_per_s": [], "wait_ms_per_photo": [], "hold_ms_per_photo": []}
        for t in dense_threads}
    with tempfile.TemporaryDirectory(prefix="dense-lock-") as tmp:
        paths = []
        for name, data in make_inputs(5, 12.0):
            paths.append(Path(tmp, name))
            paths[-1].write_bytes(data)
        stream = paths * (STREAM // len(paths))
        made = {t: _screener(bundle, workers, t) for t in dense_threads}
        try:
            for s, _ in made.values():  # warm-up: every worker's interpreters made
                list(s.screen_many(paths * 2))
            for _ in range(rounds):
                for t, (s, lock) in made.items():
                    lock.wait_s = lock.hold_s = 0.0
                    start = time.perf_counter()
                    done = sum(r.ok for r in s.screen_many(stream))
                    wall = time.perf_counter() - start
                    assert done == len(stream)
                    row = out[str(t)]
                    row["images_per_s"].append(done / wall)
                    row["wait_ms_per_photo"].append(lock.wait_s * 1e3 / done)
                    row["hold_ms_per_photo"].append(lock.hold_s * 1e3 / done)
        finally:
            for s, _ in made.values():
                s.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"dense_threads": {t: {k: round(statistics.median(v), 2) for k, v in row.items()}
                              for t, row in out.items()},
            "workers": workers, "rounds": rounds, "photos_per_sample": len(paths) * (
                STREAM // len(paths)), "peak_rss_mb_all_screeners": round(peak_mb),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m firmware_tools.studies.dense_lock",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dense-threads", type=int, nargs="+", default=[2, 1])
    args = ap.parse_args(argv)
    print(f"load average at start: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}",
          file=sys.stderr)
    print(json.dumps(run(args.bundle, args.rounds, args.workers, args.dense_threads), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
