"""Decode a still to upright RGB uint8 at a working size, never bigger than the models need,
and the Pillow steps every still, page and animation frame shares.

One place for each: ``open_image`` (the one ``Image.open``, the HEIF opener registered when
needed), ``pillow_errors`` (the one mapping of Pillow's exceptions to ours), ``shown`` (the one
step to RGB as a viewer shows it, reduced to working size) and ``upright`` (EXIF orientation).
JPEGs are decoded in draft mode (DCT scaling) at the smallest scale that keeps the short side at
``min_side``; other formats are box-reduced by an integer factor right after decoding.

A working image smaller than its original carries a ``Detail``: the undecoded bytes, from which
a region (a small face, for its age chip) is decoded again at a finer scale only when asked.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import ExifTags, Image, JpegImagePlugin, UnidentifiedImageError, features

from . import jpeg_rows
from .errors import CorruptMedia, EdgeScreenError, MediaTooLarge, UnsupportedMedia
from .probe import Probe, check_size


@dataclass(frozen=True)
class ImageLimits:
    """Device-friendly limits, lower than Pillow's own decompression-bomb guard."""

    max_pixels: int = 64_000_000
    max_side: int = 30_000
    max_pages: int = 16  # pictures of a still, every one screened; past it: too_large


Box = tuple[float, float, float, float]  # x0, y0, x1, y1


@dataclass(frozen=True)
class Patch:
    """A region of the upright original at some scale: patch pixel ``(i, j)`` covers original
    ``x0 + j * scale .. x0 + (j + 1) * scale`` (and likewise in y)."""

    rgb: NDArray[np.uint8]
    x0: float
    y0: float
    scale: float  # original pixels per patch pixel

    def to_patch(
        self, x: NDArray[np.float32], y: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Original coordinates (continuous, as boxes are) to this patch's."""
        return (x - self.x0) / self.scale, (y - self.y0) / self.scale


@dataclass(frozen=True)
class Detail:
    """Pixels of the original finer than the working image, decoded again on demand.

    Holds the encoded bytes (the ones the working image came from: no copy, at most the input
    size limit), never decoded pixels. ``patches`` decodes once per call at the coarsest scale
    that is fine enough (JPEG: a DCT scale of 1/8..1; other formats: full size) and keeps only
    the regions asked for, so its peak is one decode of the image at that scale (<= 4 bytes a
    pixel of ``ImageLimits.max_pixels``, what a PNG of that size costs the first decode anyway).
    """

    data: bytes
    found: Probe
    limits: ImageLimits
    width: int  # upright original
    height: int
    working_scale: float  # original pixels per working pixel (the decoder's scale x reduce)

    def finest_scale(self, wanted: float) -> float:
        """The scale (original px per px) ``patches`` gives for a request of ``wanted``."""
        if self.found.format != "JPEG":
            return 1.0
        return float(next((d for d in (8, 4, 2) if d <= wanted), 1))

    def patches(self, boxes: Sequence[Box], wanted: float) -> list[Patch]:
        """Each of ``boxes`` (upright original pixels, clipped to the image) at no more than
        ``wanted`` original pixels per patch pixel where the original has them. A JPEG is
        decoded down to the lowest row a box needs only (``jpeg_rows``)."""
        # It decoded once: damage found here is in data the first decode skipped.
        with pillow_errors(f"{self.found.format} image"):
            im = open_image(self.data, self.found)
            check_size(f"{self.found.format} header", im.width, im.height, self.limits)
            turn = orientation(im)
            d = _draft(im, self.finest_scale(wanted))
            up_w, up_h = upright_size(im.width, im.height, turn)
            regions: list[tuple[int, int, int, int] | None] = []
            for x0, y0, x1, y1 in boxes:
                # The region in upright decoded pixels, then where it lies before the transpose,
                # so only the region is transposed and copied out.
                px0, py0 = max(0, math.floor(x0 / d)), max(0, math.floor(y0 / d))
                px1, py1 = min(up_w, math.ceil(x1 / d)), min(up_h, math.ceil(y1 / d))
                regions.append((px0, py0, px1, py1) if px1 > px0 and py1 > py0 else None)
            stored = [_stored_box(r, up_w, up_h, turn) for r in regions if r is not None]
            im = _top_rows(self, im, d, max((b[3] for b in stored), default=0))
            im.load()
            im = to_rgb(im)
            method = _TRANSPOSE.get(turn)
            out = []
            for (x0, y0, _, _), region in zip(boxes, regions, strict=True):
                if region is None:
                    out.append(Patch(np.zeros((0, 0, 3), np.uint8), x0, y0, d))
                    continue
                crop = im.crop(_stored_box(region, up_w, up_h, turn))
                if method is not None:
                    crop = crop.transpose(method)
                rgb = np.ascontiguousarray(np.asarray(crop, dtype=np.uint8))
                out.append(Patch(rgb, region[0] * d, region[1] * d, d))
            return out


def _top_rows(detail: Detail, im: Image.Image, d: float, rows: int) -> Image.Image:
    """``im`` (a JPEG drafted at scale ``d``, not loaded), or the same picture opened from a
    copy of its bytes that declares only the stored rows down to ``rows`` (decoded px) plus
    ``jpeg_rows.MARGIN`` original rows: the same pixels above that, without decoding the rest."""
    if not isinstance(im, JpegImagePlugin.JpegImageFile):
        return im
    data = jpeg_rows.top_rows(detail.data, math.ceil(rows * d) + jpeg_rows.MARGIN)
    if data is None:
        return im
    top = open_image(data, detail.found)
    if _draft(top, d) != d or top.width != im.width or top.height < rows:
        return im  # not the same decode (cannot happen with libjpeg; checked, not assumed)
    return top


def _stored_box(
    box: tuple[int, int, int, int], up_w: int, up_h: int, orientation: int
) -> tuple[int, int, int, int]:
    """Where an upright-pixel box lies in the image as stored (before the EXIF transpose)."""
    x0, y0, x1, y1 = box
    if orientation == 2:  # mirrored left-right
        return up_w - x1, y0, up_w - x0, y1
    if orientation == 3:
        return up_w - x1, up_h - y1, up_w - x0, up_h - y0
    if orientation == 4:
        return x0, up_h - y1, x1, up_h - y0
    if orientation == 5:  # transposed: upright (x, y) is stored (y, x)
        return y0, x0, y1, x1
    if orientation == 6:
        return y0, up_w - x1, y1, up_w - x0
    if orientation == 7:
        return up_h - y1, up_w - x1, up_h - y0, up_w - x0
    if orientation == 8:
        return up_h - y1, x0, up_h - y0, x1
    return box


@dataclass(frozen=True)
class DecodedImage:
    """Upright RGB pixels at working size, with the original (upright) dimensions; ``detail``
    when the original has finer pixels than ``rgb`` (a photo decoded smaller)."""

    rgb: NDArray[np.uint8]
    width: int
    height: int
    format: str
    detail: Detail | None = None


def _heif_opener() -> None:
    """Register pillow-heif on first use, not at import; unsupported if it is not installed.

    Pillow decodes AVIF itself where it was built with libavif; HEIC always needs pillow-heif.
    """
    try:
        import pillow_heif
    except ImportError:
        raise UnsupportedMedia(
            "HEIF/AVIF images need the optional extra: pip install 'edge-screen[heif]'"
        ) from None
    pillow_heif.register_heif_opener()


_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def as_shown(im: Image.Image, rgb_im: Image.Image) -> Image.Image:
    """``rgb_im`` (``im`` converted) through ``im``'s embedded RGB colour profile to sRGB, as a
    colour-managed viewer shows it: a profile can remap colours entirely (even invert them).
    A profile that cannot be read is ignored, as viewers ignore it."""
    icc = im.info.get("icc_profile")
    if not icc or rgb_im.mode != "RGB":
        return rgb_im
    try:
        from PIL import ImageCms  # LittleCMS: in Pillow's wheels, optional in a source build
    except ImportError:
        return rgb_im
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if src.profile.xcolor_space.strip() != "RGB":
            return rgb_im
        srgb = ImageCms.createProfile("sRGB")
        out = ImageCms.profileToProfile(rgb_im, src, srgb, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return rgb_im
    return out if isinstance(out, Image.Image) else rgb_im


# A viewer draws a transparent picture on its background, light or dark (dark mode): both are
# screened, so no picture hides in the alpha channel of either.
BACKGROUNDS = ((255, 255, 255), (0, 0, 0))


def varying_alpha(im: Image.Image) -> bool:
    """Whether the current frame has transparency that is not everywhere opaque: then what a
    viewer shows depends on the background it is drawn on (decodes the frame to find out).
    ``UnsupportedMedia`` for a transparency that cannot be drawn as a viewer draws it."""
    if im.mode not in _ALPHA_MODES and "transparency" not in im.info:
        return False
    mask = _deep_opaque(im)
    if mask is not None:
        return not mask.all()
    value = im.info.get("transparency")
    if isinstance(value, tuple) and any(isinstance(c, int) and c > 255 for c in value):
        # A 16-bit PNG's tRNS colour: Pillow matches it against the 8-bit samples it decoded
        # (none match), a viewer against the 16-bit ones; what a viewer draws is unknown here.
        raise UnsupportedMedia("a transparent colour of more than 8 bits (16-bit PNG): the "
                               "decoder cannot draw its transparency as a viewer does")
    lowest = im.convert("RGBA").getchannel("A").getextrema()[0]
    return isinstance(lowest, int | float) and lowest < 255


_DEEP_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
# Rows scaled at a time: a 64 MP 16-bit picture (a 141 KB flat PNG) once cost 1.3 GB in full-size
# float32 copies (found by fuzzing, docs/fuzzing.md); in bands it costs its uint8 result.
_BAND_PIXELS = 1 << 20


def _deep_to_uint8(im: Image.Image) -> NDArray[np.uint8]:
    """A 16-bit, 32-bit integer or float grey picture scaled to 8 bits in bands of rows (the
    same float32 arithmetic on every band, so the result does not depend on the band size)."""
    arr = np.asarray(im)
    rows = max(1, _BAND_PIXELS // max(arr.shape[1], 1))
    bands = [arr[i : i + rows] for i in range(0, arr.shape[0], rows)]
    if im.mode.startswith("I;16"):
        lo, hi = 0.0, 65535.0
    else:
        lows, highs = [], []
        for band in bands:
            values = band.astype(np.float32)
            finite = values[np.isfinite(values)]
            if finite.size:
                lows.append(float(finite.min()))
                highs.append(float(finite.max()))
        lo, hi = (min(lows), max(highs)) if lows else (0.0, 1.0)
        if im.mode == "I" and lo >= 0:
            lo, hi = 0.0, 65535.0 if hi > 255 else 255.0
    out = np.empty(arr.shape, np.uint8)
    for i, band in zip(range(0, arr.shape[0], rows), bands, strict=True):
        scaled = (np.nan_to_num(band.astype(np.float32), nan=lo, posinf=hi, neginf=lo) - lo) * (
            255.0 / max(hi - lo, 1e-12)
        )
        out[i : i + rows] = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
    return out


def _deep_opaque(im: Image.Image) -> NDArray[np.bool_] | None:
    """Where a deep grey picture with one transparent stored value (PNG tRNS) is opaque; None
    for other pictures. Pillow's RGBA conversion clips the values to 8 bits before it matches
    them: every value past 255 came out white, and a transparent value past 255 matched none."""
    value = im.info.get("transparency")
    if im.mode not in _DEEP_MODES or isinstance(value, bool) or not isinstance(value, int):
        return None
    opaque: NDArray[np.bool_] = np.asarray(im) != value
    return opaque


def to_rgb(im: Image.Image, background: tuple[int, int, int] | None = None) -> Image.Image:
    """Every Pillow mode to RGB; high bit depths are scaled, not clipped. With ``background``,
    transparency is composited onto it, as a viewer draws the picture; without, alpha is
    dropped and the stored colours are what is screened."""
    if background is not None and (im.mode in _ALPHA_MODES or "transparency" in im.info):
        mask = _deep_opaque(im)
        if mask is not None:
            out = Image.new("RGB", im.size, background)
            out.paste(Image.fromarray(_deep_to_uint8(im)).convert("RGB"),
                      mask=Image.fromarray(mask.view(np.uint8) * np.uint8(255)))
            return out
        rgba = im.convert("RGBA")
        out = Image.new("RGB", rgba.size, background)
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    if im.mode in _DEEP_MODES:
        return Image.fromarray(_deep_to_uint8(im)).convert("RGB")
    if im.mode in ("P", "PA"):
        # Palette transparency must go through RGBA to be read at all.
        im = im.convert("RGBA")
    # Alpha is dropped as the reference pipelines do (Pillow's convert), so whatever pixels are
    # stored are what gets screened.
    return im if im.mode == "RGB" else im.convert("RGB")


# EXIF orientation -> the transpose that makes the image upright (as ImageOps.exif_transpose).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


# What Pillow and its plug-ins raise on damaged data (the AVIF and HEIF decoders raise
# RuntimeError: "Decoding of color planes failed", found by fuzzing).
_DECODE_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, SyntaxError, EOFError)
_DECODE_ERRORS += (IndexError, KeyError, TypeError, RuntimeError, struct.error)


@contextmanager
def pillow_errors(what: str) -> Iterator[None]:
    """Pillow's exceptions on damaged or oversized data as ours, the one mapping for every still,
    page and animation frame (``what`` names the picture: "GIF animation", "TIFF page 2");
    our own errors pass unchanged."""
    try:
        yield
    except EdgeScreenError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaTooLarge(f"{what}: {exc}") from exc
    except MemoryError as exc:
        raise MediaTooLarge(f"{what} needs more memory than is available") from exc
    except UnidentifiedImageError as exc:
        raise CorruptMedia(f"not a readable {what}") from exc
    except _DECODE_ERRORS as exc:
        raise CorruptMedia(f"damaged {what}: {exc}") from exc


def open_image(data: bytes, found: Probe) -> Image.Image:
    """The one ``Image.open`` of encoded bytes (header only, nothing decoded), with the plug-in
    the probe chose and the HEIF opener registered when needed. Raises Pillow's errors: call it
    inside ``pillow_errors``."""
    if found.format == "HEIF" or (found.format == "AVIF" and not features.check("avif")):
        _heif_opener()
    # No warning filters here: warnings.catch_warnings is not thread-safe, and screen_many
    # decodes on several threads. Pillow warns on hostile input (huge or corrupt EXIF);
    # the host decides what to show (the CLI hides Pillow's warnings).
    return Image.open(io.BytesIO(data), formats=[found.format])


def orientation(im: Image.Image) -> int:
    """The current frame's EXIF orientation, 1 (as stored) when it has none or a bad one."""
    value = im.getexif().get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def upright(im: Image.Image, turn: int) -> Image.Image:
    """``im`` turned and mirrored as its EXIF orientation ``turn`` says (viewers show it so)."""
    method = _TRANSPOSE.get(turn)
    return im if method is None else im.transpose(method)


def upright_size(width: int, height: int, turn: int) -> tuple[int, int]:
    """A stored size as the upright picture's (orientations 5 to 8 swap the sides)."""
    return (height, width) if turn in (5, 6, 7, 8) else (width, height)


def reduce_factor(width: int, height: int, min_side: int) -> int:
    """The integer box-reduce factor that keeps the short side at ``min_side`` or more."""
    return max(1, min(width, height) // min_side)


def shown(
    im: Image.Image, min_side: int, background: tuple[int, int, int] | None = None
) -> tuple[Image.Image, int]:
    """The one reduce-to-working-size step, for stills, pages and animation frames: the current
    frame to RGB (drawn on ``background``, see ``to_rgb``), box-reduced by ``reduce_factor``,
    then through its colour profile as a viewer shows it; with the factor used."""
    rgb_im = to_rgb(im, background)
    factor = reduce_factor(rgb_im.width, rgb_im.height, min_side)
    if factor > 1:
        rgb_im = rgb_im.reduce(factor)
    return as_shown(im, rgb_im), factor


def decode_image(data: bytes, found: Probe, limits: ImageLimits, min_side: int) -> DecodedImage:
    """Decode ``data`` (already sniffed as ``found``) to upright RGB near ``min_side``: opened,
    its header's size checked, then ``decode_still``."""
    with pillow_errors(f"{found.format} image"):
        im = open_image(data, found)
    with im:
        check_size(f"{found.format} header", im.width, im.height, limits)
        return decode_still(im, data, found, limits, min_side)


def decode_still(
    im: Image.Image, data: bytes, found: Probe, limits: ImageLimits, min_side: int
) -> DecodedImage:
    """The photo decoder: ``im``, opened from ``data`` and size-checked, decoded (a JPEG in
    draft mode) to upright RGB near ``min_side``. The size reported is the upright original's,
    so boxes can be mapped back to it."""
    with pillow_errors(f"{found.format} image"):
        turn = orientation(im)
        width, height = im.size
        draft = _draft(im, min(width, height) / max(min_side, 1))
        im.load()
        rgb_im, factor = shown(im, min_side)
        rgb = np.ascontiguousarray(np.asarray(upright(rgb_im, turn), dtype=np.uint8))
    full_w, full_h = upright_size(width, height, turn)
    detail = None
    if draft * factor > 1:
        detail = Detail(data, found, limits, full_w, full_h, draft * factor)
    return DecodedImage(rgb, full_w, full_h, found.format, detail)


def _draft(im: Image.Image, scale: float) -> float:
    """Ask a JPEG's decoder for a DCT scale of 1/2, 1/4 or 1/8, the coarsest within ``scale``
    (original px per decoded px); returns the scale it will decode at (1 for other formats)."""
    if not isinstance(im, JpegImagePlugin.JpegImageFile) or scale < 2:
        return 1.0
    width, height = im.size
    got = im.draft("RGB", (max(1, int(width / scale)), max(1, int(height / scale))))
    return width / got[1][2] if got is not None else 1.0
