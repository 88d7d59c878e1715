"""``Model.run_pixels`` fills the interpreter's input buffer in place: the same numbers as the
manifest's normalisation, in every layout and colour order, on a real interpreter."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_tflite import tiny_classifier

from edge_screen.backends import get_backend
from edge_screen.infer import Model
from edge_screen.manifest import ClassifierOutput, InputSpec, ModelSpec, Source, Variant
from edge_screen.preprocess import normalise

MEAN, STD = (104.0, 117.0, 123.0), (58.0, 57.0, 59.0)


def tiny_model(layout: str, color: str) -> Model:
    weights = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    content = tiny_classifier(8, weights, np.zeros(3), layout)
    spec = ModelSpec(
        "tiny", "image_classification", "1", Source("test", "tiny_tflite.py", "0" * 64, "MIT"),
        InputSpec((8, 8), layout, color, MEAN, STD, "stretch"),  # type: ignore[arg-type]
        ClassifierOutput(("a", "b", "c"), "sexual", "a"), (), {},
    )
    variant = Variant("fp32", "tiny.tflite", "0" * 64, len(content), "float32", "float32")
    return Model(spec, variant, content, get_backend(), 1)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
@pytest.mark.parametrize("color", ["RGB", "BGR"])
def test_pixels_are_normalised_in_place_as_the_manifest_says(layout: str, color: str) -> None:
    model = tiny_model(layout, color)
    rng = np.random.default_rng(0)
    for _ in range(3):  # the buffer is reused: each call must overwrite all of it
        pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        in_place = model.run_pixels(pixels)[0].reshape(-1)
        filled = model._interp.get_tensor(model._input["index"])
        np.testing.assert_array_equal(filled, normalise(pixels, model.input))  # every element
        reference = model.run(normalise(pixels, model.input))[0].reshape(-1)
        channels = pixels[..., ::-1] if color == "BGR" else pixels
        by_hand = (channels.astype(np.float64).mean((0, 1)) - MEAN) / STD
        np.testing.assert_allclose(in_place, reference, rtol=1e-6)
        np.testing.assert_allclose(in_place, by_hand, rtol=1e-4, atol=1e-5)
    assert model.invocations == 6
