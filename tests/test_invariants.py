"""No way around the screen: attacks a hostile uploader or a careless integrator would try, each
kept as a test (issue 9). Real models, real decoders, bundles and media made here."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from conftest import IMAGES, astronaut
from PIL import Image
from tiny_tflite import tiny_classifier

from edge_screen import (
    BundleError,
    EdgeScreenError,
    Policy,
    SamplingOptions,
    Screener,
    ScreenerOptions,
)
from edge_screen.bundle import default_bundle_dir

CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"
# Tighter than the shipped policy (allowed): any face with any sexual score meets the rule, so
# the child-safety verdict is reached with real scores on harmless frames.
EVERY_FACE = "[child_safety]\nminor = 0.0\nsexual = 0.0\n"


def bundle(root: Path, edit: Callable[[dict[str, Any], Path], None]) -> Path:
    """A copy of the default bundle with its manifest changed by ``edit``."""
    shutil.copytree(default_bundle_dir(), root)
    manifest = json.loads((root / "manifest.json").read_text())
    edit(manifest, root)
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def swap_classifier(
    weights: np.ndarray, bias: np.ndarray
) -> Callable[[dict[str, Any], Path], None]:
    """Replace open_nsfw by a tiny real TFLite classifier of the sexual signal."""

    def edit(manifest: dict[str, Any], root: Path) -> None:
        model = tiny_classifier(32, weights, bias)
        (root / "tiny.tflite").write_bytes(model)
        spec = next(m for m in manifest["models"] if m["id"] == "open_nsfw")
        spec["input"] = {
            "size": [32, 32],
            "layout": "NHWC",
            "color": "RGB",
            "mean": [0, 0, 0],
            "std": [1, 1, 1],
            "resize": "stretch",
        }
        spec["output"] = {
            "labels": ["sfw", "nsfw"],
            "signal": "sexual",
            "positive": "nsfw",
            "activation": "softmax",
        }
        spec["variants"] = [
            {
                "name": "fp32",
                "file": "tiny.tflite",
                "size": len(model),
                "sha256": hashlib.sha256(model).hexdigest(),
                "weights": "fp32",
                "activations": "fp32",
            }
        ]
        spec["preferred"] = {"default": "fp32"}
        spec["not_shipped"] = []

    return edit


# --- finding 4: a missing or NaN signal raises the verdict ----------------------------------


def test_a_sexual_model_that_outputs_nan_makes_the_input_unscreenable_not_allowed(
    tmp_path: Path,
) -> None:
    """The NaN used to match no rule: `allow`. Now the model output is a ModelError."""
    nan = np.array([[0.0, 0.0, 0.0], [np.nan, 0.0, 0.0]])
    root = bundle(tmp_path / "b", swap_classifier(nan, np.zeros(2)))
    with Screener(bundle=root) as s:
        r = s.screen(IMAGES / "astronaut.jpg")
    assert r.verdict == "hold" and r.error is not None and r.error.code == "model"
    json.loads(r.to_json())  # no NaN left to break the JSON after the verdict was given


def test_a_bundle_with_no_models_is_refused(tmp_path: Path) -> None:
    root = bundle(tmp_path / "b", lambda m, _: m.update(models=[]))
    with pytest.raises(BundleError, match="child-safety rule needs"):
        Screener(bundle=root)


def test_a_bundle_without_a_sexual_model_needs_the_policy_to_say_so(tmp_path: Path) -> None:
    def drop(m: dict[str, Any], _: Path) -> None:
        m["models"] = [x for x in m["models"] if x["id"] != "open_nsfw"]

    root = bundle(tmp_path / "b", drop)
    with pytest.raises(BundleError, match="sexual"):
        Screener(bundle=root)
    policy = tmp_path / "p.toml"
    policy.write_text("[child_safety]\nminor = 0.5\nsexual = 0.2\nscreen_without = ['sexual']\n")
    with Screener(bundle=root, policy=policy) as s:
        assert s.unused_rules == ("likely minor together with a sexual-content signal",)
        assert s.screen(IMAGES / "coffee.jpg").signals["sexual"] is None


# --- finding 3: a failure after screened frames keeps what they showed ----------------------


def _faces_clip_cut_before_its_last_keyframe() -> bytes:
    """Three seconds of the astronaut (a keyframe a second), moov first, the file cut where the
    last keyframe's data starts: the index lists it, the data is gone."""
    im = Image.open(IMAGES / "coffee.jpg").convert("RGB").resize((480, 360))
    im.paste(astronaut().resize((270, 270)), (105, 45))
    frame = np.asarray(im)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.mp4")
        with av.open(path, "w", format="mp4", options={"movflags": "faststart"}) as out:
            s = out.add_stream(CODEC, rate=10)
            s.width, s.height, s.pix_fmt = 480, 360, "yuv420p"
            s.codec_context.gop_size = 10
            if CODEC == "libx264":
                s.codec_context.options = {"keyint_min": "10", "sc_threshold": "0"}
            for i in range(30):
                f = av.VideoFrame.from_ndarray(np.minimum(frame, 250) + i % 5, format="rgb24")
                f.pts = i
                out.mux(s.encode(f))
            out.mux(s.encode())
        with av.open(path) as c:
            keys = [p.pos for p in c.demux(video=0) if p.is_keyframe and p.pos is not None]
        data = Path(path).read_bytes()
    assert len(keys) == 3
    return data[: keys[-1]]


def test_a_clip_that_fails_part_way_keeps_the_frames_it_screened() -> None:
    """It used to report the unscreenable verdict with frames_screened=0."""
    policy = Policy.from_toml('unscreenable = "review"\n' + EVERY_FACE)
    sampling = SamplingOptions(early_stop=False, max_gap_s=0)
    with Screener(policy=policy, sampling=sampling) as s:
        r = s.screen(_faces_clip_cut_before_its_last_keyframe())
    assert r.error is not None and r.error.code == "corrupt"
    assert r.media.frames_screened == 2 and r.faces
    assert r.verdict == "hold", "max(what the frames showed, unscreenable), not unscreenable"
    assert r.signals["minor"] is not None and r.signals["sexual"] is not None
    assert r.reasons[-1] == "could not be screened: corrupt"
    json.loads(r.to_json())


# --- finding 8: the API refuses what it cannot take, and keeps quiet ------------------------


def test_keyword_options_next_to_an_options_object_are_an_error() -> None:
    with pytest.raises(TypeError, match="not both"):
        Screener(ScreenerOptions(), threads=1)  # threads used to be dropped silently
    with pytest.raises(TypeError, match="ScreenerOptions"):
        Screener("models/default")  # type: ignore[arg-type]


def test_a_policy_cannot_be_loosened_after_it_was_checked() -> None:
    """Rule.when was the caller's dict: mutating it after validation turned hold into allow."""
    from edge_screen.policy import Rule

    p = Policy.default()
    with pytest.raises(TypeError):
        p.child_safety.when["minor"] = 1.1  # type: ignore[index]
    when = {"minor": 0.5, "sexual": 0.2}
    q = Policy((), Rule("hold", when, "child safety"), "hold")
    when["sexual"] = 2.0
    assert q.decide({"sexual": 0.5, "minor": 0.9}).verdict == "hold"


@pytest.mark.parametrize(
    "bad",
    [
        {"threads": 0},
        {"workers": -1},
        {"max_faces": 0},
        {"min_face": 1.5},
        {"face_threshold": float("nan")},
        {"working_min_side": 8},
        {"sampling": SamplingOptions(max_frames=0)},
        {"sampling": SamplingOptions(time_budget_s=0)},
        {"policy": 3},
        {"threads": True},
    ],
)
def test_options_that_would_screen_less_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        ScreenerOptions(**bad)


def test_a_face_threshold_above_the_manifest_is_refused() -> None:
    with pytest.raises(ValueError, match="may only be lowered"):
        Screener(face_threshold=0.99)
    with Screener(face_threshold=0.3, threads=1) as s:
        assert s.screen(IMAGES / "astronaut.jpg").faces


def test_unknown_variant_names_are_refused_not_ignored() -> None:
    with pytest.raises(BundleError, match="opennsfw"):
        Screener(variants={"opennsfw": "fp32"})


def test_screen_many_refuses_one_path_instead_of_screening_its_letters(screener: Screener) -> None:
    with pytest.raises(TypeError, match="iterable"):
        screener.screen_many(str(IMAGES / "coffee.jpg"))


def test_the_report_leaves_the_local_path_out_unless_asked(screener: Screener) -> None:
    r = screener.screen(IMAGES / "coffee.jpg")
    assert "path" not in json.loads(r.to_json())
    assert json.loads(r.to_json(include_path=True))["path"] == str(IMAGES / "coffee.jpg")


def test_the_library_writes_nothing_on_stderr() -> None:
    """LiteRT's 'Created TensorFlow Lite XNNPACK delegate' line, and our own warnings through
    Python's last-resort handler, used to reach the host's stderr."""
    code = (
        "from edge_screen import Screener\n"
        f"s = Screener()\nr = s.screen({str(IMAGES / 'coffee.jpg')!r})\n"
        "print(r.verdict)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "allow" and out.stderr == ""
    assert any(
        isinstance(h, logging.NullHandler) for h in logging.getLogger("edge_screen").handlers
    )


# --- live streams are objects with their own state ------------------------------------------


def test_two_streams_never_share_a_running_verdict(screener: Screener) -> None:
    face = np.asarray(Image.open(IMAGES / "astronaut.jpg").convert("RGB"))
    empty = np.asarray(Image.open(IMAGES / "coffee.jpg").convert("RGB"))
    with screener.stream("a") as a, screener.stream("b") as b:
        a.screen_frame(face, 0)
        rb = b.screen_frame(empty, 0)
        assert rb.faces == () and rb.media.frames_screened == 1
        assert a.screen_frame(empty, 10).faces, "a keeps its own face"


@pytest.mark.parametrize("ts", [float("nan"), float("inf"), "5"])
def test_a_stream_refuses_a_timestamp_that_is_not_a_finite_number(
    screener: Screener, ts: Any
) -> None:
    """A NaN timestamp compared false with the last one and reopened the stream's clock."""
    with screener.stream() as s, pytest.raises(ValueError, match="finite"):
        s.screen_frame(np.zeros((8, 8, 3), np.uint8), ts)


def test_a_stream_frame_past_the_frame_limits_is_refused_like_a_video_frame() -> None:
    """Live frames skipped the one frame-size check every decoded frame passes."""
    from edge_screen import MediaTooLarge, ScreenerOptions, VideoLimits

    opts = ScreenerOptions(threads=1, workers=1, video_limits=VideoLimits(max_side=64))
    with Screener(opts) as s, s.stream() as live:
        live.screen_frame(np.zeros((64, 64, 3), np.uint8), 0)
        with pytest.raises(MediaTooLarge, match="stream frame of 65x64"):
            live.screen_frame(np.zeros((64, 65, 3), np.uint8), 10)


def test_closing_the_screener_ends_its_streams() -> None:
    s = Screener(threads=1)
    live = s.stream()
    live.screen_frame(np.asarray(Image.open(IMAGES / "astronaut.jpg").convert("RGB")), 0)
    s.close()
    with pytest.raises(EdgeScreenError, match="closed"):
        live.screen_frame(np.zeros((8, 8, 3), np.uint8), 1)
    with pytest.raises(EdgeScreenError, match="closed"):
        s.stream()


def test_a_nan_frame_never_sticks_in_the_aggregate() -> None:
    """NaN compares false with everything: a NaN first frame used to stay the 'worst' sexual
    score, hide every later frame's, and break to_json after the verdict was given."""
    from edge_screen import ModelError
    from edge_screen.aggregate import Aggregator
    from edge_screen.signals import Signals

    agg = Aggregator(Policy.default())
    with pytest.raises(ModelError, match="non-finite signal sexual"):
        agg.add(0, Signals({"sexual": float("nan"), "minor": None, "violence": None}, (), {}))
    agg.add(10, Signals({"sexual": 0.9, "minor": None, "violence": None}, (), {}))
    assert agg.frames == 1 and agg.scores["sexual"] == 0.9 and agg.decision.verdict == "hold"


def test_a_classifier_giving_raw_logits_is_a_model_error_not_a_low_score(tmp_path: Path) -> None:
    """With activation "none", a negative logit sat below every threshold: `allow`."""

    def no_activation(m: dict[str, Any], root: Path) -> None:
        swap_classifier(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), np.array([3.0, -3.0]))(
            m, root
        )
        next(x for x in m["models"] if x["id"] == "open_nsfw")["output"]["activation"] = "none"

    with Screener(bundle=bundle(tmp_path / "b", no_activation)) as s:
        r = s.screen(IMAGES / "astronaut.jpg")
    assert r.verdict == "hold" and r.error is not None and r.error.code == "model"


@pytest.mark.parametrize("minor_below", [0, 12, "18", None])
def test_an_age_model_cannot_narrow_what_a_minor_is(tmp_path: Path, minor_below: Any) -> None:
    from edge_screen import ManifestError

    def narrow(m: dict[str, Any], _: Path) -> None:
        age = next(x for x in m["models"] if x["task"] == "age_estimation")
        age["output"]["minor_below"] = minor_below

    with pytest.raises(ManifestError, match="minor_below"):
        Screener(bundle=bundle(tmp_path / "b", narrow))


def test_a_face_left_unaged_counts_as_a_possible_minor(tmp_path: Path) -> None:
    """Faces past max_faces (or under the age floors) get no age; their P(minor) is unknown, so
    they must not read as "no minor": with a sexual score at the child-safety threshold, hold."""
    canvas = Image.new("RGB", (1000, 500), (90, 110, 130))
    canvas.paste(astronaut().resize((400, 400)), (50, 50))
    canvas.paste(
        Image.open(IMAGES / "grace_hopper.jpg").convert("RGB").resize((400, 400)), (550, 50)
    )
    photo = tmp_path / "two.png"
    canvas.save(photo)
    policy = Policy.from_toml("[child_safety]\nminor = 0.5\nsexual = 0.0\n")
    with Screener(policy=policy, max_faces=2, threads=1) as s:
        both = s.screen(photo)
    assert len(both.faces) == 2 and all(f.p_minor is not None for f in both.faces)
    assert both.verdict == "allow", "two adults, both aged"
    with Screener(policy=policy, max_faces=1, threads=1) as s:
        one = s.screen(photo)
    assert [f.p_minor is None for f in one.faces].count(True) == 1
    assert one.verdict == "hold" and one.faces_unaged == 1
    assert json.loads(one.to_json())["faces_unaged"] == 1
    assert any("too small or unsure to age" in r for r in one.reasons)
    with Screener(max_faces=1, threads=1) as s:  # the shipped policy: allowed, but labelled
        labelled = s.screen(photo)
    assert labelled.verdict == "allow" and labelled.faces_unaged == 1
    assert any("cannot be ruled out" in r for r in labelled.reasons)


def test_error_messages_carry_no_local_path(screener: Screener, tmp_path: Path) -> None:
    """to_json() left the path out, but the OS's and FFmpeg's messages named the file."""
    secret = tmp_path / "secret_user_dir"
    secret.mkdir()
    cut = secret / "cut.mkv"
    cut.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(40))
    for path in (secret / "missing.jpg", secret, cut):
        r = screener.screen(path)
        assert r.verdict == "hold" and r.error is not None
        assert "secret_user_dir" not in r.to_json(), r.error.message
        assert "secret_user_dir" in r.to_json(include_path=True)
