"""BlazeFace decoding (SSD anchors, box and keypoint regression, weighted non-maximum suppression)
and tiled detection, so small faces in a large frame are still seen at a size the model finds.

Decoding follows MediaPipe's ``SsdAnchorsCalculator`` (fixed anchor size) and
``TensorsToDetectionsCalculator`` (x/y-first outputs, sigmoid scores, weighted NMS).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from . import preprocess
from .manifest import FaceDetectorOutput, InputSpec


@dataclass(frozen=True)
class Detection:
    """A face: in normalised model-input coordinates (0..1 of the padded square) from ``decode``,
    in image pixels from ``detect``."""

    box: NDArray[np.float32]  # x0, y0, x1, y1
    keypoints: NDArray[np.float32]  # (num_keypoints, 2) x, y
    score: float
    detector: str = ""  # the id of a second detector that found it; "" for the SSD detector


@cache
def anchors(size: tuple[int, int], strides: tuple[int, ...], per_layer: int) -> NDArray[np.float32]:
    """Anchor centres ``(n, 2)``; consecutive layers of equal stride share one grid."""
    h, w = size
    centres: list[NDArray[np.float32]] = []
    i = 0
    while i < len(strides):
        stride, same = strides[i], 0
        while i < len(strides) and strides[i] == stride:
            same += 1
            i += 1
        fh, fw = -(-h // stride), -(-w // stride)
        ys, xs = np.meshgrid((np.arange(fh) + 0.5) / fh, (np.arange(fw) + 0.5) / fw, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
        centres.append(np.repeat(grid, same * per_layer, axis=0))
    return np.concatenate(centres)


def iou(box: NDArray[np.float32], boxes: NDArray[np.float32]) -> NDArray[np.float32]:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    iou: NDArray[np.float32] = inter / np.maximum(area + areas - inter, 1e-9)
    return iou


def decode(
    outputs: list[NDArray[np.float32]],
    size: tuple[int, int],
    spec: FaceDetectorOutput,
    score_threshold: float | None = None,
) -> list[Detection]:
    """Detections from the raw regressor and score tensors, best first, after weighted NMS."""
    coords = 4 + 2 * spec.num_keypoints
    regs = next(o for o in outputs if o.shape[-1] == coords).reshape(-1, coords)
    logits = next(o for o in outputs if o.shape[-1] == 1).reshape(-1)
    centres = anchors(size, spec.strides, spec.anchors_per_layer)
    if len(centres) != len(logits):
        raise ValueError(f"{len(logits)} scores but {len(centres)} anchors from the manifest")
    threshold = spec.score_threshold if score_threshold is None else score_threshold
    clipped = np.clip(logits.astype(np.float64), -spec.score_clip, spec.score_clip)
    scores = (1.0 / (1.0 + np.exp(-clipped))).astype(np.float32)
    keep = np.nonzero(scores >= threshold)[0]
    if keep.size == 0:
        return []
    h, w = size
    scale = np.array([w, h], dtype=np.float32)
    r = regs[keep]
    c = centres[keep]
    centre = r[:, 0:2] / scale + c
    half = r[:, 2:4] / scale / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    kps = r[:, 4:].reshape(-1, spec.num_keypoints, 2) / scale + c[:, None, :]
    return _weighted_nms(boxes, kps, scores[keep], spec.nms_iou)


def _weighted_nms(
    boxes: NDArray[np.float32],
    kps: NDArray[np.float32],
    scores: NDArray[np.float32],
    threshold: float,
) -> list[Detection]:
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    remaining = np.ones(len(scores), dtype=bool)
    found: list[Detection] = []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        overlap = remaining & (iou(boxes[i], boxes) > threshold)
        overlap[i] = True
        wts = scores[overlap][:, None]
        box = (boxes[overlap] * wts).sum(axis=0) / wts.sum()
        kp = (kps[overlap] * wts[:, :, None]).sum(axis=0) / wts.sum()
        found.append(Detection(box.astype(np.float32), kp.astype(np.float32), float(scores[i])))
        remaining &= ~overlap
    return found


# The smallest face, in model-input pixels, that BlazeFace full-range finds reliably (recall
# >= 0.9 from this size up; measured with ``python -m firmware_tools.studies.face_recall``).
SMALLEST_INPUT_FACE = 20.0
# Look for faces down to this fraction of the image's short side (tiles when needed): 150 px in a
# 12 MP photo; face_recall measures recall 1.0 of photo faces >= 6.7 % at ~12 tiles per image.
DEFAULT_MIN_FACE = 0.05
# Tiles are never finer than this (image px per model px): no tile pass looks for faces under
# 30 working px, where the one false positive measured (a logo) appeared and ages are unreliable.
MIN_TILE_SCALE = 1.5

Run = Callable[[NDArray[np.uint8]], list[NDArray[np.float32]]]  # model input pixels -> outputs
Region = tuple[int, int, int, int]  # x0, y0, x1, y1 in image pixels


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Evenly spread tile origins along one axis, neighbours overlapping by >= ``overlap``."""
    if tile >= length:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def tiles(
    width: int, height: int, size: tuple[int, int], min_face: float, smallest: float
) -> list[Region]:
    """The tiles to run besides the whole image, so a face of ``min_face`` (fraction of the
    short side) reaches the model at >= ``smallest`` px; none when one pass already does that.

    Neighbours overlap by the largest face the whole-image pass may miss, so each such face lies
    whole inside some tile; bigger faces are the whole pass's.
    """
    h, w = size
    whole = max(width / w, height / h)  # image pixels per model pixel, one pass
    scale = max(min_face * min(width, height) / smallest, MIN_TILE_SCALE)
    if min_face <= 0 or scale >= whole:
        return []
    tw, th = min(width, round(w * scale)), min(height, round(h * scale))
    overlap = min(math.ceil(smallest * whole), tw // 2, th // 2)
    return [
        (x, y, x + tw, y + th)
        for y in _starts(height, th, overlap)
        for x in _starts(width, tw, overlap)
    ]


def _cut(det: Detection, region: Region, width: int, height: int) -> bool:
    """Whether a tile's detection touches a tile edge inside the image (a face cut by the seam,
    found whole by the neighbouring tile or the whole-image pass)."""
    x0, y0, x1, y1 = det.box
    margin = 0.05 * float(max(x1 - x0, y1 - y0))
    rx0, ry0, rx1, ry1 = region
    return bool(
        (rx0 > 0 and x0 < rx0 + margin)
        or (ry0 > 0 and y0 < ry0 + margin)
        or (rx1 < width and x1 > rx1 - margin)
        or (ry1 < height and y1 > ry1 - margin)
    )


def overlaps(det: Detection, kept: list[Detection], threshold: float) -> bool:
    """Same face as one already kept: IoU over ``threshold``, or most of either box inside
    the other."""
    for k in kept:
        x0, y0 = np.maximum(det.box[:2], k.box[:2])
        x1, y1 = np.minimum(det.box[2:], k.box[2:])
        inter = max(0.0, float(x1 - x0)) * max(0.0, float(y1 - y0))
        a = float((det.box[2] - det.box[0]) * (det.box[3] - det.box[1]))
        b = float((k.box[2] - k.box[0]) * (k.box[3] - k.box[1]))
        if inter > threshold * (a + b - inter) or inter > 0.6 * min(a, b):
            return True
    return False


@dataclass
class TileScan:
    """Spreads the tiles over the frames of one clip or stream, where consecutive frames show
    mostly the same scene: every tile on the first frame, then ``per_frame`` tiles in turn, plus
    every tile that found a face the whole-frame pass did not on the frame before (so a small
    face, once seen, stays followed and aged). A small face that only tiles find is sure to be
    seen once it has been in view for ceil(tiles / per_frame) screened frames; a
    whole-frame-sized one on every frame.
    """

    per_frame: int
    _next: int = 0
    _count: int = -1  # tiles per frame when last used; a new frame size starts over
    _hot: set[int] = field(default_factory=set)

    def pick(self, count: int) -> list[int]:
        """The tiles to run on this frame, of ``count``."""
        if count != self._count or self.per_frame <= 0 or self.per_frame >= count:
            self._count, self._next, self._hot = count, 0, set()
            return list(range(count))
        turn = {(self._next + i) % count for i in range(self.per_frame)}
        self._next = (self._next + self.per_frame) % count
        return sorted(turn | self._hot)

    def found(self, tiles_with_faces: set[int]) -> None:
        self._hot = tiles_with_faces


def detect(
    rgb: NDArray[np.uint8],
    run: Run,
    spec: InputSpec,
    out: FaceDetectorOutput,
    score_threshold: float | None = None,
    min_face: float = 0.0,
    scan: TileScan | None = None,
) -> list[Detection]:
    """Faces in image pixels, best first: the whole image letterboxed, plus ``tiles`` when faces
    down to ``min_face`` of the short side would be too small for one pass (with ``scan``, only
    the tiles it picks for this frame).

    Whole-image boxes are kept as they are (the landmark placement was calibrated on them);
    tiles only add faces the whole pass did not find, merged across tiles by weighted NMS.
    """
    height, width = rgb.shape[:2]

    def detect_in(source: NDArray[np.uint8], region: Region, scale: float) -> list[Detection]:
        """Detections in ``region`` of ``source`` (an image ``scale`` times smaller than rgb)."""
        x0, y0, x1, y1 = (round(v / scale) for v in region)
        pixels, lb = preprocess.letterbox(source[y0:y1, x0:x1], spec.size)
        found = []
        for det in decode(run(pixels), spec.size, out, score_threshold):
            bx, by = lb.to_image(det.box[0::2], det.box[1::2])
            kx, ky = lb.to_image(det.keypoints[:, 0], det.keypoints[:, 1])
            found.append(
                Detection(
                    np.array([bx[0] + x0, by[0] + y0, bx[1] + x0, by[1] + y0], np.float32) * scale,
                    (np.stack([kx + x0, ky + y0], axis=1) * scale).astype(np.float32),
                    det.score,
                )
            )
        return found

    whole = detect_in(rgb, (0, 0, width, height), 1.0)
    regions = tiles(width, height, spec.size, min_face, SMALLEST_INPUT_FACE)
    parts: list[Detection] = []
    if regions:
        # Every tile has the same size, so resizing the image once to the tiles' model scale
        # turns each tile into a plain crop, instead of one resize per tile.
        x0, y0, x1, y1 = regions[0]
        scale = max((x1 - x0) / spec.size[1], (y1 - y0) / spec.size[0], 1.0)
        small = rgb
        if scale > 1.0:
            size = (max(1, round(width / scale)), max(1, round(height / scale)))
            small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
        hot: set[int] = set()
        for i in scan.pick(len(regions)) if scan else range(len(regions)):
            found = [
                d
                for d in detect_in(small, regions[i], scale)
                if not _cut(d, regions[i], width, height)
            ]
            parts += found
            if any(not overlaps(d, whole, out.nms_iou) for d in found):
                hot.add(i)  # a face only tiles see: follow it (the whole pass has the others)
        if scan:
            scan.found(hot)
    if not parts:
        return whole
    merged = _weighted_nms(
        np.stack([d.box for d in parts]),
        np.stack([d.keypoints for d in parts]),
        np.asarray([d.score for d in parts], np.float32),
        out.nms_iou,
    )
    kept = list(whole)
    for det in merged:
        if not overlaps(det, kept, out.nms_iou):
            kept.append(det)
    return sorted(kept, key=lambda d: -d.score)
