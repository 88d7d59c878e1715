"""Reviewer previews (issue 15) end to end on the default bundle: harmless pictures that reach
review and hold (tests/data/decision), photos that are allowed, and videos made here."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, IMAGES
from PIL import Image, ImageFilter
from test_video import FPS, clip, timeline

from edge_screen import (
    Policy,
    PolicyError,
    PreviewPolicy,
    ReportWithPreviews,
    Screener,
    ScreenerOptions,
)
from edge_screen.cli import main
from edge_screen.policy import PREVIEW_MIN_STRENGTH
from edge_screen.preview import PreviewKeeper, mask_box, obscure

DECISION = DATA / "decision"
FLAGGED = ["review_coffee.png", "review_noise.jpg", "review_coffee_big.jpg",
           "hold_rocket.png", "hold_chelsea.jpg", "hold_minor_drawn_face.jpg"]
# Any graphic score at all gets review: every frame of a harmless clip is then evidence.
REVIEW_ALL = '[child_safety]\nminor = 0.5\nsexual = 0.2\n[[rules]]\nverdict = "review"\n' \
             'when = { graphic = 0.0 }\n'


@pytest.fixture(scope="module")
def previewer() -> Iterator[Screener]:
    with Screener(ScreenerOptions(threads=2, previews=True)) as s:
        yield s


@pytest.fixture(scope="module")
def flagged(previewer: Screener) -> dict[str, ReportWithPreviews]:
    return {name: previewer.screen_with_preview(DECISION / name) for name in FLAGGED}


def grey(data: bytes | Image.Image, size: tuple[int, int] | None = None) -> np.ndarray:
    im = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data))
    im = im.convert("L")
    if size is not None and im.size != size:
        im = im.resize(size, Image.Resampling.BOX)
    return np.asarray(im, dtype=np.float64)


def detail(a: np.ndarray) -> float:
    """High-frequency energy: mean squared difference of neighbouring pixels."""
    return float(np.mean(np.diff(a, axis=0) ** 2) + np.mean(np.diff(a, axis=1) ** 2))


def fine_detail_kept(ours: np.ndarray, original: np.ndarray) -> float:
    """Correlation of the two pictures' fine detail (what a Gaussian blur of sigma 2 px takes
    away): about 1 for a copy, about 0 when none of the original's detail is left."""

    def high(a: np.ndarray) -> np.ndarray:
        im = Image.fromarray(a.astype(np.uint8))
        h = a - np.asarray(im.filter(ImageFilter.GaussianBlur(2)), dtype=np.float64)
        return h - h.mean()

    a, b = high(ours), high(original)
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over 8x8 windows (Wang et al. 2004, data range 255)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    h, w = (a.shape[0] // 8) * 8, (a.shape[1] // 8) * 8
    wa = a[:h, :w].reshape(h // 8, 8, w // 8, 8).swapaxes(1, 2).reshape(-1, 64)
    wb = b[:h, :w].reshape(h // 8, 8, w // 8, 8).swapaxes(1, 2).reshape(-1, 64)
    ma, mb = wa.mean(1), wb.mean(1)
    va, vb = wa.var(1), wb.var(1)
    cov = ((wa - ma[:, None]) * (wb - mb[:, None])).mean(1)
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return float(s.mean())


@pytest.mark.parametrize("name", FLAGGED)
def test_every_review_and_hold_photo_gets_one_small_preview(
    flagged: dict[str, ReportWithPreviews], name: str
) -> None:
    r = flagged[name]
    assert r.report.verdict in ("review", "hold")
    assert len(r.previews) == 1
    p = r.previews[0]
    assert len(p.data) < 8_000  # measured 0.6-2.7 KB
    im = Image.open(io.BytesIO(p.data))
    assert im.format == p.format.upper() and im.size == (p.width, p.height)
    assert max(im.size) <= 256 and p.timestamp_ms is None and p.page is None
    info = r.report.preview
    assert info is not None and info.made and info.frames[0].width == p.width


@pytest.mark.parametrize("name", FLAGGED)
def test_a_preview_is_not_the_original(flagged: dict[str, ReportWithPreviews], name: str) -> None:
    p = flagged[name].previews[0]
    ours = grey(p.data)
    original = grey(Image.open(DECISION / name), (p.width, p.height))
    assert fine_detail_kept(ours, original) < 0.15  # measured 0.02-0.08
    assert fine_detail_kept(original, original) > 0.99
    assert ssim(ours, original) < 0.65  # measured 0.38-0.61 (the rocket's sky is flat)


def test_an_allowed_photo_gets_no_preview(previewer: Screener) -> None:
    r = previewer.screen_with_preview(IMAGES / "astronaut.jpg")
    assert r.report.verdict == "allow" and r.previews == ()
    assert r.report.preview is not None and not r.report.preview.made
    assert "allow" in r.report.preview.reason


def test_a_likely_minors_face_is_blocked_out(flagged: dict[str, ReportWithPreviews]) -> None:
    name = "hold_minor_drawn_face.jpg"
    r = flagged[name]
    (face,) = r.report.faces
    assert face.p_minor is not None and face.p_minor >= 0.5
    p = r.previews[0]
    assert p.faces_masked == 1 and r.report.preview.faces_masked == 1  # type: ignore[union-attr]
    original = Image.open(DECISION / name)
    x0, y0, x1, y1 = (round(c * p.width / original.width) for c in face.box)
    region = grey(p.data)[y0:y1, x0:x1]
    before = grey(original, (p.width, p.height))[y0:y1, x0:x1]
    assert region.std() < 3  # flat: the box, up to the codec's noise
    assert np.abs(region - before).mean() > 20 and before.std() > 20


def test_an_unaged_face_is_blocked_out_as_a_possible_minor() -> None:
    keeper = PreviewKeeper(PreviewPolicy(), minor=0.5)
    from edge_screen.report import Evidence, Face

    rgb = np.asarray(Image.open(IMAGES / "astronaut.jpg").convert("RGB"))
    faces = (Face((172, 66, 278, 172), 0.9, None, None), Face((10, 10, 60, 60), 0.9, 30.0, 0.01))
    ev = Evidence(0.0, "review", {})
    keeper.offer(rgb, 512, 512, faces, (ev,), None, None)
    info, (p,) = keeper.finish("review", True)
    assert info.made and p.faces_masked == 1  # the unaged one, not the adult


def test_the_face_mask_grows_beyond_the_detector_box() -> None:
    x0, y0, x1, y1 = mask_box((100.0, 100.0, 200.0, 200.0), 0.5, 256, 256)
    assert (x0, y0, x1, y1) == (37, 37, 113, 113)
    assert mask_box((0.0, 0.0, 2.0, 2.0), 0.5, 256, 256)[2] >= 3  # a tiny face: MIN_MASK


@pytest.mark.parametrize(
    ("table", "line"),
    [("strength = 2", 5), ("strength = 4.9", 5), ('mode = "none"', 5), ("size = 2048", 5),
     ('when = "allow"', 5), ('faces = "adults"', 5), ("opacity = 0", 4)],
)
def test_a_policy_that_weakens_previews_below_the_floor_is_refused(table: str, line: int) -> None:
    text = f"[child_safety]\nminor = 0.5\nsexual = 0.2\n[preview]\n{table}\n"
    with pytest.raises(PolicyError, match=f"p.toml:{line}"):
        Policy.from_toml(text, "p.toml")
    with pytest.raises(PolicyError):
        PreviewPolicy(strength=PREVIEW_MIN_STRENGTH - 0.1)


def test_a_stronger_preview_policy_is_accepted_and_used(previewer: Screener) -> None:
    text = REVIEW_ALL + '[preview]\nmode = "blur"\nstrength = 12\n'
    policy = Policy.from_toml(text)
    assert policy.preview == PreviewPolicy(mode="blur", strength=12.0)
    assert Policy.default().preview == PreviewPolicy()  # the shipped table: the defaults
    with Screener(ScreenerOptions(threads=1, previews=True, policy=policy)) as s:
        r = s.screen_with_preview(DECISION / "hold_rocket.png")
    assert r.report.preview is not None and r.report.preview.mode == "blur"
    blurred = grey(r.previews[0].data)
    assert detail(blurred) < detail(grey(Image.open(DECISION / "hold_rocket.png"))) / 20


@pytest.mark.parametrize("mode", ["pixelate", "blur"])
@pytest.mark.parametrize("name", ["astronaut.jpg", "chelsea.jpg", "grace_hopper.jpg"])
def test_the_floor_leaves_none_of_the_originals_fine_detail(mode: str, name: str) -> None:
    im = Image.open(IMAGES / name).convert("RGB")
    im = im.resize((256, round(256 * im.height / im.width)), Image.Resampling.BOX)
    out = grey(obscure(im, PreviewPolicy(mode=mode, strength=PREVIEW_MIN_STRENGTH)))
    assert fine_detail_kept(out, grey(im)) < 0.15
    assert ssim(out, grey(im)) < 0.6


def test_to_json_never_carries_the_preview(flagged: dict[str, ReportWithPreviews]) -> None:
    for r in flagged.values():
        text = r.report.to_json()
        assert len(text) < 4_000
        for p in r.previews:
            assert p.data[:12].hex() not in text and p.data[20:40].hex() not in text
        assert "data" not in json.loads(text)["preview"]
        assert "data=" not in repr(r.previews)


def test_previews_are_off_by_default_and_cost_nothing(screener: Screener) -> None:
    assert ScreenerOptions().previews is False
    with pytest.raises(ValueError, match="previews=True"):
        screener.screen_with_preview(DECISION / "hold_rocket.png")
    r = screener.screen(DECISION / "hold_rocket.png")
    assert r.preview is None and json.loads(r.to_json())["preview"] is None
    assert "preview" not in r.timing_ms


def test_an_unscreenable_input_gets_no_preview(previewer: Screener) -> None:
    r = previewer.screen_with_preview(b"not an image at all")
    assert r.report.verdict == "hold" and r.previews == ()
    assert r.report.preview is not None and "unscreenable" in r.report.preview.reason


def test_video_evidence_frames_get_previews_with_faces_blocked_out() -> None:
    # Every face a likely minor (minor = 0: the child-safety threshold the mask follows).
    policy = Policy.from_toml(REVIEW_ALL.replace("minor = 0.5", "minor = 0.0"))
    video = clip(timeline(4 * FPS, lambda i: i >= 2 * FPS), gop=FPS // 2)
    with Screener(ScreenerOptions(threads=2, previews=True, policy=policy)) as s:
        r = s.screen_with_preview(video)
    report = r.report
    assert report.verdict == "review" and report.media.frames_screened >= 6
    evidence = [e.timestamp_ms for e in report.media.evidence]
    assert [p.timestamp_ms for p in r.previews] == evidence and len(evidence) == 5
    assert all(max(p.width, p.height) == 256 and p.page is None for p in r.previews)
    assert {p.faces_masked for p in r.previews} <= {0, 1}
    faced = [p for p in r.previews if p.timestamp_ms is not None and p.timestamp_ms >= 2000]
    assert all(p.faces_masked == 1 for p in faced)
    info = report.preview
    assert info is not None and [f.timestamp_ms for f in info.frames] == evidence


def test_the_keeper_holds_only_the_evidence_frames_at_preview_size() -> None:
    from edge_screen.report import Evidence

    keeper = PreviewKeeper(PreviewPolicy(), 0.5)
    frame = np.zeros((1080, 1920, 3), np.uint8)
    evidence: list[Evidence] = []
    for i in range(40):  # each new frame more severe: it enters, the weakest falls out
        evidence = [Evidence(float(i), "review", {}), *evidence][:5]
        keeper.offer(frame, 1920, 1080, (), evidence, float(i), None)
        assert keeper.nbytes <= 5 * 256 * 144 * 3
    _, previews = keeper.finish("review", True)
    assert [p.timestamp_ms for p in previews] == [39.0, 38.0, 37.0, 36.0, 35.0]


def test_cli_writes_previews_named_by_the_item(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                               ) -> None:
    src = tmp_path / "in"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    for d in ("a", "b"):
        (src / d / "hold_rocket.png").write_bytes((DECISION / "hold_rocket.png").read_bytes())
    (src / "a" / "astronaut.jpg").write_bytes((IMAGES / "astronaut.jpg").read_bytes())
    out = tmp_path / "previews"
    code = main(["scan", "--json", "--threads", "1", "--preview", str(out), str(src)])
    assert code == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["preview"]["made"] for x in lines] == [False, True, True]
    ext = lines[1]["preview"]["format"]
    assert sorted(f.name for f in out.iterdir()) == [
        f"hold_rocket.png.preview.{ext}", f"hold_rocket.png~2.preview.{ext}"]
    for f in out.iterdir():
        assert Image.open(f).size == (144, 192)
