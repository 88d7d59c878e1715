"""The front half of screening, before any model runs: read the input, sniff its format, decode
a photo to working size or open a video, an animation or a still of several pages. It runs on a
decode thread, ahead of inference (``Screener.screen_many``), and never raises for bad media:
the error is kept. It raises ``NotMedia`` (a ``TypeError``) for an input ``screen()`` cannot
take at all (see ``source``): that is a mistake in the call, not in the media.

The item's time budget (``SamplingOptions.time_budget_s``) starts here: hashing a video (up to
``VideoLimits.max_bytes``) runs against it, and the screener gives the frames what is left of it
(``Prepared.decode_ms`` is what prepare spent).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .animation import ANIMATED_FORMATS, animation_of, open_animation
from .decode import DecodedImage, ImageLimits, decode_image
from .errors import EdgeScreenError, MediaError, NotMedia
from .frames import Clip, check_frame_size
from .options import ScreenerOptions
from .pages import decode_page, open_pages, pages_of, pil_page
from .probe import probe
from .source import MediaInput, check_input, describe, hash_input, peek, read_source
from .video import VideoClip

log = logging.getLogger("edge_screen")


@dataclass(frozen=True)
class Prepared:
    """An input read and decoded (a photo) or opened (a video, an animation, a still of several
    pages), or why not."""

    name: str
    sha256: str | None  # of the encoded input; None for pixels (an array, a PIL image)
    image: DecodedImage | None
    error: EdgeScreenError | None  # a MediaError, or an internal one (a bug, logged)
    decode_ms: float
    clip: Clip | None = None  # opened; its frames decode with the models


def prepare(media: MediaInput, opts: ScreenerOptions) -> Prepared:
    """Read, sniff and decode (a photo) or open (a video): what can run ahead of inference.

    A video given as a path, bytes or a seekable file is streamed, not read into memory.
    Raises ``NotMedia`` (``TypeError``) for an object that is no ``MediaInput``.
    """
    check_input(media)
    t = time.perf_counter()
    deadline = t + opts.sampling.time_budget_s
    name, sha = describe(media), None

    def done(image: DecodedImage | None, clip: Clip | None = None) -> Prepared:
        return Prepared(name, sha, image, None, (time.perf_counter() - t) * 1e3, clip)

    try:
        if isinstance(media, np.ndarray):
            return done(array_image(media, opts.image_limits, opts.working_min_side))
        if isinstance(media, Image.Image):
            pixels = _pil_input(media, opts)
            return done(pixels) if isinstance(pixels, DecodedImage) else done(None, pixels)
        head = peek(media)
        if head is not None and (found := probe(head)).kind == "video":
            video = bytes(media) if isinstance(media, bytearray | memoryview) else media
            sha = hash_input(video, opts.video_limits.max_bytes, deadline)
            limits, side = opts.video_limits, opts.working_min_side
            return done(None, VideoClip(video, found.format, limits, side))
        src = read_source(media, opts.max_bytes, deadline)
        sha = src.sha256
        found = probe(src.data[:64])
        side = opts.working_min_side
        if found.kind == "video":  # from a stream that could not be rewound
            return done(None, VideoClip(src.data, found.format, opts.video_limits, side))
        anim = open_animation(src.data, found.format, opts.video_limits, side)
        if anim is not None:
            return done(None, anim)
        pages = open_pages(src.data, found, opts.image_limits, side)
        if pages is not None:
            return done(None, pages)
        return done(decode_image(src.data, found, opts.image_limits, side))
    except NotMedia:  # a text stream, found when it was read: the caller's mistake
        raise
    except MediaError as exc:
        return Prepared(name, sha, None, exc, (time.perf_counter() - t) * 1e3)
    except Exception as exc:  # a bug must not take the caller down: report it, log it
        log.exception("internal error while preparing %s", name)
        error = EdgeScreenError(f"{type(exc).__name__}: {exc}")
        return Prepared(name, sha, None, error, (time.perf_counter() - t) * 1e3)


def array_image(a: NDArray[np.generic], limits: ImageLimits, min_side: int) -> DecodedImage:
    """A numpy array of pixels as a decoded photo: HxWx3 uint8 RGB; HxW or HxWx1 grey; HxWx4
    RGBA, alpha dropped (the stored colours are screened, as for a decoded PNG). ``NotMedia``
    for other shapes and dtypes (convert to uint8 first: the scale of other types is a guess)."""
    if a.dtype != np.uint8:
        raise NotMedia(f"cannot screen a {a.dtype} array: pass uint8 RGB pixels (0..255)")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))) or 0 in a.shape:
        raise NotMedia(f"cannot screen an array of shape {a.shape}: pass HxWx3 RGB pixels")
    h, w = a.shape[:2]
    check_frame_size("array", w, h, limits.max_pixels, limits.max_side)
    im = Image.fromarray(np.ascontiguousarray(a))
    return pil_page(im, 0, "ARRAY", limits, min_side)


def _pil_input(im: Image.Image, opts: ScreenerOptions) -> DecodedImage | Clip:
    """A caller's PIL image, converted as a decoded photo; every frame of an animation sampled
    as one, every page of a multi-page still screened. The image is left open, at frame 0."""
    fmt, side = im.format or "PIL", opts.working_min_side
    if fmt in ANIMATED_FORMATS:
        anim = animation_of(im, fmt, opts.video_limits, side, owned=False)
        if anim is not None:
            return anim
    pages = pages_of(im, fmt, opts.image_limits, side, close=lambda: im.seek(0))
    if pages is not None:
        return pages
    return decode_page(lambda: pil_page(im, 0, fmt, opts.image_limits, side), fmt, 0)
