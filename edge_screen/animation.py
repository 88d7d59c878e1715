"""Animations (GIF, animated WebP, APNG, AVIF sequences) through Pillow, with the video's
sampling and limits.

These formats have no keyframes: every frame may depend on the one before (disposal, blending),
so Pillow walks them in order. The walk composites each frame, but only the sampled ones (evenly
spaced by index, the first always) are converted, reduced and screened; every frame's size is
checked against the limits as it is reached. A still GIF, WebP or PNG is not an animation
(``is_animation``): it is decoded as a photo.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Generator

import numpy as np
from PIL import Image, features

from .decode import (
    BACKGROUNDS,
    orientation,
    pillow_errors,
    shown,
    upright,
    upright_size,
    varying_alpha,
)
from .errors import MediaTooLarge
from .frames import ClipInfo, Frame, SamplingOptions, VideoLimits, check_deadline, pick_evenly
from .probe import check_size

# AVIF: an image sequence, where Pillow decodes AVIF itself (pillow-heif gives the first image).
ANIMATED_FORMATS = ("GIF", "WEBP", "PNG", "AVIF")
# Browsers show a GIF frame whose delay is 0 or 10 ms for 100 ms; so do our timestamps.
_MIN_DELAY_MS, _DEFAULT_DELAY_MS = 20.0, 100.0


def is_animation(im: Image.Image, fmt: str) -> bool:
    """Whether an open image is an animation (more than one frame of an animated format);
    reads headers only. Raises Pillow's errors: call it inside ``pillow_errors``."""
    if fmt not in ANIMATED_FORMATS or (fmt == "AVIF" and not features.check("avif")):
        return False
    return bool(getattr(im, "is_animated", False))


class AnimationClip:
    """An opened animation: frames composited in order, sampled ones screened. The caller has
    checked the header's frame size (``probe.check_size``); ``close`` ends the image (the
    caller's own image is left open, at its first frame)."""

    def __init__(
        self,
        im: Image.Image,
        fmt: str,
        limits: VideoLimits,
        min_side: int,
        close: Callable[[], None],
    ) -> None:
        with pillow_errors(f"{fmt} animation"):
            count = int(getattr(im, "n_frames", 1))
            # EXIF orientation turns every frame, as it turns a still: a viewer that applies it
            # to the one applies it to the other.
            self._turn = orientation(im)
        if count > limits.max_frames:
            raise MediaTooLarge(f"{fmt} animation has {count} frames, over the limit")
        self._im, self._fmt, self._count, self._min_side = im, fmt, count, min_side
        self._limits, self._close = limits, close
        self.frames_decoded = 0
        self._duration: float | None = None

    @property
    def info(self) -> ClipInfo:
        w, h = upright_size(*self._im.size, self._turn)
        fps = self._count / self._duration if self._duration else None
        return ClipInfo("animation", self._fmt, w, h, self._duration, fps)

    def close(self) -> None:
        self._close()

    def frames(self, sampling: SamplingOptions, deadline: float) -> Generator[Frame]:
        with pillow_errors(f"{self._fmt} animation"):
            picked = self._pick(sampling.max_frames, deadline)
            t_ms = 0.0
            for i in range(self._count):
                check_deadline(deadline)
                self._im.seek(i)
                # a later frame may declare another size than the first
                check_size(f"{self._fmt} frame", *self._im.size, self._limits)
                self.frames_decoded += 1
                if i in picked:
                    # Pillow settles a GIF frame's mode (RGB or RGBA) when it loads it: read
                    # before, an RGBA frame passed as RGB (found by fuzzing)
                    self._im.load()
                    # A frame with transparency is screened as drawn on a light and on a dark
                    # background, as stills are: a picture may hide in the alpha of either.
                    grounds = BACKGROUNDS if varying_alpha(self._im) else (None,)
                    for bg in grounds:
                        drawn = upright(shown(self._im, self._min_side, bg)[0], self._turn)
                        rgb = np.asarray(drawn, np.uint8)
                        yield Frame(rgb, t_ms, keyframe=True)
                t_ms += self._delay()
        self._duration = t_ms / 1e3

    def _delay(self) -> float:
        """How long the current frame is shown, in ms, as a browser shows it."""
        delay = self._im.info.get("duration")
        ok = isinstance(delay, int | float) and delay >= _MIN_DELAY_MS
        return float(delay) if ok else _DEFAULT_DELAY_MS  # type: ignore[arg-type]

    def _pick(self, budget: int, deadline: float) -> set[int]:
        """The frames to screen: all within the budget; past it, half evenly by index and half
        at evenly spaced moments of the playback (a walk reading every frame's delay first), so
        neither many short frames nor a few long ones can keep a picture out of the sample."""
        if self._count <= budget:
            return set(range(self._count))
        starts, t = [], 0.0
        for i in range(self._count):
            check_deadline(deadline)
            self._im.seek(i)
            starts.append(t)
            t += self._delay()
        by_time = {
            bisect.bisect_right(starts, (k + 0.5) * t / (budget // 2)) - 1
            for k in range(budget // 2)
        }
        return by_time | set(pick_evenly(self._count, budget - len(by_time)))
