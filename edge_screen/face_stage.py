"""The face stage: which detectors look at a frame, and how their faces become one list.

Two strategies, chosen per ``ScreenerOptions.faces`` (default: the bundle's best):

- ``tiles``: BlazeFace on the whole frame, plus overlapping tiles where faces down to
  ``min_face`` of the short side would be too small for one pass (``faces.detect``);
- ``centerface``: BlazeFace on the whole frame (large faces, the boxes the landmark cascade was
  calibrated on) plus one CenterFace pass at the frame's aspect within the model's per-platform
  pixel budget (small faces); a face both find is BlazeFace's, a face only CenterFace finds is
  redrawn by BlazeFace on a crop around it (its own box, mapped onto BlazeFace's, where
  BlazeFace sees none there), so every face reaches the landmark cascade in one kind of box.

``python -m firmware_tools.studies.face_recall`` measures both (recall by face size, false
positives, time and MACs); the model card carries its table.
"""

from __future__ import annotations

import logging
import platform
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from . import centerface, faces
from .errors import ModelError
from .infer import Model
from .manifest import CenterFaceOutput, FaceDetectorOutput

log = logging.getLogger("edge_screen")
STRATEGIES = ("tiles", "centerface")
# A face found by CenterFace only is redrawn by BlazeFace on a crop this many times its size.
REDRAW_CONTEXT = 3.0


def default_strategy(has_dense: bool) -> str:
    """The bundle's best: one CenterFace pass where the bundle has that model, else tiles."""
    return "centerface" if has_dense else "tiles"


# Channels of each CenterFace head: a heatmap, a box size and a centre offset (2 each), and five
# (y, x) landmarks.
HEAD_CHANNELS = {"heatmap": 1, "scale": 2, "offset": 2, "landmarks": 10}


def _check_heads(model: Model) -> None:
    """The manifest's tensor names are the file's, with the channels the decoder reads: found
    when the model loads, not as a KeyError on the first upload."""
    out = model.spec.output
    assert isinstance(out, CenterFaceOutput)
    shapes = model.output_shapes()
    for role, name in out.tensors:
        shape = shapes.get(name)
        if shape is None or len(shape) != 4 or shape[-1] != HEAD_CHANNELS[role]:
            raise ModelError(f"{model.spec.id}: no {HEAD_CHANNELS[role]}-channel NHWC output "
                             f"{name!r} for the {role} (outputs: {shapes})")


@dataclass
class FaceStage:
    """Runs the chosen strategy's detectors on one frame. Not thread-safe (its models are not)."""

    ssd: Model
    dense: Model | None
    strategy: str
    threshold: float | None = None  # an option's lower detector threshold
    min_face: float = faces.DEFAULT_MIN_FACE  # tiles strategy only
    machine: str = platform.machine()
    # Held around the CenterFace pass: its interpreter may be shared by several workers.
    dense_lock: AbstractContextManager[object] = field(default_factory=nullcontext)
    _pad: NDArray[np.uint8] | None = field(default=None, init=False, repr=False)
    _fixed: bool = field(default=False, init=False, repr=False)  # the runtime cannot resize

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"face strategy {self.strategy!r} is not one of {STRATEGIES}")
        if self.strategy == "centerface" and self.dense is None:
            raise ValueError("face strategy 'centerface' needs a CenterFace model in the bundle")
        if self.dense is not None:
            _check_heads(self.dense)

    def models(self) -> list[Model]:
        return [self.ssd] if self.dense is None else [self.ssd, self.dense]

    def detect(self, rgb: NDArray[np.uint8], scan: faces.TileScan | None) -> list[faces.Detection]:
        """Faces in working-image pixels, best first."""
        out = self.ssd.spec.output
        assert isinstance(out, FaceDetectorOutput)
        if self.strategy == "tiles":
            return faces.detect(
                rgb, self.ssd.run_pixels, self.ssd.input, out, self.threshold, self.min_face, scan
            )
        whole = faces.detect(rgb, self.ssd.run_pixels, self.ssd.input, out, self.threshold, 0.0)
        kept = list(whole)
        for det in self._dense(rgb):
            if not faces.overlaps(det, kept, out.nms_iou):
                kept.append(self._redraw(rgb, det))
        return sorted(kept, key=lambda d: -d.score)

    def _redraw(self, rgb: NDArray[np.uint8], det: faces.Detection) -> faces.Detection:
        """A face only CenterFace found, with the box BlazeFace draws for it: BlazeFace run
        once on a crop around it, where the face is ``1 / REDRAW_CONTEXT`` of the crop (the
        size it finds best). The landmark cascade then starts from the box it was calibrated on
        whatever found the face, so a face's age does not depend on which detector saw it. If
        BlazeFace sees no face there, the CenterFace box (mapped onto BlazeFace's) stays."""
        out = self.ssd.spec.output
        assert isinstance(out, FaceDetectorOutput)
        height, width = rgb.shape[:2]
        cx, cy = float(det.box[0] + det.box[2]) / 2, float(det.box[1] + det.box[3]) / 2
        half = REDRAW_CONTEXT * float(max(det.box[2] - det.box[0], det.box[3] - det.box[1])) / 2
        x0, y0 = max(0, round(cx - half)), max(0, round(cy - half))
        x1, y1 = min(width, round(cx + half)), min(height, round(cy + half))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return det
        found = faces.detect(rgb[y0:y1, x0:x1], self.ssd.run_pixels, self.ssd.input, out,
                             self.threshold, 0.0)
        for f in found:  # best first: the first one centred inside CenterFace's box
            fx, fy = (f.box[0] + f.box[2]) / 2 + x0, (f.box[1] + f.box[3]) / 2 + y0
            if det.box[0] < fx < det.box[2] and det.box[1] < fy < det.box[3]:
                shift = np.array([x0, y0, x0, y0], np.float32)
                return replace(det, box=f.box + shift,
                               keypoints=f.keypoints + np.array([x0, y0], np.float32))
        return det

    def _resized(self, model: Model, fit: centerface.Fit) -> bool:
        """Whether the interpreter now runs at ``fit``'s size. Where the runtime cannot resize
        (tflite-runtime 2.14), it stays at the file's own size from then on and pictures are
        scaled into that: a portrait photo's faces then pass smaller, none is skipped."""
        if not self._fixed:
            try:
                model.fit(*fit.tensor)
                return True
            except ModelError:
                self._fixed = True
                log.warning("%s: the runtime cannot resize its input; every picture runs at "
                            "%s", model.spec.id, model.shape)
        return fit.tensor == model.shape

    def _place(self, rgb: NDArray[np.uint8], fit: centerface.Fit) -> NDArray[np.uint8]:
        """``rgb`` scaled to ``fit`` and padded with black to its tensor size."""
        sw, sh = fit.scaled
        scaled = rgb
        if (sw, sh) != (rgb.shape[1], rgb.shape[0]):
            scaled = np.asarray(Image.fromarray(rgb).resize((sw, sh), Image.Resampling.BILINEAR))
        pixels = self._canvas(*fit.tensor)
        pixels[:sh, :sw] = scaled
        pixels[sh:], pixels[:sh, sw:] = 0, 0  # black padding, whatever the last frame left
        return pixels

    def _canvas(self, h: int, w: int) -> NDArray[np.uint8]:
        """An (h, w) picture buffer, kept while frames keep that size (no allocation per
        frame)."""
        if self._pad is None or self._pad.shape[:2] != (h, w):
            self._pad = np.zeros((h, w, 3), np.uint8)
        return self._pad

    def _dense(self, rgb: NDArray[np.uint8]) -> list[faces.Detection]:
        """CenterFace's faces, in working-image pixels, boxes as BlazeFace draws them."""
        assert self.dense is not None
        model = self.dense
        out = model.spec.output
        assert isinstance(out, CenterFaceOutput)
        height, width = rgb.shape[:2]
        assert model.input is not None
        fit = centerface.fit_size(width, height, model.input.budget(self.machine))
        pixels = self._place(rgb, fit)  # outside the lock: workers share the interpreter
        with self.dense_lock:  # the outputs are copies: safe once the lock is released
            if not self._resized(model, fit):
                fit = centerface.fit_fixed(width, height, model.shape)
                pixels = self._place(rgb, fit)
            heads = centerface.heads(model.run_pixels(pixels), model.output_names, out)
        (sw, sh), (h, w) = fit.scaled, fit.tensor
        threshold = out.score_threshold
        if self.threshold is not None:  # the option may lower a threshold, never raise it
            threshold = min(threshold, self.threshold)
        # tensor fractions -> working-image pixels
        scale = np.array([w * width / sw, h * height / sh] * 2, np.float32)
        found = []
        for det in centerface.decode(heads, (h, w), out, threshold):
            box = centerface.map_box(det.box * scale, out)
            kps = det.keypoints * scale[:2]
            found.append(replace(det, box=box, keypoints=kps, detector=model.spec.id))
        return found
