"""Calibration and held-out images, made from scikit-image's bundled samples (no downloads).

Both sets are uint8 RGB ``[N, H, W, 3]`` at the model's input size and are built from disjoint
source images (and disjoint LFW faces), so the held-out fidelity is measured on data the
quantiser never saw. The face detector's sets are face-rich composites and crops of real faces
(``face_scenes``), so its fidelity counts hundreds of detections. The builds are seeded: the same
scikit-image version gives the same arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from . import face_scenes
from .composite import SCENES, as_rgb, crop_resize, jitter
from .recipe import ModelRecipe, Work

Images = NDArray[np.uint8]

# lfw_subset(): the first 100 images are faces, the last 100 are not.
LFW_FACES = {"calib": range(0, 50), "heldout": range(50, 100)}
LFW_OTHER = {"calib": range(100, 150), "heldout": range(150, 200)}
SIZES = {"calib": 200, "heldout": 200}
SEEDS = {"calib": 1, "heldout": 2}


def _scenes(split: str) -> list[NDArray[np.float32]]:
    import skimage.data

    imgs = [as_rgb(getattr(skimage.data, name)()) for name in SCENES[split]]
    lfw = skimage.data.lfw_subset()
    imgs += [as_rgb(lfw[i]) for i in LFW_OTHER[split]]
    return imgs


def _faces(split: str) -> list[NDArray[np.float32]]:
    import skimage.data

    lfw = skimage.data.lfw_subset()
    faces = [as_rgb(lfw[i]) for i in LFW_FACES[split]]
    if split == "calib":  # the only colour face photo goes to calibration, never to held-out
        faces.append(as_rgb(skimage.data.astronaut())[20:220, 150:330])
    return faces


def _build(sources: list[NDArray[np.float32]], size: tuple[int, int], n: int, seed: int,
           make: Callable[[NDArray[np.float32], np.random.Generator], NDArray[np.float32]],
           ) -> Images:
    rng = np.random.default_rng(seed)
    out = np.empty((n, *size, 3), np.uint8)
    for i in range(n):
        img = sources[i % len(sources)]
        out[i] = np.round(jitter(make(img, rng), rng)).astype(np.uint8)
    return out


def build(model: ModelRecipe, split: str) -> Images:
    """The ``split`` ("calib" or "heldout") images for one model, chosen by the model's task."""
    size = (int(model.input["size"][0]), int(model.input["size"][1]))
    n, seed = SIZES[split], SEEDS[split]
    task = model.raw["task"]
    if task == "age_estimation":
        return _build(_faces(split), size, n, seed, lambda im, r: crop_resize(im, size, r, 0.85))
    if task == "face_detection":  # face-rich composites and crops (face_scenes)
        return face_scenes.build(split, size, n, seed)
    return _build(_scenes(split), size, n, seed, lambda im, r: crop_resize(im, size, r, 0.3))


def ensure(work: Work, model: ModelRecipe, split: str) -> Path:
    """Write (once) and return ``datasets/<model>.<split>.npy`` in the work directory."""
    path = work.datasets / f"{model.id}.{split}.npy"
    if not path.exists():
        work.datasets.mkdir(parents=True, exist_ok=True)
        np.save(path, build(model, split))
    return path
