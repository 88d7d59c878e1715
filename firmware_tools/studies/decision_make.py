"""Optimise photo files against open_nsfw's float model through the screener's real preprocessing.

Forward: the candidate pixels are encoded as the file they will be stored as (PNG, or JPEG at
the target's quality), decoded by ``edge_screen.decode.decode_image`` and turned into the model
input by ``edge_screen.preprocess.stretch`` (stretch-resize, centre crop, JPEG q75 round trip)
— the code ``Screener.screen()`` runs. Backward: the float model's gradient at that exact input
(``decision_model.serve``), carried to the file's pixels through the decode reduction, the
bilinear resize and the crop as exact linear maps; both JPEG steps pass the gradient straight
through. Signed-gradient steps, then a bisection between the last two candidates to land the
real score inside the target window.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from edge_screen.bundle import Bundle
from edge_screen.decode import ImageLimits, decode_image, reduce_factor
from edge_screen.manifest import InputSpec
from edge_screen.options import ScreenerOptions
from edge_screen.preprocess import stretch
from edge_screen.probe import probe

from ..jobs import decision_model
from ..jobs.decision_model import answer_bytes
from ..pipeline import venv
from ..pipeline.recipe import REPO_ROOT

F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]
IMAGES = REPO_ROOT / "tests" / "data" / "images"


@dataclass(frozen=True)
class Target:
    """One file to make: where it starts, its size and format, the float score window."""

    name: str  # file stem; the verdict it is meant to reach comes first
    start: str  # a photo in tests/data/images (stem) or "noise"
    size: tuple[int, int]  # width, height of the stored file
    fmt: str  # "PNG" or "JPEG"
    lo: float  # the real (through-preprocessing) float score must end in [lo, hi]
    hi: float
    quality: int = 95  # JPEG only
    grid: int = 1  # the perturbation is this many times coarser than the file (smaller files)


TARGETS = (
    Target("review_coffee", "coffee", (192, 144), "PNG", 0.45, 0.60),
    Target("review_noise", "noise", (200, 200), "JPEG", 0.45, 0.60),
    Target("hold_rocket", "rocket", (144, 192), "PNG", 0.975, 1.0),
    Target("hold_chelsea", "chelsea", (200, 200), "JPEG", 0.975, 1.0),
    # Big enough for the decoder's DCT scaling (draft) to the working size.
    Target("review_coffee_big", "coffee", (1024, 1024), "JPEG", 0.45, 0.60, quality=80, grid=16),
)


def input_spec(model_id: str = "open_nsfw") -> InputSpec:
    """A model's input spec as the screener uses it, from the shipped bundle's manifest."""
    (spec,) = [m for m in Bundle.open().manifest.models if m.id == model_id]
    assert spec.input is not None
    return spec.input


def encode(pixels: U8, target: Target) -> bytes:
    buf = io.BytesIO()
    if target.fmt == "JPEG":
        Image.fromarray(pixels).save(buf, format="JPEG", quality=target.quality, subsampling=0)
    else:
        Image.fromarray(pixels).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def model_input(data: bytes, spec: InputSpec) -> U8:
    """What ``screen()`` feeds open_nsfw for this file (before mean subtraction)."""
    side = ScreenerOptions().working_min_side
    decoded = decode_image(data, probe(data[:64]), ImageLimits(), side)
    return stretch(decoded.rgb, spec)


def resize_matrix(n_in: int, n_out: int) -> F32:
    """Pillow's bilinear resize of one axis as a matrix (n_out, n_in), read off an identity."""
    eye = Image.fromarray(np.eye(n_in, dtype=np.float32), mode="F")
    out: F32 = np.asarray(eye.resize((n_out, n_in), Image.Resampling.BILINEAR)).T
    return out


def reduce_matrix(n_in: int, factor: int) -> F32:
    """``Image.reduce(factor)`` of one axis: box means, a partial box at the end."""
    n_out = -(-n_in // factor)
    m = np.zeros((n_out, n_in), np.float32)
    for i in range(n_out):
        lo, hi = i * factor, min((i + 1) * factor, n_in)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


def axis_maps(width: int, height: int, spec: InputSpec) -> tuple[F32, F32]:
    """File pixels -> model input as (rows, cols) linear maps: reduce, resize, crop."""
    factor = reduce_factor(width, height, ScreenerOptions().working_min_side)
    rh, rw = spec.resize_to or spec.size
    h, w = spec.size
    top, left = (rh - h) // 2, (rw - w) // 2
    rows = resize_matrix(-(-height // factor), rh) @ reduce_matrix(height, factor)
    cols = resize_matrix(-(-width // factor), rw) @ reduce_matrix(width, factor)
    return rows[top : top + h], cols[left : left + w]


class FloatModel:
    """A float SavedModel in the converter venv: its score and d log score / d input, per input.

    ``positive``: the output indices whose share is the score (open_nsfw: [1], P(nsfw))."""

    def __init__(self, saved_model: Path, spec: InputSpec, positive: list[int]) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2",
                   CUDA_VISIBLE_DEVICES="-1")
        self.size = spec.size
        job = saved_model.parent / "serve.json"
        job.write_text(json.dumps({"size": list(spec.size), "color": spec.color,
                                   "mean": list(spec.mean), "std": list(spec.std),
                                   "positive": positive}))
        cmd = [str(venv.venv_python()), "-m", decision_model.__name__, "serve",
               str(saved_model), str(job)]
        self.log = (saved_model.parent / "serve.log").open("wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, env=env)

    def __call__(self, rgb: U8) -> tuple[float, F32]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        assert rgb.shape == (*self.size, 3), rgb.shape
        self.proc.stdin.write(np.ascontiguousarray(rgb, np.uint8).tobytes())
        self.proc.stdin.flush()
        n = answer_bytes(list(self.size))
        data = self.proc.stdout.read(n)
        if len(data) != n:
            raise RuntimeError(f"the float model server stopped; see {self.log.name}")
        (p,) = struct.unpack("<f", data[:4])
        grad = np.frombuffer(data[4:], "<f4").reshape(*self.size, 3)
        return float(p), grad.astype(np.float32)

    def __enter__(self) -> FloatModel:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.log.close()


def start_pixels(target: Target, seed: int) -> F32:
    w, h = target.size
    if target.start == "noise":
        rng = np.random.default_rng(seed)
        small = rng.uniform(64, 192, size=(h // 8, w // 8, 3)).astype(np.uint8)
        im = Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
    else:
        im = Image.open(IMAGES / f"{target.start}.jpg").convert("RGB")
        im = im.resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(im, dtype=np.float32)


def optimise(model: FloatModel, target: Target, spec: InputSpec, steps: int, seed: int = 0
             ) -> tuple[bytes, float, list[float]]:
    """Signed-gradient ascent on log P(nsfw) of the real model input until the real score is
    in ``[lo, hi]`` (a step that overshoots is halved). Returns the file bytes, the real float
    score and the score after each step."""
    base = start_pixels(target, seed)
    w, h = target.size
    rows, cols = axis_maps(w, h, spec)
    # The perturbation lives on a coarser grid, bilinearly upsampled to the file's size.
    up_rows, up_cols = resize_matrix(h // target.grid, h), resize_matrix(w // target.grid, w)
    rows, cols = rows @ up_rows, cols @ up_cols
    delta = np.zeros((h // target.grid, w // target.grid, 3), np.float32)

    def real(d: F32) -> tuple[bytes, float, F32]:
        pixels = base + np.einsum("hi,ijc,wj->hwc", up_rows, d, up_cols, optimize=True)
        data = encode(np.clip(np.round(pixels), 0, 255).astype(np.uint8), target)
        p, grad = model(model_input(data, spec))
        return data, p, grad

    data, p, grad = real(delta)
    history = [p]
    step = 2.0
    for _ in range(steps):
        if target.lo <= p <= target.hi:
            break
        g = np.einsum("ih,ijc,jw->hwc", rows, grad, cols, optimize=True)
        candidate = delta + step * np.sign(g)
        c_data, c_p, c_grad = real(candidate)
        history.append(c_p)
        if c_p > target.hi:  # overshot the window: a shorter step from the same point
            step /= 2
            continue
        delta, data, p, grad = candidate, c_data, c_p, c_grad
    return data, p, history


def make(saved_model: Path, out_dir: Path, only: set[str], steps: int) -> None:
    """Write each target's file to ``out_dir`` and print the real float score it reached."""
    spec = input_spec()
    out_dir.mkdir(parents=True, exist_ok=True)
    with FloatModel(saved_model, spec, [1]) as model:
        for target in TARGETS:
            if only and target.name not in only:
                continue
            data, p, history = optimise(model, target, spec, steps)
            ok = target.lo <= p <= target.hi
            ext = "png" if target.fmt == "PNG" else "jpg"
            path = out_dir / f"{target.name}.{ext}"
            path.write_bytes(data)
            trace = " ".join(f"{v:.2f}" for v in history[:: max(1, len(history) // 12)])
            print(f"{path.name}: float {p:.4f} after {len(history) - 1} steps "
                  f"({len(data)} bytes){'' if ok else ' MISSED'}; {trace}", flush=True)

