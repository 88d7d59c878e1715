"""Animations (GIF, animated WebP, APNG, AVIF sequences) through Pillow, with the video's
sampling and limits.

These formats have no keyframes: every frame may depend on the one before (disposal, blending),
so Pillow walks them in order. The walk composites each frame, but only the sampled ones (evenly
spaced by index, the first always) are converted, reduced and screened; every frame's size is
checked against the limits as it is reached. A still GIF, WebP or PNG is not an animation:
``open_animation`` returns None and the photo path decodes it.
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Generator, Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image, features

from .decode import reduce_factor, to_rgb
from .errors import CorruptMedia, MediaError, MediaTooLarge
from .frames import (
    ClipInfo,
    Frame,
    SamplingOptions,
    VideoLimits,
    check_deadline,
    check_frame_size,
    pick_evenly,
)

# AVIF: an image sequence, where Pillow decodes AVIF itself (pillow-heif gives the first image).
ANIMATED_FORMATS = ("GIF", "WEBP", "PNG", "AVIF")
# Browsers show a GIF frame whose delay is 0 or 10 ms for 100 ms; so do our timestamps.
_MIN_DELAY_MS, _DEFAULT_DELAY_MS = 20.0, 100.0
_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError)


class AnimationClip:
    """An opened animation: header checked, frames composited in order, sampled ones screened."""

    def __init__(
        self,
        im: Image.Image,
        fmt: str,
        count: int,
        limits: VideoLimits,
        min_side: int,
        owned: bool = True,
    ) -> None:
        self._im, self._fmt, self._count, self._min_side = im, fmt, count, min_side
        self._limits, self._owned = limits, owned  # not owned: the caller's image, left open
        self.frames_decoded = 0
        self._duration: float | None = None

    @property
    def info(self) -> ClipInfo:
        w, h = self._im.size
        fps = self._count / self._duration if self._duration else None
        return ClipInfo("animation", self._fmt, w, h, self._duration, fps)

    def close(self) -> None:
        if self._owned:
            self._im.close()
        else:
            self._im.seek(0)

    def frames(self, sampling: SamplingOptions, deadline: float) -> Generator[Frame]:
        with _pillow_errors(f"{self._fmt} animation"):
            picked = self._pick(sampling.max_frames, deadline)
        t_ms = 0.0
        try:
            for i in range(self._count):
                check_deadline(deadline)
                self._im.seek(i)
                # a later frame may declare another size than the first
                w, h = self._im.size
                lim = self._limits
                check_frame_size(f"{self._fmt} frame", w, h, lim.max_pixels, lim.max_side)
                self.frames_decoded += 1
                if i in picked:
                    yield Frame(self._rgb(), t_ms, keyframe=True)
                t_ms += self._delay()
        except MediaError:  # too large, out of time: already typed (and ValueError/OSError)
            raise
        except Image.DecompressionBombError as exc:
            raise MediaTooLarge(f"{self._fmt} animation frame {i}: {exc}") from exc
        except _ERRORS as exc:
            raise CorruptMedia(f"damaged {self._fmt} animation: {exc}") from exc
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

    def _rgb(self) -> np.ndarray:
        rgb = to_rgb(self._im)
        factor = reduce_factor(rgb.width, rgb.height, self._min_side)
        if factor > 1:
            rgb = rgb.reduce(factor)
        return np.asarray(rgb, dtype=np.uint8)


@contextmanager
def _pillow_errors(what: str) -> Iterator[None]:
    """Pillow's errors on a damaged or oversized animation as ours; typed ones pass."""
    try:
        yield
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaTooLarge(f"{what}: {exc}") from exc
    except _ERRORS as exc:
        raise CorruptMedia(f"damaged {what}: {exc}") from exc


def open_animation(
    data: bytes, fmt: str, limits: VideoLimits, min_side: int
) -> AnimationClip | None:
    """An ``AnimationClip`` when ``data`` holds more than one frame, else None (a still)."""
    if fmt not in ANIMATED_FORMATS or (fmt == "AVIF" and not features.check("avif")):
        return None
    with _pillow_errors(f"{fmt} animation"):
        im = Image.open(io.BytesIO(data), formats=[fmt])
    return animation_of(im, fmt, limits, min_side)


def animation_of(
    im: Image.Image, fmt: str, limits: VideoLimits, min_side: int, owned: bool = True
) -> AnimationClip | None:
    """An ``AnimationClip`` of an open image with more than one frame, else None (a still);
    ``owned``: closed with the clip (else left open, at its first frame)."""
    with _pillow_errors(f"{fmt} animation"):
        if not getattr(im, "is_animated", False):
            if owned:
                im.close()
            return None
        w, h = im.size
        if w * h > limits.max_pixels or max(w, h) > limits.max_side:
            if owned:
                im.close()
            raise MediaTooLarge(
                f"{fmt} header declares {w}x{h} frames, over the limit of "
                f"{limits.max_pixels} pixels / {limits.max_side} per side"
            )
        count = int(getattr(im, "n_frames", 1))
    if count > limits.max_frames:
        if owned:
            im.close()
        raise MediaTooLarge(f"{fmt} animation has {count} frames, over the limit")
    return AnimationClip(im, fmt, count, limits, min_side, owned)
