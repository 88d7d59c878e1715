"""Each stage of the pipeline apart: decode (draft and full), then per model preprocess, invoke
on a preallocated input (the limit) and a whole model run."""

from __future__ import annotations

import io
import platform
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .. import centerface, faces, preprocess
from ..backends import Backend, TFLiteInterpreter, get_backend
from ..decode import ImageLimits, decode_image
from ..infer import Model
from ..manifest import FaceDetectorOutput, ModelSpec
from ..probe import probe
from ..screener import Screener
from .options import Plan
from .stats import stat, time_ms


class InvokeOnly:
    """One model's interpreter with its input set once: only ``invoke`` is timed, as LiteRT's
    ``benchmark_model`` does. This is the limit the pipeline is measured against."""

    def __init__(
        self, content: bytes, backend: Backend, threads: int, shape: list[int] | None = None
    ) -> None:
        self.interp: TFLiteInterpreter = backend.load(content, threads)
        if shape is not None:  # a "fit" model at the size the photos run it at
            self.interp.resize_tensor_input(self.interp.get_input_details()[0]["index"], shape)
        self.interp.allocate_tensors()
        d = self.interp.get_input_details()[0]
        dtype = np.dtype(d["dtype"])
        rng = np.random.default_rng(0)
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            x: NDArray[Any] = rng.integers(info.min, info.max, d["shape"], endpoint=True)
        else:
            x = rng.uniform(-1, 1, d["shape"])
        self.interp.set_tensor(d["index"], x.astype(dtype))
        self._outputs = self.interp.get_output_details()

    def invoke(self) -> list[NDArray[Any]]:
        self.interp.invoke()
        return [self.interp.get_tensor(o["index"]) for o in self._outputs]


Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


def model_input(
    spec: ModelSpec, rgb: NDArray[np.uint8], face: Box | None = None
) -> NDArray[np.float32]:
    """The manifest-driven preprocessing of ``signals``, one model at a time. Face alignment
    gets the template's own points placed in ``face``: the same warp, whichever model (the
    detector or a landmark model) gives the real points."""
    i = spec.input
    assert i is not None, f"{spec.id} is not a TFLite model"
    if i.resize == "letterbox":
        pixels = preprocess.letterbox(rgb, i.size)[0]
    elif i.resize == "fit":  # as the face stage does: scaled into the budget, padded
        fit = centerface.fit_size(rgb.shape[1], rgb.shape[0], i.budget(platform.machine()))
        pixels = np.zeros((*fit.tensor, 3), np.uint8)
        sw, sh = fit.scaled
        pixels[:sh, :sw] = np.asarray(
            Image.fromarray(rgb).resize(fit.scaled, Image.Resampling.BILINEAR))
    elif i.resize in ("stretch", "blurpad"):
        pixels = preprocess.classifier_pixels(rgb, i)
    else:
        a = i.alignment
        assert a is not None and face is not None
        points = np.zeros((max(a.keypoints) + 1, 2), np.float32)
        size = np.array([face[2] - face[0], face[3] - face[1]], np.float32)
        points[list(a.keypoints)] = np.array(face[:2], np.float32) + np.array(a.template) * size
        pixels = preprocess.align_face(rgb, points, a, i.size)
    return preprocess.normalise(pixels, i)


def face_box(detector: Model, rgb: NDArray[np.uint8]) -> Box | None:
    """The most confident face in pixels of ``rgb``, or None."""
    spec, i = detector.spec, detector.spec.input
    assert isinstance(spec.output, FaceDetectorOutput) and i is not None
    pixels, box = preprocess.letterbox(rgb, i.size)
    found = faces.decode(detector.run(preprocess.normalise(pixels, i)), i.size, spec.output)
    if not found:
        return None
    x, y = box.to_image(found[0].box[0::2], found[0].box[1::2])
    return (float(x[0]), float(y[0]), float(x[1]), float(y[1]))


def working_decode(data: bytes, min_side: int) -> NDArray[np.uint8]:
    """What the pipeline decodes: sniffed, limit-checked, draft mode, EXIF upright."""
    return decode_image(data, probe(data[:64]), ImageLimits(), min_side).rgb


def full_decode(data: bytes) -> NDArray[np.uint8]:
    """Every pixel, as a pipeline without draft mode (and both peers) decodes."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def measure_stages(s: Screener, inputs: Sequence[tuple[str, bytes]], plan: Plan) -> dict[str, Any]:
    """Each stage apart: decode (draft and full), then per model preprocess, invoke, run."""
    side = s.options.working_min_side
    each = plan.budget_s / len(inputs)
    draft = [
        t for _, d in inputs for t in time_ms(partial(working_decode, d, side), plan.reps, each)
    ]
    full = time_ms(lambda: full_decode(inputs[0][1]), plan.reps, plan.budget_s)
    out: dict[str, Any] = {
        "decode": {"jpeg_draft_ms": stat(draft, "ms"), "jpeg_full_ms": stat(full, "ms")},
        "models": {},
    }
    backend = get_backend(s.options.backend)
    models, invokers, single = {}, {}, {}
    first = working_decode(inputs[0][1], side)
    for spec in s.bundle.manifest.models:
        if spec.input is None:  # not a TFLite model (a landmark cascade): in screen() only
            continue
        variant = s.bundle.select(spec, s.options.variants.get(spec.id))
        content = s.bundle.model_bytes(variant)
        models[spec.id] = Model(spec, variant, content, backend, s.options.threads)
        shape = None
        if spec.input.resize == "fit":
            fit = centerface.fit_size(first.shape[1], first.shape[0],
                                      spec.input.budget(platform.machine()))
            shape = [1, *fit.tensor, 3]
            models[spec.id].fit(*fit.tensor)
        invokers[spec.id] = InvokeOnly(content, backend, s.options.threads, shape)
        single[spec.id] = InvokeOnly(content, backend, 1, shape)  # its CPU time: one core
    detector = next(
        (m for m in models.values() if isinstance(m.spec.output, FaceDetectorOutput)), None
    )
    rgb, face = working_decode(inputs[0][1], side), None
    for _, d in inputs if detector is not None else ():
        found = face_box(detector, img := working_decode(d, side))  # type: ignore[arg-type]
        if found is not None:
            rgb, face = img, found
            break
    for mid, m in models.items():
        if m.spec.input is not None and m.spec.input.resize == "align_face" and face is None:
            continue  # no face in the inputs: nothing to align, noted by the caller
        x = model_input(m.spec, rgb, face)
        assert x.shape[0] == 1 and np.isfinite(m.run(x)[0]).all()
        assert all(np.isfinite(o.astype(np.float32)).all() for o in invokers[mid].invoke())
        out["models"][mid] = {
            "variant": m.variant.name,
            "task": m.spec.task,
            "preprocess_ms": stat(
                time_ms(partial(model_input, m.spec, rgb, face), plan.reps, plan.budget_s), "ms"),
            "invoke_ms": stat(time_ms(invokers[mid].invoke, plan.reps, plan.budget_s), "ms"),
            "invoke_1_thread_ms": stat(
                time_ms(single[mid].invoke, plan.reps, plan.budget_s / 2), "ms"),
            "run_ms": stat(time_ms(partial(m.run, x), plan.reps, plan.budget_s), "ms"),
        }
    return out
