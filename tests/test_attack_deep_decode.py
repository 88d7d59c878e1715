"""Kept from the attack review of the banded deep-picture scaling (``decode._deep_to_uint8``);
each test asserts the safe behaviour: byte orders, degenerate shapes and all-NaN pixels scale
without an error and as one band would; a 16-bit picture's transparent value (PNG tRNS) is
drawn on each background as a viewer draws it, the rest scaled as without it."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from conftest import IMAGES
from PIL import Image

from edge_screen import Screener
from edge_screen import decode as decode_module
from edge_screen.decode import to_rgb

RNG = np.random.default_rng(11)


def _grey(values: np.ndarray, mode: str) -> Image.Image:
    h, w = values.shape
    dtype = {"I;16": "<u2", "I;16L": "<u2", "I;16B": ">u2", "I;16N": "=u2", "I": "<i4",
             "F": "<f4"}[mode]
    return Image.frombytes(mode, (w, h), values.astype(dtype).tobytes())


@pytest.mark.parametrize("mode", ["I;16B", "I;16L", "I;16N"])
def test_every_16_bit_byte_order_scales_as_i16_does(mode: str) -> None:
    values = RNG.integers(0, 65536, (37, 53))
    want = np.asarray(to_rgb(_grey(values, "I;16")))
    assert np.array_equal(np.asarray(to_rgb(_grey(values, mode))), want)
    assert want.std() > 5


@pytest.mark.parametrize("shape", [(1, (1 << 21) + 3), ((1 << 20) + 7, 3), (1, 1)])
@pytest.mark.parametrize("mode", ["I;16B", "I", "F"])
def test_one_row_and_one_column_pictures_scale_as_one_band(
    mode: str, shape: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row wider than a band is a band of its own; a tall thin picture many bands."""
    im = _grey(RNG.integers(0 if mode == "I;16B" else -3000, 60000, shape), mode)
    banded = np.asarray(to_rgb(im))
    monkeypatch.setattr(decode_module, "_BAND_PIXELS", 1 << 40)  # the whole picture one band
    assert banded.shape == (*shape, 3)
    assert np.array_equal(np.asarray(to_rgb(im)), banded)


@pytest.mark.parametrize("fill", [np.nan, np.inf, -np.inf])
def test_a_float_picture_with_no_finite_pixel_scales_to_one_grey(fill: float) -> None:
    im = _grey(np.full((300, 500), fill), "F")
    out = np.asarray(to_rgb(im))
    assert out.shape == (300, 500, 3) and len(np.unique(out)) == 1


def _png_16(values: np.ndarray, transparent: int) -> Image.Image:
    """A 16-bit grey PNG with a tRNS chunk (one stored value drawn transparent), reopened."""
    buf = io.BytesIO()
    Image.fromarray(values.astype(np.uint16)).save(buf, "PNG", transparency=transparent)
    return Image.open(io.BytesIO(buf.getvalue()))


@pytest.mark.parametrize("transparent", [0, 39064])
def test_a_16_bit_picture_with_a_transparent_value_is_drawn_as_a_viewer_draws_it(
    transparent: int,
) -> None:
    """Pillow's RGBA conversion of a 16-bit grey picture clips it to 8 bits first: with a tRNS
    value of 0 every other pixel came out white on both backgrounds (the whole picture hidden
    from the models and the hash); with a value past 255 no pixel was transparent, so a
    two-tone picture drawn by the transparent pixels (t against t+1: one grey to the models)
    went unseen."""
    values = RNG.integers(0, 65536, (40, 60))
    values[values == transparent] = transparent + 1
    values[5:35, 10:30] = transparent  # the shape a viewer shows in the background's colour
    im = _png_16(values, transparent)
    assert decode_module.varying_alpha(im)
    scaled = np.asarray(to_rgb(im))
    inside = np.zeros(values.shape, bool)
    inside[5:35, 10:30] = True
    for background in decode_module.BACKGROUNDS:
        drawn = np.asarray(to_rgb(im, background))
        assert (drawn[inside] == background).all()
        assert np.array_equal(drawn[~inside], scaled[~inside])


def test_a_16_bit_photo_with_a_transparent_black_pixel_is_screened(screener: Screener) -> None:
    """End to end: one black pixel made transparent once turned the rest of a 16-bit grey photo
    white for the models: no face, a PDQ hash of quality 0."""
    with Image.open(IMAGES / "astronaut.jpg") as photo:
        grey = np.asarray(photo.convert("L")).astype(np.uint16) * 257
    grey[0, 0] = 0
    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, "PNG", transparency=0)
    r = screener.screen(buf.getvalue())
    assert r.media.frames_screened == 2, "drawn on both backgrounds"
    assert len(r.faces) == 1 and r.hashes is not None and r.hashes.pdq.quality > 50


def _png_16_rgb(values: np.ndarray, transparent: tuple[int, int, int]) -> bytes:
    """A 16-bit RGB PNG with a tRNS colour (Pillow writes RGB at 8 bits only)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    h, w, _ = values.shape
    raw = b"".join(b"\0" + values[y].astype(">u2").tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"tRNS", struct.pack(">HHH", *transparent))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_a_16_bit_rgb_png_with_a_transparent_colour_is_unscreenable(screener: Screener) -> None:
    """Pillow decodes 16-bit RGB to 8 bits and matches the 16-bit tRNS colour against those:
    none matches, so a shape a viewer draws in the background's colour (t against t+1: one
    colour to the models) was screened as a flat picture and allowed. Pillow cannot draw it as
    a viewer does, so it is not screened as if it could."""
    values = np.full((64, 96, 3), 0x1235, np.uint16)
    values[8:56, 16:48] = 0x1234
    r = screener.screen(_png_16_rgb(values, (0x1234, 0x1234, 0x1234)))
    assert r.error is not None and r.error.code == "unsupported" and r.verdict == "hold"
