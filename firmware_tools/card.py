"""Render ``MODEL_CARD.md`` from its template and the build's own measurements.

Prose lives in ``data/MODEL_CARD.template.md``; every number (fidelity, latency, sizes, the
machine they were measured on) is filled in from ``validation.json`` and the manifest, so the
card can only say what the last ``edge-screen-fw build-default`` measured.
"""

from __future__ import annotations

from string import Template
from typing import Any

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
        head = ["variant", "weights/act.", "size (MB)", *cols, "limits met", "preferred on"]
        rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for v in model["variants"]:
            r = results[v["name"]]
            cells = [f"`{v['name']}`", f"{v['weights']}/{v['activations']}",
                     f"{v['size'] / 1e6:.1f}", *(_fmt(r["fidelity"].get(c)) for c in cols),
                     _met(limits, r["failures"]), ", ".join(chosen[v["name"]]) or "-"]
            rows.append("| " + " | ".join(cells) + " |")
        title = f"### `{model['id']}` (limits: {', '.join(limits.values()) or 'none'})"
        blocks.append(title + "\n\n" + "\n".join(rows) + "\n\nLimits (recipe "
                      "`firmware_tools/data/default_bundle.json`):\n\n"
                      + (_reasons(model, recipe, limits) or "- none"))
    return "\n\n".join(blocks)


def latency_table(manifest: dict[str, Any], report: dict[str, Any]) -> str:
    names = ["fp32", "fp16", "int8", "int16x8"]
    rows = ["| model | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for model in manifest["models"]:
        results = report["models"][model["id"]]["variants"]
        cells = [f"{results[n]['latency_ms']:.1f}" if results.get(n, {}).get("latency_ms")
                 else "-" for n in names]
        rows.append(f"| `{model['id']}` | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def render(recipe: Recipe, manifest: dict[str, Any], report: dict[str, Any]) -> str:
    env = report["environment"]
    env_line = ", ".join(f"{k} {v}" for k, v in env.items())
    size = sum(v["size"] for m in manifest["models"] for v in m["variants"])
    return Template(TEMPLATE.read_text()).substitute(
        bundle_version=manifest["bundle_version"],
        fidelity_tables=fidelity_tables(recipe, manifest, report),
        latency_table=latency_table(manifest, report),
        environment=env_line,
        bundle_mb=f"{size / 1e6:.1f}",
    )
