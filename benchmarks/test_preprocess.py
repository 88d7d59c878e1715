"""Preprocess: each model's geometry (letterbox, stretch + JPEG round trip, face alignment) and
normalisation, from the working-size portrait, exactly as the manifest asks for it."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TFLITE
from pytest_benchmark.fixture import BenchmarkFixture

from edge_screen import Bundle, bench

MODEL_IDS = [m.id for m in TFLITE]


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_preprocess(
    benchmark: BenchmarkFixture,
    bundle: Bundle,
    working_rgb: np.ndarray,
    face: bench.Box,
    model_id: str,
) -> None:
    spec = next(m for m in bundle.manifest.models if m.id == model_id)
    benchmark.extra_info["resize"] = spec.input.resize
    x = benchmark(bench.model_input, spec, working_rgb, face)
    h, w = spec.input.size
    assert x.shape == ((1, 3, h, w) if spec.input.layout == "NCHW" else (1, h, w, 3))
    assert x.dtype == np.float32 and np.isfinite(x).all()
