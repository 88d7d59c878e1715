"""Synthetic classifier inputs in the decision range, for validation where natural images fail.

No image in any package is sexual or violent, so natural held-out images all score near 0 on
open_nsfw, the graphic (NSFL) model and nsfwjs's Hentai and Porn classes, and never test a
quantised model where thresholds sit. This step pushes held-out-style images into the decision
range by signed-gradient ascent on the float model (onnx2tf's SavedModel, or ``tfjs_job``'s for
nsfwjs, in the converter venv) and stores them as uint8, so the data in the repo is what gets
validated. They are adversarially optimised noise on harmless pictures, nothing else.

What each model's inputs aim at is the recipe's ``validation.synthetic``: the class(es) pushed
with the range of first to last target (the images shared out between classes in turn), the
range a kept image must end in, the count and the file. open_nsfw predates that field: its
inputs push P(nsfw) to 0.22-0.9, kept in 0.2-0.95.

These are model inputs, not photos: they measure the variants at the tensor only. Stored as
photos and screened, only 2 of open_nsfw's 19 reach 0.2, since the screener's preprocessing
(resize, JPEG q75 round trip) undoes the perturbation. Photos made through that preprocessing,
which reach ``review`` and ``hold`` via ``screen()`` on every variant, and their end-to-end
fidelity: ``edge-screen-fw decision`` (``firmware_tools/data/decision_range.json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..jobs import synth_job
from ..pipeline import datasets, venv
from ..pipeline.recipe import TFJS_KIND, ModelRecipe, Work, load_recipe

MODEL_ID = "open_nsfw"
OPEN_NSFW = {"targets": {"nsfw": [0.22, 0.9]}, "keep": [0.2, 0.95], "count": 24}
MARGIN = 0.02  # first target above the kept range's floor, so bisection noise stays inside


def spec(model: ModelRecipe) -> dict[str, Any]:
    """The synthetic-input spec of a model: ``targets`` (label -> [low, high] of the kept
    range or of the targets), ``keep``, ``count``."""
    if model.id == MODEL_ID and not model.synthetic_spec:
        return dict(OPEN_NSFW)
    raw = model.synthetic_spec
    if not raw:
        raise KeyError(f"{model.id} has no validation.synthetic in the recipe")
    return raw


def classes(model: ModelRecipe, raw: dict[str, Any]) -> tuple[list[list[float]], list[float]]:
    """``[[class index, first target, last target], ...]`` and the kept range."""
    labels = list(model.raw["output"]["labels"])
    if "keep" in raw:  # open_nsfw's: targets are the targets, keep is the kept range
        keep = [float(v) for v in raw["keep"]]
        return [[labels.index(k), float(a), float(b)] for k, (a, b) in raw["targets"].items()], keep
    lows, highs = zip(*raw["targets"].values(), strict=True)
    keep = [float(min(lows)), float(max(highs))]
    return ([[labels.index(k), float(a) + MARGIN, float(b) - MARGIN]
             for k, (a, b) in raw["targets"].items()], keep)


def saved_model(work: Work, model: ModelRecipe) -> Path:
    """The float SavedModel the convert step left for the model."""
    name = "saved_model" if model.kind == TFJS_KIND else "tf"
    return work.convert / model.id / name


def synth(work: Work, out: Path | None, count: int | None, model_id: str = MODEL_ID) -> Path:
    """Needs ``convert --model ID`` done in ``work``; the ascent runs in the converter venv
    (``jobs.synth_job``). Returns the file written (default: the recipe's)."""
    model = load_recipe().model(model_id)
    saved = saved_model(work, model)
    if not (saved / "saved_model.pb").exists():
        raise FileNotFoundError(f"{saved} has no SavedModel; run: convert --model {model_id}")
    raw = spec(model)
    targets, keep = classes(model, raw)
    dest = out or model.synthetic
    if dest is None:
        from ..pipeline.recipe import SYNTHETIC_FILE

        dest = SYNTHETIC_FILE
    job = {"saved_model": str(saved), "start": str(datasets.ensure(work, model, "heldout")),
           "count": int(count or raw.get("count", 24)), "color": model.input["color"],
           "mean": model.input["mean"], "std": model.input["std"], "keep": keep,
           "out": str(dest.resolve())}
    if model.id != MODEL_ID:
        job["classes"] = targets
    jobfile = work.root / f"synth-{model.id}.json"
    jobfile.write_text(json.dumps(job))
    venv.run_module(synth_job.__name__, [str(jobfile)], work.root,
                    work.root / f"synth-{model.id}.log")
    print(f"synth: wrote {dest}", flush=True)
    return dest
