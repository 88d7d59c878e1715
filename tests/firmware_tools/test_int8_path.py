"""The recipe's own int8 path (``convert.int8``: GPTQ weights, MSE ranges, float early ops).

The rounding itself is checked in numpy; the whole path runs on the tiny ONNX classifier of
``test_convert_tiny`` when the converter venv exists.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from firmware_tools.jobs.gptq import QMAX, gptq
from firmware_tools.pipeline import convert, validate, venv
from firmware_tools.pipeline.recipe import ModelRecipe, Recipe, Work


def test_gptq_lies_on_the_converters_grid_and_beats_rounding() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 48)) @ rng.normal(size=(48, 48))  # correlated inputs
    w = rng.normal(size=(16, 48))
    h = x.T @ x / len(x)
    q, scale = gptq(w, h)
    assert np.array_equal(q, np.round(q)) and np.abs(q).max() <= QMAX
    # Each row keeps one weight at +-127, so max|w| / 127 gives the converter the same scale.
    assert np.all(np.abs(q).max(axis=1) == QMAX)
    assert np.allclose(np.abs(q * scale[:, None]).max(axis=1) / QMAX, scale)
    rtn = np.round(w / scale[:, None]) * scale[:, None]

    def out_err(v: np.ndarray) -> float:
        return float(np.mean((x @ (w - v).T) ** 2))

    assert out_err(q * scale[:, None]) < 0.75 * out_err(rtn)


@pytest.mark.skipif(not venv.available(), reason="no converter venv (edge-screen-fw setup)")
def test_tiny_onnx_through_the_tuned_int8_path(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    import test_convert_tiny as tiny

    base = tiny.tiny_recipe()
    raw = copy.deepcopy(base.models[0].raw)
    raw["convert"]["variants"] = ["fp32", "int8"]
    raw["convert"]["int8"] = {"weights": "gptq", "gptq_samples": 64,
                              "activation_ranges": "mse", "range_samples": 200, "float_ops": 1}
    model = ModelRecipe("tiny_violence", raw)
    recipe = Recipe("2026.1.1", base.preference, (model,))
    work = Work(tmp_path / "work")
    work.sources.mkdir(parents=True)
    tiny.tiny_onnx(work.source_file(model))

    assert convert.convert_model(work, model) == ["fp32", "int8"]
    log = (work.convert / model.id / "convert.log").read_text()
    assert "int8: MSE clipping ranges" in log and "1 ops kept in float" in log
    result = validate.validate_model(work, model, recipe.preference, latency=False, runs=1)
    assert result["variants"]["int8"]["passes"], result["variants"]["int8"]
