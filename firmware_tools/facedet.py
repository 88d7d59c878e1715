"""Just enough BlazeFace decoding to compare two face-detector variants (validation only).

SSD anchors as MediaPipe's ``SsdAnchorsCalculator`` makes them for one anchor per cell and fixed
anchor size, box regression relative to the input size, sigmoid scores, then greedy NMS. The
runtime has its own decoder; this one only needs to agree with itself across variants.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Boxes = NDArray[np.float32]  # [K, 4] as (ymin, xmin, ymax, xmax), fractions of the input


def anchors(size: tuple[int, int], strides: list[int], per_layer: int) -> NDArray[np.float32]:
    """Anchor centres ``[A, 2]`` (x, y) in input fractions, in the model's output order."""
    out = []
    for stride in strides:
        rows, cols = -(-size[0] // stride), -(-size[1] // stride)
        ys, xs = np.meshgrid((np.arange(rows) + 0.5) / rows, (np.arange(cols) + 0.5) / cols,
                             indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(grid, per_layer, axis=0))
    return np.concatenate(out).astype(np.float32)


def iou(a: Boxes, b: Boxes) -> NDArray[np.float32]:
    """Pairwise IoU ``[len(a), len(b)]``."""
    y0 = np.maximum(a[:, None, 0], b[None, :, 0])
    x0 = np.maximum(a[:, None, 1], b[None, :, 1])
    y1 = np.minimum(a[:, None, 2], b[None, :, 2])
    x1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(y1 - y0, 0, None) * np.clip(x1 - x0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return (inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)).astype(np.float32)


def decode(regressors: NDArray[np.float32], scores: NDArray[np.float32],
           anchor_xy: NDArray[np.float32], size: tuple[int, int], threshold: float,
           nms_iou: float, clip: float = 100.0) -> Boxes:
    """Boxes above ``threshold`` after NMS, from raw ``[A, 4+2k]`` regressors and ``[A]`` logits."""
    prob = 1.0 / (1.0 + np.exp(-np.clip(scores.reshape(-1).astype(np.float64), -clip, clip)))
    keep = np.nonzero(prob >= threshold)[0]
    if keep.size == 0:
        return np.zeros((0, 4), np.float32)
    r = regressors.reshape(len(anchor_xy), -1)[keep]
    cx = r[:, 0] / size[1] + anchor_xy[keep, 0]
    cy = r[:, 1] / size[0] + anchor_xy[keep, 1]
    w, h = r[:, 2] / size[1], r[:, 3] / size[0]
    boxes = np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=1).astype(np.float32)
    order = np.argsort(-prob[keep])
    chosen: list[int] = []
    for i in order:
        if not chosen or iou(boxes[i:i + 1], boxes[chosen]).max() < nms_iou:
            chosen.append(int(i))
    return boxes[chosen]


def match(reference: list[Boxes], candidate: list[Boxes], min_iou: float = 0.5
          ) -> dict[str, float]:
    """Recall of the reference's boxes by the candidate's, and the mean IoU of the matches."""
    total, found, ious = 0, 0, []
    for ref, cand in zip(reference, candidate, strict=True):
        total += len(ref)
        if len(ref) == 0 or len(cand) == 0:
            continue
        best = iou(ref, cand).max(axis=1)
        hit = best >= min_iou
        found += int(hit.sum())
        ious.extend(best[hit].tolist())
    return {"recall": found / total if total else 1.0,
            "mean_iou": float(np.mean(ious)) if ious else (1.0 if total == 0 else 0.0),
            "n": float(total)}
