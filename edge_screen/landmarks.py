"""dlib's ``shape_predictor`` (ERT landmark cascade) in numpy, without dlib.

The age model was trained on chips aligned by dlib's 5-point predictor and is sensitive to a
single pixel of misalignment, so this reproduces dlib's arithmetic exactly, not just its maths:
float32 where dlib uses float, float64 where it uses double, dlib's ``floor(x + 0.5)`` rounding
of sample points, integer ``(r + g + b) / 3`` intensities, and trees summed in dlib's order.
The model comes from ``firmware_tools.pipeline.landmarks_convert`` (a pickle-free ``.npz``).
"""

from __future__ import annotations

import io
import math
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .errors import ModelError

FORMAT_VERSION = 1
_FLOAT_KEYS = ("initial_shape", "deltas", "split_thresh", "leaf_values")
_INT_KEYS = ("format_version", "anchor_idx", "split_idx1", "split_idx2")


@dataclass(frozen=True)
class _Level:
    """One cascade level, pre-flattened so a call does no reshaping."""

    anchor: NDArray[np.intp]  # (2, F) flat x and y positions of each pixel's landmark
    delta: NDArray[np.float32]  # (2, F) reference-shape offsets from that landmark
    idx1: NDArray[np.intp]  # (T*S,) split node -> feature pixel pair
    idx2: NDArray[np.intp]
    thresh: NDArray[np.float32]  # (T*S,)
    leaves: NDArray[np.float32]  # (T*(S+1), 2P) shape increments


class ShapePredictor:
    """Landmarks from an image and a face box, bit-compatible with ``dlib.shape_predictor``."""

    def __init__(self, arrays: dict[str, NDArray[np.generic]]) -> None:
        _validate(arrays)
        init = np.ascontiguousarray(arrays["initial_shape"], dtype=np.float32)
        n_levels, n_trees, n_splits = arrays["split_idx1"].shape
        self.n_parts = int(init.shape[0])
        self._init = init
        self._depth = (n_splits + 1).bit_length() - 1
        self._n_splits = n_splits
        self._node_base = np.arange(n_trees, dtype=np.intp) * n_splits
        self._leaf_base = np.arange(n_trees, dtype=np.intp) * (n_splits + 1)
        # The reference side of the similarity fit is constant: fold it into two weight rows.
        ref = init.astype(np.float64)
        ref -= ref.mean(axis=0)
        ss = float(np.sum(ref**2))
        rot = np.stack([-ref[:, 1], ref[:, 0]], axis=1)
        # dlib's fit degenerates to the identity for one part or coincident reference parts.
        self._identity = self.n_parts == 1 or ss == 0.0
        self._sim_weights = np.stack([ref.reshape(-1), rot.reshape(-1)]) / (ss or 1.0)
        deltas = arrays["deltas"].astype(np.float32)
        anchors = arrays["anchor_idx"].astype(np.intp)
        leaves = arrays["leaf_values"].astype(np.float32)
        self._levels = [
            _Level(
                anchor=np.stack([2 * anchors[i], 2 * anchors[i] + 1]),
                delta=np.ascontiguousarray(deltas[i].T),
                idx1=arrays["split_idx1"][i].astype(np.intp).ravel(),
                idx2=arrays["split_idx2"][i].astype(np.intp).ravel(),
                thresh=np.ascontiguousarray(arrays["split_thresh"][i], np.float32).ravel(),
                leaves=np.ascontiguousarray(leaves[i].reshape(n_trees * (n_splits + 1), -1)),
            )
            for i in range(n_levels)
        ]

    @classmethod
    def from_npz(cls, data: bytes) -> ShapePredictor:
        """Load a converted model; any malformed content raises ``ModelError``."""
        try:
            loaded = np.load(io.BytesIO(data), allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError("expected an npz archive, got a single array")
            with loaded as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
            raise ModelError(f"landmark model is not a readable npz: {e}") from e
        return cls(arrays)

    def __call__(
        self, gray_or_rgb: NDArray[np.uint8], rect: tuple[float, float, float, float]
    ) -> NDArray[np.float32]:
        """``(n_parts, 2)`` x, y pixel positions, integer-valued like dlib's ``point``.

        ``rect`` is dlib's ``rectangle``: left, top, right, bottom, inclusive pixel coordinates.
        Pass dlib's integers to match it exactly; fractional boxes are accepted as they are.
        """
        img = np.asarray(gray_or_rgb)
        if img.dtype != np.uint8 or img.size == 0 or img.shape[2:] not in ((), (3,)):
            raise ValueError(
                f"need a non-empty uint8 HxW or HxWx3 image, got {img.dtype} {img.shape}"
            )
        left, top, right, bottom = (float(v) for v in rect)
        if not all(map(math.isfinite, (left, top, right, bottom))):
            raise ValueError(f"face rect must be finite, got {rect}")
        h, w = img.shape[:2]
        # Integer rects keep every double here exact, so folding the +0.5 in changes nothing.
        scale = np.array([[right - left], [bottom - top]])
        offset = np.array([[left + 0.5], [top + 0.5]])
        limit = np.array([[w - 1], [h - 1]], dtype=np.float64)
        pixels = img.reshape(h * w, -1) if img.flags.c_contiguous else None
        acc = np.empty((self._leaf_base.size + 1, 2 * self.n_parts), dtype=np.float32)
        shape = self._init.reshape(-1).copy()
        for level in self._levels:
            feats = self._features(img, pixels, level, shape, scale, offset, limit)
            node = np.zeros(self._node_base.shape, dtype=np.intp)
            for _ in range(self._depth):
                k = self._node_base + node
                left_child = (feats[level.idx1[k]] - feats[level.idx2[k]]) > level.thresh[k]
                node = 2 * node + 2 - left_child
            # dlib adds the trees one at a time into the float32 shape; accumulate (sequential,
            # unlike sum's pairwise order) keeps every intermediate rounding identical.
            acc[0] = shape
            np.take(level.leaves, self._leaf_base + node - self._n_splits, axis=0, out=acc[1:])
            shape = np.add.accumulate(acc, axis=0, out=acc)[-1].copy()
        xy = shape.reshape(-1, 2).T.astype(np.float64)
        parts: NDArray[np.float64] = np.floor(xy * scale + offset)
        return parts.T.astype(np.float32)

    def _similarity(self, shape: NDArray[np.float32]) -> NDArray[np.float32]:
        """dlib's find_tform_between_shapes(initial, current) 2x2 part as float32 columns.

        dlib runs Umeyama's SVD method in double. For 2-D points the optimal rotation-and-scale
        [[a, -b], [b, a]] has a closed form, linear in the current shape (the reference is
        centred), that agrees with it far below float32 resolution. Returns ``(2, 2)``.
        """
        if self._identity:
            return np.eye(2, dtype=np.float32)
        a, b = (self._sim_weights @ shape.astype(np.float64)).astype(np.float32)
        return np.array([[a, -b], [b, a]], dtype=np.float32)

    def _features(
        self,
        img: NDArray[np.uint8],
        pixels: NDArray[np.uint8] | None,
        level: _Level,
        shape: NDArray[np.float32],
        scale: NDArray[np.float64],
        offset: NDArray[np.float64],
        limit: NDArray[np.float64],
    ) -> NDArray[np.float32]:
        """extract_feature_pixel_values: sample the image at the shape-relative pixels."""
        m = self._similarity(shape)
        # float32 like dlib's matrix<float,2,2> * vector<float,2> + location(current_shape);
        # elementwise on purpose: a matmul could reorder or fuse the float32 products.
        p = m[:, :1] * level.delta[0] + m[:, 1:] * level.delta[1] + np.take(shape, level.anchor)
        # unnormalizing_tform is double; dlib::point rounds with floor(v + 0.5).
        q = np.floor(p.astype(np.float64) * scale + offset)
        inside = ((q >= 0) & (q <= limit)).all(axis=0)
        xs = np.where(inside, q[0], 0).astype(np.intp)
        ys = np.where(inside, q[1], 0).astype(np.intp)
        if pixels is not None:
            val = np.take(pixels, ys * img.shape[1] + xs, axis=0)
        else:
            val = img[ys, xs].reshape(xs.size, -1)
        if val.shape[1] == 3:
            # get_pixel_intensity(rgb_pixel): unsigned (r + g + b) / 3, truncating.
            val = (val[:, 0].astype(np.uint16) + val[:, 1] + val[:, 2]) // 3
        return np.where(inside, val.reshape(-1), 0).astype(np.float32)


def _validate(arrays: dict[str, NDArray[np.generic]]) -> None:
    """Check the converted model's layout so a bad file fails at load, not mid-screening."""
    missing = [k for k in (*_FLOAT_KEYS, *_INT_KEYS) if k not in arrays]
    if missing:
        raise ModelError(f"landmark model lacks arrays: {', '.join(missing)}")
    for k in _FLOAT_KEYS:
        if arrays[k].dtype != np.float32:
            raise ModelError(f"landmark model: {k} must be float32, got {arrays[k].dtype}")
        if not np.all(np.isfinite(arrays[k])):
            raise ModelError(f"landmark model: {k} has non-finite values")
    for k in _INT_KEYS:
        if arrays[k].dtype.kind not in "iu":
            raise ModelError(f"landmark model: {k} must be integer, got {arrays[k].dtype}")
    version = arrays["format_version"]
    if version.shape != (1,) or int(version[0]) != FORMAT_VERSION:
        raise ModelError(f"landmark model: format_version must be [{FORMAT_VERSION}]")
    init, anchor, deltas = arrays["initial_shape"], arrays["anchor_idx"], arrays["deltas"]
    if init.ndim != 2 or init.shape[1] != 2 or init.shape[0] == 0:
        raise ModelError(f"landmark model: initial_shape must be (n_parts, 2), got {init.shape}")
    n_parts = init.shape[0]
    if anchor.ndim != 2 or anchor.size == 0:
        raise ModelError(f"landmark model: anchor_idx must be (levels, pixels), got {anchor.shape}")
    n_levels, n_feats = anchor.shape
    if deltas.shape != (n_levels, n_feats, 2):
        raise ModelError(
            f"landmark model: deltas must be {(n_levels, n_feats, 2)}, got {deltas.shape}"
        )
    idx1 = arrays["split_idx1"]
    if idx1.ndim != 3 or idx1.shape[0] != n_levels or 0 in idx1.shape:
        raise ModelError(
            f"landmark model: split_idx1 must be (levels, trees, splits), got {idx1.shape}"
        )
    _, n_trees, n_splits = idx1.shape
    if (n_splits + 1) & n_splits:
        raise ModelError(f"landmark model: {n_splits} splits per tree is not a complete tree")
    for k in ("split_idx2", "split_thresh"):
        if arrays[k].shape != idx1.shape:
            raise ModelError(f"landmark model: {k} must be {idx1.shape}, got {arrays[k].shape}")
    leaf_shape = (n_levels, n_trees, n_splits + 1, n_parts, 2)
    if arrays["leaf_values"].shape != leaf_shape:
        raise ModelError(
            f"landmark model: leaf_values must be {leaf_shape}, got {arrays['leaf_values'].shape}"
        )
    for k, bound in (("anchor_idx", n_parts), ("split_idx1", n_feats), ("split_idx2", n_feats)):
        if arrays[k].min() < 0 or arrays[k].max() >= bound:
            raise ModelError(f"landmark model: {k} has indices outside 0..{bound - 1}")
