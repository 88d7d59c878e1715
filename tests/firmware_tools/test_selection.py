"""Limit checks and per-platform variant choice: pure policy, no models needed (the recipe's own
child-signal bounds, tiny made-up measurements)."""

from __future__ import annotations

import pytest

from firmware_tools.pipeline.recipe import load_recipe
from firmware_tools.pipeline.validate import ValidationFailed, check, choose_preferred

LIMITS = {"max": {"mean_abs_dp": 0.03, "max_abs_dp": 0.10}, "min": {"recall": 0.95}}


def test_check_reports_each_violated_limit() -> None:
    bad = check(LIMITS, {"mean_abs_dp": 0.01, "max_abs_dp": 0.2, "recall": 0.9})
    assert len(bad) == 2 and bad[0].startswith("max_abs_dp")


def test_check_treats_a_missing_measurement_as_a_failure() -> None:
    assert check(LIMITS, {"mean_abs_dp": 0.01, "max_abs_dp": 0.01}) == ["recall nan < 0.95"]


def test_fastest_passing_variant_wins_and_a_failing_one_is_never_preferred() -> None:
    results = {
        "fp32": {"passes": True, "latency_ms": 10.0},
        "int8": {"passes": False, "latency_ms": 2.0},
        "fp16": {"passes": True, "latency_ms": 9.0},
    }
    chosen = choose_preferred({"x86_64": "fastest", "aarch64": ["int8", "fp32"]}, results)
    assert chosen == {"x86_64": "fp16", "aarch64": "fp32"}


def test_no_passing_variant_fails_the_build() -> None:
    with pytest.raises(ValidationFailed):
        choose_preferred({"default": ["int8"]}, {"int8": {"passes": False, "latency_ms": 1.0}})


# The child-signal limits, with tiny made-up numbers: the recipe's own bounds decide.
RECIPE = load_recipe()
AGE = RECIPE.model("age_estimator").limits
FACES = RECIPE.model("face_detector").limits
ARM = {"x86_64": "fastest", "aarch64": ["int8", "int16x8", "fp16", "fp32"], "default": ["fp32"]}


def _results(fidelity: dict[str, dict[str, float]], limits: dict[str, dict[str, float]],
             latency: dict[str, float]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for name, fid in fidelity.items():
        failures = check(limits, fid)
        out[name] = {"fidelity": fid, "passes": not failures, "failures": failures,
                     "latency_ms": latency[name]}
    return out


def test_recipe_has_child_signal_limits_each_with_a_reason() -> None:
    assert "max_abs_dp_minor" in AGE["max"] and "small_face_recall" in FACES["min"]
    for model in RECIPE.models:
        named = {*model.limits.get("max", {}), *model.limits.get("min", {})}
        assert named <= set(model.limit_reasons), model.id


def test_age_variant_moving_p_minor_past_the_limit_is_never_preferred() -> None:
    bound = AGE["max"]["max_abs_dp_minor"]
    good = {"mae_years": 0.01, "max_abs_dp_minor": bound / 10}
    # Fastest, and within the MAE limit: only the child signal rules it out.
    bad = {"mae_years": 0.2, "max_abs_dp_minor": bound + 0.01}
    results = _results({"fp32": good, "fp16": good, "int8": bad},
                       AGE, {"fp32": 1.0, "fp16": 1.0, "int8": 0.3})
    assert results["int8"]["failures"] == [f"max_abs_dp_minor {bound + 0.01:.4g} > {bound}"]
    chosen = choose_preferred(ARM, results)
    assert "int8" not in chosen.values()
    assert chosen == {"x86_64": "fp32", "aarch64": "fp16", "default": "fp32"}


def test_detector_variant_losing_small_faces_is_never_preferred() -> None:
    bound = FACES["min"]["small_face_recall"]
    full = {"recall": 1.0, "mean_iou": 1.0, "small_face_recall": 1.0}
    # Meets the all-size recall limit, misses too many small faces.
    bad = {"recall": 0.99, "mean_iou": 0.97, "small_face_recall": bound - 0.01}
    ok = {"recall": 0.98, "mean_iou": 0.98, "small_face_recall": bound + 0.01}
    results = _results({"fp32": full, "int8": bad, "int16x8": ok},
                       FACES, {"fp32": 2.0, "int8": 1.0, "int16x8": 90.0})
    assert not results["int8"]["passes"]
    chosen = choose_preferred(ARM, results)
    assert chosen == {"x86_64": "fp32", "aarch64": "int16x8", "default": "fp32"}


def test_a_variant_without_the_small_face_measurement_fails_the_limit() -> None:
    bound = FACES["min"]["small_face_recall"]
    assert check(FACES, {"recall": 1.0, "mean_iou": 1.0}) == [f"small_face_recall nan < {bound}"]


def test_a_timing_tie_goes_to_the_more_faithful_variant() -> None:
    """Timings within noise of each other say nothing about speed: the variant closer to the
    float model (listed first) is preferred, as it loses no face or minor to quantisation."""
    from firmware_tools.pipeline.validate import choose_preferred

    results = {
        "fp32": {"passes": True, "latency_ms": 56.0, "size": 23_000_000},
        "int8": {"passes": True, "latency_ms": 56.7, "size": 6_000_000},
        "fp16": {"passes": True, "latency_ms": 80.0, "size": 12_000_000},
    }
    assert choose_preferred({"x86_64": "fastest"}, results) == {"x86_64": "fp32"}
    results["int8"]["latency_ms"] = 40.0  # no longer a tie: the fastest wins
    assert choose_preferred({"x86_64": "fastest"}, results) == {"x86_64": "int8"}
