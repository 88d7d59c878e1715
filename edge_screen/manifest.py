"""The bundle manifest schema (``edge-screen.bundle/1``): parsing and validation, no I/O.

The runtime and ``firmware_tools`` both import this module, so what builds a bundle and what
loads one cannot drift apart. ``parse_manifest`` takes the decoded JSON and returns frozen
dataclasses or raises ``ManifestError`` naming the offending field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

from .errors import ManifestError, UnsafePath, VariantNotShipped
from .release import SelfTest, parse_self_test, parse_time, version_key

SCHEMA = "edge-screen.bundle/2"

Task = Literal["face_detection", "face_landmarks", "age_estimation", "image_classification"]
TASKS: tuple[str, ...] = (
    "face_detection",
    "face_landmarks",
    "age_estimation",
    "image_classification",
)
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


@dataclass(frozen=True)
class Variant:
    """One file of a model: a precision (fp32, fp16, int8, int16x8) and its measured fidelity."""

    name: str
    file: str
    sha256: str
    size: int
    weights: str
    activations: str
    fidelity: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    """Where the float original came from, so anyone can rebuild and check it."""

    package: str
    member: str
    sha256: str
    licence: str


@dataclass(frozen=True)
class ModelSpec:
    id: str
    task: Task
    version: str
    source: Source
    input: InputSpec | None  # None only for face_landmarks, which reads pixels itself
    output: Output
    variants: tuple[Variant, ...]
    preferred: Mapping[str, str]  # machine (platform.machine()) or "default" -> variant name
    description: str = ""
    not_shipped: tuple[str, ...] = ()  # built and validated, left out of this (device) bundle

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        known = ", ".join(v.name for v in self.variants)
        if name in self.not_shipped:
            raise VariantNotShipped(
                f"model {self.id!r}: variant {name!r} is not in this bundle, which carries only "
                f"the variants some platform prefers ({known}); build every variant with "
                "`edge-screen-fw build-default --all-variants --out DIR` and load that bundle "
                "with Screener(bundle=DIR) or --bundle DIR")
        raise ManifestError(f"model {self.id!r} has no variant {name!r} (has: {known})")

    def preferred_variant(self, machine: str) -> Variant:
        """The variant measured best for this CPU architecture, else the bundle's default."""
        name = self.preferred.get(machine.lower()) or self.preferred.get("default")
        return self.variant(name) if name else self.variants[0]


@dataclass(frozen=True)
class FileEntry:
    file: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    schema: str
    bundle_version: str  # dotted integers, compared as numbers (``release.version_key``)
    models: tuple[ModelSpec, ...]
    notices: tuple[FileEntry, ...] = ()
    created: str = ""  # UTC, ``2026-12-02T13:00:00Z``
    min_runtime: str = "0"  # the oldest edge-screen that can run this bundle
    expires: str | None = None  # after this a device refuses to install it
    card: FileEntry | None = None  # MODEL_CARD.md
    self_test: SelfTest | None = None  # pictures a device screens before activating the bundle

    def by_task(self, task: str) -> tuple[ModelSpec, ...]:
        return tuple(m for m in self.models if m.task == task)

    def files(self) -> tuple[FileEntry, ...]:
        """Every file the manifest vouches for: all variants of all models, the notices and the
        model card; a signed bundle holds exactly these and the manifest itself."""
        entries = [FileEntry(v.file, v.sha256, v.size) for m in self.models for v in m.variants]
        cases = self.self_test.cases if self.self_test else ()
        tests = [FileEntry(c.file, c.sha256, c.size) for c in cases]
        return (*entries, *self.notices, *((self.card,) if self.card else ()), *tests)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _variant(d: Mapping[str, Any], where: str) -> Variant:
    fidelity = d.get("fidelity") or {}
    if not isinstance(fidelity, dict):
        raise ManifestError(f"{where}.fidelity: expected an object")
    return Variant(
        name=_get(d, "name", where, str),
        file=_safe_name(_get(d, "file", where, str), f"{where}.file"),
        sha256=_sha(_get(d, "sha256", where, str), where),
        size=_size_of(d, where),
        weights=_get(d, "weights", where, str),
        activations=_get(d, "activations", where, str),
        fidelity={str(k): float(v) for k, v in fidelity.items()},
    )


def _size_of(d: Mapping[str, Any], where: str) -> int:
    size: int = _get(d, "size", where, int)
    if size < 0:
        raise ManifestError(f"{where}.size: {size} is negative")
    return size


def _safe_name(name: str, where: str) -> str:
    """Bundle files are plain names inside the bundle directory: no paths, no escapes."""
    if not name or "/" in name or "\\" in name or "\x00" in name or name.startswith("."):
        raise UnsafePath(f"{where}: {name!r} is not a plain file name inside the bundle")
    return name


def _sha(value: str, where: str) -> str:
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ManifestError(f"{where}.sha256: not a lowercase hex sha256")
    return value


def _model(d: Mapping[str, Any], where: str) -> ModelSpec:
    task = _choice(_get(d, "task", where, str), TASKS, f"{where}.task")
    s = _get(d, "source", where, dict)
    variants = tuple(
        _variant(v, f"{where}.variants[{i}]")
        for i, v in enumerate(_get(d, "variants", where, list))
    )
    if not variants:
        raise ManifestError(f"{where}.variants: a model needs at least one variant")
    preferred = {str(k).lower(): str(v) for k, v in (d.get("preferred") or {}).items()}
    names = {v.name for v in variants}
    for machine, name in preferred.items():
        if name not in names:
            raise ManifestError(f"{where}.preferred.{machine}: unknown variant {name!r}")
    not_shipped = tuple(str(n) for n in _opt(d, "not_shipped", where, list) or ())
    if names & set(not_shipped):
        raise ManifestError(f"{where}.not_shipped: names a variant the bundle ships")
    return ModelSpec(
        id=_get(d, "id", where, str),
        task=cast(Task, task),
        version=_get(d, "version", where, str),
        source=Source(
            package=_get(s, "package", f"{where}.source", str),
            member=_get(s, "member", f"{where}.source", str),
            sha256=_sha(_get(s, "sha256", f"{where}.source", str), f"{where}.source"),
            licence=_get(s, "licence", f"{where}.source", str),
        ),
        input=None
        if task == "face_landmarks"
        else _input(_get(d, "input", where, dict), f"{where}.input"),
        output=_output(task, _get(d, "output", where, dict), f"{where}.output"),
        variants=variants,
        preferred=preferred,
        description=str(d.get("description", "")),
        not_shipped=not_shipped,
    )


def parse_manifest(data: Any) -> Manifest:
    """Validate decoded ``manifest.json`` data and return it as frozen dataclasses. Whatever
    the checks below did not foresee (a list where an object belongs, text for a number) is a
    ``ManifestError`` too, never a builtin error out of a half-read manifest."""
    try:
        return _parse_manifest(data)
    except (ManifestError, UnsafePath):
        raise
    except (TypeError, AttributeError, KeyError, ValueError, OverflowError) as exc:
        raise ManifestError(f"manifest: malformed ({type(exc).__name__}: {exc})") from exc


def _parse_manifest(data: Any) -> Manifest:
    if not isinstance(data, dict):
        raise ManifestError("manifest: expected a JSON object")
    schema = _get(data, "schema", "manifest", str)
    if schema != SCHEMA:
        raise ManifestError(f"manifest.schema: {schema!r} is not supported (want {SCHEMA!r})")
    models = tuple(
        _model(m, f"models[{i}]") for i, m in enumerate(_get(data, "models", "manifest", list))
    )
    ids = [m.id for m in models]
    if len(set(ids)) != len(ids):
        raise ManifestError("manifest.models: model ids must be unique")
    for task in ("face_detection", "age_estimation", "face_landmarks"):
        if sum(m.task == task for m in models) > 1:  # only one would run: say so, not ignore it
            raise ManifestError(f"manifest.models: more than one {task} model")
    listed = _opt(data, "notices", "manifest", list) or []
    notices = tuple(_file_entry(n, f"notices[{i}]") for i, n in enumerate(listed))
    card = _opt(data, "card", "manifest", dict)
    version = _get(data, "bundle_version", "manifest", str)
    version_key(version, "manifest.bundle_version")
    min_runtime = _get(data, "min_runtime", "manifest", str)
    version_key(min_runtime, "manifest.min_runtime")
    created = _get(data, "created", "manifest", str)
    parse_time(created, "manifest.created")
    expires = _opt(data, "expires", "manifest", str)
    if expires is not None:
        parse_time(expires, "manifest.expires")
    self_test = _opt(data, "self_test", "manifest", dict)
    if self_test is not None:
        self_test = parse_self_test(self_test)
        for i, case in enumerate(self_test.cases):
            _safe_name(case.file, f"self_test.cases[{i}].file")
            _sha(case.sha256, f"self_test.cases[{i}]")
    manifest = Manifest(schema, version, models, notices, created, min_runtime, expires,
                        _file_entry(card, "card") if card is not None else None, self_test)
    names = [e.file for e in manifest.files()]
    if len(set(names)) != len(names) or "manifest.json" in names:
        raise ManifestError("manifest: a file is listed twice, or the manifest lists itself")
    return manifest


def _file_entry(d: Any, where: str) -> FileEntry:
    return FileEntry(
        _safe_name(_get(d, "file", where, str), f"{where}.file"),
        _sha(_get(d, "sha256", where, str), where),
        _size_of(d, where),
    )
