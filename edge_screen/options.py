"""``ScreenerOptions``: everything a ``Screener`` can be told, in one frozen dataclass."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .decode import ImageLimits
from .face_stage import STRATEGIES
from .frames import SamplingOptions, VideoLimits
from .policy import Policy

ISOLATION = ("none", "process")  # where an item is screened: this process, or a worker's
MIN_MEMORY_MB = 512  # a worker's address space: 549 MB once the default bundle is loaded
MAX_MEMORY_MB = 1 << 40  # RLIMIT_AS takes a signed 64-bit byte count; past 2**60 is no limit


@dataclass(frozen=True)
class ScreenerOptions:
    """Everything a ``Screener`` can be told; the defaults suit a phone or a Pi."""

    bundle: str | Path | None = None  # None: the bundle shipped in the package
    # A device store of signed updates (``edge-screen bundle install``): its active bundle.
    store: str | Path | None = None
    # Public keys (PEM bytes or files) a bundle must be signed by; required with ``store``, and
    # with ``bundle`` they make an unsigned or badly signed directory an error.
    trusted_keys: tuple[str | Path | bytes, ...] = ()
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
    # firmware_tools/studies/face_recall.py). 0: one pass only, faster, misses small faces.
    min_face: float = 0.05
    # How faces are found (``edge_screen.face_stage``): "auto" (the bundle's best: one
    # CenterFace pass where the bundle has it), "centerface" or "tiles" (BlazeFace tiles,
    # down to ``min_face``).
    faces: str = "auto"
    sampling: SamplingOptions = field(default_factory=SamplingOptions)  # videos, animations
    video_limits: VideoLimits = field(default_factory=VideoLimits)
    # Reviewer previews (``Screener.screen_with_preview``, ``edge_screen.preview``): off, they
    # cost nothing; on, the evidence frames are kept at preview size while an item is screened.
    previews: bool = False
    # PDQ/vPDQ hashes in the report (``hashes``), for server-side matching; their cost is the
    # report's ``timing_ms["hash"]``. False leaves ``hashes`` null; refused when the bundle
    # carries hash lists (known-content matching needs every frame's hash).
    hashes: bool = True
    # Where an item is screened (``edge_screen.isolation``): "none", in this process (the
    # lowest latency); "process", in a pool of ``workers`` worker processes, so a decoder that
    # crashes, hangs or eats memory costs one item's report (code crashed, timeout, too_large)
    # and never the host; each item then has a hard deadline of ``time_budget_s`` + 2 s.
    isolation: str = "none"
    # A worker's address-space limit (RLIMIT_AS, Linux only) with isolation="process"; None:
    # ``isolation.DEFAULT_MEMORY_MB``. Giving it without isolation is an error.
    memory_limit_mb: int | None = None

    def __post_init__(self) -> None:
        """Refuse what a careless call would otherwise turn into less screening, silently."""
        _type("bundle", self.bundle, (str, os.PathLike, type(None)))
        _type("store", self.store, (str, os.PathLike, type(None)))
        _type("trusted_keys", self.trusted_keys, (tuple, list))  # a bare str is not a list
        object.__setattr__(self, "trusted_keys", tuple(self.trusted_keys))  # the caller's list
        for key in self.trusted_keys:  # may change later; this copy does not
            _type("trusted_keys[]", key, (str, os.PathLike, bytes))
        if self.store is not None and self.bundle is not None:
            raise ValueError("ScreenerOptions: give bundle or store, not both")
        if self.store is not None and not self.trusted_keys:
            raise ValueError("ScreenerOptions.store holds signed bundles: give trusted_keys")
        _type("policy", self.policy, (str, os.PathLike, Policy, type(None)))
        _type("backend", self.backend, (str,))
        _type("faces", self.faces, (str,))
        if self.faces not in ("auto", *STRATEGIES):
            raise ValueError(f"ScreenerOptions.faces: {self.faces!r} is not auto or one of "
                             f"{', '.join(STRATEGIES)}")
        _type("variants", self.variants, (Mapping,))
        _type("image_limits", self.image_limits, (ImageLimits,))
        _type("sampling", self.sampling, (SamplingOptions,))
        _type("video_limits", self.video_limits, (VideoLimits,))
        _type("previews", self.previews, (bool,))
        _type("hashes", self.hashes, (bool,))
        _type("isolation", self.isolation, (str,))
        if self.isolation not in ISOLATION:
            raise ValueError(f"ScreenerOptions.isolation: {self.isolation!r} is not one of "
                             f"{', '.join(ISOLATION)}")
        if self.memory_limit_mb is not None:
            if self.isolation != "process":
                raise ValueError("ScreenerOptions.memory_limit_mb limits worker processes: it "
                                 "needs isolation='process'")
            m = self.memory_limit_mb
            if isinstance(m, bool) or not isinstance(m, int) or not (
                    MIN_MEMORY_MB <= m <= MAX_MEMORY_MB):
                raise ValueError(f"ScreenerOptions.memory_limit_mb must be an int from "
                                 f"{MIN_MEMORY_MB} (a worker holds the models) to "
                                 f"{MAX_MEMORY_MB}, got {m!r}")
        for name in ("threads", "workers", "max_faces", "max_bytes", "working_min_side"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ScreenerOptions.{name} must be an int >= 1, got {value!r}")
        if self.working_min_side < 64:
            raise ValueError("ScreenerOptions.working_min_side under 64 px leaves faces unseen")
        _fraction("min_face", self.min_face, 0.0, 1.0)
        if self.face_threshold is not None:
            _fraction("face_threshold", self.face_threshold, 0.0, 1.0)
        s = self.sampling
        if s.max_frames < 1 or s.top_k < 0 or s.tiles_per_frame < 0 or s.max_gap_s < 0:
            raise ValueError(f"SamplingOptions out of range: {s}")
        if not (isinstance(s.time_budget_s, int | float) and s.time_budget_s > 0):
            raise ValueError(f"SamplingOptions.time_budget_s must be > 0, got {s.time_budget_s!r}")


def _type(name: str, value: Any, kinds: tuple[type, ...]) -> None:
    if not isinstance(value, kinds):
        want = " or ".join(k.__name__ for k in kinds)
        raise TypeError(f"ScreenerOptions.{name} must be {want}, got {type(value).__name__}")


def _fraction(name: str, value: Any, lo: float, hi: float) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not lo <= value < hi:
        raise ValueError(f"ScreenerOptions.{name} must be in [{lo}, {hi}), got {value!r}")
