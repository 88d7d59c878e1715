"""The front half of screening, before any model runs: read the input, sniff its format, decode
a photo to working size or open a video, an animation or a still of several pages. It runs on a
decode thread, ahead of inference (``Screener.screen_many``), and never raises for bad media:
the error is kept. It raises ``NotMedia`` (a ``TypeError``) for an input ``screen()`` cannot
take at all (see ``source``): that is a mistake in the call, not in the media.

The input flows one way: ``source`` opens (or reads) it once; ``probe`` says what it is from its
first bytes, once; one dispatch hands it to the video decoder (``video``), or opens it with
Pillow once (``decode.open_image``) and hands that image to the animation, multi-page or photo
decoder (``_picture``, which also takes a caller's PIL image), the header's frame size checked
once with the limits of what it turned out to be (``probe.check_size``).

The item's time budget (``SamplingOptions.time_budget_s``) starts here: hashing a video (up to
``VideoLimits.max_bytes``) runs against it, and the screener gives the frames what is left of it
(``Prepared.decode_ms`` is what prepare spent). A photo's PDQ is computed here too, from its
working image (``hashes``), so in ``screen_many`` it overlaps the previous item's inference.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .animation import AnimationClip, is_animation
from .decode import DecodedImage, ImageLimits, decode_still, open_image, pillow_errors
from .errors import EdgeScreenError, MediaError, NotMedia
from .frames import Clip, ClipInfo, Frame, SamplingOptions
from .hashes import Turned, still_hash
from .isobmff import (
    as_still,
    has_movie,
    has_primary_picture,
    image_sequence,
    only_the_primary,
)
from .motion import embedded_video
from .options import ScreenerOptions
from .pages import pages_of, pil_page
from .pdq import PdqHash
from .probe import Probe, check_size, probe
from .source import MediaInput, OpenedInput, check_input, describe
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
    decode_ms: float  # all of prepare's time, hashing included
    clip: Clip | None = None  # opened; its frames decode with the models
    pdq: PdqHash | None = None  # a photo's, hashed here (on the decode thread)
    hash_ms: float = 0.0  # of ``decode_ms``, the time spent hashing
    turned: Turned = ()  # the photo's other orientations (``hashes.still_hash``)


def prepare(media: MediaInput, opts: ScreenerOptions) -> Prepared:
    """Read, sniff and decode (a photo) or open (a video): what can run ahead of inference.

    A video given as a path, bytes or a seekable file is streamed, not read into memory.
    Raises ``NotMedia`` (``TypeError``) for an object that is no ``MediaInput``.
    """
    check_input(media)
    t = time.perf_counter()
    deadline = t + opts.sampling.time_budget_s
    name = describe(media)
    src: OpenedInput | None = None

    def prepared(
        image: DecodedImage | None, error: EdgeScreenError | None, clip: Clip | None = None
    ) -> Prepared:
        sha = src.sha256 if src is not None else None
        pdq, hash_ms = None, 0.0
        turned: Turned = ()
        if image is not None and opts.hashes:  # the pixels the models see: no second decode
            th = time.perf_counter()
            pdq, turned = still_hash(image.rgb)
            hash_ms = (time.perf_counter() - th) * 1e3
        ms = (time.perf_counter() - t) * 1e3
        return Prepared(name, sha, image, error, ms, clip, pdq, hash_ms, turned)

    try:
        if isinstance(media, np.ndarray):
            out: DecodedImage | Clip = array_image(media, opts)
        elif isinstance(media, Image.Image):
            im = media  # the caller's: left open, at its first frame
            out = _picture(im, im.format or "PIL", opts, lambda: im.seek(0))
        else:
            with OpenedInput(media, opts.max_bytes) as src:
                out = _encoded(src, opts, deadline)
    except NotMedia:  # a text stream, found when it was read: the caller's mistake
        raise
    except MediaError as exc:
        return prepared(None, exc)
    except Exception as exc:  # a bug must not take the caller down: report it, log it
        log.exception("internal error while preparing %s", name)
        return prepared(None, EdgeScreenError(f"{type(exc).__name__}: {exc}"))
    if isinstance(out, DecodedImage):
        return prepared(out, None)
    return prepared(None, None, out)


def _encoded(src: OpenedInput, opts: ScreenerOptions, deadline: float) -> DecodedImage | Clip:
    """The one dispatch of encoded media: probed once from its first bytes, then streamed to
    the video decoder, or read and opened with Pillow once for ``_picture``."""
    found = probe(src.head)
    if found.kind == "video" and image_sequence(src.head):
        return _image_sequence(src.read(deadline), found, opts)
    if found.kind == "video":
        video = src.stream(opts.video_limits.max_bytes, deadline)
        return VideoClip(video, found.format, opts.video_limits, opts.working_min_side)
    data = src.read(deadline)
    if found.format in ("AVIF", "HEIF") and has_movie(data):  # tracks behind an image brand
        return _image_sequence(data, found, opts)
    if found.format == "AVIF":  # a sequence too: its item boxes may declare more pictures
        only_the_primary(data)
    with pillow_errors(f"{found.format} image"):
        im = open_image(data, found)
    picture = _picture(im, found.format, opts, im.close, data)
    motion = embedded_video(data) if found.format == "JPEG" else None
    if motion is None:
        return picture
    # A Motion Photo: gallery apps play the video after the JPEG, so it is screened too.
    still = StillClip(picture) if isinstance(picture, DecodedImage) else picture
    try:
        clip = VideoClip(motion, "MP4 in JPEG", opts.video_limits, opts.working_min_side)
    except BaseException:
        still.close()
        raise
    return WithCover(still, clip)


def _image_sequence(data: bytes, found: Probe, opts: ScreenerOptions) -> Clip:
    """An AVIF or HEIF sequence (chosen by its boxes, not its brand): the tracks a player plays,
    and the primary still item that image viewers and file browsers show instead (neither may
    hide the other), screened as a cover."""
    heif = found.format == "HEIF"
    if not heif:
        only_the_primary(data)  # nor more pictures or thumbnails beside the primary
    clip = VideoClip(data, f"{found.format} sequence", opts.video_limits, opts.working_min_side)
    if not has_primary_picture(data):
        return clip
    try:
        # libavif decodes the primary item once no sequence brand is left; libheif always does
        still_bytes = data if heif else as_still(data)
        fmt = "HEIF" if heif else "AVIF"
        with pillow_errors(f"{fmt} primary image"):
            im = open_image(still_bytes, Probe("image", fmt))
        still = _picture(im, fmt, opts, im.close, still_bytes)
    except BaseException:
        clip.close()
        raise
    return WithCover(StillClip(still) if isinstance(still, DecodedImage) else still, clip)


class StillClip:
    """A decoded photo as a clip of one frame (with its PDQ, when it was hashed already)."""

    def __init__(self, image: DecodedImage, pdq: PdqHash | None = None, turned: Turned = ()
                 ) -> None:
        self.image = image
        self.pdq = pdq
        self.turned = turned
        self.frames_decoded = 1

    @property
    def info(self) -> ClipInfo:
        img = self.image
        return ClipInfo("image", img.format, img.width, img.height, None, None)

    def frames(self, sampling: SamplingOptions, deadline: float) -> Generator[Frame]:
        img = self.image
        yield Frame(img.rgb, 0.0, keyframe=True, width=img.width, height=img.height,
                    detail=img.detail, pdq=self.pdq, turned=self.turned)

    def close(self) -> None:
        pass


class WithCover:
    """A clip and a picture the same file shows besides it, counted as one more cover."""

    def __init__(self, cover: Clip, clip: Clip) -> None:
        self._cover, self._clip = cover, clip
        self.frames_decoded = 0

    @property
    def info(self) -> ClipInfo:
        i = self._clip.info
        return replace(i, streams=i.streams + 1, covers=i.covers + 1)

    def frames(self, sampling: SamplingOptions, deadline: float) -> Generator[Frame]:
        for part in (self._cover, self._clip):
            for frame in part.frames(sampling, deadline):
                self.frames_decoded = self._cover.frames_decoded + self._clip.frames_decoded
                if part is self._cover:  # its own size for face boxes, its own tile scan
                    w, h = frame.width or part.info.width, frame.height or part.info.height
                    frame = replace(frame, part=-1 - frame.part, width=w, height=h)
                yield frame
        self.frames_decoded = self._cover.frames_decoded + self._clip.frames_decoded

    def close(self) -> None:
        self._cover.close()
        self._clip.close()


def _picture(
    im: Image.Image,
    fmt: str,
    opts: ScreenerOptions,
    close: Callable[[], None],
    data: bytes | None = None,
) -> DecodedImage | Clip:
    """An open Pillow image to the animation, multi-page or photo decoder, its header's frame
    size checked with the limits of that kind. ``data``: the encoded bytes it was opened from
    (None for a caller's image: no draft mode, no HEIF thumbnails); ``close`` ends the image,
    here on failure or once a photo is decoded, else with the clip."""
    side, limits = opts.working_min_side, opts.image_limits
    try:
        with pillow_errors(f"{fmt} image"):
            if is_animation(im, fmt):
                check_size(f"{fmt} animation header", im.width, im.height, opts.video_limits)
                return AnimationClip(im, fmt, opts.video_limits, side, close)
            check_size(f"{fmt} header", im.width, im.height, limits)
            pages = pages_of(im, fmt, limits, side, close, data)
            if pages is not None:
                return pages
            if data is None:
                still = pil_page(im, 0, fmt, limits, side)
            else:
                still = decode_still(im, data, Probe("image", fmt), limits, side)
    except BaseException:
        close()
        raise
    close()
    return still


def checked_array(a: NDArray[np.generic], limits: ImageLimits) -> NDArray[np.generic]:
    """``a`` as pixels (HxWx1 made HxW), from its dtype, shape and size alone, before any
    copy: ``NotMedia`` for what no array of pixels is, ``MediaTooLarge`` past ``limits`` (a
    broadcast view's size costs nothing until it is copied)."""
    if a.dtype != np.uint8:
        raise NotMedia(f"cannot screen a {a.dtype} array: pass uint8 RGB pixels (0..255)")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))) or 0 in a.shape:
        raise NotMedia(f"cannot screen an array of shape {a.shape}: pass HxWx3 RGB pixels")
    h, w = a.shape[:2]
    check_size("array", w, h, limits)
    return a


def array_image(a: NDArray[np.generic], opts: ScreenerOptions) -> DecodedImage | Clip:
    """A numpy array of pixels as a decoded photo: HxWx3 uint8 RGB; HxW or HxWx1 grey; HxWx4
    RGBA, screened as a PNG with that alpha is (on a light and a dark background when it is not
    everywhere opaque). ``NotMedia`` for other shapes and dtypes (convert to uint8 first: the
    scale of other types is a guess)."""
    limits, min_side = opts.image_limits, opts.working_min_side
    a = checked_array(a, limits)
    with pillow_errors("array"):
        im = Image.fromarray(np.ascontiguousarray(a))
        if im.mode == "RGBA":
            return _picture(im, "ARRAY", opts, im.close)
        return pil_page(im, 0, "ARRAY", limits, min_side)
