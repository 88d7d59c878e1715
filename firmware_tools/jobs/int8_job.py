"""Runs inside the converter venv: the tuned int8 variant (recipe ``convert.int8``).

open_nsfw is so sensitive that the converter's plain int8 (round-to-nearest weights, min/max
activation ranges) moves P(nsfw) by up to 0.66. This path, used when the recipe asks for it:

1. ``weights: "gptq"``: error-compensating weight rounding (``gptq``) on the prepared ONNX,
   then onnx2tf (float only) to a SavedModel whose weights already lie on the int8 grid;
2. the TFLite converter calibrates on the calibration images only (``_experimental_calibrate_
   only``); ``activation_ranges: "mse"`` then replaces each activation's min/max by the clipping
   range that minimises clipping plus rounding error over a histogram of the same images;
3. ``float_ops: N`` keeps the first N TFLite ops (stem and early stages, where open_nsfw is most
   sensitive) in float; everything after is int8 (int8 weights and activations), float
   input/output as the other variants.

Only the stdlib is imported at module level.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

BINS = 4096


def _feeds_nchw(x: Any, name: str) -> list[dict[str, Any]]:
    return [{name: s.transpose(2, 0, 1)[None].copy()} for s in x]


def gptq_saved_model(prepared: Path, wd: Path, x: Any, input_name: str, samples: int) -> Path:
    """GPTQ-rounded copy of ``prepared`` converted to a float SavedModel; returns its folder."""
    import onnx2tf

    from .gptq import quantize_weights

    rounded = wd / "gptq.onnx"
    quantize_weights(prepared, rounded, _feeds_nchw(x[:samples], input_name))
    shutil.copy(rounded, wd / "gptq_in.onnx")  # onnx2tf rewrites its input in place
    out = wd / "tf_gptq"
    onnx2tf.convert(input_onnx_file_path=str(wd / "gptq_in.onnx"), output_folder_path=str(out),
                    copy_onnx_input_output_names_to_tflite=True, output_signaturedefs=True,
                    non_verbose=True)
    return out


def _op_outputs(model: Any) -> list[str]:
    """Output tensor names of the subgraph's ops in execution order (quantize ops skipped)."""
    from tensorflow.lite.python import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    sg = model.subgraphs[0]
    out = []
    for op in sg.operators:
        code = names.get(model.operatorCodes[op.opcodeIndex].builtinCode)
        if code not in ("QUANTIZE", "DEQUANTIZE"):
            out.append(sg.tensors[op.outputs[0]].name.decode())
    return out


def _mse_range(hist: Any, lo: float, hi: float) -> tuple[float, float]:
    """Clipping range (a fraction of [lo, hi]) minimising clip + uniform rounding error."""
    import numpy as np

    edges = np.linspace(lo, hi, BINS + 1)
    c = (edges[:-1] + edges[1:]) / 2
    best = (float("inf"), lo, hi)
    for f in np.linspace(0.2, 1.0, 81):
        lo_f, hi_f = lo * f, hi * f
        step = (hi_f - lo_f) / 255
        inside = hist[(c >= lo_f) & (c <= hi_f)].sum()
        err = float(np.sum(hist * (c - np.clip(c, lo_f, hi_f)) ** 2) + inside * step * step / 12)
        if err < best[0]:
            best = (err, lo_f, hi_f)
    return best[1], best[2]


def quantize(saved: Path, x: Any, dest: Path, opts: dict[str, Any], log: Any = print) -> None:
    """int8 TFLite from ``saved`` calibrated on ``x`` (normalised NHWC float), per ``opts``."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.lite.python import convert as tfconvert
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    def data() -> Any:
        for s in x:
            yield [s[None]]

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = data
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                      tf.lite.OpsSet.TFLITE_BUILTINS]
    conv._experimental_calibrate_only = True
    calibrated = conv.convert()
    model = fbu.convert_bytearray_to_object(bytearray(calibrated))
    tensors = model.subgraphs[0].tensors
    ranges = opts.get("activation_ranges", "minmax")
    if ranges == "mse":
        stats = {i: t for i, t in enumerate(tensors) if t.quantization is not None
                 and t.quantization.min is not None and len(t.quantization.min) == 1}
        interp = tf.lite.Interpreter(model_content=bytes(calibrated),
                                     experimental_preserve_all_tensors=True)
        interp.allocate_tensors()
        inp = interp.get_input_details()[0]["index"]
        hist = {i: np.zeros(BINS) for i in stats}
        for s in x[:int(opts.get("range_samples", len(x)))]:
            interp.set_tensor(inp, s[None])
            interp.invoke()
            for i, t in stats.items():
                v = interp.get_tensor(i).ravel()
                rng = (t.quantization.min[0], t.quantization.max[0])
                hist[i] += np.histogram(v, bins=BINS, range=rng)[0]
        for i, t in stats.items():
            lo, hi = _mse_range(hist[i], t.quantization.min[0], t.quantization.max[0])
            t.quantization.min, t.quantization.max = [float(lo)], [float(hi)]
        log(f"int8: MSE clipping ranges for {len(stats)} activations")
    elif ranges != "minmax":
        raise ValueError(f"unknown activation_ranges {ranges!r}")
    n_float = int(opts.get("float_ops", 0))
    deny = _op_outputs(model)[:n_float]
    log(f"int8: {n_float} ops kept in float, the last one {deny[-1] if deny else None!r}")
    edited = bytes(fbu.convert_object_to_bytearray(model))
    quantized = tfconvert.mlir_quantize(edited, disable_per_channel=False, fully_quantize=False,
                                        denylisted_nodes=deny or None)
    dest.write_bytes(quantized)


def run(job: dict[str, Any], prepared: Path, input_name: str, calib_pixels: Path,
        onnx2tf_dir: Path) -> None:
    """Write the int8 variant per ``job["int8"]``; ``prepared`` is the ONNX whose image input
    is ``input_name``, ``calib_pixels`` are model-order pixels."""
    import numpy as np

    opts = job["int8"]
    wd = Path(job["workdir"])
    mean = np.asarray(job["mean"], np.float32)
    std = np.asarray(job["std"], np.float32)
    x = ((np.load(calib_pixels).astype(np.float32) - mean) / std).astype(np.float32)
    saved = onnx2tf_dir
    if opts.get("weights") == "gptq":
        saved = gptq_saved_model(prepared, wd, x, input_name, int(opts.get("gptq_samples", 64)))
    elif opts.get("weights", "nearest") != "nearest":
        raise ValueError(f"unknown weights {opts['weights']!r}")
    quantize(saved, x, Path(job["variants"]["int8"]), opts)
