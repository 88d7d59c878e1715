"""Compare two face-detector variants' boxes (validation only): IoU and recall.

Boxes come from the runtime's own decoder (``edge_screen.faces.decode``), so validation
measures exactly what devices will see.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Boxes = NDArray[np.float32]  # [K, 4] as (ymin, xmin, ymax, xmax), fractions of the input


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
