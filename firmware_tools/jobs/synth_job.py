"""Runs inside the converter venv: signed-gradient ascent of held-out images on open_nsfw.

Started by ``studies.synth`` (``edge-screen-fw synth``) as ``python -m
firmware_tools.jobs.synth_job job.json``; the job file names the float SavedModel, the start
images, the count, the model's mean and the output file. Only the stdlib is imported at module
level.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

LOW, HIGH = 0.2, 0.95  # the P(nsfw) range an image must end in to be kept


def run(job: dict[str, Any]) -> None:
    """Gradient ascent with TensorFlow; one target score per image."""
    import numpy as np
    import tensorflow as tf

    fn = tf.saved_model.load(job["saved_model"]).signatures["serving_default"]
    (name,) = fn.structured_input_signature[1].keys()
    mean = tf.constant(job["mean"], tf.float32)
    start = np.load(job["start"])
    count = int(job["count"])
    rng = np.random.default_rng(3)
    picks = rng.choice(len(start), size=count, replace=False)
    targets = np.linspace(0.22, 0.9, count)

    def score(pixels: Any) -> Any:  # the SavedModel has batch 1: one image at a time
        bgr = tf.reverse(pixels[None], axis=[-1]) - mean
        (out,) = fn(**{name: bgr}).values()
        return out[0, 1]

    images, scores, kept = [], [], []
    for i, target in zip(picks, targets, strict=True):
        x = tf.Variable(start[i].astype(np.float32))
        for _ in range(200):
            before = x.numpy()
            with tf.GradientTape() as tape:
                loss = tf.math.log(score(x) + 1e-6)
            x.assign(tf.clip_by_value(x + 0.5 * tf.sign(tape.gradient(loss, x)), 0, 255))
            if float(score(tf.round(x))) >= target:
                break
        # The score is steep: bisect between the last two steps to land on the target.
        lo, hi, after = 0.0, 1.0, x.numpy()
        for _ in range(12):
            mid = (lo + hi) / 2
            if float(score(tf.round(before + mid * (after - before)))) < target:
                lo = mid
            else:
                hi = mid
        x.assign(before + hi * (after - before))
        image = np.round(x.numpy()).astype(np.uint8)
        final = float(score(tf.constant(image.astype(np.float32))))
        print(f"image {i}: target {target:.2f} -> {final:.3f}", flush=True)
        if LOW <= final <= HIGH:
            images.append(image)
            scores.append(final)
            kept.append(int(i))
    print(f"kept {len(images)}/{count}", flush=True)
    np.savez_compressed(job["out"], images=np.stack(images), float_scores=np.array(scores),
                        source_index=np.array(kept))


if __name__ == "__main__":
    run(json.loads(Path(sys.argv[1]).read_text()))
