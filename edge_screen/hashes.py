"""The hashing stage: Meta's PDQ of every screened frame, from the pixels the models see.

A photo's hash is of its working image (``decode.decode_still``: a JPEG draft-decoded at 1/2 to
1/8, box-reduced, turned upright by its EXIF orientation), hashed in ``prepare`` on the decode
thread; no second decode. Video and animation frames are hashed on the thread that decodes the
next frame ahead of inference (``pipeline``), so the hash overlaps the models. What those pixels
cost against a full decode (Hamming distance, time) is measured by ``tests/pdq_fidelity.py``
(docs/report.md#hashes).

The report carries (``Hashes``):

- a still: ``pdq`` of its main picture (page 0: a TIFF's first page, an MPO's or a HEIF's primary
  picture, a transparent picture as drawn on white), and ``pages``, every picture screened (pages,
  backgrounds, thumbnails), when there is more than one;
- a video, an animation or a live stream: ``vpdq``, a hash per screened frame with its time,
  de-duplicated as Meta's vPDQ prunes: a frame within ``DEDUP_DISTANCE`` of the last one kept
  (of the same picture) is dropped.

Hashing never fails a report: a frame PDQ cannot use (a side under 5 px) has no hash (null,
quality 0).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .frames import Frame
from .pdq import PdqHash, pdq_hash, pdq_hash_with_dihedral

if TYPE_CHECKING:
    from .known import Match

# A still's other seven orientations (``pdq.DIHEDRAL_NAMES`` after "original") with their PDQ,
# from its own DCT: what a hash list is also matched against, never reported.
Turned = tuple[tuple[str, PdqHash], ...]

log = logging.getLogger("edge_screen")

# Consecutive screened frames of one picture whose hashes differ in at most this many bits are
# one entry (the first). Meta's vPDQ README prunes with D=2 as its example; keyframes of a still
# scene through H.264 differ by 0-2 bits here (a static clip in tests/test_hashes.py), a camera's
# moving scene by tens; a list match is <= 31, so pruning at 4 costs a matcher at most 4 bits of
# its margin on a dropped frame.
DEDUP_DISTANCE = 4
# A live stream's running report keeps its last this many de-duplicated frame hashes: a stream
# has no end, and its reports must stay small (each screen_frame returns the whole report).
STREAM_WINDOW = 64
_MIN_SIDE = 5  # PDQ's: smaller pictures have no hash (the reference returns zeros, quality 0)


@dataclass(frozen=True)
class FrameHash:
    """One screened frame's PDQ (None: nothing PDQ can hash), with its time and picture."""

    timestamp_ms: float
    pdq: PdqHash | None
    part: int = 0  # the frame's ``Frame.part``: its video stream, page or cover
    turned: Turned = ()  # a still's page: its rotations and flips (``Turned``)

    @property
    def quality(self) -> int:
        return 0 if self.pdq is None else self.pdq.quality

    def same(self, other: FrameHash, distance: int = DEDUP_DISTANCE) -> bool:
        """Whether ``other`` is this frame again for de-duplication (both unhashable counts)."""
        if self.pdq is None or other.pdq is None:
            return self.pdq is None and other.pdq is None
        return self.pdq.distance(other.pdq) <= distance

    def to_dict(self) -> dict[str, Any]:
        return {
            "timestamp_ms": round(self.timestamp_ms),
            "pdq": None if self.pdq is None else self.pdq.hex,
            "quality": self.quality,
        }


@dataclass(frozen=True)
class Hashes:
    """The report's ``hashes``: ``pdq``/``pdq_quality`` and ``pages`` for stills, ``vpdq`` for
    videos, animations and live streams; the fields that do not apply are None."""

    pdq: PdqHash | None = None
    pdq_quality: int | None = None  # 0 when the still has no hash (too small)
    pages: tuple[PdqHash | None, ...] | None = None  # a still of several pictures
    vpdq: tuple[FrameHash, ...] | None = None
    # Matches against the bundle's hash lists (``known``); None: the bundle has no list.
    matches: tuple[Match, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pdq": None if self.pdq is None else self.pdq.hex,
            "pdq_quality": self.pdq_quality,
            "pages": None
            if self.pages is None
            else [{"pdq": None if h is None else h.hex, "quality": _q(h)} for h in self.pages],
            "vpdq": None if self.vpdq is None else [f.to_dict() for f in self.vpdq],
            "matches": None if self.matches is None else [m.to_dict() for m in self.matches],
        }


def _q(h: PdqHash | None) -> int:
    return 0 if h is None else h.quality


def frame_hash(rgb: NDArray[np.uint8]) -> PdqHash | None:
    """PDQ of an upright HxWx3 uint8 frame; None when PDQ cannot hash it. Never raises: a hash
    is provenance, not a signal, and must not make a screened input unscreenable."""
    if rgb.ndim < 2 or min(rgb.shape[:2]) < _MIN_SIDE:
        return None
    try:
        return pdq_hash(rgb)
    except Exception:  # a bug: logged, and the frame reported without a hash
        log.exception("PDQ failed on a %s frame", rgb.shape)
        return None


def still_hash(rgb: NDArray[np.uint8]) -> tuple[PdqHash | None, Turned]:
    """``frame_hash`` of a still's picture with its seven other orientations, from one DCT
    (~0.2 ms more): a hash list may hold the picture turned or flipped. Never raises."""
    if rgb.ndim < 2 or min(rgb.shape[:2]) < _MIN_SIDE:
        return None, ()
    try:
        variants = pdq_hash_with_dihedral(rgb)
    except Exception:  # a bug: logged, and the frame reported without a hash
        log.exception("PDQ failed on a %s frame", rgb.shape)
        return None, ()
    return variants.pop("original"), tuple(variants.items())


def hashed(frames: Iterable[Frame], spent_ms: list[float], still: bool = False
           ) -> Iterator[Frame]:
    """``frames`` with their PDQ (``Frame.pdq``), hashed as they are pulled: on the thread that
    decodes ahead of inference; a ``still``'s pages with their orientations too. A frame hashed
    where it was decoded keeps its hash. The time spent hashing is added to ``spent_ms[0]``."""
    for frame in frames:
        if frame.pdq is None:
            t = time.perf_counter()
            if still:
                pdq, turned = still_hash(frame.rgb)
                frame = replace(frame, pdq=pdq, turned=turned)
            else:
                frame = replace(frame, pdq=frame_hash(frame.rgb))
            spent_ms[0] += (time.perf_counter() - t) * 1e3
        yield frame


class FrameHashes:
    """The hashes of the frames screened, in screening order, folded into the report's."""

    def __init__(self) -> None:
        self._frames: list[FrameHash] = []

    def add(self, frame: Frame) -> None:
        pdq = frame.pdq if frame.pdq is not None else frame_hash(frame.rgb)
        self._frames.append(FrameHash(frame.timestamp_ms, pdq, frame.part, frame.turned))

    @property
    def frames(self) -> tuple[FrameHash, ...]:
        """Every screened frame's hash, in screening order, before de-duplication."""
        return tuple(self._frames)

    def result(self, kind: str, matches: tuple[Match, ...] | None = None) -> Hashes | None:
        """The report's hashes for a clip of ``kind`` (``ClipInfo.kind``), with the hash-list
        ``matches`` (None: no list); None with no frame."""
        if not self._frames:
            return None
        if kind == "image":  # a still: its main picture, and every picture when several
            first = self._frames[0].pdq
            pages = tuple(f.pdq for f in self._frames) if len(self._frames) > 1 else None
            return Hashes(first, _q(first), pages, matches=matches)
        return Hashes(vpdq=vpdq(self._frames), matches=matches)


def vpdq(frames: Iterable[FrameHash], distance: int = DEDUP_DISTANCE) -> tuple[FrameHash, ...]:
    """vPDQ entries: per picture (in order of first appearance: covers, then each stream), in
    time order, a frame within ``distance`` bits of the last one kept dropped. Sampling screens
    keyframes before the frames that fill gaps between them, hence the sort."""
    parts: dict[int, list[FrameHash]] = {}
    for f in frames:
        parts.setdefault(f.part, []).append(f)
    out: list[FrameHash] = []
    for run in parts.values():
        kept: FrameHash | None = None
        for f in sorted(run, key=lambda f: f.timestamp_ms):  # stable: same-time frames in order
            if kept is None or not kept.same(f, distance):
                out.append(f)
                kept = f
    return tuple(out)


class StreamHashes:
    """A live stream's running vPDQ: frames in arrival order, de-duplicated against the last one
    kept, the last ``STREAM_WINDOW`` kept."""

    def __init__(self, window: int = STREAM_WINDOW) -> None:
        self._window = window
        self._kept: list[FrameHash] = []

    def add(self, timestamp_ms: float, pdq: PdqHash | None) -> None:
        f = FrameHash(timestamp_ms, pdq)
        if self._kept and self._kept[-1].same(f):
            return
        self._kept.append(f)
        if len(self._kept) > self._window:
            del self._kept[0]

    def result(self, matches: tuple[Match, ...] | None = None) -> Hashes | None:
        """The report's ``hashes``, with the running ``matches`` (None: no hash list)."""
        return Hashes(vpdq=tuple(self._kept), matches=matches) if self._kept else None
