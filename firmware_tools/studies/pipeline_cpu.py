"""Where the CPU of a screened photo and of a screened clip frame goes, stage by stage.

One worker, one thread per interpreter, the bench's generated 12 MP photos and its 60 s 1080p
clip (a keyframe a second). The pipeline's own functions are wrapped for the run (nothing in
``edge_screen`` changes) and each stage is charged the CPU time of the thread it ran on
(``time.thread_time``) minus the stages it called, so the stages add up; ``other`` is what no
stage claims (Python glue, report, policy). A clip's ``decode`` is the process CPU of decoding
its sampled frames alone (FFmpeg's own threads included), taken out of ``other``. Photos and
the clip are screened in turns, round after round, so a shared machine's load falls on both
alike::

    python -m firmware_tools.studies.pipeline_cpu [--rounds N] [--seconds S] [--cprofile N]

``decode`` and the ``invoke`` rows are what the bench's CPU bound counts; everything else (PDQ
too) is the overhead the bound does not have.
``--cprofile N`` also prints the N functions with the most own time over the photos.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from edge_screen import (
    Screener,
    ScreenerOptions,
    centerface,
    face_stage,
    faces,
    hashes,
    prepare,
    preprocess,
)
from edge_screen.bench.clip import ClipSpec, make_clip
from edge_screen.bench.inputs import make_inputs
from edge_screen.bench.video import decode_only_s
from edge_screen.decode import Detail
from edge_screen.infer import Model
from edge_screen.landmarks import ShapePredictor
from edge_screen.video import VideoClip

DEFAULT_BUNDLE = Path(__file__).resolve().parents[2] / "models" / "default"


class Meter:
    """Exclusive CPU ms per stage label, per thread: a stage's callees are charged to theirs."""

    def __init__(self) -> None:
        self.ms: defaultdict[str, float] = defaultdict(float)
        self._local = threading.local()

    @contextmanager
    def stage(self, label: str) -> Iterator[None]:
        stack: list[float] = self._local.__dict__.setdefault("stack", [])
        stack.append(0.0)  # CPU of the callees measured inside this stage
        t = time.thread_time()
        try:
            yield
        finally:
            spent = (time.thread_time() - t) * 1e3
            inner = stack.pop()
            self.ms[label] += spent - inner
            if stack:
                stack[-1] += spent

    def wrap(self, fn: Callable[..., Any], label: str | Callable[..., str]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.stage(label(*args) if callable(label) else label):
                return fn(*args, **kwargs)
        return timed


def _patched(meter: Meter, screener: Screener) -> ExitStack:
    """Wrap the pipeline's stages for ``meter``; undone when the stack closes."""
    stack = ExitStack()

    def patch(owner: Any, name: str, label: str | Callable[..., str]) -> None:
        orig = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        setattr(owner, name, meter.wrap(orig, label))
        stack.callback(setattr, owner, name, orig)

    def frames(orig: Callable[..., Generator[Any]]) -> Callable[..., Generator[Any]]:
        def timed(*args: Any, **kwargs: Any) -> Generator[Any]:
            gen = orig(*args, **kwargs)
            try:
                while True:
                    with meter.stage("decode"):
                        item = next(gen, None)
                    if item is None:
                        return
                    yield item
            finally:
                gen.close()
        return timed

    patch(prepare, "decode_still", "decode")
    orig_frames = VideoClip.__dict__["frames"]
    setattr(VideoClip, "frames", frames(orig_frames))  # noqa: B010 (mypy: a method)
    stack.callback(setattr, VideoClip, "frames", orig_frames)
    patch(prepare, "still_hash", "pdq")
    patch(hashes, "frame_hash", "pdq")
    patch(preprocess, "classifier_pixels", lambda rgb, spec: f"classifier prep {spec.resize}")
    patch(faces, "detect", "blazeface letterbox, tiles")
    patch(preprocess, "normalise", "model fill (normalise)")
    patch(faces, "decode", "blazeface decode")
    patch(face_stage.FaceStage, "_place", "centerface place")
    patch(centerface, "decode", "centerface decode")
    patch(preprocess, "align_face", "age chips align")
    patch(ShapePredictor, "__call__", "landmarks")
    patch(Detail, "patches", "detail decode")
    patch(Model, "_fill", lambda self, x: f"model fill {self.spec.id}")
    patch(Model, "_set", lambda self, x: f"model fill {self.spec.id}")
    patch(Model, "_invoke", lambda self, feed, x: f"model out {self.spec.id}")
    for m in screener._extractor.models():
        patch(m._interp, "invoke", f"invoke {m.spec.id}")
    return stack


def run(bundle: Path, rounds: int, seconds: int, cprofile: int) -> dict[str, Any]:
    opts = ScreenerOptions(threads=1, workers=1, bundle=bundle)
    photos: list[dict[str, float]] = []
    frames: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="pipeline-cpu-") as tmp, Screener(opts) as s:
        paths = []
        for name, data in make_inputs(5, 12.0):
            paths.append(Path(tmp, name))
            paths[-1].write_bytes(data)
        clip = Path(tmp, "clip.mp4")
        make_clip(clip, ClipSpec(seconds, fps=10))
        for p in (*paths, clip):  # warm-up
            s.screen(p)
        meter = Meter()

        def measured(path: Path) -> tuple[dict[str, float], int]:
            meter.ms.clear()
            t = time.process_time()
            report = s.screen(path)
            total = (time.process_time() - t) * 1e3
            assert report.ok, report.error
            out = dict(meter.ms)
            out["other"] = total - sum(out.values())
            out["total"] = total
            return out, report.media.frames_screened

        with _patched(meter, s):
            for _ in range(rounds):
                for p in paths:
                    photos.append(measured(p)[0])
                ms, n = measured(clip)
                # FFmpeg decodes on threads of its own, which no stage's thread time sees: the
                # clip's decode is the process CPU of decoding the same frames and nothing else.
                t = time.process_time()
                decode_only_s(s, clip)
                decode = (time.process_time() - t) * 1e3
                ms["other"] -= decode - ms["decode"]
                ms["decode"] = decode
                frames.append({k: v / n for k, v in ms.items()})
        profile = None
        if cprofile:
            prof = cProfile.Profile()
            prof.enable()
            for p in paths * rounds:
                s.screen(p)
            prof.disable()
            profile = prof
    result = {"photo_cpu_ms": _medians(photos), "clip_frame_cpu_ms": _medians(frames),
              "rounds": rounds, "photos": len(paths), "clip_seconds": seconds,
              "load_average": [round(x, 2) for x in os.getloadavg()]}
    if profile is not None:
        print(f"cProfile over {len(paths) * rounds} photos (own time):", file=sys.stderr)
        pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(cprofile)
    return result


def _medians(samples: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for s in samples for k in s}, key=lambda k: -statistics.median(
        s.get(k, 0.0) for s in samples))
    return {k: round(statistics.median(s.get(k, 0.0) for s in samples), 2) for k in keys}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m firmware_tools.studies.pipeline_cpu",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=60, help="length of the generated clip")
    ap.add_argument("--cprofile", type=int, default=0, metavar="N",
                    help="also print the N functions with the most own time (photos)")
    args = ap.parse_args(argv)
    print(f"load average at start: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}",
          file=sys.stderr)
    print(json.dumps(run(args.bundle, args.rounds, args.seconds, args.cprofile), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
