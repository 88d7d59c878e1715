"""Runs inside the converter venv: one ONNX model to float and quantized TFLite files.

Invoked as ``python -m firmware_tools.jobs.onnx_job job.json`` by ``pipeline.convert``. The job
file names the source ONNX, its input name and layout, the calibration images and normalisation,
and where each variant goes. Only the stdlib is imported at module level, so the import cannot
clash with whichever numpy the calling environment has.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

# onnx2tf output suffix -> our variant name. Dynamic-range and full-integer (int8 in/out)
# outputs are dropped: the first is slower than fp32 everywhere, the runtime quantises inputs.
SUFFIXES = {
    "fp32": "_float32.tflite",
    "fp16": "_float16.tflite",
    "int8": "_integer_quant.tflite",
    "int16x8": "_integer_quant_with_int16_act.tflite",
}
INPUT = "input"  # our name for the single image input (onnx2tf mangles names such as "input:0")


def rewrite_reduce_l2(model: Any) -> int:
    """Replace every ``ReduceL2(x)`` by ``Sqrt(ReduceSum(x * x))`` (same axes and keepdims);
    returns how many. onnx2tf 1.29 reduces ReduceL2 over the wrong axis once it has moved the
    tensor to NHWC; ReduceSum's axes it transposes correctly."""
    from onnx import helper

    g = model.graph
    count = 0
    for node in list(g.node):
        if node.op_type != "ReduceL2":
            continue
        x, out = node.input[0], node.output[0]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        keep = {"keepdims": attrs.get("keepdims", 1)}
        sq, summed = f"{out}__sq", f"{out}__sum"
        if len(node.input) > 1:  # opset 18: axes is an input
            red = helper.make_node("ReduceSum", [sq, node.input[1]], [summed], **keep)
        elif "axes" in attrs:  # before opset 13 ReduceSum took axes as an attribute too
            red = helper.make_node("ReduceSum", [sq], [summed], axes=attrs["axes"], **keep)
        else:
            red = helper.make_node("ReduceSum", [sq], [summed], **keep)
        new = [helper.make_node("Mul", [x, x], [sq]), red,
               helper.make_node("Sqrt", [summed], [out])]
        at = list(g.node).index(node)
        g.node.remove(node)
        for j, n in enumerate(new):
            g.node.insert(at + j, n)
        count += 1
    return count


def prepare(src: Path, dst: Path, input_name: str, layout: str, size: list[int],
            rewrites: tuple[str, ...] = ()) -> None:
    """Fix the batch to 1, make the input NCHW named ``input`` of ``size``, simplify with onnxsim.

    A graph that takes NHWC and transposes to NCHW first (as TF-exported graphs do) is cut at
    that Transpose: onnx2tf misreads such inputs, and NCHW is what it expects to turn into NHWC.
    ``rewrites`` (the recipe's ``convert.rewrite``) work around converter bugs after
    simplification: ``reduce_l2`` (``rewrite_reduce_l2``).
    """
    import onnx
    from onnx import helper
    from onnxsim import simplify

    model = onnx.load(str(src))
    g = model.graph
    (inp,) = [i for i in g.input if i.name == input_name]
    elem = inp.type.tensor_type.elem_type
    channels = 3
    new_input = helper.make_tensor_value_info(INPUT, elem, [1, channels, size[0], size[1]])
    consumers = [n for n in g.node if input_name in n.input]
    if layout == "NHWC":
        perm = None
        if len(consumers) == 1 and consumers[0].op_type == "Transpose":
            perm = list(helper.get_attribute_value(consumers[0].attribute[0]))
        if perm != [0, 3, 1, 2]:
            raise ValueError(f"NHWC input {input_name!r} is not followed by a Transpose to NCHW")
        (transpose,) = consumers
        old = transpose.output[0]
        g.node.remove(transpose)
        for n in g.node:
            for k, name in enumerate(n.input):
                if name == old:
                    n.input[k] = INPUT
    else:
        for n in consumers:
            for k, name in enumerate(n.input):
                if name == input_name:
                    n.input[k] = INPUT
    g.input.remove(inp)
    g.input.insert(0, new_input)
    for out in g.output:  # batch 1 on the outputs too, so shapes infer statically
        dims = out.type.tensor_type.shape.dim
        if dims and dims[0].dim_value > 1:
            # Declared for the shape the model was exported with (CenterFace: a batch of 10 at
            # 32x32): left free, onnxsim infers them for this input.
            for k, d in enumerate(dims):
                d.dim_param = f"{out.name}_{k}"
        elif dims and not dims[0].dim_value:
            dims[0].dim_value = 1
    model, ok = simplify(model, overwrite_input_shapes={INPUT: [1, channels, *size]})
    if not ok:
        raise RuntimeError("onnxsim could not validate the simplified model")
    for name in rewrites:
        if name != "reduce_l2":
            raise ValueError(f"unknown rewrite {name!r}")
        print(f"prepare: {rewrite_reduce_l2(model)} ReduceL2 rewritten as Sqrt(ReduceSum(x*x))",
              flush=True)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


def calibration(images: Path, color: str, dst: Path) -> None:
    """uint8 RGB NHWC images -> float32 pixels in the model's colour order (normalised later)."""
    import numpy as np

    x = np.load(images).astype(np.float32)
    if color == "BGR":
        x = x[..., ::-1]
    np.save(dst, np.ascontiguousarray(x))


def float_tflite_int8(job: dict[str, Any], fp32: Path, calib_pixels: Path) -> None:
    """int8 quantized from onnx2tf's float TFLite file as BlazeFace's is made (``tflite_job``:
    TFLite calibration, per-channel int8 weights, the recipe's first ``float_ops`` and last
    ``float_head_ops`` ops kept in float, after ``int8_job.equalize`` if the recipe asks), for
    a model whose error builds up at both ends."""
    import numpy as np

    from . import tflite_job

    mean = np.asarray(job["mean"], np.float32)
    std = np.asarray(job["std"], np.float32)
    x = ((np.load(calib_pixels).astype(np.float32) - mean) / std).astype(np.float32)
    model = fp32.read_bytes()
    if job["int8"].get("equalize"):
        from .int8_job import equalize

        model = equalize(model, x, float(job["int8"]["equalize"]))
    quantized = tflite_job.quantize(model, x, job["int8"], int16=False)
    Path(job["variants"]["int8"]).write_bytes(quantized)


def run(job: dict[str, Any]) -> None:
    import numpy as np
    import onnx2tf

    wd = Path(job["workdir"])
    wd.mkdir(parents=True, exist_ok=True)
    prepared = wd / "model.onnx"
    prepare(Path(job["source"]), prepared, job["input"], job["layout"], job["size"],
            tuple(job.get("rewrite") or ()))
    shutil.copy(prepared, wd / "prepared.onnx")  # onnx2tf rewrites its input in place
    calib = wd / "calib.npy"
    calibration(Path(job["calib"]), job["color"], calib)
    # onnx2tf fetches this sample file from the internet unless it is in the cwd; it only uses
    # it for its own sanity checks, our calibration data comes in through -cind.
    rng = np.random.default_rng(0)
    np.save(wd / "calibration_image_sample_data_20x128x128x3_float32.npy",
            rng.random((20, 128, 128, 3), dtype=np.float32))
    # int8 quantized from the fp32 file (recipe convert.int8.from) needs no onnx2tf calibration,
    # which for a 224 px model with attention takes minutes per quantized output.
    from_fp32 = bool(job.get("int8")) and job["int8"].get("from") == "fp32"
    quant = "int16x8" in job["variants"] or ("int8" in job["variants"] and not from_fp32)
    mean = np.asarray(job["mean"], np.float32).reshape(1, 1, 1, -1)
    std = np.asarray(job["std"], np.float32).reshape(1, 1, 1, -1)
    out = wd / "tf"
    onnx2tf.convert(
        input_onnx_file_path=str(prepared),
        output_folder_path=str(out),
        copy_onnx_input_output_names_to_tflite=True,
        output_integer_quantized_tflite=quant,
        quant_type="per-channel",
        custom_input_op_name_np_data_path=[[INPUT, str(calib), mean, std]] if quant else None,
        output_signaturedefs=True,
        # Ops onnx2tf should build from built-in TFLite ops instead of its default (Erf would
        # otherwise become a Flex op the device runtimes lack): the recipe's convert.pseudo_ops.
        replace_to_pseudo_operators=[op.lower() for op in job.get("pseudo_ops") or ()],
        non_verbose=True,
    )
    tuned = job.get("int8") and "int8" in job["variants"]
    if tuned and job["int8"].get("from") == "fp32":
        float_tflite_int8(job, out / f"model{SUFFIXES['fp32']}", calib)
    elif tuned:  # the recipe's own int8 path (see int8_job) instead of onnx2tf's plain int8
        from . import int8_job

        int8_job.run(job, wd / "prepared.onnx", INPUT, calib, out)
    for variant, dest in job["variants"].items():
        if tuned and variant == "int8":
            continue
        produced = out / f"model{SUFFIXES[variant]}"
        if not produced.exists():
            raise FileNotFoundError(f"onnx2tf did not produce {produced.name}")
        shutil.copy(produced, dest)


if __name__ == "__main__":
    run(json.loads(Path(sys.argv[1]).read_text()))
