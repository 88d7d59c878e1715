"""From upright RGB pixels to signals: faces, their ages, and whole-image category scores.

Which models run is read from the bundle manifest: every ``image_classification`` model adds its
``signal`` (sexual, violence, ...) with no code change here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from . import faces, preprocess
from .infer import Model
from .manifest import AgeOutput, ClassifierOutput, FaceDetectorOutput
from .report import CORE_SIGNALS, Face


@dataclass(frozen=True)
class Signals:
    scores: Mapping[str, float | None]
    faces: tuple[Face, ...]
    timing_ms: Mapping[str, float]


def _softmax(x: NDArray[np.float32]) -> NDArray[np.float32]:
    e = np.exp(x - x.max())
    out: NDArray[np.float32] = e / e.sum()
    return out


class SignalExtractor:
    """Runs the bundle's models on one frame. Not thread-safe: its interpreters are not."""

    def __init__(
        self, models: list[Model], max_faces: int = 8, face_threshold: float | None = None
    ) -> None:
        self.detector = next((m for m in models if m.spec.task == "face_detection"), None)
        self.age = next((m for m in models if m.spec.task == "age_estimation"), None)
        self.classifiers = [m for m in models if m.spec.task == "image_classification"]
        self.max_faces = max_faces
        self.face_threshold = face_threshold

    def extract(self, rgb: NDArray[np.uint8], width: int, height: int) -> Signals:
        """Signals for one upright frame; ``width``/``height`` are the original's, for boxes."""
        timing: dict[str, float] = {}
        scores: dict[str, float | None] = dict.fromkeys(CORE_SIGNALS)
        t = time.perf_counter()
        for model in self.classifiers:
            out = model.spec.output
            assert isinstance(out, ClassifierOutput)
            x = preprocess.normalise(preprocess.stretch(rgb, model.spec.input), model.spec.input)
            probs = model.run(x)[0].reshape(-1)
            if out.activation == "softmax":
                probs = _softmax(probs)
            elif out.activation == "sigmoid":
                probs = (1.0 / (1.0 + np.exp(-probs))).astype(np.float32)
            value = float(probs[out.labels.index(out.positive)])
            prev = scores.get(out.signal)
            scores[out.signal] = value if prev is None else max(prev, value)
        timing["classify"] = (time.perf_counter() - t) * 1e3
        found: tuple[Face, ...] = ()
        if self.detector is not None:
            t = time.perf_counter()
            found = self._faces(rgb, width / rgb.shape[1], height / rgb.shape[0])
            timing["faces"] = (time.perf_counter() - t) * 1e3
            p_minor = [f.p_minor for f in found if f.p_minor is not None]
            scores["minor"] = max(p_minor) if p_minor else None
        return Signals(scores, found, timing)

    def _faces(self, rgb: NDArray[np.uint8], sx: float, sy: float) -> tuple[Face, ...]:
        assert self.detector is not None
        spec = self.detector.spec
        out = spec.output
        assert isinstance(out, FaceDetectorOutput)
        pixels, box = preprocess.letterbox(rgb, spec.input.size)
        raw = self.detector.run(preprocess.normalise(pixels, spec.input))
        detections = faces.decode(raw, spec.input.size, out, self.face_threshold)
        result = []
        for i, det in enumerate(detections):
            x, y = box.to_image(det.box[0::2], det.box[1::2])
            kx, ky = box.to_image(det.keypoints[:, 0], det.keypoints[:, 1])
            age, p_minor = (None, None)
            if self.age is not None and i < self.max_faces:
                age, p_minor = self._age(rgb, np.stack([kx, ky], axis=1))
            x0, x1 = np.clip(x, 0, rgb.shape[1]) * sx
            y0, y1 = np.clip(y, 0, rgb.shape[0]) * sy
            result.append(
                Face((float(x0), float(y0), float(x1), float(y1)), det.score, age, p_minor)
            )
        return tuple(result)

    def _age(self, rgb: NDArray[np.uint8], keypoints: NDArray[np.float32]) -> tuple[float, float]:
        assert self.age is not None
        spec = self.age.spec
        out = spec.output
        assert isinstance(out, AgeOutput) and spec.input.alignment is not None
        chip = preprocess.align_face(rgb, keypoints, spec.input.alignment, spec.input.size)
        probs = self.age.run(preprocess.normalise(chip, spec.input))[0].reshape(-1)
        probs = probs / max(float(probs.sum()), 1e-9)
        ages = np.asarray(out.ages, dtype=np.float32)
        return float(probs @ ages), float(probs[ages < out.minor_below].sum())
