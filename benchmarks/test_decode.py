"""Decode: JPEG with draft mode (what the pipeline does) against a full decode, at 12, 4 and 1
megapixels, and PNG / WebP, which have no draft mode and are decoded whole then reduced."""

from __future__ import annotations

import pytest
from conftest import reencode
from pytest_benchmark.fixture import BenchmarkFixture

from edge_screen import bench

MIN_SIDE = 512  # ScreenerOptions.working_min_side


@pytest.fixture(scope="module", params=[12.0, 4.0, 1.0], ids=lambda mp: f"{mp:g}MP")
def jpeg(request: pytest.FixtureRequest, portrait: bytes) -> bytes:
    mp = request.param
    return portrait if mp == 12.0 else reencode(portrait, mp, "JPEG", quality=90)


def test_jpeg_draft(benchmark: BenchmarkFixture, jpeg: bytes) -> None:
    rgb = benchmark(bench.working_decode, jpeg, MIN_SIDE)
    assert min(rgb.shape[:2]) >= MIN_SIDE and rgb.shape[2] == 3


def test_jpeg_full(benchmark: BenchmarkFixture, jpeg: bytes) -> None:
    rgb = benchmark(bench.full_decode, jpeg)
    assert rgb.shape[0] * rgb.shape[1] >= 0.9e6 and rgb.shape[2] == 3


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
@pytest.mark.parametrize("mp", [4.0, 1.0], ids=lambda mp: f"{mp:g}MP")
def test_png_and_webp(
    benchmark: BenchmarkFixture, portrait: bytes, fmt: str, mp: float
) -> None:
    data = reencode(portrait, mp, fmt, **({"quality": 90} if fmt == "WEBP" else {}))
    benchmark.extra_info["format"] = fmt
    rgb = benchmark(bench.working_decode, data, MIN_SIDE)
    assert min(rgb.shape[:2]) >= MIN_SIDE // 2 and rgb.shape[2] == 3
