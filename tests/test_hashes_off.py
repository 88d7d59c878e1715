"""``ScreenerOptions(hashes=False)``: the report without PDQ/vPDQ, every verdict and signal as with
hashing on; refused for a bundle with hash lists, where it would switch matching off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import IMAGES
from PIL import Image
from test_known_match import _video, make_listed_bundle

from edge_screen import Screener, ScreenerOptions


@pytest.fixture(scope="module")
def off() -> Screener:
    return Screener(hashes=False, threads=2)


@pytest.fixture(scope="module")
def on() -> Screener:
    return Screener(threads=2)


def test_a_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match="hashes"):
        ScreenerOptions(hashes="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="hashes"):
        ScreenerOptions(hashes=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["astronaut.jpg", "grace_hopper.jpg"])
def test_a_photo_screens_the_same_without_its_hash(off: Screener, on: Screener, name: str) -> None:
    a, b = off.screen(IMAGES / name), on.screen(IMAGES / name)
    assert a.hashes is None and a.to_dict()["hashes"] is None and a.timing_ms["hash"] == 0
    assert b.hashes is not None and b.hashes.pdq is not None
    assert (a.verdict, a.reasons, a.signals, a.faces) == (b.verdict, b.reasons, b.signals, b.faces)


def test_a_clip_screens_the_same_without_its_hashes(off: Screener, on: Screener) -> None:
    data = _video(2, 2)
    a, b = off.screen(data), on.screen(data)
    assert a.ok and a.hashes is None and b.hashes is not None and b.hashes.vpdq
    assert (a.verdict, a.signals, a.media.frames_screened) == (
        b.verdict, b.signals, b.media.frames_screened)


def test_a_bundle_with_hash_lists_refuses_hashing_off(tmp_path: Path) -> None:
    """Hashing off would turn matching off: a listed picture would be allowed."""
    root = make_listed_bundle(tmp_path / "b")
    with pytest.raises(ValueError, match="hash lists"):
        Screener(bundle=root, hashes=False, threads=1)
    with Screener(bundle=root, threads=1) as s:  # hashing on: the listed photo is held
        assert s.screen(IMAGES / "astronaut.jpg").verdict == "hold"


def test_a_live_stream_without_hashing_reports_no_hashes(off: Screener) -> None:
    rgb = np.asarray(Image.open(IMAGES / "rocket.jpg").convert("RGB").resize((320, 240)))
    with off.stream() as cam:
        r = cam.screen_frame(rgb, 0)
    assert r.hashes is None and r.signals["known_match"] is None
