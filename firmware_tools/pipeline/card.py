"""Render ``MODEL_CARD.md`` from its template and the build's own measurements.

Prose lives in ``data/MODEL_CARD.template.md``; every number (fidelity, latency, sizes, the
machine they were measured on) is filled in from ``validation.json`` and the manifest, so the
card can only say what the last ``edge-screen-fw build-default`` measured.
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Template
from typing import Any

from . import datasets
from .recipe import DATA_DIR, Recipe

TEMPLATE = DATA_DIR / "MODEL_CARD.template.md"
COLUMNS = {
    "face_detection": ["recall", "mean_iou", "n", "small_face_recall", "small_face_n"],
    "face_landmarks": ["mean_px", "max_px", "n"],
    "age_estimation": ["mae_years", "p95_years", "max_years", "mean_abs_dp_minor",
                       "max_abs_dp_minor", "n"],
    "image_classification": ["mean_abs_dp", "max_abs_dp", "mean_abs_dp_synthetic",
                             "max_abs_dp_synthetic", "n", "n_synthetic"],
}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        return str(int(value))
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _limits(model: dict[str, Any], recipe: Recipe) -> dict[str, str]:
    """Each limit of a model as ``{measure: "measure <= bound"}``, in recipe order."""
    limits = recipe.model(model["id"]).limits
    out = {k: f"{k} <= {v}" for k, v in limits.get("max", {}).items()}
    out.update({k: f"{k} >= {v}" for k, v in limits.get("min", {}).items()})
    return out


def _met(limits: dict[str, str], failures: list[str]) -> str:
    """Which limits a variant meets, and each one it fails with its number."""
    failed = {f.split(" ", 1)[0] for f in failures}
    met = [k for k in limits if k not in failed]
    if not failures:
        return "all: " + ", ".join(met) if met else "yes (no limits)"
    return "no: fails " + "; ".join(failures) + ("; meets " + ", ".join(met) if met else "")


def _reasons(model: dict[str, Any], recipe: Recipe, limits: dict[str, str]) -> str:
    reasons = recipe.model(model["id"]).limit_reasons
    return "\n".join(f"- `{text}`: {reasons.get(k, 'no reason recorded in the recipe')}"
                     for k, text in limits.items())


def fidelity_tables(recipe: Recipe, manifest: dict[str, Any], report: dict[str, Any]) -> str:
    blocks = []
    for model in manifest["models"]:
        cols = COLUMNS[model["task"]]
        results = report["models"][model["id"]]["variants"]
        chosen = {v: [m for m, n in model["preferred"].items() if n == v] for v in results}
        limits = _limits(model, recipe)
        head = ["variant", "weights/act.", "size (MB)", *cols, "limits met", "preferred on",
                "shipped"]
        rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for v in model["variants"]:
            r = results[v["name"]]
            cells = [f"`{v['name']}`", f"{v['weights']}/{v['activations']}",
                     f"{v['size'] / 1e6:.1f}", *(_fmt(r["fidelity"].get(c)) for c in cols),
                     _met(limits, r["failures"]), ", ".join(chosen[v["name"]]) or "-",
                     "no" if v["name"] in model.get("not_shipped", ()) else "yes"]
            rows.append("| " + " | ".join(cells) + " |")
        title = f"### `{model['id']}` (limits: {', '.join(limits.values()) or 'none'})"
        blocks.append(title + "\n\n" + "\n".join(rows) + "\n\nLimits (recipe "
                      "`firmware_tools/data/default_bundle.json`):\n\n"
                      + (_reasons(model, recipe, limits) or "- none"))
    return "\n\n".join(blocks)


def _size(model: dict[str, Any]) -> str:
    """A model's input as width x height px ("-" for the landmark cascade, which has none)."""
    size = model.get("input", {}).get("size")
    return f"{size[1]}x{size[0]}" if size else "-"


def latency_table(manifest: dict[str, Any], report: dict[str, Any]) -> str:
    names = ["fp32", "fp16", "int8", "int16x8"]
    rows = ["| model | input | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for model in manifest["models"]:
        results = report["models"][model["id"]]["variants"]
        cells = [f"{results[n]['latency_ms']:.1f}" if results.get(n, {}).get("latency_ms")
                 else "-" for n in names]
        rows.append(f"| `{model['id']}` | {_size(model)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def variant_summary(manifest: dict[str, Any], report: dict[str, Any], model_id: str) -> str:
    """One classifier's variants: size, |dP| on the held-out pictures and on the synthetic
    inputs apart, latency, limits met and where each is preferred."""
    model = next((m for m in manifest["models"] if m["id"] == model_id), None)
    if model is None:
        return f"`{model_id}` is not in this bundle's recipe."
    results = report["models"][model_id]["variants"]
    head = ["variant", "size (MB)", "held-out mean / max", "synthetic mean / max",
            "latency (ms)", "passes", "preferred on"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in model["variants"]:
        r = results[v["name"]]
        f = r["fidelity"]

        def pair(a: str, b: str, f: dict[str, Any] = f) -> str:
            return "-" if a not in f else f"{f[a]:.4f} / {f[b]:.4f}"

        lat = r.get("latency_ms")
        where = [m for m, n in model["preferred"].items() if n == v["name"]]
        rows.append("| " + " | ".join([
            v["name"], f"{v['size'] / 1e6:.1f}",
            pair("mean_abs_dp_heldout", "max_abs_dp_heldout"),
            pair("mean_abs_dp_synthetic", "max_abs_dp_synthetic"),
            "-" if lat is None else f"{lat:.1f}", "yes" if r["passes"] else
            "no: " + "; ".join(r["failures"]), ", ".join(where) or "-"]) + " |")
    n = results[model["variants"][0]["name"]]["fidelity"]
    rows.append(f"\n{int(n.get('n', 0) - n.get('n_synthetic', 0))} held-out pictures, "
                f"{int(n.get('n_synthetic', 0))} synthetic inputs.")
    return "\n".join(rows)


def datasets_table(recipe: Recipe) -> str:
    """Per model, the calibration and held-out sets ``datasets`` builds (from the recipe)."""
    head = ["model", "input", "calibration", "held-out", "faces per composite",
            "face widths (px at the input)", "photo crops", "small-face set"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in recipe.models:
        if m.kind == "dlib-shape-predictor":
            continue  # checked against dlib on its own faces, no sets
        size = m.input["size"]
        cells = [f"`{m.id}`", f"{size[1]}x{size[0]}", str(datasets.count(m, "calib")),
                 str(datasets.count(m, "heldout"))]
        if m.raw["task"] == "face_detection":
            s = datasets.scene_spec(m)
            cells += [f"{s.faces[0]}-{s.faces[1]}", f"{s.widths[0]:g}-{s.widths[1]:g}",
                      f"{s.crop_share:.0%}"]
        else:
            cells += ["-", "-", "-"]
        small = m.small_faces
        cells.append("-" if small is None else
                     f"{small['images']} images, {small['faces_per_image'][0]}-"
                     f"{small['faces_per_image'][1]} faces of {small['face_px'][0]}-"
                     f"{small['face_px'][1]} px")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


DECISION_RANGE = DATA_DIR / "decision_range.json"


def decision_table(path: Path = DECISION_RANGE) -> str:
    """The decision-range photos per open_nsfw variant, end to end, from ``decision measure``."""
    if not path.exists():
        return "Not measured yet: `edge-screen-fw decision measure --work DIR`."
    data = json.loads(path.read_text())
    names = list(data["summary"])
    head = ["file", "meant", "float", *names]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in data["files"]:
        minor = f" (minor {f['float_minor']:.3f})" if f.get("float_minor") is not None else ""
        cells = [f"`{f['file']}`", f["intended"], f"{f['float']:.3f}{minor}"]
        cells += [f"{f['variants'][n]['verdict']} {f['variants'][n]['screen']:.3f}" for n in names]
        rows.append("| " + " | ".join(cells) + " |")
    for key, label in (("end_to_end", "end to end"), ("at_tensor", "at the tensor")):
        cells = [f"{s[key]['mean_abs_dp']:.4f} / {s[key]['max_abs_dp']:.4f}"
                 for s in data["summary"].values()]
        rows.append(f"| mean / max abs dP, {label} | | | " + " | ".join(cells) + " |")
    legacy = data["legacy_synthetic"]
    ways = (("at_tensor", "at the tensor"), ("through_screen", "as photos via screen()"))
    for key, label in ways:
        n = legacy["n"]
        cells = [f"{v[key]['n_review_or_more']}/{n}" for v in legacy["variants"].values()]
        rows.append(f"| legacy synthetic >= 0.2, {label} | | | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def render(recipe: Recipe, manifest: dict[str, Any], report: dict[str, Any]) -> str:
    env = report["environment"]
    env_line = ", ".join(f"{k} {v}" for k, v in env.items())
    shipped = [v for m in manifest["models"] for v in m["variants"]
               if v["name"] not in m.get("not_shipped", ())]
    every = sum(v["size"] for m in manifest["models"] for v in m["variants"])
    return Template(TEMPLATE.read_text()).substitute(
        bundle_version=manifest["bundle_version"],
        fidelity_tables=fidelity_tables(recipe, manifest, report),
        latency_table=latency_table(manifest, report),
        decision_range=decision_table(),
        graphic_summary=variant_summary(manifest, report, "graphic"),
        nsfwjs_summary=variant_summary(manifest, report, "nsfwjs"),
        datasets_table=datasets_table(recipe),
        environment=env_line,
        bundle_mb=f"{sum(v['size'] for v in shipped) / 1e6:.1f}",
        all_variants_mb=f"{every / 1e6:.1f}",
    )
