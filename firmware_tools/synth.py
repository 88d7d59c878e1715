"""Synthetic open_nsfw inputs in the decision range, for validation where natural images fail.

No image in any package is sexual, so natural held-out images all score near 0 and never test
the quantised model where thresholds sit. This step pushes held-out-style images into the
0.2-0.95 P(nsfw) range by signed-gradient ascent on the float model (onnx2tf's SavedModel, in
the converter venv) and stores them as uint8, so the data in the repo is what gets validated.

These are model inputs, not photos: they measure the variants at the tensor only. Stored as
photos and screened, only 2 of the 19 reach 0.2, since the screener's preprocessing (resize,
JPEG q75 round trip) undoes the perturbation. Photos made through that preprocessing, which
reach ``review`` and ``hold`` via ``screen()`` on every variant, and their end-to-end fidelity:
``python3 -m firmware_tools.decision`` (``firmware_tools/data/decision_range.json``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

MODEL_ID = "open_nsfw"
LOW, HIGH = 0.2, 0.95


def synth(work: Any, out: Path, count: int) -> None:
    """Driver (runtime env): needs ``convert --model open_nsfw`` done in ``work``."""
    from . import datasets, venv
    from .recipe import load_recipe

    model = load_recipe().model(MODEL_ID)
    saved = work.convert / MODEL_ID / "tf"
    if not (saved / "saved_model.pb").exists():
        raise FileNotFoundError(f"{saved} has no SavedModel; run: convert --model {MODEL_ID}")
    job = {"saved_model": str(saved), "start": str(datasets.ensure(work, model, "heldout")),
           "count": count, "mean": model.input["mean"], "out": str(out.resolve())}
    jobfile = work.root / "synth.json"
    jobfile.write_text(json.dumps(job))
    venv.run_module("firmware_tools.synth", [str(jobfile)], work.root, work.root / "synth.log")
    print(f"synth: wrote {out}", flush=True)


def _run(job: dict[str, Any]) -> None:
    """Venv side: gradient ascent with TensorFlow; one target score per image."""
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
    _run(json.loads(Path(sys.argv[1]).read_text()))
