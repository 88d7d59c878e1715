"""Fit how CenterFace's boxes map onto BlazeFace's, so every face reaches the landmark cascade in
the one kind of box its own mapping (``calibrate_alignment``) was fitted on.

On the faces ``calibrate_alignment`` uses (the given photos rotated, scaled and mirrored, and the
LFW subset on a grey canvas), each detector runs as the runtime runs it (BlazeFace letterboxed
whole-image pass; CenterFace one pass at the picture's aspect); where both find the same face
(centres inside each other's box), the medians of BlazeFace's size over CenterFace's and of the
centre shift (in CenterFace box sizes) are the bundle's ``box_scale`` and ``box_shift``::

    python -m firmware_tools.studies.centerface_boxes --bundle DIR IMAGE... > boxes.json

``--bundle``: a bundle with both detectors (``edge-screen-fw bundle --all-variants``); the
fp32 variants are used unless ``--variant`` says otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from edge_screen.backends import get_backend
from edge_screen.bundle import Bundle
from edge_screen.face_stage import FaceStage
from edge_screen.infer import Model
from edge_screen.manifest import CenterFaceOutput

from ..pipeline.composite import augment, lfw_faces


def _inside(point: NDArray[np.float32], box: NDArray[np.float32]) -> bool:
    return bool(box[0] < point[0] < box[2] and box[1] < point[1] < box[3])


def fit(bundle_dir: str, images: list[str], variant: str = "fp32") -> dict[str, object]:
    bundle = Bundle.open(bundle_dir)
    backend = get_backend("auto")
    models = {}
    for spec in bundle.manifest.by_task("face_detection"):
        if isinstance(spec.output, CenterFaceOutput):  # raw boxes: no mapping yet
            spec = dataclasses.replace(
                spec, output=dataclasses.replace(spec.output, box_scale=(1.0, 1.0),
                                                 box_shift=(0.0, 0.0)))
        v = bundle.select(spec, variant)
        models[type(spec.output)] = Model(spec, v, bundle.model_bytes(v), backend, 2)
    dense = models.pop(CenterFaceOutput)
    (ssd,) = models.values()
    whole = FaceStage(ssd, None, "tiles", min_face=0.0)
    one = FaceStage(ssd, dense, "centerface")

    def frames() -> Iterator[NDArray[np.uint8]]:
        for path in images:
            yield from augment(Image.open(path).convert("RGB"))
        yield from lfw_faces()

    scales, shifts = [], []
    for rgb in frames():
        ours = whole.detect(rgb, None)
        theirs = one._dense(rgb)
        if not ours or not theirs:
            continue
        a, b = ours[0].box, theirs[0].box
        ca = ((a[:2] + a[2:]) / 2).astype(np.float32)
        cb = ((b[:2] + b[2:]) / 2).astype(np.float32)
        if not (_inside(ca, b) and _inside(cb, a)):
            continue  # not the same face
        size = b[2:] - b[:2]
        scales.append((a[2:] - a[:2]) / size)
        shifts.append((ca - cb) / size)
    return {
        "box_scale": [round(float(v), 4) for v in np.median(scales, axis=0)],
        "box_shift": [round(float(v), 4) for v in np.median(shifts, axis=0)],
        "fitted_on": {
            "faces": len(scales),
            "variant": variant,
            "images": [p.rsplit("/", 1)[-1] for p in images] + ["skimage lfw_subset[:100]"],
            "scale_std": [round(float(v), 4) for v in np.std(scales, axis=0)],
            "shift_std": [round(float(v), 4) for v in np.std(shifts, axis=0)],
        },
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m firmware_tools.studies.centerface_boxes",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--variant", default="fp32")
    ap.add_argument("images", nargs="+")
    args = ap.parse_args(argv)
    json.dump(fit(args.bundle, args.images, args.variant), sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
