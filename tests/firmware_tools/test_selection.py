"""Limit checks and per-platform variant choice: pure policy, no models needed."""

from __future__ import annotations

import pytest

from firmware_tools.validate import ValidationFailed, check, choose_preferred

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
