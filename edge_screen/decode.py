"""Decode an image to upright RGB uint8 at a working size, never bigger than the models need.

Limits are checked from the header before any pixel is decoded; JPEGs are decoded in draft
mode (DCT scaling) at the smallest scale that keeps the short side at ``min_side``; other
formats are box-reduced by an integer factor right after decoding.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import ExifTags, Image, UnidentifiedImageError, features

from .errors import CorruptMedia, MediaTooLarge, UnsupportedMedia
from .probe import Probe, check_dimensions


@dataclass(frozen=True)
class ImageLimits:
    """Device-friendly limits, lower than Pillow's own decompression-bomb guard."""

    max_pixels: int = 64_000_000
    max_side: int = 30_000


@dataclass(frozen=True)
class DecodedImage:
    """Upright RGB pixels at working size, with the original (upright) dimensions."""

    rgb: NDArray[np.uint8]
    width: int
    height: int
    format: str


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


def to_rgb(im: Image.Image) -> Image.Image:
    """Every Pillow mode to RGB; high bit depths are scaled, not clipped."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float32)
        finite = arr[np.isfinite(arr)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if im.mode.startswith("I;16"):
            lo, hi = 0.0, 65535.0
        elif im.mode == "I" and lo >= 0:
            lo, hi = 0.0, 65535.0 if hi > 255 else 255.0
        scaled = (np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo) - lo) * (
            255.0 / max(hi - lo, 1e-12)
        )
        return Image.fromarray(np.clip(scaled + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
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


def reduce_factor(width: int, height: int, min_side: int) -> int:
    return max(1, min(width, height) // min_side)


def decode_image(data: bytes, found: Probe, limits: ImageLimits, min_side: int) -> DecodedImage:
    """Decode ``data`` (already sniffed as ``found``) to upright RGB near ``min_side``."""
    if found.format == "HEIF" or (found.format == "AVIF" and not features.check("avif")):
        _heif_opener()
    try:
        # No warning filters here: warnings.catch_warnings is not thread-safe, and screen_many
        # decodes on several threads. Pillow warns on hostile input (huge or corrupt EXIF);
        # the host decides what to show (the CLI hides Pillow's warnings).
        im: Image.Image = Image.open(io.BytesIO(data), formats=[found.format])
        width, height = im.size
        check_dimensions(found.format, width, height, limits.max_pixels, limits.max_side)
        if found.format == "JPEG":
            scale = min(width, height) / max(min_side, 1)
            if scale >= 2:
                im.draft("RGB", (max(1, int(width / scale)), max(1, int(height / scale))))
        im.load()
        orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
        rgb_im = to_rgb(im)
        factor = reduce_factor(rgb_im.width, rgb_im.height, min_side)
        if factor > 1:
            rgb_im = rgb_im.reduce(factor)
        method = _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
        if method is not None:
            rgb_im = rgb_im.transpose(method)
        rgb = np.asarray(rgb_im, dtype=np.uint8)
    except (MediaTooLarge, CorruptMedia, UnsupportedMedia):
        raise
    except Image.DecompressionBombError as exc:
        raise MediaTooLarge(str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise CorruptMedia(f"not a readable {found.format} image") from exc
    except _DECODE_ERRORS as exc:
        raise CorruptMedia(f"damaged {found.format} data: {exc}") from exc
    except MemoryError as exc:
        raise MediaTooLarge(f"{found.format} image needs more memory than is available") from exc
    # The size reported is of the upright original, so boxes can be mapped back to it.
    swapped = orientation in (5, 6, 7, 8)
    full_w, full_h = (height, width) if swapped else (width, height)
    return DecodedImage(np.ascontiguousarray(rgb), full_w, full_h, found.format)
