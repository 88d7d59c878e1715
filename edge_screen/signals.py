"""From upright RGB pixels to signals: faces, their ages, and whole-image category scores.

Which models run is read from the bundle manifest: every ``image_classification`` model adds its
``signal`` (sexual, violence, ...) with no code change here.

The detector and the classifiers see the working image; a face's age chip (and the landmarks that
align it) is cut from pixels at least ``CHIP_SOURCE`` times finer than the chip where the original
has them (``decode.Detail``), since the age model moves by years for a pixel of chip shift.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from . import faces, preprocess
from .decode import Detail, Patch
from .face_stage import FaceStage, default_strategy
from .infer import Model
from .landmarks import ShapePredictor
from .manifest import (
    AgeOutput,
    CenterFaceOutput,
    ClassifierOutput,
    FaceDetectorOutput,
    LandmarksOutput,
    ModelSpec,
)
from .report import CORE_SIGNALS, Face


@dataclass(frozen=True)
class Signals:
    """One frame's signals. ``unaged`` counts the faces found but not aged (under the age floors,
    or past ``max_faces``): ``scores["minor"]`` says nothing about them."""

    scores: Mapping[str, float | None]
    faces: tuple[Face, ...]
    timing_ms: Mapping[str, float]
    unaged: int = 0


# The age chip spans about this many times the detector box's width (its similarity transform
# from the landmarks: 1.07 on astronaut.jpg, 1.08 on grace_hopper.jpg), so the chip's source
# pixels per chip pixel can be told from the box before any landmark is placed.
CHIP_SPAN = 1.08
# Chips are cut from pixels at least this fine (source px per chip px) where the original has
# them: then dlib's pyramid, not the decoder's scale, makes the chip's last reduction. At 1 (the
# chip's own resolution) the same face in 1-27 MP photos spread up to 4.2 y, at 2 up to 2.7 y
# (``python -m firmware_tools.studies.age_floor --sizes [--chip-source 1]``). The cost: a face under
# ~120 px in the working image means one more decode of the photo (full size for a 212 px face
# in a 12 or 27 MP JPEG), its pixels released once the faces' patches are cut.
CHIP_SOURCE = 2.0
# The age floors: a face is aged only when its detector box is at least MIN_AGE_FACE px wide in the
# pixels its chip is cut from and its detector score at least MIN_AGE_SCORE; the others are reported
# with no age (and counted in ``Signals.unaged``). ``python -m firmware_tools.studies.age_floor``
# measured them on the two adult faces in the repo, pasted at 24-320 px into 1 MP photos (180
# pastings) and 48 face-free photos of 1-27 MP: ages stay within the model's own large-face scatter
# (6.5 y) + 1 y from 48 px pastings up, and go 9-34 y wrong under that; the one badly aged face
# bigger than that had an oversized box (54 px for a 40 px face) scored 0.665; the one false
# positive on the face-free photos scored 0.608. Score >= 0.67 with box >= 38 px ages every pasting
# within tolerance and leaves 7 of 141 found faces of >= 48 px unaged. Two faces only, both adults:
# thin margins, to re-measure with more faces.
MIN_AGE_FACE = 38.0
MIN_AGE_SCORE = 0.67
# The age model moves by years for one pixel of chip shift
# (``firmware_tools.studies.age_sensitivity``), and landmarks from two views of one face differ by
# about that much: ages are the mean distribution over the chip and the chip moved by half a pixel
# left, right, up and down. With 212 px faces pasted at 18 placements into 1, 4, 12 and 27 MP
# photos, the spread of one placement's ages was at most 2.7 y (16 of 18 within 2 y) from these five
# chips, 4.3 y (15 of 18) from one (``python -m firmware_tools.studies.age_floor --sizes``); 5 age
# invokes a face, ~1 ms each.
CHIP_SHIFTS = ((0.0, 0.0), (0.5, 0.0), (-0.5, 0.0), (0.0, 0.5), (0.0, -0.5))


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
        min_age_face: float = MIN_AGE_FACE,
        min_age_score: float = MIN_AGE_SCORE,
        strategy: str | None = None,
        dense_lock: AbstractContextManager[object] | None = None,
    ) -> None:
        detectors = [m for m in models if m.spec.task == "face_detection"]
        ssd = next((m for m in detectors if isinstance(m.spec.output, FaceDetectorOutput)), None)
        dense = next((m for m in detectors if isinstance(m.spec.output, CenterFaceOutput)), None)
        self.age = next((m for m in models if m.spec.task == "age_estimation"), None)
        self.classifiers = [m for m in models if m.spec.task == "image_classification"]
        self.detector = ssd  # the SSD detector: its boxes are the ones every face is given in
        self.faces: FaceStage | None = None
        if ssd is not None:
            chosen = strategy or default_strategy(dense is not None)
            self.faces = FaceStage(ssd, dense, chosen, face_threshold, min_face,
                                   dense_lock=dense_lock or nullcontext())
        self.landmarker = landmarker
        self.max_faces = max_faces
        self.min_age_face = min_age_face  # box width in chip-source px; smaller: no age
        # Detector score under which a face is not aged, per detector (its scores' own scale).
        self.min_age_scores = {"": min_age_score}
        if dense is not None:
            out = dense.spec.output
            assert isinstance(out, CenterFaceOutput)
            self.min_age_scores[dense.spec.id] = min(out.score_threshold, min_age_score)

    def invocations(self) -> dict[str, int]:
        """Model id -> how many times it has run (the detector runs once per tile)."""
        return {m.spec.id: m.invocations for m in self.models()}

    def models(self) -> list[Model]:
        """Every model this extractor may run (the face stage's detectors included)."""
        found = self.faces.models() if self.faces else []
        return [*found, *([self.age] if self.age else []), *self.classifiers]

    def extract(
        self,
        rgb: NDArray[np.uint8],
        width: int,
        height: int,
        scan: faces.TileScan | None = None,
        *,
        detail: Detail | None = None,
    ) -> Signals:
        """Signals for one upright frame; ``width``/``height`` are the original's, for boxes.
        ``scan`` spreads the small-face tiles over the frames of one clip or stream. ``detail``
        (a photo's ``DecodedImage.detail``) gives age chips finer pixels than ``rgb`` has;
        without it chips are cut from ``rgb``, as for video frames."""
        timing: dict[str, float] = {}
        scores: dict[str, float | None] = dict.fromkeys(CORE_SIGNALS)
        t = time.perf_counter()
        picture = preprocess.Picture(rgb)  # resized copies made once for all classifiers
        for model in self.classifiers:
            out = model.spec.output
            assert isinstance(out, ClassifierOutput)
            pixels = preprocess.classifier_pixels(picture, model.input)
            probs = model.run_pixels(pixels)[0].reshape(-1)
            if out.activation == "softmax":
                probs = _softmax(probs)
            elif out.activation == "sigmoid":
                probs = (1.0 / (1.0 + np.exp(-probs))).astype(np.float32)
            value = float(probs[out.labels.index(out.positive)])
            prev = scores.get(out.signal)
            scores[out.signal] = value if prev is None else max(prev, value)
        timing["classify"] = (time.perf_counter() - t) * 1e3
        found: tuple[Face, ...] = ()
        if self.faces is not None:
            t = time.perf_counter()
            found = self._faces(rgb, width / rgb.shape[1], height / rgb.shape[0], scan, detail)
            timing["faces"] = (time.perf_counter() - t) * 1e3
            p_minor = [f.p_minor for f in found if f.p_minor is not None]
            scores["minor"] = max(p_minor) if p_minor else None
        unaged = sum(f.p_minor is None for f in found) if self.age is not None else 0
        return Signals(scores, found, timing, unaged)

    def _faces(
        self,
        rgb: NDArray[np.uint8],
        sx: float,
        sy: float,
        scan: faces.TileScan | None,
        detail: Detail | None,
    ) -> tuple[Face, ...]:
        assert self.faces is not None
        detections = self.faces.detect(rgb, scan)
        # Original px per working px: the decoders' exact scales when known (boxes into detail).
        ws = detail.working_scale if detail is not None else sx
        sources = self._age_sources(rgb, ws, detections, detail)
        result = []
        for det, source in zip(detections, sources, strict=True):
            x, y = det.box[0::2], det.box[1::2]
            age, p_minor = (None, None)
            if source is not None:
                bx, by = source.to_patch(x * ws, y * ws)
                kx, ky = source.to_patch(det.keypoints[:, 0] * ws, det.keypoints[:, 1] * ws)
                age, p_minor = self._age(source.rgb, bx, by, np.stack([kx, ky], axis=1))
            x0, x1 = np.clip(x, 0, rgb.shape[1]) * sx
            y0, y1 = np.clip(y, 0, rgb.shape[0]) * sy
            result.append(
                Face((float(x0), float(y0), float(x1), float(y1)), det.score, age, p_minor)
            )
        return tuple(result)

    def _age_sources(
        self,
        rgb: NDArray[np.uint8],
        ws: float,
        detections: list[faces.Detection],
        detail: Detail | None,
    ) -> list[Patch | None]:
        """Per detection, the pixels to cut its age chip from (a patch about twice its size),
        or None when it is not aged: past ``max_faces``, scored under ``min_age_score``, or
        under ``min_age_face`` px wide in the finest pixels there are. The working image serves
        when it has ``CHIP_SOURCE`` px per chip px; else ``detail``, decoded once for all faces
        (at the finest scale any of them needs)."""
        if self.age is None:
            return [None] * len(detections)
        chip_px = self.age.input.size[1] * CHIP_SOURCE  # source px across a fine-enough chip
        sources: list[Patch | None] = []
        wanted: list[tuple[int, tuple[float, float, float, float]]] = []
        finest = ws
        for i, det in enumerate(detections):
            x0, y0, x1, y1 = (float(v) for v in det.box)
            scale = ws  # original px per px of the chip's source
            need = max(CHIP_SPAN * (x1 - x0) * ws / chip_px, 1.0)
            if detail is not None and need < ws:
                scale = detail.finest_scale(need)
            # The chip and the landmark cascade's samples stay within a box width of the box's
            # centre (rotation and dlib's pyramid margin included).
            cx, cy, half = (x0 + x1) / 2 * ws, (y0 + y1) / 2 * ws, (x1 - x0) * ws
            region = (cx - half, cy - half, cx + half, cy + half)
            unsure = i >= self.max_faces or det.score < self.min_age_scores[det.detector]
            if unsure or (x1 - x0) * ws / scale < self.min_age_face:
                sources.append(None)
            elif scale == ws:
                sources.append(_crop(rgb, region, ws))
            else:
                wanted.append((i, region))
                finest = min(finest, scale)
                sources.append(None)
        if wanted:  # one decode, at the finest scale any face needs
            assert detail is not None
            patches = detail.patches([box for _, box in wanted], finest)
            for (i, _), patch in zip(wanted, patches, strict=True):
                sources[i] = patch if patch.rgb.size else None
        return sources

    def _age(
        self,
        rgb: NDArray[np.uint8],
        x: NDArray[np.float32],
        y: NDArray[np.float32],
        keypoints: NDArray[np.float32],
    ) -> tuple[float, float]:
        """Expected age and P(minor) of one face, from chips aligned the way the model learnt:
        the mean distribution over the chip and four moved by half a pixel (``CHIP_SHIFTS``)."""
        assert self.age is not None
        spec = self.age.input
        out = self.age.spec.output
        assert isinstance(out, AgeOutput) and spec.alignment is not None
        if spec.alignment.source == "landmarks":
            assert self.landmarker is not None, "checked when the bundle was loaded"
            points = self.landmarker(rgb, x, y)
        else:
            points = keypoints
        w, h = spec.size[1], spec.size[0]
        total = np.zeros(len(out.ages), dtype=np.float64)
        for dx, dy in CHIP_SHIFTS:
            moved = tuple((tx + dx / w, ty + dy / h) for tx, ty in spec.alignment.template)
            alignment = replace(spec.alignment, template=moved)
            chip = preprocess.align_face(rgb, points, alignment, spec.size)
            p = self.age.run_pixels(chip)[0].reshape(-1).astype(np.float64)
            total += p / max(float(p.sum()), 1e-9)
        probs = total / len(CHIP_SHIFTS)
        ages = np.asarray(out.ages, dtype=np.float64)
        return float(probs @ ages), float(probs[ages < out.minor_below].sum())


def _crop(rgb: NDArray[np.uint8], region: tuple[float, float, float, float], scale: float) -> Patch:
    """``region`` (original px) of a working image of ``scale`` original px per px."""
    h, w = rgb.shape[:2]
    x0, y0 = max(0, math.floor(region[0] / scale)), max(0, math.floor(region[1] / scale))
    x1, y1 = min(w, math.ceil(region[2] / scale)), min(h, math.ceil(region[3] / scale))
    return Patch(np.ascontiguousarray(rgb[y0:y1, x0:x1]), x0 * scale, y0 * scale, scale)
