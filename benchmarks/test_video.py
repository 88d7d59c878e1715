"""A phone-like 60 s clip: the sampling pipeline against the naive decode-everything loop.

The clip is what a phone records: 1080p30, H.264 High, a keyframe every second, ~17 Mbit/s,
with sensor-like noise on every frame so the encoder cannot shrink it to nothing, and a face.
Encoding it takes a minute or two, so it is cached under the temp dir, keyed by its parameters
and the PyAV version. Both rows run in the same session (group ``video-60s``); the naive row's
``extra_info`` carries the ratio of the two medians.

    python3 -m pytest benchmarks/test_video.py -q -s --benchmark-only \
        --benchmark-columns=median,rounds

Each row also records the CPU seconds of a round (``extra_info.cpu_s``, printed with ``-s``): on
two cores the decoder and the models share the CPU, so CPU time explains the wall time.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from edge_screen import SamplingOptions, Screener, ScreenerOptions, VideoLimits
from edge_screen.bench.clip import ClipSpec, make_clip
from edge_screen.frames import working_size
from edge_screen.video import VideoClip

W, H, FPS, SECONDS, BITRATE = 1920, 1080, 30, 60, 17_000_000
NAIVE_EVERY = FPS  # the naive loop screens one frame a second: as many frames as keyframes
_MEDIANS: dict[str, float] = {}


@pytest.fixture(scope="session")
def phone_clip() -> Path:
    spec = ClipSpec(SECONDS, FPS, W, H, BITRATE)
    if spec.codec != "libx264":
        pytest.skip("this PyAV wheel has no H.264 encoder")
    cache = Path(tempfile.gettempdir()) / "edge-screen-bench"
    cache.mkdir(exist_ok=True)
    path = cache / f"phone-{hashlib.sha256(spec.key.encode()).hexdigest()[:12]}.mp4"
    if not path.exists():
        make_clip(path, spec)
    return path


def naive(screener: Screener, path: Path) -> int:
    """What one writes first: decode every frame with PyAV's defaults and hand every Nth to the
    public frame API, ``LiveStream.screen_frame`` (the same models and the same per-stream tile
    scan as the pipeline; scaled by the same scaler to the same size), so only the decoding
    differs."""
    screened = 0
    with screener.stream("naive") as live, av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % NAIVE_EVERY:
                continue
            tw, th = working_size(frame.width, frame.height, screener.options.working_min_side)
            rgb = frame.reformat(tw, th, "rgb24").to_ndarray()
            report = live.screen_frame(rgb, frame.time * 1e3)
            screened += 1
    assert report.ok and report.faces
    return screened


def _cpu(fn: Any, *args: Any) -> Any:
    """``fn(*args)``, with the CPU seconds it took (all threads) kept for ``extra_info``."""
    t = os.times()
    out = fn(*args)
    e = os.times()
    _CPU.append(e.user - t.user + e.system - t.system)
    return out


_CPU: list[float] = []


def _record(benchmark: BenchmarkFixture, key: str, clip: Path) -> float:
    median: float = benchmark.stats.stats.median
    cpu = sorted(_CPU)[len(_CPU) // 2]
    _CPU.clear()
    benchmark.extra_info.update(
        clip=f"{W}x{H} {FPS} fps {SECONDS} s H.264 High {os.path.getsize(clip)} B",
        fraction_of_duration=round(median / SECONDS, 4),
        cpu_s=round(cpu, 2),
    )
    _MEDIANS[key] = median
    print(f"\n{key}: {median:.2f} s wall, {cpu:.2f} s CPU")
    return median


@pytest.mark.parametrize("way", ["pipeline", "naive"])
def test_screen_60s_phone_clip(
    benchmark: BenchmarkFixture, screener: Screener, phone_clip: Path, way: str
) -> None:
    benchmark.group = "video-60s"
    benchmark.extra_info.update(
        threads=screener.options.threads, sampling=repr(screener.options.sampling)
    )
    if way == "pipeline":
        report: Any = benchmark.pedantic(_cpu, (screener.screen, phone_clip), rounds=3)
        assert report.ok and report.media.frames_screened == SECONDS, report.error
        assert report.media.frames_decoded == SECONDS and report.faces
    else:
        screened = benchmark.pedantic(_cpu, (naive, screener, phone_clip), rounds=1)
        assert screened == SECONDS
    median = _record(benchmark, way, phone_clip)
    if way == "naive" and "pipeline" in _MEDIANS:
        benchmark.extra_info["naive_over_pipeline"] = round(median / _MEDIANS["pipeline"], 2)
        print(f"naive / pipeline = {median / _MEDIANS['pipeline']:.1f}x")


def _decode_all(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def _decode_sampled(path: Path, sampling: SamplingOptions, side: int) -> int:
    clip = VideoClip(str(path), "MP4", VideoLimits(), side)
    try:
        return sum(1 for _ in clip.frames(sampling, time.perf_counter() + 300))
    finally:
        clip.close()


@pytest.mark.parametrize("way", ["all", "sampled"])
def test_decode_60s_phone_clip(
    benchmark: BenchmarkFixture, screener: Screener, phone_clip: Path, way: str
) -> None:
    """Decoding alone: every frame with PyAV's defaults, or the frames the sampler takes at
    working size. Their ratio caps naive / pipeline when screening costs nothing."""
    benchmark.group = "video-60s-decode"
    if way == "all":
        n = benchmark.pedantic(_cpu, (_decode_all, phone_clip), rounds=1)
        assert n == FPS * SECONDS
    else:
        args = (_decode_sampled, phone_clip, screener.options.sampling, 512)
        n = benchmark.pedantic(_cpu, args, rounds=3)
        assert n == SECONDS
    median = _record(benchmark, f"decode {way}", phone_clip)
    if way == "sampled" and "decode all" in _MEDIANS:
        ratio = _MEDIANS["decode all"] / median
        benchmark.extra_info["all_over_sampled"] = round(ratio, 2)
        print(f"decode all / sampled = {ratio:.1f}x")


@pytest.mark.parametrize("option", ["tiles_per_frame=0", "min_face=0"])
def test_screen_60s_phone_clip_other_face_settings(
    benchmark: BenchmarkFixture, phone_clip: Path, option: str
) -> None:
    """The pipeline with every small-face tile on every frame, and with no tiles at all."""
    benchmark.group = "video-60s-faces"
    opts = (
        ScreenerOptions(sampling=SamplingOptions(tiles_per_frame=0))
        if option == "tiles_per_frame=0"
        else ScreenerOptions(min_face=0.0)
    )
    with Screener(opts) as s:
        s.screen(phone_clip)  # warm-up
        report: Any = benchmark.pedantic(_cpu, (s.screen, phone_clip), rounds=1)
    assert report.ok and report.media.frames_screened == SECONDS and report.faces
    _record(benchmark, option, phone_clip)
