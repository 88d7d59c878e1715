"""Synthetic open_nsfw inputs in the decision range, for validation where natural images fail.

No image in any package is sexual, so natural held-out images all score near 0 and never test
the quantised model where thresholds sit. This step pushes held-out-style images into the
0.2-0.95 P(nsfw) range by signed-gradient ascent on the float model (onnx2tf's SavedModel, in
the converter venv) and stores them as uint8, so the data in the repo is what gets validated.

These are model inputs, not photos: they measure the variants at the tensor only. Stored as
photos and screened, only 2 of the 19 reach 0.2, since the screener's preprocessing (resize,
JPEG q75 round trip) undoes the perturbation. Photos made through that preprocessing, which
reach ``review`` and ``hold`` via ``screen()`` on every variant, and their end-to-end fidelity:
``edge-screen-fw decision`` (``firmware_tools/data/decision_range.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..jobs import synth_job
from ..pipeline import datasets, venv
from ..pipeline.recipe import Work, load_recipe

MODEL_ID = "open_nsfw"


def synth(work: Work, out: Path, count: int) -> None:
    """Needs ``convert --model open_nsfw`` done in ``work``; the ascent runs in the converter
    venv (``jobs.synth_job``)."""
    model = load_recipe().model(MODEL_ID)
    saved = work.convert / MODEL_ID / "tf"
    if not (saved / "saved_model.pb").exists():
        raise FileNotFoundError(f"{saved} has no SavedModel; run: convert --model {MODEL_ID}")
    job = {"saved_model": str(saved), "start": str(datasets.ensure(work, model, "heldout")),
           "count": count, "mean": model.input["mean"], "out": str(out.resolve())}
    jobfile = work.root / "synth.json"
    jobfile.write_text(json.dumps(job))
    venv.run_module(synth_job.__name__, [str(jobfile)], work.root, work.root / "synth.log")
    print(f"synth: wrote {out}", flush=True)
