"""End to end through the real conversion path with a tiny ONNX classifier built here.

The model is a ``violence`` classifier on purpose: it proves that a new category is one more
recipe/manifest entry (task, labels, signal) with no code change. Skips only when the converter
venv is absent (``edge-screen-fw setup`` creates it; CI does).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_screen.manifest import parse_manifest
from firmware_tools.pipeline import bundle, convert, validate, venv
from firmware_tools.pipeline.recipe import ModelRecipe, Recipe, Work

onnx = pytest.importorskip("onnx")
pytestmark = pytest.mark.skipif(
    not venv.available(), reason=f"no converter venv at {venv.venv_dir()} (edge-screen-fw setup)"
)

SIZE = 16


def tiny_onnx(path: Path) -> None:
    """Conv -> ReLU -> global average pool -> dense -> softmax, NCHW, dynamic batch."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(np.float32), "b"),
        numpy_helper.from_array(rng.normal(0, 1.0, (8, 2)).astype(np.float32), "fw"),
        numpy_helper.from_array(np.array([0.2, -0.2], np.float32), "fb"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def tiny_recipe() -> Recipe:
    raw = {
        "id": "tiny_violence", "task": "image_classification", "version": "test-1",
        "description": "a tiny random classifier built by the test",
        "source": {"package": "local", "member": "tiny.onnx", "licence": "CC0-1.0"},
        "convert": {"kind": "onnx", "input": "x", "layout": "NCHW",
                    "variants": ["fp32", "int8", "int16x8"]},
        "input": {"size": [SIZE, SIZE], "layout": "NHWC", "color": "RGB",
                  "mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5],
                  "resize": "stretch"},
        "output": {"labels": ["other", "violence"], "signal": "violence",
                   "positive": "violence", "activation": "none"},
        "limits": {"max": {"mean_abs_dp": 0.03, "max_abs_dp": 0.10}},
    }
    preference = {"x86_64": "fastest", "default": ["int8", "fp32"]}
    return Recipe("2026.1.1", preference, (ModelRecipe("tiny_violence", raw),))


def test_tiny_onnx_converts_validates_and_bundles_within_limits(tmp_path: Path) -> None:
    recipe = tiny_recipe()
    model = recipe.models[0]
    work = Work(tmp_path / "work")
    work.sources.mkdir(parents=True)
    tiny_onnx(work.source_file(model))

    assert convert.convert_model(work, model) == ["fp32", "int8", "int16x8"]
    result = validate.validate_model(work, model, recipe.preference, latency=True, runs=3)

    fp32 = result["variants"]["fp32"]["fidelity"]
    assert fp32["max_abs_dp"] < 1e-4  # float conversion is exact up to rounding
    for name in ("int8", "int16x8"):
        assert result["variants"][name]["passes"], result["variants"][name]
    assert result["preferred"]["default"] == "int8"

    work.report.write_text(json.dumps({"environment": validate.environment(),
                                       "models": {model.id: result}}))
    out = tmp_path / "bundle"
    bundle.bundle(work, out, recipe)
    manifest = parse_manifest(json.loads((out / "manifest.json").read_text()))
    (spec,) = manifest.by_task("image_classification")
    assert spec.output.signal == "violence"  # type: ignore[union-attr]
    assert spec.preferred_variant("aarch64").name == "int8"
    for entry in manifest.files():
        assert (out / entry.file).stat().st_size == entry.size
    assert "tiny_violence" in (out / "MODEL_CARD.md").read_text()
