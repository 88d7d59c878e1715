"""Step 3, validate: every variant against its float original, on held-out images.

The reference is the untouched source model (onnxruntime for ONNX, LiteRT for a float TFLite);
a detector's boxes on both sides come from the runtime's own decoder (``facedet``), CenterFace's
tensors found by the names the manifest gives them, checked against the reference's roles.
Fidelity numbers go to ``validation.json`` (then to the manifest and the model card); a variant
outside any of its limits (the recipe's ``limits``, child-signal limits included: the age model's
|dP(minor)| and the face detector's recall on small faces) is marked failing and can never become
``preferred``. Latency is measured here too, because ``preferred`` on x86_64 is the fastest
passing variant.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import datasets, face_scenes, facedet, venv
from .recipe import (
    LANDMARKS_KIND,
    SYNTHETIC_FILE,
    TFJS_KIND,
    ModelRecipe,
    Recipe,
    Work,
    load_recipe,
)

THREADS = 2
TIE = 1.05
REFERENCE_PIXELS = 1 << 22  # pixels per onnxruntime batch (16 at 224 px; 5 at 1024x768)
Array = NDArray[Any]
Named = facedet.Named  # outputs by tensor name, in the model's own output order


class ValidationFailed(RuntimeError):
    """No variant of a model meets the limits for some platform; the build must stop."""


def _interpreter(path: Path, threads: int = THREADS) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # the older standalone runtime has the same API
        from tflite_runtime.interpreter import Interpreter  # type: ignore[import-not-found,no-redef]
    interp = Interpreter(model_path=str(path), num_threads=threads)
    interp.allocate_tensors()
    return interp


def normalise(images: Array, spec: dict[str, Any]) -> NDArray[np.float32]:
    """uint8 RGB NHWC -> the float NHWC tensor the model wants, as the manifest describes it."""
    x = images.astype(np.float32)
    if spec["color"] == "BGR":
        x = x[..., ::-1]
    mean = np.asarray(spec["mean"], np.float32)
    std = np.asarray(spec["std"], np.float32)
    return np.ascontiguousarray((x - mean) / std)


def run_tflite(path: Path, x: NDArray[np.float32]) -> list[Array]:
    """Run each sample through a TFLite file; (de)quantise with the tensors' own parameters."""
    return list(run_tflite_named(path, x).values())


def run_tflite_named(path: Path, x: NDArray[np.float32]) -> Named:
    """``run_tflite``, by output tensor name (what a manifest names a tensor by)."""
    interp = _interpreter(path)
    inp = interp.get_input_details()[0]
    outs = interp.get_output_details()
    results: list[list[Array]] = [[] for _ in outs]
    for sample in x:
        data = sample[None]
        scale, zero = inp["quantization"]
        if inp["dtype"] != np.float32:
            info = np.iinfo(inp["dtype"])
            data = np.clip(np.round(data / scale + zero), info.min, info.max)
        interp.set_tensor(inp["index"], data.astype(inp["dtype"]))
        interp.invoke()
        for k, od in enumerate(outs):
            y = interp.get_tensor(od["index"])
            s, z = od["quantization"]
            results[k].append((y.astype(np.float32) - z) * s if od["dtype"] != np.float32 else y)
    return {str(od["name"]): np.concatenate(r) for od, r in zip(outs, results, strict=True)}


def run_reference(work: Work, model: ModelRecipe, x: NDArray[np.float32]) -> list[Array]:
    """The float original's outputs for the same normalised inputs."""
    return list(run_reference_named(work, model, x).values())


def _onnx_session(source: Path, model: ModelRecipe) -> Any:
    """An onnxruntime session on the source model with a free batch and image size: some
    sources declare the fixed shape they were exported with (CenterFace: 10x3x32x32)."""
    import onnx
    import onnxruntime as ort

    model_proto = onnx.load(str(source))
    graph = model_proto.graph
    (inp,) = [i for i in graph.input if i.name == model.raw["convert"]["input"]]
    dims = inp.type.tensor_type.shape.dim
    spatial = (1, 2) if model.raw["convert"]["layout"] == "NHWC" else (2, 3)
    for k in (0, *spatial):  # batch, height, width
        dims[k].dim_param = f"d{k}"
    for out in graph.output:  # inferred for the fed shape instead
        out.type.tensor_type.ClearField("shape")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    opts.log_severity_level = 3  # old exporters list weights as inputs: a warning per weight
    return ort.InferenceSession(model_proto.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def run_reference_named(work: Work, model: ModelRecipe, x: NDArray[np.float32]) -> Named:
    """``run_reference`` by output name. For a model whose manifest names its tensors (CenterFace)
    the ONNX outputs are renamed and laid out as the variants' (NHWC): the recipe's
    ``convert.outputs`` says which ONNX output plays which role, ``output.tensors`` which
    TFLite tensor does."""
    source = work.source_file(model)
    if model.kind == "tflite":
        return run_tflite_named(source, x)
    if model.kind == TFJS_KIND:
        return {"reference": run_keras_reference(work, model, x)}
    sess = _onnx_session(source, model)
    nchw = model.raw["convert"]["layout"] == "NCHW"
    feed = x.transpose(0, 3, 1, 2) if nchw else x
    name = model.raw["convert"]["input"]
    step = max(1, min(16, REFERENCE_PIXELS // (x.shape[1] * x.shape[2])))
    names = [o.name for o in sess.get_outputs()]
    chunks = [sess.run(None, {name: feed[i:i + step]}) for i in range(0, len(feed), step)]
    named = {n: np.concatenate([c[k] for c in chunks]) for k, n in enumerate(names)}
    roles = model.raw["convert"].get("outputs")
    if not roles:
        return named
    tensors = model.raw["output"]["tensors"]
    return {tensors[role]: named[onnx_name].transpose(0, 2, 3, 1) if nchw else named[onnx_name]
            for role, onnx_name in roles.items()}


def run_keras_reference(work: Work, model: ModelRecipe, x: NDArray[np.float32]) -> Array:
    """A tfjs model's float outputs: its Keras model rebuilt from the source in the converter
    venv (``jobs.tfjs_job``), the model tfjs itself runs."""
    from ..jobs import tfjs_job

    jobdir = work.root / "reference" / model.id
    jobdir.mkdir(parents=True, exist_ok=True)
    np.save(jobdir / "inputs.npy", x)
    job = {"kind": "reference", "source": str(work.source_file(model)),
           "inputs": str(jobdir / "inputs.npy"), "out": str(jobdir / "outputs.npy")}
    (jobdir / "job.json").write_text(json.dumps(job))
    venv.run_module(tfjs_job.__name__, [str(jobdir / "job.json")], jobdir, jobdir / "log.txt")
    return np.load(jobdir / "outputs.npy")


def check_tensor_roles(model: ModelRecipe, ref: Named, got: Named) -> None:
    """Fail loudly when the recipe's tensor names do not follow the roles: each named tensor
    must be closer to its own role's reference than to any other role's of the same shape (a
    swapped scale and offset would otherwise only show as a recall of about 0)."""
    tensors = model.raw["output"].get("tensors")
    if not tensors:
        return
    for role, name in tensors.items():
        if name not in got:
            raise ValidationFailed(f"{model.id}: the variant has no tensor {name!r} ({role}); "
                                   f"its outputs are {sorted(got)}")
        err = {other: float(np.mean(np.abs(got[name] - ref[n])))
               for other, n in tensors.items() if ref[n].shape == got[name].shape}
        if min(err, key=lambda r: err[r]) != role:
            raise ValidationFailed(f"{model.id}: tensor {name!r} named as {role} is closest to "
                                   f"the reference's other roles: {err}; fix output.tensors")


def fidelity(model: ModelRecipe, ref: Named, got: Named, n_synthetic: int = 0
             ) -> dict[str, float]:
    """Task-specific distance between reference and variant outputs (see the model card)."""
    task = model.raw["task"]
    out = model.raw["output"]
    if task == "face_detection":
        return facedet.match(facedet.boxes(model, ref), facedet.boxes(model, got))
    r, g = next(iter(ref.values())), next(iter(got.values()))  # one output: the scores
    if task == "age_estimation":
        ages = np.asarray(out["ages"], np.float32)
        minor = ages < float(out.get("minor_below", 18))
        err = np.abs(r @ ages - g @ ages)
        dminor = np.abs(r[:, minor].sum(1) - g[:, minor].sum(1))
        return {"mae_years": float(err.mean()), "p95_years": float(np.percentile(err, 95)),
                "max_years": float(err.max()), "mean_abs_dp_minor": float(dminor.mean()),
                "max_abs_dp_minor": float(dminor.max()), "n": float(len(err))}
    pos = list(out["labels"]).index(out["positive"])
    dp = np.abs(r[:, pos] - g[:, pos])
    result = {"mean_abs_dp": float(dp.mean()), "max_abs_dp": float(dp.max()), "n": float(len(dp))}
    if n_synthetic:
        syn, held = dp[-n_synthetic:], dp[:-n_synthetic]
        result.update({"mean_abs_dp_synthetic": float(syn.mean()),
                       "max_abs_dp_synthetic": float(syn.max()), "n_synthetic": float(n_synthetic)})
        if len(held):
            result.update({"mean_abs_dp_heldout": float(held.mean()),
                           "max_abs_dp_heldout": float(held.max())})
    return result


def small_face_set(work: Work, model: ModelRecipe) -> Array | None:
    """The recipe's small-face held-out images (``validation.small_faces``), built once per work
    directory; ``None`` for a model without one."""
    spec = model.small_faces
    if spec is None:
        return None
    lo, hi = (float(w) for w in spec["face_px"])
    few, many = (int(k) for k in spec["faces_per_image"])
    n, seed = int(spec["images"]), int(spec["seed"])
    # Every parameter is in the name, so a changed recipe never reuses an old set.
    name = f"{model.id}.{spec['split']}.small_{lo:g}-{hi:g}px_{few}-{many}_{n}_{seed}.npy"
    path = work.datasets / name
    if not path.exists():
        work.datasets.mkdir(parents=True, exist_ok=True)
        size = (int(model.input["size"][0]), int(model.input["size"][1]))
        np.save(path, face_scenes.build_small(str(spec["split"]), size, n, seed, (lo, hi),
                                              (few, many)))
    return np.load(path)


def small_face_fidelity(model: ModelRecipe, ref: Named, got: Named) -> dict[str, float]:
    """Recall of the float model's small-face detections (and their IoU, count) by a variant."""
    found = facedet.match(facedet.boxes(model, ref), facedet.boxes(model, got))
    return {f"small_face_{k}": v for k, v in found.items()}


def check(limits: dict[str, dict[str, float]], fid: dict[str, float]) -> list[str]:
    """Human-readable limit violations (empty when the variant passes)."""
    bad = [f"{k} {fid.get(k, float('nan')):.4g} > {v}" for k, v in limits.get("max", {}).items()
           if not fid.get(k, float("inf")) <= v]
    bad += [f"{k} {fid.get(k, float('nan')):.4g} < {v}" for k, v in limits.get("min", {}).items()
            if not fid.get(k, float("-inf")) >= v]
    return bad


def latency_ms(path: Path, runs: int = 30, threads: int = THREADS) -> float:
    """Median wall time of one invoke on a fixed random input, after warm-up."""
    interp = _interpreter(path, threads)
    inp = interp.get_input_details()[0]
    rng = np.random.default_rng(0)
    if np.issubdtype(inp["dtype"], np.integer):
        info = np.iinfo(inp["dtype"])
        data = rng.integers(info.min, info.max, inp["shape"], endpoint=True).astype(inp["dtype"])
    else:
        data = rng.standard_normal(inp["shape"]).astype(inp["dtype"])
    interp.set_tensor(inp["index"], data)
    for _ in range(3):
        interp.invoke()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        interp.invoke()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def synthetic_file(model: ModelRecipe) -> Path | None:
    """The model's committed synthetic high-score inputs (recipe ``validation.synthetic``;
    open_nsfw's predate that field)."""
    if model.synthetic is not None:
        return model.synthetic
    return SYNTHETIC_FILE if model.id == "open_nsfw" else None


def heldout(work: Work, model: ModelRecipe) -> tuple[Array, int]:
    """Held-out images, plus the model's committed synthetic high-score inputs (last)."""
    images = np.load(datasets.ensure(work, model, "heldout"))
    path = synthetic_file(model)
    if path is not None and path.exists():
        with np.load(path) as z:
            synthetic = z["images"]
        return np.concatenate([images, synthetic]), len(synthetic)
    return images, 0


def choose_preferred(preference: dict[str, Any], results: dict[str, dict[str, Any]]
                     ) -> dict[str, str]:
    """Per platform, the variant the runtime should load; only passing variants qualify."""
    passing = [v for v, r in results.items() if r["passes"]]
    chosen: dict[str, str] = {}
    for machine, rule in preference.items():
        if machine == "comment":
            continue
        if rule == "fastest":
            timed = [v for v in passing if results[v].get("latency_ms") is not None]
            best = min((results[v]["latency_ms"] for v in timed), default=None)
            # Within 5% of the best counts as a tie (timing noise, e.g. a loaded build machine):
            # the earlier variant wins, the more faithful one (fp32, fp16, int8): a smaller file
            # is not worth a face or a minor missed where speed is no reason (x86 is no device).
            pick = next((v for v in timed if best is not None
                         and results[v]["latency_ms"] <= best * TIE), None)
            pick = pick or next(iter(passing), None)
        else:
            pick = next((v for v in rule if v in passing), None)
        if pick is None:
            raise ValidationFailed(f"no variant passes the limits for {machine}: {results}")
        chosen[machine] = pick
    return chosen


def validate_landmarks(work: Work, model: ModelRecipe, preference: dict[str, Any],
                       latency: bool, runs: int) -> dict[str, Any]:
    """Our numpy cascade against dlib's own, on the same faces and boxes (dlib's HOG boxes)."""
    import dlib
    import skimage.data
    from PIL import Image

    from edge_screen.landmarks import ShapePredictor

    from .composite import augment, lfw_faces

    reference = dlib.shape_predictor(str(work.source_file(model)))
    hog = dlib.get_frontal_face_detector()
    results: dict[str, dict[str, Any]] = {}
    for variant in model.variants:
        npz = work.variant_file(model.id, variant, model.suffix)
        ours = ShapePredictor.from_npz(npz.read_bytes())
        errors, calls = [], []
        frames = [*augment(Image.fromarray(skimage.data.astronaut())), *lfw_faces()]
        for rgb in frames:
            for r in hog(rgb, 0):
                want = reference(rgb, r)
                t0 = time.perf_counter()
                got = ours(rgb, (r.left(), r.top(), r.right(), r.bottom()))
                calls.append((time.perf_counter() - t0) * 1000.0)
                pts = np.array([[want.part(i).x, want.part(i).y] for i in range(want.num_parts)])
                errors.append(np.abs(got - pts).max())
        fid = {"mean_px": float(np.mean(errors)), "max_px": float(np.max(errors)),
               "n": float(len(errors))}
        failures = check(model.limits, fid)
        results[variant] = {"fidelity": fid, "passes": not failures, "failures": failures,
                            "latency_ms": statistics.median(calls) if latency else None}
        print(f"validate: {model.id}.{variant}: mean_px={fid['mean_px']:.3g} "
              f"max_px={fid['max_px']:.3g} n={len(errors)}"
              f"{'' if not failures else ' FAIL: ' + '; '.join(failures)}", flush=True)
    return {"variants": results, "preferred": choose_preferred(preference, results)}


def validate_model(work: Work, model: ModelRecipe, preference: dict[str, Any],
                   latency: bool, runs: int) -> dict[str, Any]:
    if model.kind == LANDMARKS_KIND:
        return validate_landmarks(work, model, preference, latency, runs)
    images, n_syn = heldout(work, model)
    x = normalise(images, model.input)
    ref = run_reference_named(work, model, x)
    small = small_face_set(work, model)
    xs = None if small is None else normalise(small, model.input)
    ref_small = None if xs is None else run_reference_named(work, model, xs)
    results: dict[str, dict[str, Any]] = {}
    for variant in model.variants:
        path = work.variant_file(model.id, variant)
        got = run_tflite_named(path, x)
        check_tensor_roles(model, ref, got)
        fid = fidelity(model, ref, got, n_syn)
        if xs is not None and ref_small is not None:
            fid.update(small_face_fidelity(model, ref_small, run_tflite_named(path, xs)))
        failures = check(model.limits, fid)
        results[variant] = {"fidelity": fid, "passes": not failures, "failures": failures,
                            "latency_ms": latency_ms(path, runs) if latency else None,
                            "size": path.stat().st_size}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in fid.items())
        lat = f", {results[variant]['latency_ms']:.1f} ms" if latency else ""
        print(f"validate: {model.id}.{variant}: {shown}{lat}"
              f"{'' if not failures else ' FAIL: ' + '; '.join(failures)}", flush=True)
    return {"variants": results, "preferred": choose_preferred(preference, results)}


def environment() -> dict[str, str]:
    import importlib.metadata as md

    def version(pkg: str) -> str:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return "absent"

    # Latency on a shared build machine moves with other jobs' load: say how loaded it was.
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    return {"machine": platform.machine(), "processor": platform.processor() or "unknown",
            "cores": str(os.cpu_count()), "load average at start (1/5/15 min)": load,
            "python": platform.python_version(), "threads": str(THREADS),
            "ai-edge-litert": version("ai-edge-litert"), "onnxruntime": version("onnxruntime"),
            "numpy": np.__version__}


def validate(work: Work, recipe: Recipe | None = None, latency: bool = True, runs: int = 30
             ) -> dict[str, Any]:
    """Validate all models, write ``validation.json`` and return it."""
    recipe = recipe or load_recipe()
    report = {"environment": environment(),
              "models": {m.id: validate_model(work, m, recipe.preference_for(m.id), latency, runs)
                         for m in recipe.models}}
    work.report.write_text(json.dumps(report, indent=1))
    return report
