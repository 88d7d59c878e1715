"""Kept from the attack review of the banded deep-picture scaling (``decode._deep_to_uint8``);
each test asserts the safe behaviour: byte orders, degenerate shapes and all-NaN pixels scale
without an error and as one band would."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

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
