"""Stills of several pictures, every one screened: TIFF pages, MPO (the pictures of a JPEG
multi-picture file), multi-image HEIF (pillow-heif), any multi-frame PIL image, and thumbnails.
(An AVIF sequence is an animation; an AVIF collection of several images, or with thumbnails,
which neither Pillow nor pillow-heif lists, is unsupported: see ``isobmff.only_the_primary``.)

Every page is screened, none sampled (``SamplingOptions.max_frames`` does not apply): a viewer
may show any of them. More than ``ImageLimits.max_pages`` pictures make the still unscreenable
(too_large) rather than screened in part; each page's size is checked against the limits before
it is decoded (Pillow checks only the first page's header). Page 0 is decoded in ``prepare``,
as a photo (JPEG draft mode included); the others when screened, one at a time.

Thumbnails are screened, as more pages after the still's own: the JPEG in IFD1 of the EXIF
data of every page (an MPO's pictures each have their own), and the thumbnail images of every
image of a HEIF, which file browsers and some viewers show instead of the picture (a swapped
thumbnail is an old trick), each turned upright as its picture is. An EXIF thumbnail stored
uncompressed (TIFF strips) is not screened: the still is unsupported. A PNG's EXIF is read
after its pixels are loaded, so an eXIf chunk after IDAT counts too. (Not yet: the thumbnails
of a HEIF given as a PIL image.)

A still with one page, no thumbnail and no transparency is not a ``PagesClip``: ``pages_of``
returns None and the photo decoder (``decode.decode_still``) decodes it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Generator
from functools import partial

import numpy as np
from PIL import ExifTags, Image

from .decode import (
    BACKGROUNDS,
    DecodedImage,
    ImageLimits,
    decode_image,
    orientation,
    pillow_errors,
    shown,
    upright,
    upright_size,
    varying_alpha,
)
from .errors import CorruptMedia, MediaTooLarge, UnsupportedMedia
from .frames import ClipInfo, Frame, SamplingOptions, check_deadline
from .probe import Probe, check_size

Page = Callable[[], DecodedImage]
_JPEG = Probe("image", "JPEG")
_SUB_IFDS = 330  # TIFF tag: offsets of sub-images (thumbnails, full-size raw data) of a page


class PagesClip:
    """A still of several pictures: page 0 decoded, the others decoded as they are screened."""

    def __init__(
        self, fmt: str, pages: list[Page], thumbnail: bool, close: Callable[[], None]
    ) -> None:
        self._fmt, self._pages, self._thumbnail, self._close = fmt, pages, thumbnail, close
        self._first = _decode(pages[0], fmt, 0)  # the report's size is the first page's
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
            img = self._first if i == 0 else _decode(page, self._fmt, i)
            self.frames_decoded += 1
            yield Frame(img.rgb, 0.0, True, i, img.width, img.height, img.detail)


def _decode(page: Page, fmt: str, i: int) -> DecodedImage:
    """Decode page ``i``; Pillow's errors as ours."""
    with pillow_errors(f"{fmt} page {i + 1}"):
        return page()


def pil_page(
    im: Image.Image,
    index: int,
    fmt: str,
    limits: ImageLimits,
    min_side: int,
    background: tuple[int, int, int] | None = None,
) -> DecodedImage:
    """Page ``index`` of an open image, as ``decode_still`` decodes a photo but without draft
    mode (the image may be the caller's): size checked, as shown, upright by its own EXIF."""
    if index or im.tell():
        im.seek(index)
    w, h = im.size
    check_size(f"{fmt} page {index + 1}", w, h, limits)
    turn = orientation(im)
    rgb_im = upright(shown(im, min_side, background)[0], turn)
    w, h = upright_size(w, h, turn)
    return DecodedImage(np.ascontiguousarray(np.asarray(rgb_im, dtype=np.uint8)), w, h, fmt)


def _any_alpha(im: Image.Image, fmt: str, count: int, limits: ImageLimits) -> bool:
    """Whether any page has transparency that is not everywhere opaque (then every page is
    screened on both backgrounds): page 0 alone let a later page hide a picture in its alpha.
    Each page's size is checked before it is decoded to find out."""
    try:
        for i in range(count):
            im.seek(i)
            check_size(f"{fmt} page {i + 1}", *im.size, limits)
            if varying_alpha(im):
                return True
        return False
    finally:
        im.seek(0)


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


def exif_thumbnails(im: Image.Image, fmt: str, count: int) -> list[tuple[bytes, int]]:
    """The EXIF thumbnail of each page that has one, with that page's EXIF orientation."""
    found = []
    try:
        for i in range(count):
            if i:
                im.seek(i)
            thumb = exif_thumbnail(im, fmt)
            if thumb is not None:
                found.append((thumb, orientation(im)))
    finally:
        if count > 1:
            im.seek(0)
    return found


def exif_thumbnail(im: Image.Image, fmt: str) -> bytes | None:
    """The JPEG thumbnail in IFD1 of the image's EXIF data, if it has one."""
    if fmt == "TIFF":
        return None  # a TIFF's IFD1 is its second page: screened as one
    exif = im.getexif()  # first: a PNG's eXIf chunk after IDAT is read only once it loads
    raw = im.info.get("exif")
    if not isinstance(raw, bytes):
        return None
    ifd1 = exif.get_ifd(ExifTags.IFD.IFD1)
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


def pages_of(
    im: Image.Image,
    fmt: str,
    limits: ImageLimits,
    min_side: int,
    close: Callable[[], None],
    data: bytes | None = None,
) -> PagesClip | None:
    """A ``PagesClip`` of ``im``'s pages and thumbnails (``close`` ends it), or None for a still
    of one opaque picture. ``data``, the encoded still ``im`` was opened from, decodes page 0 as
    a photo (JPEG draft mode) and holds a HEIF's thumbnails; without it (a caller's image),
    page 0 is converted from ``im``."""
    with pillow_errors(f"{fmt} pages or EXIF data"):
        count = count_pages(im, fmt, limits.max_pages)
        if fmt == "TIFF":
            _no_sub_images(im, count)
        exif = exif_thumbnails(im, fmt, count)
        heif = heif_thumbnails(im, count) if fmt == "HEIF" and data is not None else []
    thumbs = len(heif) + len(exif)
    # Transparency: a viewer draws the picture on its background, light or dark (dark mode):
    # both are screened, so no picture hides in the alpha channel of either.
    with pillow_errors(f"{fmt} transparency"):
        alpha = _any_alpha(im, fmt, count, limits)
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
            for bg in BACKGROUNDS
        ]
    else:
        # Page 0 of encoded bytes from a decoder of its own: the walk above moved this one,
        # and JPEG draft mode needs a decoder that has not been moved.
        found = Probe("image", fmt)
        first = partial(decode_image, data, found, limits, min_side) if data is not None else None
        pages = [first or partial(pil_page, im, 0, fmt, limits, min_side)]
        pages += [partial(pil_page, im, i, fmt, limits, min_side) for i in range(1, count)]
    pages += [partial(_exif_page, t, turn, limits, min_side) for t, turn in exif]
    if heif and data is not None:
        pages += [partial(heif_thumbnail, data, i, j, limits, min_side) for i, j in heif]
    return PagesClip(fmt, pages, thumbs > 0, close)


def _exif_page(thumb: bytes, turn: int, limits: ImageLimits, min_side: int) -> DecodedImage:
    """An EXIF thumbnail, turned upright by its picture's orientation (viewers turn it so)."""
    img = decode_image(thumb, _JPEG, limits, min_side)
    if turn == 1:
        return img
    rgb = np.ascontiguousarray(np.asarray(upright(Image.fromarray(img.rgb), turn)))
    w, h = upright_size(img.width, img.height, turn)
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
