"""``review`` and ``hold`` reached through ``Screener.screen()`` with real open_nsfw scores.

The files in ``data/decision`` are harmless pictures perturbed against the float open_nsfw model
through the screener's own preprocessing (``edge-screen-fw decision make``): no
threshold is lowered here. Each shipped variant must give the verdict the file is named after,
with a score near the float model's on the same file (``firmware_tools/data/decision_range.json``,
from ``edge-screen-fw decision measure``), so a variant stuck at 0, or preprocessing
that no longer matches the one the files were made through, fails. ``hold_minor_*`` reaches the
child-safety hold (likely minor and sexual >= 0.2, a sexual score that alone is only review): it
is a cartoon face of no one drawn with PIL (``decision_child.drawn_face``), which the age model
reads as a minor, perturbed outside the face against open_nsfw; never a real person's photo
(``tests/firmware_tools/test_decision_child.py`` checks the file is that drawing).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA

from edge_screen import Screener, ScreenerOptions, preprocess
from edge_screen.bundle import Bundle
from edge_screen.manifest import InputSpec
from edge_screen.preprocess import stretch
from edge_screen.report import ScreeningReport

DECISION = DATA / "decision"
RESULTS = Path(__file__).parent.parent / "firmware_tools" / "data" / "decision_range.json"
FILES = sorted(p.name for p in DECISION.iterdir() if p.suffix in (".png", ".jpg"))
REVIEW, HOLD = 0.2, 0.8  # the default policy's sexual thresholds
# Allowed |screen() score - float score| per variant, about 1.5-4x the largest measured on these
# files (decision_range.json: fp16 0.0013, int8 0.073, int16x8 0.027). A score stuck at 0 is off
# by 0.47 or more; preprocessing mistakes move some file's fp32 score by 0.13 (bicubic resize)
# to 0.98 (no centre crop), 0.30 without the JPEG round trip ("broken_preprocessing_fp32").
TOLERANCE = {"fp32": 0.005, "fp16": 0.005, "int8": 0.11, "int16x8": 0.08}


def _shipped(model_id: str) -> tuple[str, ...]:
    """The variants the bundle under test carries (a device bundle: the preferred ones only)."""
    (spec,) = [m for m in Bundle.open().manifest.models if m.id == model_id]
    return tuple(v.name for v in spec.variants)


VARIANTS = _shipped("open_nsfw")
AGE_VARIANTS = _shipped("age_estimator")
MARGIN = 0.1  # the float score sits at least this far inside its verdict's range
MINOR = 0.5  # the default policy's child-safety P(minor)
MINOR_TOLERANCE = 0.1  # |screen() P(minor) - float P(minor)|, default age variant
REVIEW_REASON = "possible sexual content (sexual {:.2f} >= 0.2)"
HOLD_REASON = "sexual content likely (sexual {:.2f} >= 0.8)"
CHILD_REASON = (
    "likely minor together with a sexual-content signal (minor {:.2f} >= 0.5, sexual {:.2f} >= 0.2)"
)
MINOR_REASON = "likely minor in frame (minor {:.2f} >= 0.5)"


def _reference() -> dict[str, dict[str, Any]]:
    return {row["file"]: row for row in json.loads(RESULTS.read_text())["files"]}


@pytest.fixture(scope="module", params=VARIANTS)
def variant_screener(request: pytest.FixtureRequest) -> Iterator[tuple[str, Screener]]:
    opts = ScreenerOptions(variants={"open_nsfw": request.param}, threads=1, workers=1)
    with Screener(opts) as screener:
        yield request.param, screener


def test_every_shipped_open_nsfw_variant_has_a_tolerance() -> None:
    assert VARIANTS and set(VARIANTS) <= set(TOLERANCE)


def test_files_cover_review_and_hold_as_png_and_jpeg_and_child_safety() -> None:
    kinds = {(name.split("_", 1)[0], Path(name).suffix) for name in FILES}
    assert {"review", "hold"} == {k for k, _ in kinds}
    assert any(name.startswith("hold_minor_") for name in FILES)
    assert {".png", ".jpg"} <= {s for k, s in kinds if k == "review"}
    assert {".png", ".jpg"} <= {s for k, s in kinds if k == "hold"}


@pytest.mark.parametrize("name", FILES)
def test_float_scores_are_of_these_exact_files_and_inside_the_range(name: str) -> None:
    row = _reference()[name]
    assert row["sha256"] == hashlib.sha256((DECISION / name).read_bytes()).hexdigest()
    if name.startswith(("review_", "hold_minor_")):
        assert REVIEW + MARGIN <= row["float"] < HOLD - MARGIN
    else:
        assert row["float"] >= HOLD + MARGIN


@pytest.mark.parametrize("name", FILES)
def test_screen_reaches_the_files_verdict_with_the_real_score(
    variant_screener: tuple[str, Screener], name: str
) -> None:
    variant, screener = variant_screener
    report = screener.screen(DECISION / name)
    assert report.error is None
    assert report.models["open_nsfw"].endswith(f"/{variant}")
    score = report.signals["sexual"]
    assert score is not None
    expected = _reference()[name]["float"]
    off = f"{variant}: {score:.4f} vs float {expected:.4f}"
    assert abs(score - expected) <= TOLERANCE[variant], off
    if name.startswith("review_"):
        assert REVIEW <= score < HOLD
        assert report.verdict == "review"
        assert report.reasons == (REVIEW_REASON.format(score),)
    elif name.startswith("hold_minor_"):  # child safety: the sexual score alone is review
        assert REVIEW <= score < HOLD
        _assert_child_safety_hold(report, _reference()[name]["float_minor"])
    else:
        assert score >= HOLD
        assert report.verdict == "hold"
        assert report.reasons == (HOLD_REASON.format(score), REVIEW_REASON.format(score))


def test_tolerance_catches_preprocessing_without_the_jpeg_round_trip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_round_trip(rgb: Any, spec: InputSpec) -> Any:
        return stretch(rgb, replace(spec, jpeg_roundtrip_quality=None))

    monkeypatch.setattr(preprocess, "stretch", no_round_trip)
    reference = _reference()
    with Screener(ScreenerOptions(threads=1, workers=1)) as s:  # the preferred variant
        moved = [
            abs((s.screen(DECISION / name).signals["sexual"] or 0.0) - reference[name]["float"])
            for name in FILES
        ]
    assert max(moved) > max(TOLERANCE.values())


def _assert_child_safety_hold(report: ScreeningReport, float_minor: float) -> None:
    score, minor = report.signals["sexual"], report.signals["minor"]
    assert score is not None and minor is not None
    assert minor >= MINOR
    assert abs(minor - float_minor) <= MINOR_TOLERANCE, f"{minor:.4f} vs float {float_minor:.4f}"
    assert report.verdict == "hold"
    assert report.reasons == (
        CHILD_REASON.format(minor, score),
        REVIEW_REASON.format(score),
        MINOR_REASON.format(minor),
    )


@pytest.mark.parametrize("variant", AGE_VARIANTS)
@pytest.mark.parametrize("name", [n for n in FILES if n.startswith("hold_minor_")])
def test_child_safety_hold_is_reached_with_every_age_variant(variant: str, name: str) -> None:
    opts = ScreenerOptions(variants={"age_estimator": variant}, threads=1, workers=1)
    with Screener(opts) as screener:
        report = screener.screen(DECISION / name)
    assert report.models["age_estimator"].endswith(f"/{variant}")
    _assert_child_safety_hold(report, _reference()[name]["float_minor"])
