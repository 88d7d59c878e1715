"""``edge-screen-fw remeasure`` measures exactly the files of the bundle it is given, and says
how to get a full one when the bundle is a device bundle (only the preferred variants)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware_tools.pipeline.bundle import BundleError, adopt
from firmware_tools.pipeline.fetch import sha256_file
from firmware_tools.pipeline.recipe import DEFAULT_OUT, ModelRecipe, Recipe, Work, load_recipe


def _linked_bundle(root: Path) -> Path:
    out = root / "bundle"
    out.mkdir()
    for f in DEFAULT_OUT.iterdir():
        (out / f.name).symlink_to(f)
    return out


def _shipped_recipe() -> Recipe:
    """The default recipe cut down to the models and variants the device bundle carries (a
    model the recipe has gained since the bundle was built is left out too)."""
    base = load_recipe()
    manifest = json.loads((DEFAULT_OUT / "manifest.json").read_text())
    left_out = {m["id"]: m.get("not_shipped", []) for m in manifest["models"]}
    models = []
    for m in base.models:
        if m.id not in left_out:
            continue
        not_shipped = left_out[m.id]
        convert = {**m.raw["convert"],
                   "variants": [v for v in m.variants if v not in not_shipped]}
        models.append(ModelRecipe(m.id, {**m.raw, "convert": convert}))
    return Recipe(base.bundle_version, base.preference, tuple(models))


def test_adopt_copies_the_shipped_variants_into_the_work_directory(tmp_path: Path) -> None:
    work = Work(tmp_path / "work")
    adopt(work, _linked_bundle(tmp_path), _shipped_recipe())
    for name in ("face_detector.int8.tflite", "age_estimator.fp16.tflite",
                 "face_landmarks.fp32.npz"):
        assert sha256_file(work.variants / name) == sha256_file(DEFAULT_OUT / name)


def test_adopt_refuses_a_variant_file_the_manifest_does_not_vouch_for(tmp_path: Path) -> None:
    out = _linked_bundle(tmp_path)
    bad = out / "face_detector.fp32.tflite"
    data = bytearray(bad.read_bytes())
    data[-1] ^= 1
    bad.unlink()
    bad.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"face_detector\.fp32\.tflite"):
        adopt(Work(tmp_path / "work"), out, _shipped_recipe())


def test_adopt_of_a_device_bundle_names_the_full_build(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="build-default --all-variants"):
        adopt(Work(tmp_path / "work"), _linked_bundle(tmp_path))


def test_adopt_of_a_bundle_without_one_of_the_recipe_models_names_it(tmp_path: Path) -> None:
    base = _shipped_recipe()
    extra = ModelRecipe("new_model", {**base.models[0].raw, "id": "new_model"})
    recipe = Recipe(base.bundle_version, base.preference, (*base.models, extra))
    with pytest.raises(BundleError, match="no new_model model"):
        adopt(Work(tmp_path / "work"), _linked_bundle(tmp_path), recipe)
