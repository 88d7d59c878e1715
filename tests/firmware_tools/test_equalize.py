"""``convert.int8.equalize``: channels of a ReLU conv -> depthwise pair rescaled before int8.

A tiny ONNX model whose first convolution's channels span a range of 1000 (as CenterFace's do)
goes through the recipe's float-TFLite int8 path with and without ``equalize``: the equalized
int8 must be closer to the float model, since without it the narrow channels get a handful of
int8 levels or none, and the depthwise convolution makes them count as much as the wide ones.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from firmware_tools.pipeline import convert, validate, venv
from firmware_tools.pipeline.recipe import ModelRecipe, Work

SIZE = 32
CHANNELS = 8


def _uneven_onnx(path: Path) -> None:
    """Conv (channels scaled 1 .. 1/1000) -> ReLU -> depthwise conv (scaling them back, so
    every channel counts alike after it) -> ReLU -> mean -> dense -> softmax."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    scale = np.geomspace(1.0, 1e-3, CHANNELS).astype(np.float32)
    w = rng.normal(0, 0.3, (CHANNELS, 3, 3, 3)).astype(np.float32) * scale[:, None, None, None]
    dw = rng.normal(0, 0.5, (CHANNELS, 1, 3, 3)).astype(np.float32) / scale[:, None, None, None]
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.full(CHANNELS, 0.01, np.float32) * scale, "b"),
        numpy_helper.from_array(dw, "dw"),
        numpy_helper.from_array(np.zeros(CHANNELS, np.float32), "db"),
        numpy_helper.from_array(rng.normal(0, 2.0, (CHANNELS, 2)).astype(np.float32), "fw"),
        numpy_helper.from_array(np.zeros(2, np.float32), "fb"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Conv", ["r", "dw", "db"], ["d"], pads=[1, 1, 1, 1], group=CHANNELS),
        helper.make_node("Relu", ["d"], ["rd"]),
        helper.make_node("GlobalAveragePool", ["rd"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])
    y = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 2])
    model = helper.make_model(helper.make_graph(nodes, "uneven", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _int8_error(tmp: Path, int8: dict[str, object]) -> tuple[float, str]:
    import test_convert_tiny as tiny

    raw = copy.deepcopy(tiny.tiny_recipe().models[0].raw)
    raw["convert"]["variants"] = ["fp32", "int8"]
    raw["convert"]["int8"] = int8
    model = ModelRecipe("tiny_violence", raw)
    work = Work(tmp)
    work.sources.mkdir(parents=True)
    _uneven_onnx(work.source_file(model))
    convert.convert_model(work, model)
    log = (work.convert / model.id / "convert.log").read_text()
    result = validate.validate_model(work, model, {"default": ["int8", "fp32"]}, latency=False, runs=1)
    return float(result["variants"]["int8"]["fidelity"]["mean_abs_dp"]), log


@pytest.mark.skipif(not venv.available(), reason="no converter venv (edge-screen-fw setup)")
def test_equalized_int8_is_closer_to_the_float_model(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    plain, _ = _int8_error(tmp_path / "plain", {"from": "fp32"})
    equalized, log = _int8_error(tmp_path / "equalized", {"from": "fp32", "equalize": 1000})
    assert "1 ReLU conv -> depthwise pairs equalized (cap 1000)" in log
    assert equalized < 0.5 * plain, (equalized, plain)
