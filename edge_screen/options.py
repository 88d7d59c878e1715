"""``ScreenerOptions``: everything a ``Screener`` can be told, in one frozen dataclass."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .decode import ImageLimits
from .frames import SamplingOptions, VideoLimits
from .policy import Policy


@dataclass(frozen=True)
class ScreenerOptions:
    """Everything a ``Screener`` can be told; the defaults suit a phone or a Pi."""

    bundle: str | Path | None = None  # None: the bundle shipped in the package
    policy: str | Path | Policy | None = None  # None: the default policy
    backend: str = "auto"  # "litert", "tflite-runtime" or "auto"
    threads: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))
    # screen_many screens this many items at once, each worker with its own interpreters of
    # threads // workers threads: on 2 cores, 2 x 1 thread beats 1 x 2 (decode and the small
    # models' invokes do not parallelise inside one item). 1: one item at a time, next decoded.
    workers: int = field(default_factory=lambda: min(2, os.cpu_count() or 1))
    variants: Mapping[str, str] = field(default_factory=dict)  # model id -> variant name
    max_bytes: int = 64 * 1024 * 1024
    image_limits: ImageLimits = field(default_factory=ImageLimits)
    working_min_side: int = 512  # decode no larger than this short side (faces need detail)
    max_faces: int = 20  # faces age-estimated per frame, most confident first (group photos)
    face_threshold: float | None = None  # None: the manifest's threshold
    # Look for faces down to this fraction of the short side: when one detector pass cannot see
    # them, overlapping tiles are scanned too (about +40 ms on a 12 MP photo here, see
    # firmware_tools/face_recall.py). 0: one pass only, faster, misses small faces.
    min_face: float = 0.05
    sampling: SamplingOptions = field(default_factory=SamplingOptions)  # videos, animations
    video_limits: VideoLimits = field(default_factory=VideoLimits)
