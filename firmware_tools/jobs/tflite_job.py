"""Runs inside the converter venv: quantized variants of a float TFLite source (BlazeFace).

Invoked as ``python -m firmware_tools.jobs.tflite_job job.json`` by ``convert``. There is no ONNX or
TF graph to convert from, so the TFLite file itself is quantized, with the same machinery the
TFLite converter uses after conversion:

1. ``unpack``: MediaPipe stores BlazeFace's weights as sparse fp16 constants expanded at load by
   DENSIFY + DEQUANTIZE ops; the quantizer needs plain fp32 constants, so those ops are evaluated
   once and replaced by their fp32 results (same numbers, the graph is otherwise unchanged);
2. the calibrator (``tensorflow.lite.python.optimize.calibrator``) records each activation's
   min/max on the calibration images; ``activation_ranges: "mse"`` then narrows each range to the
   clipping range with the least clipping plus rounding error (``int8_job._mse_range``);
3. ``int8``: the MLIR quantizer writes per-channel int8 weights and int8 activations with float
   input/output; the last ``float_head_ops`` ops (and the first ``float_ops``, if asked) stay
   float. For BlazeFace the error that costs recall builds up over the last 48x48 feature block
   (no single op), so that block and the detection head stay float;
4. ``int16x8``: the calibrator's own quantizer (the one the TFLite converter uses for int16
   activations; the MLIR quantizer has none), whole graph, min/max ranges.

``fp32`` is the source file as is (already fp16 weights, fp32 compute: an ``fp16`` variant would
be the same numbers). Only the stdlib is imported at module level.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any


def _op_name(model: Any, op: Any) -> str:
    from tensorflow.lite.python import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    code = model.operatorCodes[op.opcodeIndex]
    return names[max(code.builtinCode, code.deprecatedBuiltinCode)]


def _prune(model: Any) -> None:
    """Drop op codes, tensors and buffers nothing refers to any more (indices renumbered)."""
    sg = model.subgraphs[0]
    codes = sorted({op.opcodeIndex for op in sg.operators})
    model.operatorCodes = [model.operatorCodes[i] for i in codes]
    for op in sg.operators:
        op.opcodeIndex = codes.index(op.opcodeIndex)
    used = set(sg.inputs) | set(sg.outputs)
    for op in sg.operators:
        used |= {i for i in op.inputs if i >= 0} | set(op.outputs)
        used |= set(op.intermediates or [])
    keep = sorted(used)
    remap = {old: new for new, old in enumerate(keep)}
    sg.tensors = [sg.tensors[i] for i in keep]
    sg.inputs = [remap[i] for i in sg.inputs]
    sg.outputs = [remap[i] for i in sg.outputs]
    for op in sg.operators:
        op.inputs = [remap[i] if i >= 0 else i for i in op.inputs]
        op.outputs = [remap[i] for i in op.outputs]
    meta = list(model.metadata or [])
    bufs = sorted({t.buffer for t in sg.tensors} | {m.buffer for m in meta} | {0})
    bremap = {old: new for new, old in enumerate(bufs)}
    model.buffers = [model.buffers[i] for i in bufs]
    for t in sg.tensors:
        t.buffer = bremap[t.buffer]
    for m in meta:
        m.buffer = bremap[m.buffer]
    if model.metadataBuffer is not None:
        model.metadataBuffer = [bremap[int(b)] for b in model.metadataBuffer if int(b) in bremap]


def unpack(content: bytes) -> bytes:
    """The same graph with DENSIFY/DEQUANTIZE of constants folded into plain fp32 weights."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    # No XNNPACK (, which folds the constants away inside the delegate).
    interp = tf.lite.Interpreter(
        model_content=content, experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], np.zeros(inp["shape"], np.float32))
    interp.invoke()
    model = fbu.convert_bytearray_to_object(bytearray(content))
    sg = model.subgraphs[0]
    folded = [op for op in sg.operators if _op_name(model, op) in ("DENSIFY", "DEQUANTIZE")]
    for op in folded:
        if _op_name(model, op) == "DEQUANTIZE":
            out = op.outputs[0]
            buf = schema.BufferT()
            buf.data = np.frombuffer(interp.get_tensor(out).astype(np.float32).tobytes(),
                                     np.uint8)
            model.buffers.append(buf)
            sg.tensors[out].buffer = len(model.buffers) - 1
    sg.operators = [op for op in sg.operators if not any(op is f for f in folded)]
    _prune(model)
    return bytes(fbu.convert_object_to_bytearray(model))


def mse_ranges(model: Any, calibrated: bytes, x: Any) -> int:
    """Narrow each calibrated activation range to its least clip + rounding error range
    (``int8_job._mse_range`` on histograms of ``x``); returns how many ranges were set."""
    import numpy as np
    import tensorflow as tf

    from .int8_job import BINS, _mse_range

    tensors = model.subgraphs[0].tensors
    stats = {i: t for i, t in enumerate(tensors) if t.quantization is not None
             and t.quantization.min is not None and len(t.quantization.min) == 1}
    interp = tf.lite.Interpreter(model_content=calibrated, experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    hist = {i: np.zeros(BINS) for i in stats}
    for s in x:
        interp.set_tensor(inp, s[None])
        interp.invoke()
        for i, t in stats.items():
            rng = (t.quantization.min[0], t.quantization.max[0])
            hist[i] += np.histogram(interp.get_tensor(i).ravel(), bins=BINS, range=rng)[0]
    for i, t in stats.items():
        lo, hi = _mse_range(hist[i], t.quantization.min[0], t.quantization.max[0])
        t.quantization.min, t.quantization.max = [float(lo)], [float(hi)]
    return len(stats)


def quantize(float_model: bytes, x: Any, opts: dict[str, Any], int16: bool, log: Any = print
             ) -> bytes:
    """Calibrate ``float_model`` on ``x`` (normalised NHWC float) and quantize it per ``opts``."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.lite.python import convert as tfconvert
    from tensorflow.lite.python.optimize import calibrator
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    def data() -> Any:
        for s in x:
            yield [s[None].astype(np.float32)]

    cal = calibrator.Calibrator(float_model)
    if int16:  # the MLIR quantizer has no int16 activations; the converter uses this one too
        return bytes(cal.calibrate_and_quantize(data, tf.float32, tf.float32, True, tf.int16,
                                                tf.int64))
    calibrated = cal.calibrate(data)
    model = fbu.convert_bytearray_to_object(bytearray(calibrated))
    if opts.get("activation_ranges", "minmax") == "mse":
        n = mse_ranges(model, bytes(calibrated), x[:int(opts.get("range_samples", len(x)))])
        log(f"quantize: MSE clipping ranges for {n} activations")
    sg = model.subgraphs[0]
    names = [sg.tensors[op.outputs[0]].name.decode() for op in sg.operators]
    head, first = int(opts.get("float_head_ops", 0)), int(opts.get("float_ops", 0))
    deny = names[:first] + (names[-head:] if head else [])
    log(f"quantize: {len(deny)} ops kept in float (first {first}, last {head})")
    edited = bytes(fbu.convert_object_to_bytearray(model))
    return bytes(tfconvert.mlir_quantize(edited, disable_per_channel=False, fully_quantize=False,
                                         denylisted_nodes=deny or None))


def run(job: dict[str, Any]) -> None:
    import numpy as np

    source = Path(job["source"]).read_bytes()
    mean = np.asarray(job["mean"], np.float32)
    std = np.asarray(job["std"], np.float32)
    pixels = np.load(job["calib"]).astype(np.float32)  # uint8 RGB NHWC
    if job.get("color") == "BGR":
        pixels = pixels[..., ::-1]
    x = np.ascontiguousarray((pixels - mean) / std, np.float32)
    opts = job.get("quantize") or {}
    plain = unpack(source)
    for variant, dest in job["variants"].items():
        if variant == "fp32":
            shutil.copy(job["source"], dest)
        elif variant in ("int8", "int16x8"):
            Path(dest).write_bytes(quantize(plain, x, opts, variant == "int16x8"))
        else:
            raise ValueError(f"unknown variant {variant!r}")
        print(f"tflite_job: {variant} -> {dest}", flush=True)


if __name__ == "__main__":
    run(json.loads(Path(sys.argv[1]).read_text()))
