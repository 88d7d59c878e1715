"""Kept from the attack review of known-content matching on live streams; each test asserts the
safe behaviour: a listed picture given in any memory layout a camera or a caller's code makes
(strided, Fortran order, read-only, a masked array) is matched as its contiguous copy is."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import IMAGES
from PIL import Image
from test_known_match import LABEL, make_listed_bundle

from edge_screen import Screener


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Screener]:
    root = make_listed_bundle(tmp_path_factory.mktemp("listed") / "b")
    with Screener(bundle=Path(root), threads=2) as s:
        yield s


def _rocket() -> np.ndarray:
    with Image.open(IMAGES / "rocket.jpg") as im:
        return np.asarray(im.convert("RGB").resize((320, 240)))


def _strided(a: np.ndarray) -> np.ndarray:
    wide = np.zeros((a.shape[0], a.shape[1] * 2, 3), np.uint8)
    wide[:, ::2] = a
    return wide[:, ::2]


def _read_only(a: np.ndarray) -> np.ndarray:
    b = a.copy()
    b.setflags(write=False)
    return b


@pytest.mark.parametrize("layout", [
    _strided,
    np.asfortranarray,
    _read_only,
    lambda a: np.ascontiguousarray(a.transpose(2, 0, 1)).transpose(1, 2, 0),  # planar
    lambda a: np.ma.masked_array(a, mask=np.zeros(a.shape, bool)),
])
def test_a_listed_frame_in_any_memory_layout_is_held(
    listed: Screener, layout: Callable[[np.ndarray], np.ndarray]
) -> None:
    frame = layout(_rocket())
    assert np.array_equal(np.asarray(frame), _rocket())
    with listed.stream("cam") as cam:
        r = cam.screen_frame(frame, 0)
    assert r.verdict == "hold" and r.signals["known_match"] == 1.0
    assert any(LABEL in reason for reason in r.reasons)
