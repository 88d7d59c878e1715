"""Images made in code from what the repo and scikit-image ship, for the pipeline and the studies.

The calibration and held-out sets (``datasets``, ``face_scenes``), the landmark check in
``validate``, the face studies (``studies.face_recall``, ``studies.age_floor``,
``studies.calibrate_alignment``) and the runtime's face tests all build their pictures from
these pieces: scikit-image samples as float RGB, colour jitter and random crops, the faces of the
committed photos and of ``lfw_subset()`` pasted with feathered edges at known places and sizes,
and a greedy IoU match of found boxes against where the faces were pasted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from .recipe import REPO_ROOT

# scikit-image samples per split of the calibration and held-out sets (``datasets``,
# ``face_scenes``), disjoint; "cat" is the same picture as "chelsea", so only one is used.
SCENES = {
    "calib": ["astronaut", "coffee", "rocket", "immunohistochemistry", "colorwheel", "camera",
              "moon", "text", "brick", "gravel", "clock", "microaneurysms"],
    "heldout": ["chelsea", "hubble_deep_field", "retina", "logo", "coins", "page", "horse",
                "grass", "cell", "checkerboard"],
}
# The committed photos whose faces are pasted into scenes.
IMAGES = REPO_ROOT / "tests" / "data" / "images"
# Face box (x0, y0, x1, y1) in the source photo: BlazeFace's own box on the original, so the
# ground truth follows the detector's box convention.
PHOTO_FACES = {"astronaut": (172, 66, 278, 172), "grace_hopper": (168, 132, 364, 328)}
# BlazeFace's box on an lfw_subset crop, as fractions of the crop (median over the faces it
# finds when the crop is pasted at 200 px).
LFW_BOX = (-0.02, 0.06, 0.875, 0.965)


def as_rgb(img: NDArray[np.generic]) -> NDArray[np.float32]:
    """A scikit-image sample (bool, float in [0, 1], grey or RGBA) as float32 RGB in [0, 255]."""
    a = np.asarray(img)
    if a.dtype == bool:
        a = a.astype(np.float32) * 255.0
    elif a.dtype != np.uint8:
        a = np.clip(a * 255.0 if a.max() <= 1.0 else a, 0, 255)
    a = a.astype(np.float32)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    return np.ascontiguousarray(a[..., :3])


def jitter(img: NDArray[np.float32], rng: np.random.Generator) -> NDArray[np.float32]:
    """Colour jitter: per-channel gain (tints grey pictures skin-like too), brightness, contrast."""
    gain = rng.uniform(0.75, 1.25, size=3).astype(np.float32)
    if np.allclose(img[..., 0], img[..., 1]):
        gain *= np.array([1.0, 0.82, 0.68], np.float32) ** rng.uniform(0.0, 1.5)
    out = img * gain + rng.uniform(-30, 30)
    mean = out.mean()
    out = (out - mean) * rng.uniform(0.7, 1.3) + mean
    return np.clip(out, 0, 255)


def crop_resize(img: NDArray[np.float32], size: tuple[int, int], rng: np.random.Generator,
                min_scale: float) -> NDArray[np.float32]:
    """A random crop of at least ``min_scale`` of each side, maybe mirrored, resized to ``size``."""
    from skimage.transform import resize

    h, w = img.shape[:2]
    s = rng.uniform(min_scale, 1.0)
    ch = max(8, int(h * s * rng.uniform(0.85, 1.0)))
    cw = max(8, int(w * s * rng.uniform(0.85, 1.0)))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    crop = img[y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.asarray(resize(crop, size, order=1, anti_aliasing=True, preserve_range=True),
                      np.float32)


def augment(img: Image.Image) -> Iterator[NDArray[np.uint8]]:
    """The image upright and turned, scaled and mirrored: the detectors' boxes move with it."""
    for angle in (-12, -6, 0, 6, 12):
        for scale in (0.6, 1.0, 1.5):
            for flip in (False, True):
                im = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else img
                im = im.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
                size = (int(im.width * scale), int(im.height * scale))
                yield np.asarray(im.resize(size, Image.Resampling.LANCZOS).convert("RGB"))


def lfw_faces() -> Iterator[NDArray[np.uint8]]:
    """The 100 lfw_subset faces, upscaled to 150 px on a grey 300 px canvas."""
    import skimage.data

    for face in skimage.data.lfw_subset()[:100]:  # the first 100 are faces
        im = Image.fromarray((face * 255).astype(np.uint8)).resize(
            (150, 150), Image.Resampling.BICUBIC
        )
        canvas = Image.new("RGB", (300, 300), (128, 128, 128))
        canvas.paste(im.convert("RGB"), (75, 75))
        yield np.asarray(canvas)


@dataclass(frozen=True)
class Patch:
    """A face with some context, and where the face box lies in it (fractions of the patch)."""

    rgb: Image.Image
    box: tuple[float, float, float, float]
    source: str


def photo_patch(name: str) -> Patch:
    """A committed photo's face with 30% context each side, and where the face lies in it."""
    x0, y0, x1, y1 = PHOTO_FACES[name]
    im = Image.open(IMAGES / f"{name}.jpg").convert("RGB")
    m = 0.3 * (x1 - x0)
    c0 = (max(0, round(x0 - m)), max(0, round(y0 - m)))
    c1 = (min(im.width, round(x1 + m)), min(im.height, round(y1 + m)))
    w, h = c1[0] - c0[0], c1[1] - c0[1]
    box = ((x0 - c0[0]) / w, (y0 - c0[1]) / h, (x1 - c0[0]) / w, (y1 - c0[1]) / h)
    return Patch(im.crop((*c0, *c1)), box, name)


def face_patches() -> list[Patch]:
    """The two photo faces (with 30% context each side) and the 100 lfw_subset faces."""
    from skimage.data import lfw_subset

    out = [photo_patch(name) for name in PHOTO_FACES]
    for grey in lfw_subset()[:100]:
        im = Image.fromarray((grey * 255).astype(np.uint8)).convert("RGB")
        out.append(Patch(im, LFW_BOX, "lfw"))
    return out


def paste(canvas: Image.Image, patch: Patch, width: float, x: float, y: float,
           rng: np.random.Generator) -> tuple[float, float, float, float]:
    """Paste ``patch`` so its face is ``width`` px wide with its box's top-left at (x, y)."""
    bx0, by0, bx1, by1 = patch.box
    pw = width / (bx1 - bx0)
    ph = pw * patch.rgb.height / patch.rgb.width
    size = (max(1, round(pw)), max(1, round(ph)))
    im = patch.rgb.resize(size, Image.Resampling.BICUBIC)
    if rng.random() < 0.5:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        bx0, bx1 = 1 - bx1, 1 - bx0
    gain = float(rng.uniform(0.8, 1.2))
    im = Image.eval(im, lambda v: min(255, round(v * gain)))
    mask = Image.new("L", size, 0)
    # Photo patches have context to fade out; lfw crops end at the face, so only soften them.
    inset = max(1, round(0.06 * min(size))) if patch.source != "lfw" else 1
    mask.paste(255, (inset, inset, size[0] - inset, size[1] - inset))
    mask = mask.filter(ImageFilter.GaussianBlur(inset / 2))
    ox, oy = round(x - bx0 * pw), round(y - by0 * ph)
    canvas.paste(im, (ox, oy), mask)
    return (ox + bx0 * size[0], oy + by0 * size[1], ox + bx1 * size[0], oy + by1 * size[1])


def background(name: str, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A committed photo resized to ``size`` (width, height), with a little noise."""
    im = Image.open(IMAGES / f"{name}.jpg").convert("RGB").resize(size, Image.Resampling.BICUBIC)
    noisy = np.asarray(im, np.float32) + rng.normal(0, 6, (size[1], size[0], 1))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(truth: list[tuple[float, ...]], found: list[tuple[float, ...]], min_iou: float = 0.3
          ) -> tuple[list[bool], int]:
    """Which true faces were found (greedy by IoU), and how many detections matched none."""
    pairs = sorted(((_iou(t, f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)),
                   reverse=True)
    hit, used = [False] * len(truth), [False] * len(found)
    for iou, i, j in pairs:
        if iou >= min_iou and not hit[i] and not used[j]:
            hit[i] = used[j] = True
    return hit, used.count(False)
