"""A model team adds a category (violence) with one manifest entry and no code change."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import IMAGES, encode
from PIL import Image
from tiny_tflite import tiny_classifier

from edge_screen import Screener
from edge_screen.bundle import default_bundle_dir


@pytest.fixture(scope="module")
def bundle_with_violence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bundle") / "b"
    shutil.copytree(default_bundle_dir(), root)
    # Logit of "violence" rises with red and falls with green/blue: red images score high.
    weights = np.array([[-0.05, 0.03, 0.03], [0.05, -0.03, -0.03]])
    model = tiny_classifier(32, weights, np.zeros(2))
    (root / "violence_tiny.fp32.tflite").write_bytes(model)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["models"].append(
        {
            "id": "violence_tiny",
            "task": "image_classification",
            "version": "test-1",
            "source": {
                "package": "built-in-test",
                "member": "tiny_tflite.py",
                "sha256": "0" * 64,
                "licence": "Apache-2.0",
            },
            "input": {
                "size": [32, 32],
                "layout": "NHWC",
                "color": "RGB",
                "mean": [0, 0, 0],
                "std": [1, 1, 1],
                "resize": "stretch",
            },
            "output": {
                "labels": ["neutral", "violence"],
                "signal": "violence",
                "positive": "violence",
                "activation": "softmax",
            },
            "variants": [
                {
                    "name": "fp32",
                    "file": "violence_tiny.fp32.tflite",
                    "size": len(model),
                    "sha256": hashlib.sha256(model).hexdigest(),
                    "weights": "fp32",
                    "activations": "fp32",
                }
            ],
            "preferred": {"default": "fp32"},
        }
    )
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_new_category_is_reported_and_drives_the_policy(bundle_with_violence: Path) -> None:
    with Screener(bundle=bundle_with_violence) as s:
        red = s.screen(encode(Image.new("RGB", (300, 200), (220, 20, 20)), "PNG"))
        calm = s.screen(IMAGES / "coffee.jpg")
        assert "violence_tiny" in s.models
    assert red.signals["violence"] is not None and red.signals["violence"] > 0.99
    assert red.verdict == "review"
    assert any("violent" in reason for reason in red.reasons)
    assert (
        calm.signals["violence"] is not None and calm.signals["violence"] < red.signals["violence"]
    )
    # The other signals are unaffected by the extra model.
    assert red.signals["sexual"] is not None


def test_default_bundle_reports_null_violence(screener: Screener) -> None:
    assert screener.screen(IMAGES / "coffee.jpg").signals["violence"] is None
