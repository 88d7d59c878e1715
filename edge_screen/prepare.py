"""The front half of screening, before any model runs: read the input, sniff its format, decode
a photo to working size or open a video or animation. It runs on a decode thread, ahead of
inference (``Screener.screen_many``), and never raises for bad media: the error is kept."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from .animation import open_animation
from .decode import DecodedImage, decode_image
from .errors import EdgeScreenError, MediaError
from .frames import Clip
from .options import ScreenerOptions
from .probe import probe
from .source import MediaInput, describe, read_source
from .video import VideoClip, hash_input, peek

log = logging.getLogger("edge_screen")


@dataclass(frozen=True)
class Prepared:
    """An input read and decoded (a photo) or opened (a video, an animation), or why not."""

    name: str
    sha256: str | None
    image: DecodedImage | None
    error: EdgeScreenError | None  # a MediaError, or an internal one (a bug, logged)
    decode_ms: float
    clip: Clip | None = None  # a video or animation, opened; its frames decode with the models


def prepare(media: MediaInput, opts: ScreenerOptions) -> Prepared:
    """Read, sniff and decode (a photo) or open (a video): what can run ahead of inference.

    A video given as a path, bytes or a seekable file is streamed, not read into memory.
    """
    t = time.perf_counter()
    name, sha = describe(media), None

    def ms() -> float:
        return (time.perf_counter() - t) * 1e3

    try:
        head = peek(media)
        if head is not None and (found := probe(head)).kind == "video":
            video = bytes(media) if isinstance(media, bytearray | memoryview) else media
            sha = hash_input(video, opts.video_limits.max_bytes)
            limits, side = opts.video_limits, opts.working_min_side
            clip: Clip = VideoClip(video, found.format, limits, side)
            return Prepared(name, sha, None, None, ms(), clip)
        src = read_source(media, opts.max_bytes)
        sha = src.sha256
        found = probe(src.data[:64])
        if found.kind == "video":  # from a stream that could not be rewound
            clip = VideoClip(src.data, found.format, opts.video_limits, opts.working_min_side)
            return Prepared(name, sha, None, None, ms(), clip)
        anim = open_animation(src.data, found.format, opts.video_limits, opts.working_min_side)
        if anim is not None:
            return Prepared(name, sha, None, None, ms(), anim)
        img = decode_image(src.data, found, opts.image_limits, opts.working_min_side)
        return Prepared(name, sha, img, None, ms())
    except MediaError as exc:
        return Prepared(name, sha, None, exc, ms())
    except Exception as exc:  # a bug must not take the caller down: report it, log it
        log.exception("internal error while preparing %s", name)
        return Prepared(name, sha, None, EdgeScreenError(f"{type(exc).__name__}: {exc}"), ms())
