"""Step 2, convert: each source model to TFLite variants (fp32, fp16, int8, int16x8).

ONNX models go through onnx2tf in the converter venv (``onnx_job``), calibrated on images made
by ``datasets``; a TensorFlow.js layers model (nsfwjs) is rebuilt in Keras and converted by the
TFLite converter there (``tfjs_job``); a float TFLite source (BlazeFace) is the fp32 variant as
is, and its quantized variants are made from the file itself in the converter venv
(``tflite_job``); dlib's landmark cascade becomes a pickle-free ``.npz``
(``landmarks_convert``).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable

from ..jobs import onnx_job, tfjs_job, tflite_job
from . import datasets, venv
from .recipe import LANDMARKS_KIND, TFJS_KIND, ModelRecipe, Recipe, Work, load_recipe


def convert_model(work: Work, model: ModelRecipe) -> list[str]:
    """Write ``variants/<id>.<variant>.tflite`` for one model; return the variant names."""
    work.variants.mkdir(parents=True, exist_ok=True)
    source = work.source_file(model)
    if not source.exists():
        raise FileNotFoundError(f"{source} is missing; run the fetch step first")
    if model.kind == LANDMARKS_KIND:
        from .landmarks_convert import convert as dat_to_npz

        dest = work.variant_file(model.id, "fp32", model.suffix)
        dest.write_bytes(dat_to_npz(source.read_bytes()))
        return ["fp32"]
    if model.kind == "tflite" and model.variants == ["fp32"]:
        shutil.copy(source, work.variant_file(model.id, "fp32"))
        return ["fp32"]
    jobdir = work.convert / model.id
    if jobdir.exists():
        shutil.rmtree(jobdir)
    jobdir.mkdir(parents=True)
    spec = model.input
    # What every conversion job reads: the source, the input's colour and normalisation, the
    # calibration set and where each variant goes.
    common = {
        "source": str(source),
        "color": spec["color"],
        "mean": spec["mean"],
        "std": spec["std"],
        "calib": str(datasets.ensure(work, model, "calib")),
        "variants": {v: str(work.variant_file(model.id, v)) for v in model.variants},
    }
    if model.kind == "tflite":
        job = {**common, "quantize": model.raw["convert"].get("quantize", {})}
        (jobdir / "job.json").write_text(json.dumps(job, indent=1))
        venv.run_module(tflite_job.__name__, [str(jobdir / "job.json")], jobdir,
                        jobdir / "convert.log")
        return model.variants
    if model.kind == TFJS_KIND:
        job = {"kind": "convert", "workdir": str(jobdir), **common,
               "int8": model.raw["convert"].get("int8")}
        (jobdir / "job.json").write_text(json.dumps(job, indent=1))
        venv.run_module(tfjs_job.__name__, [str(jobdir / "job.json")], jobdir,
                        jobdir / "convert.log")
        return model.variants
    job = {
        "workdir": str(jobdir),
        **common,
        "input": model.raw["convert"]["input"],
        "layout": model.raw["convert"]["layout"],
        "size": spec["size"],
        "int8": model.raw["convert"].get("int8"),
        "rewrite": model.raw["convert"].get("rewrite", []),
        "pseudo_ops": model.raw["convert"].get("pseudo_ops", []),
    }
    (jobdir / "job.json").write_text(json.dumps(job, indent=1))
    venv.run_module(onnx_job.__name__, [str(jobdir / "job.json")], jobdir,
                    jobdir / "convert.log")
    return model.variants


def convert(work: Work, recipe: Recipe | None = None, only: Iterable[str] = ()) -> None:
    recipe = recipe or load_recipe()
    wanted = set(only)
    for m in recipe.models:
        if wanted and m.id not in wanted:
            continue
        t0 = time.monotonic()
        names = convert_model(work, m)
        print(f"convert: {m.id}: {', '.join(names)} ({time.monotonic() - t0:.0f} s)", flush=True)
