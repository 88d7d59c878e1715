"""Turn working-size RGB pixels into a model's input, driven by the manifest's ``InputSpec``.

Geometry (letterbox, stretch + centre crop, face alignment) yields uint8 pixels plus the
transform back to image coordinates; ``normalise`` then applies colour order, mean/std and
layout. Quantisation to the tensor's own scale happens in ``infer``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .manifest import Alignment, InputSpec

Pixels = NDArray[np.uint8]


@dataclass(frozen=True)
class Letterbox:
    """Maps model-input coordinates (0..1 of the padded square) back to image pixels."""

    scale: float  # image pixels per model-input pixel
    pad_x: float  # padding in model-input pixels
    pad_y: float
    size: tuple[int, int]  # model input (height, width)

    def to_image(
        self, x: NDArray[np.float32], y: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        h, w = self.size
        return (x * w - self.pad_x) * self.scale, (y * h - self.pad_y) * self.scale


def letterbox(rgb: Pixels, size: tuple[int, int]) -> tuple[Pixels, Letterbox]:
    """Fit the whole image into ``size`` keeping its aspect ratio, padding with black."""
    h, w = size
    ih, iw = rgb.shape[:2]
    scale = max(iw / w, ih / h)
    nw, nh = max(1, round(iw / scale)), max(1, round(ih / scale))
    resized = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BILINEAR))
    out = np.zeros((h, w, 3), dtype=np.uint8)
    px, py = (w - nw) // 2, (h - nh) // 2
    out[py : py + nh, px : px + nw] = resized
    return out, Letterbox(scale, float(px), float(py), size)


def stretch(rgb: Pixels, spec: InputSpec) -> Pixels:
    """Resize ignoring aspect ratio to ``resize_to`` (or ``size``), then centre-crop to ``size``."""
    h, w = spec.size
    rh, rw = spec.resize_to or spec.size
    im = Image.fromarray(rgb).resize((rw, rh), Image.Resampling.BILINEAR)
    top, left = (rh - h) // 2, (rw - w) // 2
    im = im.crop((left, top, left + w, top + h))
    if spec.jpeg_roundtrip_quality is not None:
        # The reference open_nsfw pipeline scores a JPEG re-encode of the crop.
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=spec.jpeg_roundtrip_quality)
        buf.seek(0)
        im = Image.open(buf).convert("RGB")
    return np.asarray(im, dtype=np.uint8)


def similarity(src: NDArray[np.float64], dst: NDArray[np.float64]) -> NDArray[np.float64]:
    """Least-squares similarity (rotation, uniform scale, shift) mapping ``src`` onto ``dst``.

    Returns the 2x3 matrix ``[[a, -b, tx], [b, a, ty]]``; Umeyama without reflection.
    """
    n = src.shape[0]
    A = np.zeros((2 * n, 4))
    A[0::2] = np.column_stack([src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)])
    A[1::2] = np.column_stack([src[:, 1], src[:, 0], np.zeros(n), np.ones(n)])
    a, b, tx, ty = np.linalg.lstsq(A, dst.reshape(-1), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]])


def align_face(
    rgb: Pixels, keypoints: NDArray[np.float32], alignment: Alignment, size: tuple[int, int]
) -> Pixels:
    """Crop the face so its keypoints land on the alignment template (dlib's face-chip way)."""
    h, w = size
    src = np.asarray([keypoints[i] for i in alignment.keypoints], dtype=np.float64)
    dst = np.asarray(alignment.template, dtype=np.float64) * np.array([w, h])
    m = similarity(dst, src)  # chip -> image
    img = Image.fromarray(rgb)
    step = float(np.hypot(m[0, 0], m[1, 0]))  # image pixels per chip pixel
    if step > 2.0:
        # Shrink the neighbourhood first so the bilinear sampling below does not alias.
        x0, y0 = src.min(axis=0) - step * max(h, w)
        x1, y1 = src.max(axis=0) + step * max(h, w)
        box = (
            max(0, int(x0)),
            max(0, int(y0)),
            min(img.width, int(x1) + 1),
            min(img.height, int(y1) + 1),
        )
        if box[2] > box[0] and box[3] > box[1]:
            factor = int(step // 2)
            img = img.crop(box).reduce(factor)
            offset = np.array([box[0], box[1]], dtype=np.float64)
            m = np.vstack([m, [0, 0, 1]])
            shift = np.array(
                [
                    [1 / factor, 0, -offset[0] / factor],
                    [0, 1 / factor, -offset[1] / factor],
                    [0, 0, 1],
                ]
            )
            m = (shift @ m)[:2]
    coeffs = (m[0, 0], m[0, 1], m[0, 2], m[1, 0], m[1, 1], m[1, 2])
    chip = img.transform((w, h), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR)
    return np.asarray(chip, dtype=np.uint8)


def normalise(pixels: Pixels, spec: InputSpec) -> NDArray[np.float32]:
    """uint8 RGB ``(h, w, 3)`` -> float32 batch of one in the model's colour order and layout."""
    x: NDArray[np.float32] = pixels.astype(np.float32)
    if spec.color == "BGR":
        x = x[..., ::-1]
    mean, std = np.asarray(spec.mean, np.float32), np.asarray(spec.std, np.float32)
    x = np.divide(np.subtract(x, mean), std, dtype=np.float32)
    if spec.layout == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None], dtype=np.float32)
