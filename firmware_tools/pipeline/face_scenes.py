"""Face-rich calibration and held-out images for the face detectors, at each model's input size.

A detector's fidelity is judged on the detections of its float original, so its images must hold
faces it finds: scene composites in the style of ``studies.face_recall`` (``composite``: real faces
pasted with feathered edges at random sizes and places into scikit-image backgrounds) plus
letterboxed crops around the face of a real photo, with colour jitter. ``Scenes`` says how many
faces of which widths (px at the model input) and how many crops: the defaults are BlazeFace's
(192 px input, 1-4 faces of 22-110 px); a high-resolution detector's recipe entry names its own
(``datasets`` in the recipe: many more, smaller faces, fewer images). The splits share nothing:

- faces: calibration has ``astronaut`` and lfw_subset faces 0-49, held-out ``grace_hopper`` and
  lfw faces 50-99;
- backgrounds: ``composite.SCENES`` (disjoint scikit-image samples per split);
- positions: face centres fall on the even squares of a 24 px checkerboard in calibration and on
  the odd squares in held-out.

``build_small`` makes the small-face set of the same split: composites only, every face between
two widths at the model input (the recipe's ``validation.small_faces``), so the recall limit on
small faces is measured where quantisation costs recall first.

Seeded, so the same scikit-image and Pillow versions give the same arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .composite import (
    IMAGES,
    LFW_BOX,
    PHOTO_FACES,
    SCENES,
    Patch,
    as_rgb,
    crop_resize,
    jitter,
    paste,
    photo_patch,
)

PHOTO = {"calib": "astronaut", "heldout": "grace_hopper"}
LFW = {"calib": range(0, 50), "heldout": range(50, 100)}
PARITY = {"calib": 0, "heldout": 1}
CELL = 24  # px at the model input: the position checkerboard's square
# Face widths (px at the model input), log-uniform: BlazeFace full-range finds faces from ~20 px.
MIN_FACE, MAX_FACE = 22.0, 110.0
CROP_SHARE = 0.25  # share of images that are letterboxed crops of the photo, not composites


@dataclass(frozen=True)
class Scenes:
    """What a set's composites hold: faces per image (lo, hi), face widths (lo, hi) in px at the
    model input (log-uniform), and the share of images that are letterboxed photo crops."""

    widths: tuple[float, float] = (MIN_FACE, MAX_FACE)
    faces: tuple[int, int] = (1, 4)
    crop_share: float = CROP_SHARE


def _patches(split: str) -> tuple[Patch, list[Patch]]:
    """The split's photo face (30% context each side) and its lfw faces."""
    from skimage.data import lfw_subset

    photo = photo_patch(PHOTO[split])
    lfw = lfw_subset()
    faces = [Patch(Image.fromarray((lfw[i] * 255).astype(np.uint8)).convert("RGB"), LFW_BOX,
                   "lfw") for i in LFW[split]]
    return photo, faces


def _on_parity(cx: float, cy: float, parity: int) -> bool:
    return (int(cx // CELL) + int(cy // CELL)) % 2 == parity


def _composite(bg: NDArray[np.float32], photo: Patch, lfw: list[Patch], parity: int,
               size: tuple[int, int], rng: np.random.Generator,
               widths: tuple[float, float] = (MIN_FACE, MAX_FACE), faces: tuple[int, int] = (1, 4)
               ) -> Image.Image:
    """``faces`` (lo, hi) faces of ``widths`` (lo, hi) px pasted into a crop of ``bg`` (no
    overlaps, centres on the split's squares)."""
    canvas = Image.fromarray(np.round(crop_resize(bg, (size[0], size[1]), rng, 0.3)
                                      ).astype(np.uint8))
    placed: list[tuple[float, float, float]] = []
    for _ in range(int(rng.integers(faces[0], faces[1] + 1))):
        w = math.exp(rng.uniform(math.log(widths[0]), math.log(widths[1])))
        for _ in range(100):
            x = rng.uniform(0.15 * w, size[1] - 1.15 * w)
            y = rng.uniform(0.2 * w, size[0] - 1.25 * w)
            if not _on_parity(x + w / 2, y + w / 2, parity):
                continue
            if all(x + 1.3 * w < px or px + 1.3 * pw < x or y + 1.4 * w < py
                   or py + 1.4 * pw < y for px, py, pw in placed):
                placed.append((x, y, w))
                # Photo faces are sharp and in colour, lfw faces tight grey crops: mix both.
                p = photo if rng.random() < 0.6 else lfw[int(rng.integers(len(lfw)))]
                paste(canvas, p, w, x, y, rng)
                break
    return canvas


def _crop(photo_name: str, parity: int, size: tuple[int, int], rng: np.random.Generator
          ) -> Image.Image:
    """A random crop around the photo's face, letterboxed (not stretched) to ``size``."""
    im = Image.open(IMAGES / f"{photo_name}.jpg").convert("RGB")
    x0, y0, x1, y1 = PHOTO_FACES[photo_name]
    fw = x1 - x0
    for _ in range(100):
        cw = fw * rng.uniform(1.6, 5.0)
        ch = cw * rng.uniform(0.6, 1.6)
        if ch < (y1 - y0) + 0.2 * fw:  # too flat to hold the face with a margin: draw again
            continue
        cx0 = rng.uniform(x1 - cw + 0.1 * fw, x0 - 0.1 * fw)
        cy0 = rng.uniform(y1 - ch + 0.1 * fw, y0 - 0.1 * fw)
        scale = min(size[0] / ch, size[1] / cw)
        ox, oy = (size[1] - cw * scale) / 2, (size[0] - ch * scale) / 2
        fcx = ox + ((x0 + x1) / 2 - cx0) * scale
        fcy = oy + ((y0 + y1) / 2 - cy0) * scale
        if _on_parity(fcx, fcy, parity):
            break
    crop = im.crop((round(cx0), round(cy0), round(cx0 + cw), round(cy0 + ch)))
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    nw, nh = max(1, round(cw * scale)), max(1, round(ch * scale))
    out = Image.new("RGB", (size[1], size[0]))
    out.paste(crop.resize((nw, nh), Image.Resampling.BILINEAR), (round(ox), round(oy)))
    return out


def build(split: str, size: tuple[int, int], n: int, seed: int, scenes: Scenes | None = None
          ) -> NDArray[np.uint8]:
    """``n`` uint8 RGB images ``[n, H, W, 3]`` for ``split`` ("calib" or "heldout"), BlazeFace's
    kind of scenes unless ``scenes`` says otherwise."""
    import skimage.data

    scenes = scenes or Scenes()
    rng = np.random.default_rng(seed)
    photo, lfw = _patches(split)
    backgrounds = [as_rgb(getattr(skimage.data, name)()) for name in SCENES[split]]
    out = np.empty((n, *size, 3), np.uint8)
    for i in range(n):
        if rng.random() < scenes.crop_share:
            img = _crop(PHOTO[split], PARITY[split], size, rng)
        else:
            bg = backgrounds[i % len(backgrounds)]
            img = _composite(bg, photo, lfw, PARITY[split], size, rng, scenes.widths,
                             scenes.faces)
        out[i] = np.round(jitter(np.asarray(img, np.float32), rng)).astype(np.uint8)
    return out


def build_small(split: str, size: tuple[int, int], n: int, seed: int,
                widths: tuple[float, float], faces: tuple[int, int] = (3, 6)
                ) -> NDArray[np.uint8]:
    """``n`` composites of ``split`` whose faces are all ``widths`` (lo, hi) px wide."""
    import skimage.data

    rng = np.random.default_rng(seed)
    photo, lfw = _patches(split)
    backgrounds = [as_rgb(getattr(skimage.data, name)()) for name in SCENES[split]]
    out = np.empty((n, *size, 3), np.uint8)
    for i in range(n):
        img = _composite(backgrounds[i % len(backgrounds)], photo, lfw, PARITY[split], size, rng,
                         widths, faces)
        out[i] = np.round(jitter(np.asarray(img, np.float32), rng)).astype(np.uint8)
    return out
