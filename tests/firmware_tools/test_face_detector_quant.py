"""The face detector's face-rich calibration/held-out sets and its quantization path
(``face_scenes``, ``tflite_job``): the sets are disjoint and hold faces the float model finds;
BlazeFace itself goes through the int8 path when the converter venv exists."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest

from firmware_tools.pipeline import convert, face_scenes, facedet, validate, venv
from firmware_tools.pipeline.composite import SCENES
from firmware_tools.pipeline.recipe import DEFAULT_OUT, ModelRecipe, Work, load_recipe

SIZE = (192, 192)


def _detections(images: np.ndarray) -> list[np.ndarray]:
    model = load_recipe().model("face_detector")
    x = validate.normalise(images, model.input)
    out = validate.run_tflite(DEFAULT_OUT / "face_detector.fp32.tflite", x)
    return facedet.boxes(model, out)


def test_splits_share_no_face_background_or_position() -> None:
    assert face_scenes.PHOTO["calib"] != face_scenes.PHOTO["heldout"]
    assert not set(face_scenes.LFW["calib"]) & set(face_scenes.LFW["heldout"])
    assert not set(SCENES["calib"]) & set(SCENES["heldout"])
    assert face_scenes.PARITY["calib"] != face_scenes.PARITY["heldout"]


def test_heldout_is_face_rich_and_seeded() -> None:
    images = face_scenes.build("heldout", SIZE, 40, 2)
    assert np.array_equal(images, face_scenes.build("heldout", SIZE, 40, 2))
    boxes = _detections(images)
    # The full 200-image held-out set holds ~265 float detections; a 40-image prefix > 30.
    assert sum(len(b) for b in boxes) > 30
    assert sum(len(b) > 0 for b in boxes) > 30
    calib = face_scenes.build("calib", SIZE, 40, 1)
    assert not any(np.array_equal(a, b) for a in calib for b in images)


@pytest.mark.skipif(not venv.available(), reason="no converter venv (edge-screen-fw setup)")
def test_blazeface_through_the_int8_path(tmp_path: Path) -> None:
    recipe = load_recipe()
    raw = copy.deepcopy(recipe.model("face_detector").raw)
    raw["convert"]["variants"] = ["fp32", "int8"]
    raw["convert"]["quantize"]["range_samples"] = 16
    model = ModelRecipe("face_detector", raw)
    work = Work(tmp_path / "work")
    work.sources.mkdir(parents=True)
    work.datasets.mkdir(parents=True)
    # Small sets written ahead, so datasets.ensure() takes them instead of the 200-image sets.
    np.save(work.datasets / "face_detector.calib.npy", face_scenes.build("calib", SIZE, 16, 1))
    np.save(work.datasets / "face_detector.heldout.npy",
            face_scenes.build("heldout", SIZE, 40, 2))
    shutil.copy(DEFAULT_OUT / "face_detector.fp32.tflite", work.source_file(model))

    assert convert.convert_model(work, model) == ["fp32", "int8"]
    log = (work.convert / model.id / "convert.log").read_text()
    assert "MSE clipping ranges" in log and "20 ops kept in float" in log
    result = validate.validate_model(work, model, recipe.preference, latency=False, runs=1)
    fid = result["variants"]["int8"]["fidelity"]
    assert fid["n"] > 30 and fid["recall"] >= 0.85 and fid["mean_iou"] >= 0.8, fid
