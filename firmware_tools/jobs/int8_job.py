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

``equalize: CAP`` (``equalize``, used by the float-TFLite path of ``onnx_job``) rescales the
channels of each ReLU convolution that feeds a depthwise convolution before calibration, an
exact change of the float model that gives every channel of a per-tensor int8 activation the
same range.

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


def _relu_depthwise_pairs(model: Any) -> list[tuple[int, int]]:
    """(conv, depthwise) op indices where a CONV_2D with a fused ReLU feeds, alone and maybe
    through a PAD, a DEPTHWISE_CONV_2D's input: pairs whose channels can be rescaled exactly."""
    from tensorflow.lite.python import schema_py_generated as schema

    ops = model.subgraphs[0].operators
    kinds = schema.BuiltinOperator

    def kind(op: Any) -> int:
        code = model.operatorCodes[op.opcodeIndex]
        return int(max(code.builtinCode, code.deprecatedBuiltinCode))

    readers: dict[int, list[int]] = {}
    for k, op in enumerate(ops):
        for t in op.inputs:
            readers.setdefault(int(t), []).append(k)
    pairs = []
    for k, op in enumerate(ops):
        relu = schema.ActivationFunctionType.RELU
        if kind(op) != kinds.CONV_2D or op.builtinOptions.fusedActivationFunction != relu:
            continue
        t = int(op.outputs[0])
        nxt = readers.get(t, [])
        if len(nxt) == 1 and kind(ops[nxt[0]]) == kinds.PAD:  # zero padding commutes too
            t = int(ops[nxt[0]].outputs[0])
            nxt = readers.get(t, [])
        if (len(nxt) == 1 and kind(ops[nxt[0]]) == kinds.DEPTHWISE_CONV_2D
                and int(ops[nxt[0]].inputs[0]) == t):
            pairs.append((k, nxt[0]))
    return pairs


def equalize(float_model: bytes, x: Any, cap: float, log: Any = print) -> bytes:
    """``float_model`` with each (ReLU conv -> depthwise) pair's channels rescaled so that every
    channel of the conv's output reaches the tensor's largest value on ``x``, at most ``cap``
    times its own (a near-dead channel is not blown up to clip on other pictures): the conv's
    weights and bias of channel c divided by s_c, the depthwise filter of channel c multiplied
    by it. Exact in float (ReLU and zero padding commute with a positive scale), free for the
    per-channel int8 weights of both ops, and the per-tensor int8 activation between them no
    longer spends its 256 levels on the widest channel alone."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    model = fbu.convert_bytearray_to_object(bytearray(float_model))
    sg = model.subgraphs[0]
    pairs = _relu_depthwise_pairs(model)
    interp = tf.lite.Interpreter(
        model_content=float_model, experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType
        .BUILTIN_WITHOUT_DEFAULT_DELEGATES)  # a delegate does not keep intermediate tensors
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    top = {k: np.zeros(0) for k, _ in pairs}
    for s in x:
        interp.set_tensor(inp, s[None])
        interp.invoke()
        for k, _ in pairs:
            y = interp.get_tensor(int(sg.operators[k].outputs[0]))
            m = y.reshape(-1, y.shape[-1]).max(axis=0)
            top[k] = m if top[k].size == 0 else np.maximum(top[k], m)
    users: dict[int, int] = {}
    for op in sg.operators:
        for t in op.inputs:
            if t >= 0:
                users[sg.tensors[t].buffer] = users.get(sg.tensors[t].buffer, 0) + 1

    def rescale(tensor: int, factor: Any) -> None:
        t = sg.tensors[tensor]
        if users[t.buffer] != 1:
            raise ValueError(f"equalize: {t.name.decode()!r} shares its buffer")
        buf = model.buffers[t.buffer]
        w = np.frombuffer(bytes(buf.data), np.float32).reshape(t.shape)
        buf.data = np.ascontiguousarray(w * factor, np.float32).tobytes()

    for k, dw in pairs:
        m = top[k]
        s = np.clip(m / max(float(m.max()), 1e-12), 1.0 / cap, 1.0).astype(np.float32)
        conv = sg.operators[k]
        rescale(int(conv.inputs[1]), 1.0 / s.reshape(-1, 1, 1, 1))  # OHWI
        rescale(int(conv.inputs[2]), 1.0 / s)
        rescale(int(sg.operators[dw].inputs[1]), s.reshape(1, 1, 1, -1))  # 1HWC
    log(f"int8: {len(pairs)} ReLU conv -> depthwise pairs equalized (cap {cap:g})")
    return bytes(fbu.convert_object_to_bytearray(model))


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
