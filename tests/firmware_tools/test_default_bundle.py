"""The committed default bundle: parses, every file is what the manifest vouches for, and the
variant ``preferred`` on each platform is within the recipe's fidelity limits."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from edge_screen.manifest import parse_manifest
from firmware_tools.pipeline.recipe import DEFAULT_OUT, load_lock, load_recipe, lock_key
from firmware_tools.pipeline.validate import check

MANIFEST = DEFAULT_OUT / "manifest.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_parses_with_the_runtime_schema() -> None:
    manifest = parse_manifest(json.loads(MANIFEST.read_text()))
    assert {m.task for m in manifest.models} == {
        "face_detection", "face_landmarks", "age_estimation", "image_classification"}


def test_every_file_matches_its_sha256_and_size() -> None:
    manifest = parse_manifest(json.loads(MANIFEST.read_text()))
    for entry in manifest.files():
        path = DEFAULT_OUT / entry.file
        assert path.stat().st_size == entry.size, entry.file
        assert _sha256(path) == entry.sha256, entry.file


def test_bundle_directory_holds_no_unlisted_files() -> None:
    manifest = parse_manifest(json.loads(MANIFEST.read_text()))
    listed = {e.file for e in manifest.files()} | {"manifest.json", "MODEL_CARD.md"}
    assert {p.name for p in DEFAULT_OUT.iterdir()} == listed


def test_preferred_variants_are_within_the_recipe_limits() -> None:
    manifest = parse_manifest(json.loads(MANIFEST.read_text()))
    recipe = load_recipe()
    for model in manifest.models:
        limits = recipe.model(model.id).limits
        for machine in ("x86_64", "aarch64", "armv7l", "default"):
            variant = model.preferred_variant(machine)
            assert not check(limits, dict(variant.fidelity)), (model.id, machine, variant.name)


def test_bundle_matches_the_recipe_and_the_source_lock() -> None:
    """The shipped bundle is the recipe's build: every model, from the locked source."""
    raw = json.loads(MANIFEST.read_text())
    recipe = load_recipe()
    lock = {lock_key(p): p["sha256"] for p in load_lock()}
    assert raw["bundle_version"] == recipe.bundle_version
    assert [m["id"] for m in raw["models"]] == [m.id for m in recipe.models]
    for model in raw["models"]:
        r = recipe.model(model["id"])
        assert model["source"]["sha256"] == lock[r.package]
        # A device bundle ships some of the recipe's variants, in its order, and names the rest.
        shipped = [v["name"] for v in model["variants"]]
        assert shipped == [v for v in r.variants if v in shipped]
        assert sorted(shipped + model["not_shipped"]) == sorted(r.variants)

