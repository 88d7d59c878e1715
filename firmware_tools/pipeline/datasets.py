"""Calibration and held-out images, made from scikit-image's bundled samples (no downloads).

Both sets are uint8 RGB ``[N, H, W, 3]`` at the model's input size and are built from disjoint
source images (and disjoint LFW faces), so the held-out fidelity is measured on data the
quantiser never saw. The face detectors' sets are face-rich composites and crops of real faces
(``face_scenes``), so their fidelity counts hundreds of detections. A model's ``datasets`` entry
in the recipe overrides the defaults (200 images per split; BlazeFace's faces): a 1024x768
detector takes fewer images (each is 20 times the pixels of a 192 px one) holding more and
smaller faces. The builds are seeded: the same scikit-image version gives the same arrays.
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


def scene_spec(model: ModelRecipe) -> face_scenes.Scenes:
    """A face detector's kind of scenes: the recipe's ``datasets`` entry, else BlazeFace's."""
    spec = model.datasets or {}
    default = face_scenes.Scenes()
    lo, hi = spec.get("face_px", default.widths)
    few, many = spec.get("faces_per_image", default.faces)
    return face_scenes.Scenes((float(lo), float(hi)), (int(few), int(many)),
                              float(spec.get("crop_share", default.crop_share)))


def count(model: ModelRecipe, split: str) -> int:
    """Images in ``split``: the recipe's ``datasets.images``, else ``SIZES``."""
    return int((model.datasets or {}).get("images", SIZES)[split])


def build(model: ModelRecipe, split: str) -> Images:
    """The ``split`` ("calib" or "heldout") images for one model, chosen by the model's task."""
    size = (int(model.input["size"][0]), int(model.input["size"][1]))
    n, seed = count(model, split), SEEDS[split]
    task = model.raw["task"]
    if task == "age_estimation":
        return _build(_faces(split), size, n, seed, lambda im, r: crop_resize(im, size, r, 0.85))
    if task == "face_detection":  # face-rich composites and crops (face_scenes)
        return face_scenes.build(split, size, n, seed, scene_spec(model))
    return _build(_scenes(split), size, n, seed, lambda im, r: crop_resize(im, size, r, 0.3))


def path(work: Work, model: ModelRecipe, split: str) -> Path:
    """``datasets/<model>.<split>.npy``; with a recipe ``datasets`` entry its parameters are in
    the name too, so a changed recipe never reuses an old set."""
    if model.datasets is None:
        return work.datasets / f"{model.id}.{split}.npy"
    tag = f"{count(model, split)}_{SEEDS[split]}"
    if model.raw["task"] == "face_detection":
        s = scene_spec(model)
        tag = (f"{s.widths[0]:g}-{s.widths[1]:g}px_{s.faces[0]}-{s.faces[1]}"
               f"_crop{s.crop_share:g}_{tag}")
    return work.datasets / f"{model.id}.{split}.{tag}.npy"


def ensure(work: Work, model: ModelRecipe, split: str) -> Path:
    """Write (once) and return the model's ``split`` set in the work directory (``path``)."""
    path_ = path(work, model, split)
    if not path_.exists():
        work.datasets.mkdir(parents=True, exist_ok=True)
        np.save(path_, build(model, split))
    return path_
