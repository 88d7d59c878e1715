"""TensorFlow.js layers models as nsfwjs ships them: model.json and weight shards wrapped in
minified JavaScript modules, read as data (no JavaScript runs), dequantised as tfjs does, then
through the real conversion and validation path when the converter venv exists.

The tiny model is written here in the same wrapping as nsfwjs 4.4.0's ``model.min.js`` and
``group1-shard1of1.min.js`` (bare keys, ``!0``/``!1``, ``.5``, a base64 string shard).
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firmware_tools.jobs import tfjs_format
from firmware_tools.pipeline import convert, validate, venv
from firmware_tools.pipeline.recipe import ModelRecipe, Recipe, Work

SIZE = 16
WRAP = ('!function(e){{if("object"==typeof exports&&"undefined"!=typeof module)module.exports=e()}}'
        '(function(){{return function e(a,n,i){{return n}}({{1:[function(e,a,n){{a.exports={body}}}'
        ',{{}}]}},{{}},[1])(1)}});')


def js_literal(value: Any) -> str:
    """Python data as a minifier writes it: bare keys, !0/!1, no leading zero."""
    if isinstance(value, bool):
        return "!0" if value else "!1"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{js_literal(v)}" if re.fullmatch(r"[A-Za-z_]\w*", k)
                              else f"{json.dumps(k)}:{js_literal(v)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(js_literal(v) for v in value) + "]"
    if isinstance(value, float):
        return re.sub(r"^(-?)0\.", r"\1.", repr(value))
    return json.dumps(value)


def _layer(name: str, cls: str, config: dict[str, Any], inbound: str | None) -> dict[str, Any]:
    extra = {} if cls == "InputLayer" else {"trainable": False}
    return {"name": name, "class_name": cls, "config": {"name": name, **extra, **config},
            "inbound_nodes": [[[inbound, 0, 0, {}]]] if inbound else []}


def tiny_model() -> tuple[dict[str, Any], bytes, dict[str, np.ndarray]]:
    """A Keras 2 conv -> pool -> dense softmax classifier as tfjs stores it: model.json, the
    shard's bytes (two uint8-quantised kernels, two float32 biases) and the float weights."""
    rng = np.random.default_rng(0)
    layers = [
        _layer("input_1", "InputLayer", {"batch_input_shape": [None, SIZE, SIZE, 3],
                                         "dtype": "float32", "sparse": False}, None),
        _layer("conv", "Conv2D", {"filters": 4, "kernel_size": [3, 3], "strides": [1, 1],
                                  "padding": "same", "data_format": "channels_last",
                                  "dilation_rate": [1, 1], "activation": "relu",
                                  "use_bias": True}, "input_1"),
        _layer("pool", "GlobalAveragePooling2D", {"data_format": "channels_last"}, "conv"),
        _layer("dense", "Dense", {"units": 3, "activation": "softmax", "use_bias": True},
               "pool"),
    ]
    topology = {"keras_version": "2.2.4", "backend": "tensorflow", "model_config": {
        "class_name": "Model", "config": {"name": "tiny", "layers": layers,
                                          "input_layers": [["input_1", 0, 0]],
                                          "output_layers": [["dense", 0, 0]]}}}
    weights, manifest, data = {}, [], b""
    for name, shape, quantized in (("conv/kernel", [3, 3, 3, 4], True), ("conv/bias", [4], False),
                                   ("dense/kernel", [4, 3], True), ("dense/bias", [3], False)):
        if quantized:
            q = rng.integers(0, 256, shape).astype(np.uint8)
            lo, scale = -0.75, 0.0059
            weights[name] = q.astype(np.float32) * np.float32(scale) + np.float32(lo)
            manifest.append({"name": name, "shape": shape, "dtype": "float32",
                             "quantization": {"min": lo, "scale": scale, "dtype": "uint8"}})
            data += q.tobytes()
        else:
            w = rng.normal(0, 0.1, shape).astype(np.float32)
            weights[name] = w
            manifest.append({"name": name, "shape": shape, "dtype": "float32"})
            data += w.tobytes()
    model = {"modelTopology": topology,
             "weightsManifest": [{"paths": ["group1-shard1of1"], "weights": manifest}]}
    return model, data, weights


def _modules(model: dict[str, Any], data: bytes) -> dict[str, bytes]:
    folder = "package/dist/models/tiny"
    shard = json.dumps(base64.b64encode(data).decode())
    return {f"{folder}/model.min.js": WRAP.format(body=js_literal(model)).encode(),
            f"{folder}/group1-shard1of1.min.js": WRAP.format(body=shard).encode()}


def test_minified_literals_parse_as_data() -> None:
    text = 'x.exports={a:!0,b:!1,"c d":[.5,-.25,1e-3,-2,null],e:"q\\"s",f:{}}'
    value = tfjs_format._exported(text)
    assert value == {"a": True, "b": False, "c d": [0.5, -0.25, 0.001, -2, None],
                     "e": 'q"s', "f": {}}
    with pytest.raises(tfjs_format.TfjsFormatError):
        tfjs_format._exported("x.exports={a:require('fs')}")  # code is not data
    with pytest.raises(tfjs_format.TfjsFormatError):
        tfjs_format._exported("x.exports={a:[1,2")


def test_model_and_shard_modules_unpack_to_the_dequantised_weights() -> None:
    model, data, weights = tiny_model()
    files = _modules(model, data)
    got_model, got = tfjs_format.unpack(files.__getitem__, "package/dist/models/tiny/model.min.js")
    assert got_model == json.loads(json.dumps(model))
    assert set(got) == set(weights)
    for name, w in weights.items():
        assert got[name].dtype == np.float32 and got[name].shape == w.shape
        np.testing.assert_array_equal(got[name], w)


def test_shards_that_do_not_match_the_manifest_are_refused() -> None:
    model, data, _ = tiny_model()
    with pytest.raises(tfjs_format.TfjsFormatError, match="end at"):
        tfjs_format.dequantize(model, data[:-4])
    with pytest.raises(tfjs_format.TfjsFormatError, match="not weights"):
        tfjs_format.dequantize(model, data + b"\0" * 4)
    with pytest.raises(tfjs_format.TfjsFormatError, match="layers model"):
        tfjs_format.model_json('a.exports={modelTopology:{}}')


def tiny_recipe() -> Recipe:
    raw = {
        "id": "tiny_drawn", "task": "image_classification", "version": "test-1",
        "description": "a tiny random tfjs classifier built by the test",
        "source": {"package": "local", "member": "package/dist/models/tiny/model.min.js",
                   "licence": "CC0-1.0"},
        "convert": {"kind": "tfjs-layers", "variants": ["fp32", "fp16", "int8"]},
        "input": {"size": [SIZE, SIZE], "layout": "NHWC", "color": "RGB", "mean": [0, 0, 0],
                  "std": [255, 255, 255], "resize": "stretch"},
        "output": {"labels": ["a", "b", "c"], "signal": "drawn_sexual", "positive": "b",
                   "activation": "none"},
        "limits": {"max": {"mean_abs_dp": 0.03, "max_abs_dp": 0.10}},
    }
    return Recipe("2026.1.1", {"default": ["int8", "fp16", "fp32"]},
                  (ModelRecipe("tiny_drawn", raw),))


@pytest.mark.skipif(not venv.available(), reason="no converter venv (edge-screen-fw setup)")
def test_tiny_tfjs_model_converts_and_its_fp32_matches_the_keras_model(tmp_path: Path) -> None:
    recipe = tiny_recipe()
    model = recipe.models[0]
    work = Work(tmp_path / "work")
    work.sources.mkdir(parents=True)
    tf_model, data, _ = tiny_model()
    source = work.source_file(model)
    (source.parent / "tiny_drawn.weights.bin").write_bytes(data)
    groups = [{**tf_model["weightsManifest"][0], "paths": ["tiny_drawn.weights.bin"]}]
    source.write_text(json.dumps({**tf_model, "weightsManifest": groups}))

    assert convert.convert_model(work, model) == ["fp32", "fp16", "int8"]
    assert (work.convert / model.id / "saved_model" / "saved_model.pb").exists()
    result = validate.validate_model(work, model, recipe.preference, latency=False, runs=1)
    assert result["variants"]["fp32"]["fidelity"]["max_abs_dp"] < 1e-5
    assert result["variants"]["fp16"]["fidelity"]["max_abs_dp"] < 1e-2
    # The reference is the Keras model, not a TFLite file: check it against numpy.
    x = validate.normalise(np.full((1, SIZE, SIZE, 3), 128, np.uint8), model.input)
    _, _, w = tiny_model()
    pad = np.pad(x[0], ((1, 1), (1, 1), (0, 0)))
    conv = np.zeros((SIZE, SIZE, 4), np.float32)
    for dy in range(3):
        for dx in range(3):
            conv += pad[dy:dy + SIZE, dx:dx + SIZE] @ w["conv/kernel"][dy, dx]
    logits = np.maximum(conv + w["conv/bias"], 0).mean((0, 1)) @ w["dense/kernel"] + w["dense/bias"]
    want = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    ref = validate.run_keras_reference(work, model, x)
    np.testing.assert_allclose(ref[0], want, atol=1e-5)
