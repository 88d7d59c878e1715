"""A child-safety ``hold`` through ``screen()`` with real scores: likely minor AND sexual >= 0.2.

The start is a face of no one: a flat cartoon face drawn with PIL (``drawn_face``: skin-tone
ellipse, hair, eyes, brows, nose, mouth, neck and a blue top, slightly blurred) on the coffee
test photo. BlazeFace finds it (score 0.82, box about 190 px) and the age model already reads it
as a child, so no real person's photo carries the flag. It is perturbed against float models
through the screener's real pipeline: inside the face's chip footprint against the age model
(raising P(age < 18), only while it is under ``MINOR``), outside it against open_nsfw (into the
review range). The forward pass is ``Screener.screen()`` itself on the encoded file; the model
inputs it builds (the open_nsfw input, the aligned face chip and the landmarks it was cut from)
are recorded on the way and sent to the float models for gradients. The chip gradient goes back
to the photo through the inverse of the chip's similarity transform; the open_nsfw one through
the resize and crop.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from edge_screen import Screener, ScreenerOptions
from edge_screen.manifest import AgeOutput, InputSpec
from edge_screen.preprocess import similarity
from edge_screen.report import ScreeningReport
from edge_screen.signals import CHIP_SHIFTS

from .decision_make import (
    F32,
    IMAGES,
    U8,
    FloatModel,
    Target,
    axis_maps,
    encode,
    input_spec,
)

TARGET = Target("hold_minor_drawn_face", "coffee", (320, 320), "JPEG", 0.45, 0.60)
MINOR = 0.9  # float P(minor) to reach: the policy's 0.5 with room for the quantised age model


SKIN, HAIR, TOP = (224, 180, 150), (70, 45, 30), (60, 90, 150)


def drawn_face(background: Image.Image, size: int) -> Image.Image:
    """A flat cartoon face (no one's) drawn over ``background``, blurred by 1 px."""
    s = float(size)
    im = background.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    d = ImageDraw.Draw(im)
    shade = tuple(int(c * 0.8) for c in SKIN)
    cx, cy, fw, fh = s / 2, s * 0.52, s * 0.30, s * 0.40  # face centre, half width and height
    d.ellipse([cx - fw * 1.15, cy - fh * 1.15, cx + fw * 1.15, cy + fh * 0.6], fill=HAIR)
    d.rectangle([cx - fw * 0.45, cy + fh * 0.6, cx + fw * 0.45, s],
                fill=tuple(int(c * 0.9) for c in SKIN))  # neck
    d.ellipse([cx - fw * 2, cy + fh * 1.05, cx + fw * 2, cy + fh * 2.5], fill=TOP)
    for side in (-1, 1):  # ears
        x = cx + side * fw
        d.ellipse([x - fw * 0.15, cy - fh * 0.15, x + fw * 0.15, cy + fh * 0.2], fill=SKIN)
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=SKIN)
    d.chord([cx - fw * 1.02, cy - fh * 1.08, cx + fw * 1.02, cy - fh * 0.2], 180, 360, fill=HAIR)
    ey, ew, eh = cy - fh * 0.12, s * 0.055, s * 0.035  # eye line, half eye width and height
    for side in (-1, 1):
        ex = cx + side * fw * 0.42
        d.ellipse([ex - ew, ey - eh, ex + ew, ey + eh], fill=(245, 245, 240))
        for r, colour in ((eh * 0.95, (80, 55, 35)), (eh * 0.475, (10, 10, 10))):  # iris, pupil
            d.ellipse([ex - r, ey - r, ex + r, ey + r], fill=colour)
        d.line([ex - ew * 1.1, ey - eh * 2.4, ex, ey - eh * 2.9, ex + ew * 1.1, ey - eh * 2.5],
               fill=HAIR, width=int(s * 0.012))  # brow
    ny = cy + fh * 0.22  # nose
    d.line([cx, ey + eh, cx - fw * 0.06, ny], fill=shade, width=2)
    d.ellipse([cx - fw * 0.14, ny - fh * 0.03, cx + fw * 0.14, ny + fh * 0.05], fill=shade)
    my = cy + fh * 0.48  # mouth
    d.chord([cx - fw * 0.32, my - fh * 0.08, cx + fw * 0.32, my + fh * 0.08], 0, 180,
            fill=(170, 70, 70))
    d.line([cx - fw * 0.32, my, cx + fw * 0.32, my], fill=(120, 40, 40), width=2)
    return im.filter(ImageFilter.GaussianBlur(1))


class Capture:
    """Records what one ``screen()`` fed the models, by wrapping its own interpreters."""

    def __init__(self, screener: Screener) -> None:
        ext = screener._extractor  # the Screener's own SignalExtractor
        self.nsfw: U8 | None = None
        self.chips: list[U8] = []  # per aged face, one chip per CHIP_SHIFTS entry
        self.points: list[F32] = []  # per aged face, in the pixels of its source patch
        self.sources: list[Any] = []  # per detection, the Patch its chip is cut from, or None
        (clf,) = ext.classifiers
        assert ext.age is not None and ext.landmarker is not None
        clf.run_pixels = self._wrap(clf.run_pixels, "nsfw")  # type: ignore[method-assign]
        ext.age.run_pixels = self._wrap(ext.age.run_pixels, "chip")  # type: ignore[method-assign]
        landmarker = ext.landmarker

        def landmarks(rgb: U8, x: F32, y: F32) -> F32:
            points = landmarker(rgb, x, y)
            self.points.append(points.copy())
            return points

        ext.landmarker = landmarks  # type: ignore[assignment]
        age_sources = ext._age_sources

        def sources(*args: Any) -> Any:
            self.sources = age_sources(*args)
            return self.sources

        ext._age_sources = sources  # type: ignore[method-assign,assignment]

    def first_face(self) -> tuple[list[U8], F32]:
        """The first aged face's chips and its landmarks in the file's (original) pixels."""
        patch = next(p for p in self.sources if p is not None)
        points = self.points[0] * patch.scale + np.array([patch.x0, patch.y0], np.float32)
        return self.chips[: len(CHIP_SHIFTS)], points.astype(np.float32)

    def _wrap(self, run: Callable[[U8], Any], what: str) -> Any:
        def wrapped(pixels: U8) -> Any:
            if what == "nsfw":
                self.nsfw = pixels.copy()
            else:
                self.chips.append(pixels.copy())
            return run(pixels)

        return wrapped

    def reset(self) -> None:
        self.nsfw, self.chips, self.points, self.sources = None, [], [], []


def chip_to_image(grad: F32, points: F32, spec: InputSpec, shape: tuple[int, int]) -> F32:
    """A chip gradient pulled back onto the photo through the inverse similarity transform."""
    assert spec.alignment is not None
    h, w = spec.size
    src = np.asarray([points[i] for i in spec.alignment.keypoints], dtype=np.float64)
    dst = np.asarray(spec.alignment.template, dtype=np.float64) * np.array([w, h])
    m = similarity(dst, src)  # chip pixel -> photo pixel
    inv = np.linalg.inv(m[:, :2])
    shift = -inv @ m[:, 2]
    coeffs = (inv[0, 0], inv[0, 1], shift[0], inv[1, 0], inv[1, 1], shift[1])
    out = np.zeros((*shape, 3), np.float32)
    for c in range(3):
        chan = Image.fromarray(np.ascontiguousarray(grad[..., c]), mode="F")
        back = chan.transform((shape[1], shape[0]), Image.Transform.AFFINE, coeffs,
                              resample=Image.Resampling.BILINEAR)
        out[..., c] = np.asarray(back)
    return out


def make_child(nsfw_model: Path, age_model: Path, out_dir: Path, steps: int) -> None:
    nsfw_spec, age_spec = input_spec(), input_spec("age_estimator")
    opts = ScreenerOptions(threads=1, workers=1)
    with Screener(opts) as screener:
        age_out = screener._extractor.age.spec.output  # type: ignore[union-attr]
        assert isinstance(age_out, AgeOutput)
        minor_idx = [i for i, a in enumerate(age_out.ages) if a < age_out.minor_below]
        capture = Capture(screener)
        with FloatModel(nsfw_model, nsfw_spec, [1]) as nsfw, \
                FloatModel(age_model, age_spec, minor_idx) as age:
            _optimise(screener, capture, nsfw, age, nsfw_spec, age_spec, out_dir, steps)


def _optimise(screener: Screener, capture: Capture, nsfw: FloatModel, age: FloatModel,
              nsfw_spec: InputSpec, age_spec: InputSpec, out_dir: Path, steps: int) -> None:
    target = TARGET
    w, h = target.size
    photo = drawn_face(Image.open(IMAGES / f"{target.start}.jpg"), w)
    base = np.asarray(photo, np.float32)
    rows, cols = axis_maps(w, h, nsfw_spec)

    def real(delta: F32) -> tuple[bytes, ScreeningReport, float, F32, float, F32, F32]:
        data = encode(np.clip(np.round(base + delta), 0, 255).astype(np.uint8), target)
        capture.reset()
        report = screener.screen(data)
        assert capture.nsfw is not None and capture.chips, "no face found"
        p_s, g = nsfw(capture.nsfw)
        # P(minor) of the mean distribution over the shifted chips is the mean of theirs; the
        # half-pixel shifts are ignored on the way back (a sign step does not see them).
        chips, points = capture.first_face()
        answers = [age(chip) for chip in chips]
        p_m = float(np.mean([p for p, _ in answers]))
        g_m = sum((chip_to_image(g, points, age_spec, (h, w)) for _, g in answers),
                  np.zeros((h, w, 3), np.float32))
        footprint = chip_to_image(np.ones_like(answers[0][1]), points, age_spec, (h, w))
        g_s = np.einsum("ih,ijc,jw->hwc", rows, g, cols, optimize=True).astype(np.float32)
        return data, report, p_s, g_s, p_m, g_m, (footprint[..., :1] > 0).astype(np.float32)

    delta = np.zeros((h, w, 3), np.float32)
    state = real(delta)
    step_s = 2.0
    face = state[6]
    for i in range(steps):
        data, report, p_s, g_s, p_m, g_m, _ = state
        if p_m < MINOR:  # the face first, inside the chip's footprint only
            candidate = (delta + np.sign(g_m) * face).astype(np.float32)
        elif p_s < target.lo:  # then open_nsfw, outside it
            candidate = (delta + step_s * np.sign(g_s) * (1 - face)).astype(np.float32)
        else:
            break
        c_state = real(candidate)
        if c_state[2] > target.hi:
            step_s /= 2
            continue
        delta, state = candidate, c_state
        print(f"  step {i}: float sexual {state[2]:.3f} minor {state[4]:.3f}", flush=True)
    data, report, p_s, _, p_m, _, _ = state
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{target.name}.jpg"
    path.write_bytes(data)
    print(f"{path.name}: float sexual {p_s:.4f} minor {p_m:.4f} ({len(data)} bytes); "
          f"screen() {report.verdict} {report.reasons}", flush=True)
