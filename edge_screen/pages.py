"""Stills of several pictures, every one screened: TIFF pages, MPO (the pictures of a JPEG
multi-picture file), multi-image HEIF (pillow-heif), any multi-frame PIL image, and thumbnails.
(An AVIF sequence is an animation; an AVIF collection of several images, or with thumbnails,
which neither Pillow nor pillow-heif lists, is unsupported: see ``isobmff``.)

Every page is screened, none sampled (``SamplingOptions.max_frames`` does not apply): a viewer
may show any of them. More than ``ImageLimits.max_pages`` pictures make the still unscreenable
(too_large) rather than screened in part; each page's size is checked against the limits before
it is decoded (Pillow checks only the first page's header). Page 0 is decoded in ``prepare``,
as a photo (JPEG draft mode included); the others when screened, one at a time.

Thumbnails are screened, as more pages after the still's own: the JPEG in IFD1 of the EXIF
data of every page (an MPO's pictures each have their own), and the thumbnail images of every
image of a HEIF, which file browsers and some viewers show instead of the picture (a swapped
thumbnail is an old trick), each turned upright as its picture is. An EXIF thumbnail stored
uncompressed (TIFF strips) is not screened: the still is unsupported. (Not yet: the thumbnails
of a HEIF given as a PIL image, and of a PNG whose EXIF follows its pixel data.)

A still with one page and no thumbnail is not a ``PagesClip``: ``open_pages`` returns None and
the photo path decodes it.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Generator
from functools import partial

import numpy as np
from PIL import ExifTags, Image, features

from .decode import (
    _DECODE_ERRORS,
    _TRANSPOSE,
    DecodedImage,
    ImageLimits,
    _heif_opener,
    as_shown,
    decode_image,
    reduce_factor,
    to_rgb,
    varying_alpha,
)
from .errors import CorruptMedia, MediaError, MediaTooLarge, UnsupportedMedia
from .frames import ClipInfo, Frame, SamplingOptions, check_deadline, check_frame_size
from .isobmff import shown_items
from .probe import Probe

Page = Callable[[], DecodedImage]
# Stills whose Pillow plug-in has pages (MPO opens as "JPEG"), or whose EXIF may hold a thumbnail.
PAGED_FORMATS = ("TIFF", "JPEG", "HEIF", "AVIF", "PNG", "WEBP")
_JPEG = Probe("image", "JPEG")
_BACKGROUNDS = ((255, 255, 255), (0, 0, 0))  # a light and a dark viewer
_SUB_IFDS = 330  # TIFF tag: offsets of sub-images (thumbnails, full-size raw data) of a page


class PagesClip:
    """A still of several pictures: page 0 decoded, the others decoded as they are screened."""

    def __init__(
        self, fmt: str, pages: list[Page], thumbnail: bool, close: Callable[[], None]
    ) -> None:
        self._fmt, self._pages, self._thumbnail, self._close = fmt, pages, thumbnail, close
        self._first = decode_page(pages[0], fmt, 0)  # the report's size is the first page's
        self.frames_decoded = 0

    @property
    def info(self) -> ClipInfo:
        first = self._first
        n = len(self._pages)
        return ClipInfo(
            "image", self._fmt, first.width, first.height, None, None, 1, 0, n, self._thumbnail
        )

    def close(self) -> None:
        self._close()

    def frames(self, sampling: SamplingOptions, deadline: float) -> Generator[Frame]:
        """Every page in order, the thumbnail last; ``sampling`` does not thin them out."""
        for i, page in enumerate(self._pages):
            check_deadline(deadline)
            img = self._first if i == 0 else decode_page(page, self._fmt, i)
            self.frames_decoded += 1
            yield Frame(img.rgb, 0.0, True, i, img.width, img.height, img.detail)


def decode_page(page: Page, fmt: str, i: int) -> DecodedImage:
    """Decode page ``i``; Pillow's errors as ours."""
    try:
        return page()
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaTooLarge(f"{fmt} page {i + 1}: {exc}") from exc
    except MemoryError as exc:
        raise MediaTooLarge(f"{fmt} page {i + 1} needs more memory than is available") from exc
    except _DECODE_ERRORS as exc:
        raise CorruptMedia(f"damaged {fmt} page {i + 1}: {exc}") from exc


def pil_page(
    im: Image.Image,
    index: int,
    fmt: str,
    limits: ImageLimits,
    min_side: int,
    background: tuple[int, int, int] | None = None,
) -> DecodedImage:
    """Page ``index`` of an open image, as ``decode_image`` decodes a photo: size checked, RGB,
    reduced to the working size, turned upright by its own EXIF orientation."""
    if index or im.tell():
        im.seek(index)
    w, h = im.size
    check_frame_size(f"{fmt} page {index + 1}", w, h, limits.max_pixels, limits.max_side)
    if w <= 0 or h <= 0:
        raise CorruptMedia(f"{fmt} page {index + 1} is {w}x{h}")
    orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
    rgb_im = to_rgb(im, background)
    factor = reduce_factor(rgb_im.width, rgb_im.height, min_side)
    if factor > 1:
        rgb_im = rgb_im.reduce(factor)
    rgb_im = as_shown(im, rgb_im)
    method = _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    if method is not None:
        rgb_im = rgb_im.transpose(method)
    if orientation in (5, 6, 7, 8):
        w, h = h, w  # the upright original's size, as decode_image reports it
    rgb = np.ascontiguousarray(np.asarray(rgb_im, dtype=np.uint8))
    return DecodedImage(rgb, w, h, fmt)


def count_pages(im: Image.Image, fmt: str, limit: int) -> int:
    """The number of pages, walking no further than page ``limit`` + 1 (a TIFF's count is a
    walk through its chain of directories); ``MediaTooLarge`` past ``limit``."""
    if not getattr(im, "is_animated", False):  # known from the header (n_frames may walk)
        return 1
    count = 1
    try:  # seek page by page: n_frames is wrong after a seek past the end (Pillow 12 TIFF)
        while count <= limit:
            im.seek(count)
            count += 1
    except EOFError:
        pass
    finally:
        im.seek(0)
    if count > limit:
        raise MediaTooLarge(
            f"{fmt} has more than {limit} pages, over the limit: not screened in part"
        )
    return count


def exif_thumbnails(im: Image.Image, fmt: str, count: int) -> list[tuple[bytes, object]]:
    """The EXIF thumbnail of each page that has one, with that page's EXIF orientation."""
    found = []
    try:
        for i in range(count):
            if i:
                im.seek(i)
            thumb = exif_thumbnail(im, fmt)
            if thumb is not None:
                found.append((thumb, im.getexif().get(ExifTags.Base.Orientation, 1)))
    finally:
        if count > 1:
            im.seek(0)
    return found


def exif_thumbnail(im: Image.Image, fmt: str) -> bytes | None:
    """The JPEG thumbnail in IFD1 of the image's EXIF data, if it has one."""
    raw = im.info.get("exif")
    if fmt == "TIFF" or not isinstance(raw, bytes):
        return None  # a TIFF's IFD1 is its second page: screened as one
    ifd1 = im.getexif().get_ifd(ExifTags.IFD.IFD1)
    if not ifd1:
        return None
    tiff = raw[6:] if raw.startswith(b"Exif\x00\x00") else raw
    at, size = ifd1.get(ExifTags.Base.JpegIFOffset), ifd1.get(ExifTags.Base.JpegIFByteCount)
    if isinstance(at, int) and isinstance(size, int) and size > 0:
        if at < 0 or at + size > len(tiff):
            raise CorruptMedia(f"{fmt} EXIF thumbnail lies outside the EXIF data")
        return tiff[at : at + size]
    if ExifTags.Base.StripOffsets in ifd1:
        raise UnsupportedMedia(f"{fmt} EXIF thumbnail is uncompressed: it is not screened")
    return None


def heif_thumbnails(im: Image.Image, count: int) -> list[tuple[int, int]]:
    """(image, thumbnail) indices of the thumbnails the images of a HEIF carry (pillow-heif
    lists each image's as ``info["thumbnails"]``)."""
    found = []
    for i in range(count):
        im.seek(i)
        found += [(i, j) for j in range(len(im.info.get("thumbnails") or ()))]
    im.seek(0)
    return found


def heif_thumbnail(
    data: bytes, image: int, index: int, limits: ImageLimits, min_side: int
) -> DecodedImage:
    """Thumbnail ``index`` of image ``image`` of a HEIF, decoded as a page."""
    import pillow_heif  # registered already: a HEIF was opened

    thumb = pillow_heif.open_heif(io.BytesIO(data))[image].get_thumbnail(index).to_pillow()
    return pil_page(thumb, 0, "HEIF thumbnail", limits, min_side)


def open_image(data: bytes, found: Probe) -> Image.Image:
    """Pillow's image of ``data`` (header only), with the HEIF opener registered when needed."""
    if found.format == "HEIF" or (found.format == "AVIF" and not features.check("avif")):
        _heif_opener()
    return Image.open(io.BytesIO(data), formats=[found.format])


def pages_of(
    im: Image.Image,
    fmt: str,
    limits: ImageLimits,
    min_side: int,
    first: Page | None = None,
    close: Callable[[], None] | None = None,
    data: bytes | None = None,
) -> PagesClip | None:
    """A ``PagesClip`` of ``im``'s pages and thumbnails, or None for a still of one picture.
    ``first`` decodes page 0 (default: from ``im``); ``close`` ends it (default: ``im.close``);
    ``data``, the encoded still, is where a HEIF's thumbnails are read from."""
    try:
        count = count_pages(im, fmt, limits.max_pages)
        if fmt == "TIFF":
            _no_sub_images(im, count)
        exif = exif_thumbnails(im, fmt, count)
        heif = heif_thumbnails(im, count) if fmt == "HEIF" and data is not None else []
    except MediaError:
        raise
    except _DECODE_ERRORS as exc:
        raise CorruptMedia(f"damaged {fmt} pages or EXIF data: {exc}") from exc
    thumbs = len(heif) + len(exif)
    # Transparency: a viewer draws the picture on its background, light or dark (dark mode):
    # both are screened, so no picture hides in the alpha channel of either.
    try:
        im.seek(0)
        alpha = varying_alpha(im)
    except _DECODE_ERRORS as exc:
        raise CorruptMedia(f"damaged {fmt} transparency: {exc}") from exc
    if count + thumbs == 1 and not alpha:
        return None
    if count + thumbs > limits.max_pages:
        raise MediaTooLarge(
            f"{fmt} has {count} pages and {thumbs} thumbnails, over the limit of "
            f"{limits.max_pages} pictures: not screened in part"
        )
    if alpha:
        pages: list[Page] = [
            partial(pil_page, im, i, fmt, limits, min_side, bg)
            for i in range(count)
            for bg in _BACKGROUNDS
        ]
    else:
        pages = [first or partial(pil_page, im, 0, fmt, limits, min_side)]
        pages += [partial(pil_page, im, i, fmt, limits, min_side) for i in range(1, count)]
    pages += [partial(_exif_page, t, turn, limits, min_side) for t, turn in exif]
    if heif and data is not None:
        pages += [partial(heif_thumbnail, data, i, j, limits, min_side) for i, j in heif]
    return PagesClip(fmt, pages, thumbs > 0, close or im.close)


def _exif_page(
    thumb: bytes, orientation: object, limits: ImageLimits, min_side: int
) -> DecodedImage:
    """An EXIF thumbnail, turned upright by its picture's orientation (viewers turn it so)."""
    img = decode_image(thumb, _JPEG, limits, min_side)
    method = _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    if method is None:
        return img
    rgb = np.ascontiguousarray(np.asarray(Image.fromarray(img.rgb).transpose(method)))
    w, h = (img.height, img.width) if orientation in (5, 6, 7, 8) else (img.width, img.height)
    return DecodedImage(rgb, w, h, img.format)


def _no_sub_images(im: Image.Image, count: int) -> None:
    """Refuse a TIFF with SubIFDs (tag 330): pictures Pillow does not list as pages (a DNG keeps
    its full image there, and raw and TIFF tools show them) would go unscreened."""
    for i in range(count):
        im.seek(i)
        if _SUB_IFDS in getattr(im, "tag_v2", {}):
            raise UnsupportedMedia(
                f"TIFF page {i + 1} has sub-images (SubIFDs), which are not decoded here: "
                "not screened in part"
            )
    im.seek(0)


def _only_the_primary(data: bytes) -> None:
    """Refuse an AVIF whose items hold pictures besides the primary (a collection) or its
    thumbnails: only the primary decodes here, and the rest would go unscreened."""
    try:
        items = shown_items(data)
    except (ValueError, struct.error, IndexError) as exc:
        raise CorruptMedia(f"damaged AVIF item boxes: {exc}") from exc
    if items is not None and (items.others or items.thumbnails):
        raise UnsupportedMedia(
            f"AVIF with {items.others} more picture(s) and {items.thumbnails} thumbnail(s) "
            "besides its primary image: only the primary decodes here, so it is not screened "
            "in part"
        )


def open_pages(data: bytes, found: Probe, limits: ImageLimits, min_side: int) -> PagesClip | None:
    """A ``PagesClip`` when the still in ``data`` has more than one page or an EXIF thumbnail,
    else None (one picture: the photo path decodes it)."""
    if found.format not in PAGED_FORMATS:
        return None
    if found.format == "AVIF":
        _only_the_primary(data)
    try:
        im = open_image(data, found)
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaTooLarge(str(exc)) from exc
    except _DECODE_ERRORS:
        return None  # the photo path reports it, as it always has
    try:
        first = partial(decode_image, data, found, limits, min_side)
        clip = pages_of(im, found.format, limits, min_side, first, data=data)
    except MediaError:
        im.close()
        raise
    if clip is None:
        im.close()
    return clip
