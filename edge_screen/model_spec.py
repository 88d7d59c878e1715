"""What a model reads and writes, as the bundle manifest describes it: the input tensor
(size, layout, normalisation, how a picture is resized or a face aligned into it) and each
task's outputs, with their parsers. ``manifest.py`` holds the rest of the schema (variants,
files, release fields) and re-exports these names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from .errors import ManifestError

# P(minor) is the age model's mass under this age; a bundle may raise it, never lower it.
MINOR_BELOW = 18.0
# Signals the runtime computes itself: a classifier named so would overwrite them.
RESERVED_SIGNALS = frozenset({"minor"})
Resize = Literal["letterbox", "stretch", "align_face"]
RESIZES: tuple[str, ...] = ("letterbox", "stretch", "align_face")


@dataclass(frozen=True)
class Alignment:
    """Where face points land in the model's input, as fractions of its width/height.

    ``keypoints[i]`` indexes the points of ``source`` (the landmark model's, or the face
    detector's own keypoints when the bundle has no landmark model) and ``template[i]`` is its
    target; the crop is the least-squares similarity transform between the two.
    """

    keypoints: tuple[int, ...]
    template: tuple[tuple[float, float], ...]
    source: Literal["landmarks", "detector"] = "detector"


@dataclass(frozen=True)
class InputSpec:
    """How pixels become the model's input tensor: size, layout, colour order, normalisation.

    The float value fed to the model is ``(pixel - mean) / std`` per channel (in the model's
    channel order); quantised inputs are then quantised with the tensor's own scale/zero point.
    ``resize_to`` (stretch only) resizes first and centre-crops to ``size`` after.
    """

    size: tuple[int, int]  # height, width
    layout: Literal["NHWC", "NCHW"]
    color: Literal["RGB", "BGR"]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: Resize
    resize_to: tuple[int, int] | None = None
    jpeg_roundtrip_quality: int | None = None
    alignment: Alignment | None = None


@dataclass(frozen=True)
class FaceDetectorOutput:
    """BlazeFace-style SSD decoding: anchors from strides, boxes and keypoints per anchor."""

    strides: tuple[int, ...]
    anchors_per_layer: int
    num_keypoints: int
    score_threshold: float
    nms_iou: float
    score_clip: float = 100.0


@dataclass(frozen=True)
class AgeOutput:
    """Per-class probabilities over ages; expected age and P(age < minor_below) follow from them."""

    ages: tuple[float, ...]
    minor_below: float = 18.0


@dataclass(frozen=True)
class ClassifierOutput:
    """A whole-image classifier whose ``positive`` label's probability is the named ``signal``."""

    labels: tuple[str, ...]
    signal: str
    positive: str
    activation: Literal["none", "softmax", "sigmoid"] = "none"


@dataclass(frozen=True)
class LandmarksOutput:
    """A dlib-style cascade that refines face points from a box (``.npz`` file, not TFLite).

    It was trained on boxes of another detector: ``box_scale`` and ``box_shift`` (fractions of
    the face detector's box size) map our detector's box onto the box it expects.
    """

    parts: int
    box_scale: tuple[float, float]
    box_shift: tuple[float, float]


Output = FaceDetectorOutput | AgeOutput | ClassifierOutput | LandmarksOutput


# --- parsing ---------------------------------------------------------------------------------


def _get(d: Mapping[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in d:
        raise ManifestError(f"{where}: missing field {key!r}")
    value = d[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ManifestError(f"{where}.{key}: expected {kind}, got {type(value).__name__}")
    return value


def _opt(d: Mapping[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    return _get(d, key, where, kind) if d.get(key) is not None else None


def _choice(value: str, allowed: Sequence[str], where: str) -> str:
    if value not in allowed:
        raise ManifestError(f"{where}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _floats(value: Sequence[Any], n: int | None, where: str) -> tuple[float, ...]:
    if not isinstance(value, list) or (n is not None and len(value) != n):
        raise ManifestError(f"{where}: expected a list of {n or 'some'} numbers")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        raise ManifestError(f"{where}: expected numbers")
    return tuple(float(x) for x in value)


def _size(value: Any, where: str) -> tuple[int, int]:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(x, int) for x in value)):
        raise ManifestError(f"{where}: expected [height, width]")
    if not all(0 < x <= 4096 for x in value):
        raise ManifestError(f"{where}: size out of range")
    return (value[0], value[1])


def _input(d: Mapping[str, Any], where: str) -> InputSpec:
    alignment = None
    if d.get("alignment") is not None:
        a = _get(d, "alignment", where, dict)
        kp = tuple(
            int(x) for x in _floats(_get(a, "keypoints", f"{where}.alignment", list), None, where)
        )
        tmpl = [
            _floats(p, 2, f"{where}.alignment.template") for p in _get(a, "template", where, list)
        ]
        if len(kp) != len(tmpl) or len(kp) < 2:
            raise ManifestError(f"{where}.alignment: keypoints and template must pair up (>= 2)")
        src = _choice(a.get("source", "detector"), ("landmarks", "detector"), f"{where}.alignment")
        alignment = Alignment(kp, tuple((p[0], p[1]) for p in tmpl), cast(Any, src))
    resize = _choice(_get(d, "resize", where, str), RESIZES, f"{where}.resize")
    if resize == "align_face" and alignment is None:
        raise ManifestError(f"{where}: resize 'align_face' needs an alignment")
    std = _floats(_get(d, "std", where, list), 3, f"{where}.std")
    if any(s == 0 for s in std):
        raise ManifestError(f"{where}.std: must not be zero")
    mean = _floats(_get(d, "mean", where, list), 3, f"{where}.mean")
    resize_to = _size(d["resize_to"], f"{where}.resize_to") if d.get("resize_to") else None
    return InputSpec(
        size=_size(_get(d, "size", where, list), f"{where}.size"),
        layout=cast(Any, _choice(_get(d, "layout", where, str), ("NHWC", "NCHW"), where)),
        color=cast(Any, _choice(_get(d, "color", where, str), ("RGB", "BGR"), where)),
        mean=(mean[0], mean[1], mean[2]),
        std=(std[0], std[1], std[2]),
        resize=cast(Resize, resize),
        resize_to=resize_to,
        jpeg_roundtrip_quality=_opt(d, "jpeg_roundtrip_quality", where, int),
        alignment=alignment,
    )


def _output(task: str, d: Mapping[str, Any], where: str) -> Output:
    if task == "face_detection":
        strides = tuple(int(x) for x in _floats(_get(d, "strides", where, list), None, where))
        return FaceDetectorOutput(
            strides=strides,
            anchors_per_layer=_get(d, "anchors_per_layer", where, int),
            num_keypoints=_get(d, "num_keypoints", where, int),
            score_threshold=float(_get(d, "score_threshold", where, (int, float))),
            nms_iou=float(_get(d, "nms_iou", where, (int, float))),
            score_clip=float(d.get("score_clip", 100.0)),
        )
    if task == "face_landmarks":
        return LandmarksOutput(
            parts=_get(d, "parts", where, int),
            box_scale=cast(
                Any, _floats(_get(d, "box_scale", where, list), 2, f"{where}.box_scale")
            ),
            box_shift=cast(
                Any, _floats(_get(d, "box_shift", where, list), 2, f"{where}.box_shift")
            ),
        )
    if task == "age_estimation":
        minor_below = d.get("minor_below", MINOR_BELOW)
        if not isinstance(minor_below, int | float) or not minor_below >= MINOR_BELOW:
            raise ManifestError(
                f"{where}.minor_below: {minor_below!r}; a minor is under {MINOR_BELOW:g} "
                "at least (a bundle may widen that, never narrow it)"
            )
        return AgeOutput(
            ages=_floats(_get(d, "ages", where, list), None, f"{where}.ages"),
            minor_below=float(minor_below),
        )
    labels = tuple(str(x) for x in _get(d, "labels", where, list))
    positive = _get(d, "positive", where, str)
    if positive not in labels:
        raise ManifestError(f"{where}.positive: {positive!r} is not among the labels")
    activation = _choice(d.get("activation", "none"), ("none", "softmax", "sigmoid"), where)
    signal = _get(d, "signal", where, str)
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", signal):
        raise ManifestError(f"{where}.signal: {signal!r} is not a lowercase signal name")
    if signal in RESERVED_SIGNALS:
        raise ManifestError(
            f"{where}.signal: {signal!r} is reserved (the age model computes it from faces); "
            "a classifier may not overwrite it"
        )
    return ClassifierOutput(labels, signal, positive, cast(Any, activation))
