"""Runs inside the converter venv: signed-gradient ascent of held-out images on a float
classifier, until one class's probability reaches a target.

Started by ``studies.synth`` (``edge-screen-fw synth``) as ``python -m
firmware_tools.jobs.synth_job job.json``; the job file names the float SavedModel (onnx2tf's or
``tfjs_job``'s), the start images, the model's colour order, mean and std, the classes to push
with their target ranges (``classes``: ``[[index, first target, last target], ...]``, the images
shared out between them in turn), the range a kept image's score must end in (``keep``), the
count and the output file. Only the stdlib is imported at module level.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def run(job: dict[str, Any]) -> None:
    """Gradient ascent with TensorFlow; one target score per image."""
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(job["saved_model"])  # kept alive: fn uses its variables
    fn = loaded.signatures["serving_default"]
    (name,) = fn.structured_input_signature[1].keys()
    mean = tf.constant(job["mean"], tf.float32)
    std = tf.constant(job.get("std", [1.0, 1.0, 1.0]), tf.float32)
    bgr = job.get("color", "BGR") == "BGR"
    start = np.load(job["start"])
    count = int(job["count"])
    low, high = (float(v) for v in job.get("keep", (0.2, 0.95)))
    rng = np.random.default_rng(3)
    picks = rng.choice(len(start), size=count, replace=False)
    classes = job.get("classes") or [[1, 0.22, 0.9]]
    jobs = []
    for c_index, (cls, first, last) in enumerate(classes):
        mine = [k for k in range(count) if k % len(classes) == c_index]
        jobs += [(k, int(cls), float(t))
                 for k, t in zip(mine, np.linspace(first, last, len(mine)), strict=True)]
    jobs.sort()

    def score(pixels: Any, cls: int) -> Any:  # the SavedModel has batch 1: one image at a time
        x = tf.reverse(pixels[None], axis=[-1]) if bgr else pixels[None]
        (out,) = fn(**{name: (x - mean) / std}).values()
        return out[0, cls]

    images, scores, kept, pushed = [], [], [], []
    for k, cls, target in jobs:
        i = picks[k]
        x = tf.Variable(start[i].astype(np.float32))
        for _ in range(int(job.get("steps", 200))):
            before = x.numpy()
            with tf.GradientTape() as tape:
                loss = tf.math.log(score(x, cls) + 1e-6)
            x.assign(tf.clip_by_value(x + 0.5 * tf.sign(tape.gradient(loss, x)), 0, 255))
            if float(score(tf.round(x), cls)) >= target:
                break
        # The score is steep: bisect between the last two steps to land on the target.
        lo, hi, after = 0.0, 1.0, x.numpy()
        for _ in range(12):
            mid = (lo + hi) / 2
            if float(score(tf.round(before + mid * (after - before)), cls)) < target:
                lo = mid
            else:
                hi = mid
        x.assign(before + hi * (after - before))
        image = np.round(x.numpy()).astype(np.uint8)
        final = float(score(tf.constant(image.astype(np.float32)), cls))
        print(f"image {i}: class {cls} target {target:.2f} -> {final:.3f}", flush=True)
        if low <= final <= high:
            images.append(image)
            scores.append(final)
            kept.append(int(i))
            pushed.append(cls)
    print(f"kept {len(images)}/{count}", flush=True)
    extra = {"pushed_class": np.array(pushed)} if "classes" in job else {}
    np.savez_compressed(job["out"], images=np.stack(images), float_scores=np.array(scores),
                        source_index=np.array(kept), **extra)


if __name__ == "__main__":
    run(json.loads(Path(sys.argv[1]).read_text()))
