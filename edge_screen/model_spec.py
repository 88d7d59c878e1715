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
Resize = Literal["letterbox", "stretch", "blurpad", "align_face", "fit"]
RESIZES: tuple[str, ...] = ("letterbox", "stretch", "blurpad", "align_face", "fit")
# "fit" (a fully convolutional model): the input tensor is resized to each picture's aspect.
FIT_MULTIPLE = 32


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

    ``resize: "fit"`` is for a fully convolutional model: ``size`` is the tensor the file was
    built with and the pixel budget (area and long side) of a pass; each picture is scaled down
    (never up) into that budget, keeping its aspect, and padded to sides that are multiples of
    ``FIT_MULTIPLE``, and the interpreter's input tensor is resized to match (portrait
    included, no second file; ``centerface.fit_size``).
    ``budgets`` gives another budget per ``platform.machine()`` (a slower CPU, a smaller pass).
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
    budgets: tuple[tuple[str, tuple[int, int]], ...] = ()

    def budget(self, machine: str) -> tuple[int, int]:
        """The ``fit`` budget (height, width) on this CPU architecture."""
        return dict(self.budgets).get(machine.lower(), self.size)


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
class CenterFaceOutput:
    """CenterFace-style dense decoding: per cell of a ``stride`` grid, a face-centre heatmap,
    log box size, centre offset and five landmarks (tensors named in ``tensors``).

    Its boxes are mapped (``box_scale``, ``box_shift``: fractions of its box size) onto the
    boxes of the bundle's SSD detector, so that the landmark cascade, whose box mapping was
    calibrated on those, and the age limits in detector px see one kind of box.
    """

    tensors: tuple[tuple[str, str], ...]  # role (heatmap, scale, offset, landmarks) -> name
    stride: int
    score_threshold: float
    nms_iou: float
    box_scale: tuple[float, float] = (1.0, 1.0)
    box_shift: tuple[float, float] = (0.0, 0.0)

    def tensor(self, role: str) -> str:
        return dict(self.tensors)[role]


CENTERFACE_TENSORS = ("heatmap", "scale", "offset", "landmarks")


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


Output = FaceDetectorOutput | CenterFaceOutput | AgeOutput | ClassifierOutput | LandmarksOutput


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
    budgets = tuple(
        (str(k).lower(), _size(v, f"{where}.budgets.{k}"))
        for k, v in (_opt(d, "budgets", where, dict) or {}).items()
    )
    if budgets and resize != "fit":
        raise ManifestError(f"{where}.budgets: only a 'fit' input has budgets")
    size = _size(_get(d, "size", where, list), f"{where}.size")
    sides = [v for b in (size, *(b for _, b in budgets)) for v in b]
    if resize == "fit" and any(v % FIT_MULTIPLE for v in sides):
        raise ManifestError(f"{where}: a 'fit' input's sizes are multiples of {FIT_MULTIPLE}")
    return InputSpec(
        size=size,
        layout=cast(Any, _choice(_get(d, "layout", where, str), ("NHWC", "NCHW"), where)),
        color=cast(Any, _choice(_get(d, "color", where, str), ("RGB", "BGR"), where)),
        mean=(mean[0], mean[1], mean[2]),
        std=(std[0], std[1], std[2]),
        resize=cast(Resize, resize),
        resize_to=resize_to,
        jpeg_roundtrip_quality=_opt(d, "jpeg_roundtrip_quality", where, int),
        alignment=alignment,
        budgets=budgets,
    )


def _centerface(d: Mapping[str, Any], where: str) -> CenterFaceOutput:
    names = _get(d, "tensors", where, dict)
    if set(names) != set(CENTERFACE_TENSORS) or not all(isinstance(v, str) for v in names.values()):
        raise ManifestError(f"{where}.tensors: name each of {', '.join(CENTERFACE_TENSORS)}")
    scale = _floats(d.get("box_scale", [1.0, 1.0]), 2, f"{where}.box_scale")
    if not all(0.5 <= v <= 2.0 for v in scale):
        raise ManifestError(f"{where}.box_scale: out of range [0.5, 2]")
    shift = _floats(d.get("box_shift", [0.0, 0.0]), 2, f"{where}.box_shift")
    if not all(-0.5 <= v <= 0.5 for v in shift):
        raise ManifestError(f"{where}.box_shift: out of range [-0.5, 0.5]")
    stride = _get(d, "stride", where, int)
    threshold = float(_get(d, "score_threshold", where, (int, float)))
    iou = float(_get(d, "nms_iou", where, (int, float)))
    if not (1 <= stride <= 64 and 0.0 < threshold < 1.0 and 0.0 < iou < 1.0):
        raise ManifestError(f"{where}: stride, score_threshold or nms_iou out of range")
    return CenterFaceOutput(
        tensors=tuple((role, str(names[role])) for role in CENTERFACE_TENSORS),
        stride=stride,
        score_threshold=threshold,
        nms_iou=iou,
        box_scale=(scale[0], scale[1]),
        box_shift=(shift[0], shift[1]),
    )


def _output(task: str, d: Mapping[str, Any], where: str) -> Output:
    if task == "face_detection" and d.get("decoder", "ssd") == "centerface":
        return _centerface(d, where)
    if task == "face_detection":
        _choice(d.get("decoder", "ssd"), ("ssd", "centerface"), f"{where}.decoder")
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
