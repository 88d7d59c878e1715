"""Runs inside the converter venv: open_nsfw's float model as a score-and-gradient server.

``convert`` turns the pinned ONNX into a float-only SavedModel (the same ``onnx_job.prepare``
and onnx2tf call as the conversion step, without the quantised outputs, so it takes a minute).
``serve`` loads that SavedModel and answers requests on stdin/stdout: each request is one uint8
RGB model input (exactly what the screener's preprocessing hands the model: ``stretch`` for
open_nsfw, ``align_face`` for the age model), each answer the float score (P(nsfw), P(minor))
and d log score / d pixel as float32. The real preprocessing runs in the caller
(``firmware_tools.studies.decision``), which has Pillow and edge_screen; this venv has neither.
Only the stdlib is imported at module level.
"""

from __future__ import annotations

import json
import shutil
import struct
import sys
from pathlib import Path
from typing import Any


def answer_bytes(size: list[int]) -> int:
    """float32 score, then the float32 gradient of a (h, w, 3) input."""
    return 4 + size[0] * size[1] * 3 * 4


def convert(job: dict[str, Any]) -> None:
    """ONNX -> float SavedModel with signatures, in ``job["workdir"]/tf``."""
    import numpy as np
    import onnx2tf

    from .onnx_job import prepare

    wd = Path(job["workdir"])
    if wd.exists():
        shutil.rmtree(wd)
    wd.mkdir(parents=True)
    prepared = wd / "model.onnx"
    prepare(Path(job["source"]), prepared, job["input"], job["layout"], job["size"])
    # onnx2tf fetches this sample file from the internet unless it is in the cwd.
    rng = np.random.default_rng(0)
    np.save(Path.cwd() / "calibration_image_sample_data_20x128x128x3_float32.npy",
            rng.random((20, 128, 128, 3), dtype=np.float32))
    onnx2tf.convert(input_onnx_file_path=str(prepared), output_folder_path=str(wd / "tf"),
                    copy_onnx_input_output_names_to_tflite=True, output_signaturedefs=True,
                    non_verbose=True)


def serve(saved_model: str, spec: dict[str, Any]) -> None:
    """Answer score-and-gradient requests until stdin closes. ``spec``: the model input's
    ``size``, ``color``, ``mean``, ``std`` (as the manifest says) and the output ``positive``
    indices whose share of the output is the score (P(nsfw); P(age < 18))."""
    import numpy as np
    import tensorflow as tf

    fn = tf.saved_model.load(saved_model).signatures["serving_default"]
    (name,) = fn.structured_input_signature[1].keys()
    h, w = spec["size"]
    mean = tf.constant(spec["mean"], tf.float32)
    std = tf.constant(spec["std"], tf.float32)
    positive = tf.constant(spec["positive"], tf.int32)

    @tf.function(input_signature=[tf.TensorSpec([h, w, 3], tf.float32)])
    def step(rgb: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(rgb)
            x = tf.reverse(rgb, axis=[-1]) if spec["color"] == "BGR" else rgb
            (out,) = fn(**{name: ((x - mean) / std)[None]}).values()
            out = tf.reshape(out, [-1])
            p = tf.reduce_sum(tf.gather(out, positive)) / tf.reduce_sum(out)
            loss = tf.math.log(p + 1e-6)
        return p, tape.gradient(loss, rgb)

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while len(data := stdin.read(h * w * 3)) == h * w * 3:
        rgb = np.frombuffer(data, np.uint8).reshape(h, w, 3).astype(np.float32)
        p, grad = step(tf.constant(rgb))
        stdout.write(struct.pack("<f", float(p)) + grad.numpy().astype("<f4").tobytes())
        stdout.flush()


if __name__ == "__main__":
    if sys.argv[1] == "convert":
        convert(json.loads(Path(sys.argv[2]).read_text()))
    else:
        serve(sys.argv[2], json.loads(Path(sys.argv[3]).read_text()))
