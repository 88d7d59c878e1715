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
from .landmarks import ShapePredictor
from .manifest import AgeOutput, ClassifierOutput, FaceDetectorOutput, LandmarksOutput, ModelSpec
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


@dataclass(frozen=True)
class Landmarker:
    """The bundle's landmark model and how our detector's boxes map onto the boxes it expects."""

    spec: ModelSpec
    predictor: ShapePredictor

    def __call__(
        self, rgb: NDArray[np.uint8], x: NDArray[np.float32], y: NDArray[np.float32]
    ) -> NDArray[np.float32]:
        out = self.spec.output
        assert isinstance(out, LandmarksOutput)
        w, h = float(x[1] - x[0]), float(y[1] - y[0])
        cx = (x[0] + x[1]) / 2 + out.box_shift[0] * w
        cy = (y[0] + y[1]) / 2 + out.box_shift[1] * h
        hw, hh = out.box_scale[0] * w / 2, out.box_scale[1] * h / 2
        rect = (round(cx - hw), round(cy - hh), round(cx + hw), round(cy + hh))
        return self.predictor(rgb, rect)


class SignalExtractor:
    """Runs the bundle's models on one frame. Not thread-safe: its interpreters are not."""

    def __init__(
        self,
        models: list[Model],
        landmarker: Landmarker | None = None,
        max_faces: int = 8,
        face_threshold: float | None = None,
        min_face: float = faces.DEFAULT_MIN_FACE,
    ) -> None:
        self.detector = next((m for m in models if m.spec.task == "face_detection"), None)
        self.age = next((m for m in models if m.spec.task == "age_estimation"), None)
        self.classifiers = [m for m in models if m.spec.task == "image_classification"]
        self.landmarker = landmarker
        self.max_faces = max_faces
        self.face_threshold = face_threshold
        self.min_face = min_face  # fraction of the short side; smaller faces may be missed

    def invocations(self) -> dict[str, int]:
        """Model id -> how many times it has run (the detector runs once per tile)."""
        models = [self.detector, self.age, *self.classifiers]
        return {m.spec.id: m.invocations for m in models if m is not None}

    def extract(
        self,
        rgb: NDArray[np.uint8],
        width: int,
        height: int,
        scan: faces.TileScan | None = None,
    ) -> Signals:
        """Signals for one upright frame; ``width``/``height`` are the original's, for boxes.
        ``scan`` spreads the small-face tiles over the frames of one clip or stream."""
        timing: dict[str, float] = {}
        scores: dict[str, float | None] = dict.fromkeys(CORE_SIGNALS)
        t = time.perf_counter()
        for model in self.classifiers:
            out = model.spec.output
            assert isinstance(out, ClassifierOutput)
            probs = model.run_pixels(preprocess.stretch(rgb, model.input))[0].reshape(-1)
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
            found = self._faces(rgb, width / rgb.shape[1], height / rgb.shape[0], scan)
            timing["faces"] = (time.perf_counter() - t) * 1e3
            p_minor = [f.p_minor for f in found if f.p_minor is not None]
            scores["minor"] = max(p_minor) if p_minor else None
        return Signals(scores, found, timing)

    def _faces(
        self, rgb: NDArray[np.uint8], sx: float, sy: float, scan: faces.TileScan | None
    ) -> tuple[Face, ...]:
        assert self.detector is not None
        out = self.detector.spec.output
        assert isinstance(out, FaceDetectorOutput)
        detections = faces.detect(
            rgb,
            self.detector.run_pixels,
            self.detector.input,
            out,
            self.face_threshold,
            self.min_face,
            scan,
        )
        result = []
        for i, det in enumerate(detections):
            x, y = det.box[0::2], det.box[1::2]
            age, p_minor = (None, None)
            if self.age is not None and i < self.max_faces:
                age, p_minor = self._age(rgb, x, y, det.keypoints)
            x0, x1 = np.clip(x, 0, rgb.shape[1]) * sx
            y0, y1 = np.clip(y, 0, rgb.shape[0]) * sy
            result.append(
                Face((float(x0), float(y0), float(x1), float(y1)), det.score, age, p_minor)
            )
        return tuple(result)

    def _age(
        self,
        rgb: NDArray[np.uint8],
        x: NDArray[np.float32],
        y: NDArray[np.float32],
        keypoints: NDArray[np.float32],
    ) -> tuple[float, float]:
        """Expected age and P(minor) of one face, from a chip aligned the way the model learnt."""
        assert self.age is not None
        spec = self.age.input
        out = self.age.spec.output
        assert isinstance(out, AgeOutput) and spec.alignment is not None
        if spec.alignment.source == "landmarks":
            assert self.landmarker is not None, "checked when the bundle was loaded"
            points = self.landmarker(rgb, x, y)
        else:
            points = keypoints
        chip = preprocess.align_face(rgb, points, spec.alignment, spec.size)
        probs = self.age.run_pixels(chip)[0].reshape(-1)
        probs = probs / max(float(probs.sum()), 1e-9)
        ages = np.asarray(out.ages, dtype=np.float32)
        return float(probs @ ages), float(probs[ages < out.minor_below].sum())
