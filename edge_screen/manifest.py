"""The bundle manifest schema (``edge-screen.bundle/2``): parsing and validation, no I/O.

The runtime and ``firmware_tools`` both import this module, so what builds a bundle and what
loads one cannot drift apart. ``parse_manifest`` takes the decoded JSON and returns frozen
dataclasses or raises ``ManifestError`` naming the offending field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

from .errors import ManifestError, UnsafePath, VariantNotShipped
from .model_spec import MINOR_BELOW as MINOR_BELOW
from .model_spec import RESERVED_SIGNALS as RESERVED_SIGNALS
from .model_spec import RESIZES as RESIZES
from .model_spec import AgeOutput as AgeOutput
from .model_spec import Alignment as Alignment
from .model_spec import CenterFaceOutput as CenterFaceOutput
from .model_spec import ClassifierOutput as ClassifierOutput
from .model_spec import FaceDetectorOutput as FaceDetectorOutput
from .model_spec import InputSpec as InputSpec
from .model_spec import LandmarksOutput as LandmarksOutput
from .model_spec import Output as Output
from .model_spec import Resize as Resize
from .model_spec import _choice, _get, _input, _opt, _output
from .release import SelfTest, parse_self_test, parse_time, version_key

SCHEMA = "edge-screen.bundle/2"
MAX_MANIFEST_BYTES = 1 << 20  # checked before a manifest is parsed

Task = Literal["face_detection", "face_landmarks", "age_estimation", "image_classification"]
TASKS: tuple[str, ...] = (
    "face_detection",
    "face_landmarks",
    "age_estimation",
    "image_classification",
)


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


HASH_LIST_FORMATS: tuple[str, ...] = ("pdq256",)  # 32-byte PDQ hashes, concatenated


@dataclass(frozen=True)
class HashListSpec:
    """A list of known content to match PDQ hashes against (docs/bundle-format.md#hash-lists):
    ``count`` entries of ``format`` in ``file``, every one carrying the list's ``label``."""

    id: str
    file: str
    sha256: str
    size: int
    label: str  # e.g. "known CSAM": the reason line and the report's matches name it
    count: int
    format: str = "pdq256"
    source: str = ""  # who compiled the list, and when
    description: str = ""


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
    hash_lists: tuple[HashListSpec, ...] = ()  # known content, matched on every screened frame

    def by_task(self, task: str) -> tuple[ModelSpec, ...]:
        return tuple(m for m in self.models if m.task == task)

    def files(self) -> tuple[FileEntry, ...]:
        """Every file the manifest vouches for: all variants of all models, the notices, the
        model card, the self-test pictures and the hash lists; a signed bundle holds exactly
        these and the manifest itself."""
        entries = [FileEntry(v.file, v.sha256, v.size) for m in self.models for v in m.variants]
        cases = self.self_test.cases if self.self_test else ()
        tests = [FileEntry(c.file, c.sha256, c.size) for c in cases]
        lists = [FileEntry(h.file, h.sha256, h.size) for h in self.hash_lists]
        return (*entries, *self.notices, *((self.card,) if self.card else ()), *tests, *lists)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- parsing ---------------------------------------------------------------------------------


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


def manifest_from_bytes(data: bytes, where: str = "manifest.json") -> Manifest:
    """``parse_manifest`` on the file's bytes: size limit, then JSON, then the schema."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{where}: larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        decoded = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ManifestError(f"{where}: not valid JSON ({type(exc).__name__})") from exc
    return parse_manifest(decoded)


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
    _finite(data)
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
        kinds = [type(m.output) for m in models if m.task == task]
        if len(kinds) != len(set(kinds)):  # only one would run: say so, not ignore it
            raise ManifestError(f"manifest.models: more than one {task} model of one kind")
    if any(isinstance(m.output, CenterFaceOutput) for m in models) and not any(
        isinstance(m.output, FaceDetectorOutput) for m in models
    ):
        raise ManifestError("manifest.models: a CenterFace detector maps its boxes onto an SSD "
                            "detector's, and the bundle has none")
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
    lists = tuple(_hash_list(h, f"hash_lists[{i}]")
                  for i, h in enumerate(_opt(data, "hash_lists", "manifest", list) or []))
    if len({h.id for h in lists}) != len(lists):
        raise ManifestError("manifest.hash_lists: list ids must be unique")
    manifest = Manifest(schema, version, models, notices, created, min_runtime, expires,
                        _file_entry(card, "card") if card is not None else None, self_test,
                        lists)
    names = [e.file for e in manifest.files()]
    if len(set(names)) != len(names) or "manifest.json" in names:
        raise ManifestError("manifest: a file is listed twice, or the manifest lists itself")
    return manifest


def _finite(data: Any) -> None:
    """Python's JSON reads NaN and Infinity (and 1e999 as infinity): a threshold that is not a
    number compares false with every score, so a face detector's would find no face at all
    (found by fuzzing). Refused wherever it stands."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise ManifestError(f"manifest: {value} is not a finite number")
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _file_entry(d: Any, where: str) -> FileEntry:
    return FileEntry(
        _safe_name(_get(d, "file", where, str), f"{where}.file"),
        _sha(_get(d, "sha256", where, str), where),
        _size_of(d, where),
    )


def _hash_list(d: Any, where: str) -> HashListSpec:
    entry = _file_entry(d, where)
    fmt = _choice(str(d.get("format", "pdq256")), HASH_LIST_FORMATS, f"{where}.format")
    count: int = _get(d, "count", where, int)
    if count < 1 or entry.size != 32 * count:
        raise ManifestError(f"{where}: {count} entries of {fmt} are {32 * count} bytes, the "
                            f"file is listed with {entry.size} (and a list is never empty)")
    label = _get(d, "label", where, str).strip()
    if not label:
        raise ManifestError(f"{where}.label: a list names what it holds")
    return HashListSpec(
        id=_get(d, "id", where, str), file=entry.file, sha256=entry.sha256, size=entry.size,
        label=label, count=count, format=fmt, source=str(d.get("source", "")),
        description=str(d.get("description", "")),
    )
