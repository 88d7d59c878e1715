"""Compare two face-detector variants' boxes (validation only): IoU and recall.

Boxes come from the runtime's own decoders (``edge_screen.faces.decode`` for an SSD detector,
``edge_screen.centerface.decode`` for CenterFace, its tensors found by name), so validation
measures exactly what devices will see.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_screen.faces import Detection
from edge_screen.model_spec import CENTERFACE_TENSORS, CenterFaceOutput, FaceDetectorOutput

from .recipe import ModelRecipe

Boxes = NDArray[np.float32]  # [K, 4] as (ymin, xmin, ymax, xmax), fractions of the input
Array = NDArray[Any]
Named = dict[str, Array]  # a model's outputs by tensor name


def _ymin_first(found: list[Detection]) -> Boxes:
    """The runtime's detections (boxes x0, y0, x1, y1) as ``match`` takes them."""
    return np.array([d.box[[1, 0, 3, 2]] for d in found], np.float32).reshape(-1, 4)


def _ssd_boxes(model: ModelRecipe, outputs: list[Array]) -> list[Boxes]:
    """Per sample, the boxes the runtime's own SSD decoder (``edge_screen.faces``) reports."""
    from edge_screen.faces import decode

    out = model.raw["output"]
    spec = FaceDetectorOutput(tuple(out["strides"]), int(out["anchors_per_layer"]),
                              int(out["num_keypoints"]), float(out["score_threshold"]),
                              float(out["nms_iou"]), float(out.get("score_clip", 100.0)))
    size = (int(model.input["size"][0]), int(model.input["size"][1]))
    per_sample = []
    for i in range(len(outputs[0])):
        found = decode([o[i : i + 1] for o in outputs], size, spec)
        per_sample.append(_ymin_first(found))
    return per_sample


def centerface_spec(model: ModelRecipe) -> CenterFaceOutput:
    """The recipe's CenterFace output as the runtime's ``CenterFaceOutput``."""
    out = model.raw["output"]
    sx, sy = (float(v) for v in out.get("box_scale", (1.0, 1.0)))
    dx, dy = (float(v) for v in out.get("box_shift", (0.0, 0.0)))
    return CenterFaceOutput(tuple((r, str(out["tensors"][r])) for r in CENTERFACE_TENSORS),
                            int(out["stride"]), float(out["score_threshold"]),
                            float(out["nms_iou"]), (sx, sy), (dx, dy))


def _centerface_boxes(model: ModelRecipe, outputs: Named) -> list[Boxes]:
    """Per sample, the boxes the runtime's CenterFace decoder (``edge_screen.centerface``)
    reports, its tensors found by name as the runtime finds them."""
    from edge_screen import centerface

    spec = centerface_spec(model)
    size = (int(model.input["size"][0]), int(model.input["size"][1]))
    names = list(outputs)
    per_sample = []
    for i in range(len(next(iter(outputs.values())))):
        heads = centerface.heads([outputs[n][i : i + 1] for n in names], names, spec)
        per_sample.append(_ymin_first(centerface.decode(heads, size, spec)))
    return per_sample


def boxes(model: ModelRecipe, outputs: Named | list[Array]) -> list[Boxes]:
    """Per sample, the boxes the runtime's own decoder for this model's ``output.decoder``
    reports (SSD outputs by position, CenterFace's by name)."""
    if model.raw["output"].get("decoder", "ssd") == "centerface":
        if not isinstance(outputs, dict):
            raise TypeError("CenterFace outputs are found by name: pass run_tflite_named's")
        return _centerface_boxes(model, outputs)
    return _ssd_boxes(model, list(outputs.values()) if isinstance(outputs, dict) else outputs)



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
