"""BlazeFace decoding: SSD anchors, box and keypoint regression, weighted non-maximum suppression.

Follows MediaPipe's ``SsdAnchorsCalculator`` (fixed anchor size) and
``TensorsToDetectionsCalculator`` (x/y-first outputs, sigmoid scores, weighted NMS).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from .manifest import FaceDetectorOutput


@dataclass(frozen=True)
class Detection:
    """A face in normalised model-input coordinates (0..1 of the padded square)."""

    box: NDArray[np.float32]  # x0, y0, x1, y1
    keypoints: NDArray[np.float32]  # (num_keypoints, 2) x, y
    score: float


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


def _iou(box: NDArray[np.float32], boxes: NDArray[np.float32]) -> NDArray[np.float32]:
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
    boxes: NDArray[np.float32], kps: NDArray[np.float32], scores: NDArray[np.float32], iou: float
) -> list[Detection]:
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    remaining = np.ones(len(scores), dtype=bool)
    found: list[Detection] = []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        overlap = remaining & (_iou(boxes[i], boxes) > iou)
        overlap[i] = True
        wts = scores[overlap][:, None]
        box = (boxes[overlap] * wts).sum(axis=0) / wts.sum()
        kp = (kps[overlap] * wts[:, :, None]).sum(axis=0) / wts.sum()
        found.append(Detection(box.astype(np.float32), kp.astype(np.float32), float(scores[i])))
        remaining &= ~overlap
    return found
