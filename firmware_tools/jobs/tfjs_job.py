"""Runs inside the converter venv: a TensorFlow.js layers model (nsfwjs) to TFLite variants, or
the float Keras model's outputs for validation.

``python -m firmware_tools.jobs.tfjs_job job.json``. The source is the plain model.json and
weights file ``fetch`` unpacked from the locked npm tarball (``pipeline.tfjs``). The Keras model
is rebuilt from the model.json's topology with tf_keras (the Keras 2 API the model was saved
with) and given the dequantised weights, by layer and weight name, exactly as tfjs loads them:
that float model is the reference every variant is validated against.

Job kinds: ``convert`` writes ``fp32`` and ``fp16`` with the TFLite converter, ``int8`` and
``int16x8`` with the quantizer BlazeFace's and CenterFace's int8 use (``tflite_job.quantize``:
TFLite calibration, per-channel int8 weights, the recipe's ``convert.int8`` options), and a
SavedModel for ``edge-screen-fw synth``; ``reference`` runs the Keras model on a ``.npy`` of
normalised NHWC inputs. Only the stdlib is imported at module level.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def load_model(source: Path) -> Any:
    """The float tf_keras model of a tfjs model.json (weights file beside it)."""
    import tf_keras

    from . import tfjs_format as tfjs

    model_json = json.loads(source.read_text())
    paths = [p for g in model_json["weightsManifest"] for p in g["paths"]]
    data = b"".join((source.parent / p).read_bytes() for p in paths)
    weights = tfjs.dequantize(model_json, data)
    topology = model_json["modelTopology"]
    model = tf_keras.models.model_from_json(json.dumps(topology.get("model_config", topology)))
    used = set()
    for layer in model.layers:
        values = []
        for v in layer.weights:
            key = f"{layer.name}/{v.name.split(':')[0].split('/')[-1]}"
            if key not in weights:
                raise KeyError(f"{source.name}: no weight {key} for layer {layer.name}")
            if tuple(weights[key].shape) != tuple(v.shape):
                raise ValueError(f"{key}: shape {weights[key].shape} is not {tuple(v.shape)}")
            values.append(weights[key])
            used.add(key)
        if values:
            layer.set_weights(values)
    if used != set(weights):
        raise ValueError(f"{source.name}: weights no layer takes: {sorted(set(weights) - used)}")
    return model


def _concrete(model: Any) -> Any:
    """The model as a batch-1 concrete function (a static input shape for the converter)."""
    import tensorflow as tf

    shape = [1, *model.input.shape[1:]]
    fn = tf.function(lambda x: model(x, training=False))
    return fn.get_concrete_function(tf.TensorSpec(shape, tf.float32, name="input"))


def convert(job: dict[str, Any]) -> None:
    import numpy as np
    import tensorflow as tf

    from . import tflite_job

    model = load_model(Path(job["source"]))
    wd = Path(job["workdir"])
    saved = wd / "saved_model"
    module = tf.Module()
    module.model = model  # tracked, so the SavedModel holds its variables
    concrete = _concrete(model)
    tf.saved_model.save(module, str(saved), signatures=concrete)
    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
    fp32 = conv.convert()
    mean = np.asarray(job["mean"], np.float32)
    std = np.asarray(job["std"], np.float32)
    pixels = np.load(job["calib"]).astype(np.float32)  # uint8 RGB NHWC
    if job["color"] == "BGR":
        pixels = pixels[..., ::-1]
    x = np.ascontiguousarray((pixels - mean) / std, np.float32)
    for variant, dest in job["variants"].items():
        if variant == "fp32":
            data = fp32
        elif variant == "fp16":
            conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
            data = conv.convert()
        elif variant in ("int8", "int16x8"):
            data = tflite_job.quantize(fp32, x, job.get("int8") or {}, variant == "int16x8")
        else:
            raise ValueError(f"unknown variant {variant!r}")
        Path(dest).write_bytes(data)
        print(f"tfjs_job: {variant} -> {dest} ({len(data)} bytes)", flush=True)


def reference(job: dict[str, Any]) -> None:
    """The float Keras model's outputs on ``job["inputs"]`` (normalised NHWC) -> ``job["out"]``."""
    import numpy as np

    model = load_model(Path(job["source"]))
    x = np.load(job["inputs"]).astype(np.float32)
    np.save(job["out"], model.predict(x, batch_size=16, verbose=0).astype(np.float32))


if __name__ == "__main__":
    spec = json.loads(Path(sys.argv[1]).read_text())
    {"convert": convert, "reference": reference}[spec["kind"]](spec)
