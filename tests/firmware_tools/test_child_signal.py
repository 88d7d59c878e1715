"""The shipped bundle protects the child signal: its measured |dP(minor)| and small-face recall
(real numbers from ``models/default/manifest.json``) meet the recipe's limits on every platform's
``preferred`` variant, the ARM choice follows the recipe's order over passing variants only, and
the model card shows those numbers."""

from __future__ import annotations

import json

import numpy as np

from edge_screen.manifest import parse_manifest
from firmware_tools.pipeline import card, face_scenes
from firmware_tools.pipeline.recipe import DEFAULT_OUT, load_recipe
from firmware_tools.pipeline.validate import check, choose_preferred

RAW = json.loads((DEFAULT_OUT / "manifest.json").read_text())
MANIFEST = parse_manifest(RAW)
RECIPE = load_recipe()
CHILD_SIGNAL = {"age_estimator": "max_abs_dp_minor", "face_detector": "small_face_recall"}


def test_every_variant_of_the_child_signal_models_carries_its_measurement() -> None:
    for model_id, measure in CHILD_SIGNAL.items():
        model = next(m for m in MANIFEST.models if m.id == model_id)
        for v in model.variants:
            assert measure in v.fidelity, (model_id, v.name)


def test_preferred_variants_meet_every_limit_including_the_child_signal() -> None:
    for model in MANIFEST.models:
        limits = RECIPE.model(model.id).limits
        for machine in (*model.preferred, "x86_64", "aarch64", "armv7l"):
            v = model.preferred_variant(machine)
            assert check(limits, dict(v.fidelity)) == [], (model.id, machine, v.name)
        if model.id in CHILD_SIGNAL:
            measure = CHILD_SIGNAL[model.id]
            bound = {**limits.get("max", {}), **limits.get("min", {})}[measure]
            for machine in ("aarch64", "armv7l"):
                got = model.preferred_variant(machine).fidelity[measure]
                assert got <= bound if measure.startswith("max") else got >= bound


def test_every_choice_is_the_recipe_order_over_passing_variants() -> None:
    for model in MANIFEST.models:
        rules = {k: v for k, v in RECIPE.preference_for(model.id).items() if isinstance(v, list)}
        limits = RECIPE.model(model.id).limits
        results = {v.name: {"passes": not check(limits, dict(v.fidelity)), "latency_ms": None}
                   for v in model.variants}
        assert choose_preferred(rules, results) == {k: model.preferred[k] for k in rules}


def test_model_card_shows_the_child_signal_per_variant_and_says_arm_was_not_timed() -> None:
    text = (DEFAULT_OUT / "MODEL_CARD.md").read_text()
    for column in ("max_abs_dp_minor", "mean_abs_dp_minor", "small_face_recall", "limits met"):
        assert f"| {column} |" in text
    assert "ARM (`aarch64`, `armv7l`) was not timed" in text


def test_card_names_the_limits_a_variant_meets_and_fails() -> None:
    limits = {"mae_years": "mae_years <= 1.0", "max_abs_dp_minor": "max_abs_dp_minor <= 0.05"}
    assert card._met(limits, []) == "all: mae_years, max_abs_dp_minor"
    assert card._met(limits, ["max_abs_dp_minor 0.089 > 0.05"]) == (
        "no: fails max_abs_dp_minor 0.089 > 0.05; meets mae_years")


def test_small_face_set_is_seeded_and_sized_for_the_model() -> None:
    a = face_scenes.build_small("heldout", (192, 192), 2, 3, (20.0, 32.0))
    b = face_scenes.build_small("heldout", (192, 192), 2, 3, (20.0, 32.0))
    assert a.shape == (2, 192, 192, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
