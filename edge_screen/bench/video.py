"""A generated phone clip screened end to end, against its own bound: the same sampled frames
decoded with no model run, plus each model's bare invoke times as often as ``screen`` ran it
at the sizes it ran at, on the same cores."""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ..frames import SamplingOptions
from ..infer import Model
from ..screener import Screener
from ..video import VideoClip
from .clip import ClipSpec, make_clip
from .options import Plan
from .stats import stat, time_ms


def decode_only_s(s: Screener, path: Path) -> float:
    """Seconds to open the clip and decode the frames ``screen`` samples, nothing else."""
    opts = s.options
    t = time.perf_counter()
    clip = VideoClip(str(path), "MP4", opts.video_limits, opts.working_min_side)
    try:
        sampling: SamplingOptions = opts.sampling
        for _ in clip.frames(sampling, time.perf_counter() + sampling.time_budget_s):
            pass
    finally:
        clip.close()
    return time.perf_counter() - t


def invoke_only_s(models: list[Model], runs: dict[str, Counter[tuple[int, int]]],
                  plan: Plan) -> float:
    """Seconds of bare invokes for ``runs`` (model id -> invocations per input size)."""
    total = 0.0
    for m in models:
        for (h, w), n in runs.get(m.spec.id, Counter()).items():
            if (h, w) != m.shape:
                m.fit(h, w)
            ms = statistics.median(time_ms(m.invoke_only, plan.reps, plan.budget_s / 4))
            total += n * ms / 1e3
    return total


def measure_video(s: Screener, folder: Path, plan: Plan) -> dict[str, Any]:
    """A generated phone clip (1080p H.264 High, a keyframe a second, ~17 Mbit/s, noise, a
    face; 10 frames a second, as only keyframes are decoded) screened end to end: wall and CPU
    seconds per clip, the fraction of the clip's duration that is, and the ratio to its bound."""
    spec = ClipSpec(plan.video_seconds, fps=10)
    path = folder / "clip.mp4"
    make_clip(path, spec)
    models = s._extractor.models()
    before = {m.spec.id: m.runs() for m in models}
    report = s.screen(path)  # warm-up, and the report the figures are checked on
    if not report.ok:
        raise RuntimeError(f"the generated clip failed to screen: {report.error}")
    runs = {m.spec.id: m.runs() - before[m.spec.id] for m in models}
    wall, cpu = [], []
    for _ in range(plan.video_rounds):
        t, c = time.perf_counter(), os.times()
        s.screen(path)
        e = os.times()
        wall.append(time.perf_counter() - t)
        cpu.append(e.user - c.user + e.system - c.system)
    decode = statistics.median(decode_only_s(s, path) for _ in range(plan.video_rounds))
    invoke = invoke_only_s(models, runs, plan)
    bound = decode + invoke
    return {"clip": {"seconds": spec.seconds, "width": spec.width, "height": spec.height,
                     "fps": spec.fps, "codec": spec.codec, "bytes": path.stat().st_size},
            "screen_s": stat(wall, "s"), "cpu_s": stat(cpu, "s"),
            "fraction_of_duration": round(statistics.median(wall) / spec.seconds, 4),
            "frames_screened": report.media.frames_screened,
            "frames_decoded": report.media.frames_decoded, "faces": len(report.faces),
            "bound_s": {"decode_only": round(decode, 4), "invoke_only": round(invoke, 4),
                        "total": round(bound, 4)},
            "ratio_to_bound": round(statistics.median(wall) / bound, 3),
            "invokes": {k: sum(v.values()) for k, v in runs.items()}}
