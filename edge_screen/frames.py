"""Frames of a video or an animation: the sampling strategy, its limits, and the pure plans.

The strategy (``SamplingOptions``), in the order frames are screened:

1. **Keyframes** (intra frames), decoded one by one after a seek, with the decoder told to skip
   every other frame (``skip_frame = "NONKEY"``). A keyframe costs one frame's decode and nothing
   in between. When there are more keyframes than ``max_frames``, evenly spaced ones are taken
   (the first always), so keyframes between two picked ones can be missed.
2. **Fill**: where two screened frames are more than ``max_gap_s`` apart (long GOPs, screen
   recordings), the frame at the middle of the gap is decoded by seeking to the keyframe before it
   and decoding forward to it, until no gap is that long or the budget is spent.

A strategy sees only the frames it samples: a scene shorter than the gap between samples (one
second between keyframes of a phone clip) that lies on no keyframe is missed.

Every picture an input shows is screened (fail closed): every video stream of a container (the
frame budget shared between them, see ``video``), every attached cover picture, every page of a
multi-page still (``pages``). Limits apply to every decoded frame, not only to the header
(``probe.check_size``).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from .errors import ScreeningTimeout

if TYPE_CHECKING:
    from .decode import Detail
    from .pdq import PdqHash


@dataclass(frozen=True)
class SamplingOptions:
    """Which frames of a video or animation are screened, and how long one item may take."""

    max_frames: int = 64  # frames screened per item: the frame budget
    keyframes: bool = True  # step 1 above; False screens evenly spaced frames by seeking only
    max_gap_s: float = 2.0  # step 2 fills gaps longer than this (0 disables the fill)
    time_budget_s: float = 60.0  # per item; past it the item is unscreenable ("timeout")
    early_stop: bool = True  # stop once the verdict is "hold": more frames cannot lower it
    top_k: int = 5  # evidence frames kept in the report
    # Small-face tiles run per frame after the first (which runs them all), in turn, plus where
    # a face was found the frame before: see ``faces.TileScan``. 0: every tile on every frame.
    tiles_per_frame: int = 3


@dataclass(frozen=True)
class VideoLimits:
    """Limits read from the header of a video or animation before any frame is decoded."""

    max_bytes: int = 1024 * 1024 * 1024  # videos are streamed from a path, not read into memory
    max_duration_s: float = 3600.0
    max_frames: int = 500_000  # declared frame count
    max_pixels: int = 8192 * 4320  # per frame (header and every decoded frame): 8K
    max_side: int = 8192
    # video streams screened per input, attached cover pictures included; past it the input is
    # unscreenable (too_large) rather than screened in part
    max_streams: int = 8


@dataclass(frozen=True)
class Frame:
    """One sampled frame: upright RGB at working size, with its time from the start."""

    rgb: NDArray[np.uint8]
    timestamp_ms: float
    keyframe: bool
    # Which picture of the input the frame is from: the video stream's index in its container,
    # or the page (0-based; an EXIF thumbnail is the last page). Its upright original size, for
    # face boxes, when it differs from the clip's (``ClipInfo``) size; 0 means the clip's size.
    part: int = 0
    width: int = 0
    height: int = 0
    # A still's finer pixels for age chips (``decode.Detail``); None: chips from ``rgb``.
    detail: Detail | None = None
    # PDQ of ``rgb`` where it was hashed ahead (``hashes``); None: not hashed yet, or unhashable.
    pdq: PdqHash | None = None
    # A still's other orientations with their PDQ (``hashes.Turned``), hashed with ``pdq``.
    turned: tuple[tuple[str, PdqHash], ...] = ()


@dataclass(frozen=True)
class ClipInfo:
    """What the header says about a video, an animation or a multi-page still, in upright
    (displayed) pixels; of a video, its first moving stream's (else its first cover's)."""

    kind: str  # "video", "animation", or "image" (a still of several pages)
    format: str
    width: int
    height: int
    duration_s: float | None
    fps: float | None
    streams: int = 1  # video streams screened (tracks and cover pictures), 1 for the others
    covers: int = 0  # of those, attached cover pictures (the ``attached_pic`` disposition)
    pages: int = 1  # pictures of a still screened, its thumbnails included
    thumbnail: bool = False  # the last pages are thumbnails (EXIF IFD1, a HEIF's thumbnails)


class Clip(Protocol):
    """An opened video, animation or multi-page still: its header, and its frames on demand."""

    frames_decoded: int

    @property
    def info(self) -> ClipInfo: ...

    def frames(self, sampling: SamplingOptions, deadline: float) -> Generator[Frame]: ...

    def close(self) -> None: ...


def check_deadline(deadline: float) -> None:
    """Raise ``ScreeningTimeout`` once ``deadline`` (a ``time.perf_counter`` value) is past."""
    if time.perf_counter() > deadline:
        raise ScreeningTimeout("the item's time budget ran out before it was screened")


def pick_evenly(count: int, budget: int) -> list[int]:
    """Indices of ``budget`` items evenly spread over ``count``, the first and last included."""
    if budget <= 0 or count <= 0:
        return []
    if count <= budget:
        return list(range(count))
    if budget == 1:
        return [0]
    return sorted({round(i * (count - 1) / (budget - 1)) for i in range(budget)})


def plan_fill(taken: list[float], duration: float, max_gap: float, budget: int) -> list[float]:
    """Times (s) that split the longest gaps between ``taken`` in half until none is longer
    than ``max_gap`` or ``budget`` times are planned; sorted, so seeks go forward."""
    if budget <= 0 or max_gap <= 0 or duration <= 0:
        return []
    edges = sorted({0.0, duration, *(t for t in taken if 0 <= t <= duration)})
    gaps = [(-(b - a), a, b) for a, b in itertools.pairwise(edges)]
    heapq.heapify(gaps)
    out: list[float] = []
    while gaps and len(out) < budget:
        neg, a, b = heapq.heappop(gaps)
        if -neg <= max_gap:
            break
        mid = (a + b) / 2
        out.append(mid)
        heapq.heappush(gaps, (-(mid - a), a, mid))
        heapq.heappush(gaps, (-(b - mid), mid, b))
    return sorted(out)


def working_size(width: float, height: float, min_side: int) -> tuple[int, int]:
    """The size to scale a frame to: short side ``min_side`` (never up), even, at least 2."""
    scale = min(1.0, min_side / max(1.0, min(width, height)))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
