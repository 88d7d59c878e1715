"""Convert dlib's serialized ``shape_predictor`` (.dat) to a dense, pickle-free ``.npz``.

The age model was trained on chips aligned by dlib's 5-point landmarks, so the device must
reproduce them bit for bit, but cannot ship dlib. This reads dlib's stream format in pure
Python (``dlib/serialize.h``, ``shape_predictor.h``) and writes the cascade as fixed-shape
arrays that ``edge_screen.landmarks.ShapePredictor`` evaluates with numpy.

    python -m firmware_tools.landmarks_convert shape_predictor_5_face_landmarks.dat OUT.npz

The output is byte-for-byte deterministic (stored zip members, fixed timestamps), so its sha256
can be pinned in a bundle manifest.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

FORMAT_VERSION = 1
# float_details (dlib/float_details.h) reserves these exponents for inf, -inf and nan.
_IS_INF, _IS_NINF, _IS_NAN = 32000, 32001, 32002
# Fixed zip metadata: ZipFile.open() would stamp the current time and host OS.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class _Reader:
    """A cursor over dlib's serialization stream; raises ValueError on anything unexpected."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.mantissas: list[int] = []
        self.exponents: list[int] = []

    def _int(self, signed: bool) -> int:
        # serialize.h pack_int: a control byte (bit 7 = negative, low 4 bits = byte count)
        # followed by the magnitude, little endian. Zero is written as 0x01 0x00.
        if self.pos >= len(self.data):
            raise ValueError(f"unexpected end of data at byte {self.pos}")
        ctrl = self.data[self.pos]
        size = ctrl & (0x0F if signed else 0x8F)  # unpack_int masks exactly like this
        if size == 0 or size > 8:
            raise ValueError(f"bad integer control byte 0x{ctrl:02x} at byte {self.pos}")
        end = self.pos + 1 + size
        if end > len(self.data):
            raise ValueError(f"unexpected end of data at byte {self.pos}")
        value = int.from_bytes(self.data[self.pos + 1 : end], "little")
        self.pos = end
        if signed:
            if value >= 1 << 63:
                raise ValueError(f"integer out of int64 range at byte {self.pos}")
            return -value if ctrl & 0x80 else value
        return value

    def signed(self) -> int:
        return self._int(True)

    def unsigned(self) -> int:
        return self._int(False)

    def count(self, limit: int = 1 << 24) -> int:
        """A std::vector / matrix size; bounded so a corrupt file cannot ask for terabytes."""
        n = self.unsigned()
        if n > limit:
            raise ValueError(f"implausible element count {n} at byte {self.pos}")
        return n

    def float_slot(self) -> int:
        """Read one float (as float_details: int64 mantissa, then int16 exponent).

        Returns its index in the pending float table; values are decoded in bulk later.
        """
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            # deserialize_floating_point's test for the pre-2013 ASCII float format.
            raise ValueError("legacy ASCII-float dlib file; re-save it with a current dlib")
        mantissa = self.signed()
        exponent = self.signed()
        if not -(1 << 15) <= exponent < 1 << 15:
            raise ValueError(f"float exponent {exponent} out of int16 range")
        self.mantissas.append(mantissa)
        self.exponents.append(exponent)
        return len(self.mantissas) - 1

    def float_vector(self) -> list[int]:
        """matrix<float,0,1>: rows then columns (negative in dlib's newer format), row-major."""
        nr, nc = abs(self.signed()), abs(self.signed())
        if nc != 1 or nr > 1 << 20:
            raise ValueError(f"expected a column vector, got {nr}x{nc} at byte {self.pos}")
        return [self.float_slot() for _ in range(nr)]

    def decode_floats(self) -> NDArray[np.float32]:
        """float_details -> float exactly as dlib does: cast the mantissa to float, then ldexpf."""
        mant = np.asarray(self.mantissas, dtype=np.int64)
        exp = np.asarray(self.exponents, dtype=np.int64)
        normal = exp < _IS_INF
        with np.errstate(over="ignore", under="ignore"):
            out = np.ldexp(mant.astype(np.float32), np.where(normal, exp, 0).astype(np.int32))
        out[exp == _IS_INF] = np.inf
        out[exp == _IS_NINF] = -np.inf
        out[exp >= _IS_NAN] = np.nan
        return out.astype(np.float32)


def parse(dat: bytes) -> dict[str, NDArray[np.generic]]:
    """Parse a dlib shape_predictor stream into the dense arrays the runtime expects."""
    r = _Reader(dat)
    version = r.signed()
    if version != 1:
        raise ValueError(f"unsupported shape_predictor version {version} (dlib writes 1)")
    shape_slots = r.float_vector()
    if not shape_slots or len(shape_slots) % 2:
        raise ValueError("initial_shape must hold x,y pairs")
    n_parts = len(shape_slots) // 2

    # forests: vector<vector<regression_tree>>; a tree is (vector<split_feature>, vector<leaf>).
    levels: list[tuple[list[list[tuple[int, int, int]]], list[list[list[int]]]]] = []
    for _ in range(r.count()):
        splits_l: list[list[tuple[int, int, int]]] = []
        leaves_l: list[list[list[int]]] = []
        for _ in range(r.count()):
            splits = [(r.unsigned(), r.unsigned(), r.float_slot()) for _ in range(r.count())]
            leaves = [r.float_vector() for _ in range(r.count())]
            splits_l.append(splits)
            leaves_l.append(leaves)
        levels.append((splits_l, leaves_l))
    anchors = [[r.unsigned() for _ in range(r.count())] for _ in range(r.count())]
    # deltas: vector<vector<dlib::vector<float,2>>>; vector<T,2> serializes as bare x, y.
    deltas = [
        [(r.float_slot(), r.float_slot()) for _ in range(r.count())] for _ in range(r.count())
    ]
    if r.pos != len(dat):
        raise ValueError(f"{len(dat) - r.pos} trailing bytes after the shape_predictor")
    floats = r.decode_floats()

    n_levels = len(levels)
    if n_levels == 0 or len(anchors) != n_levels or len(deltas) != n_levels:
        raise ValueError("forests, anchor_idx and deltas disagree on the number of cascade levels")
    n_trees = len(levels[0][0])
    n_splits = len(levels[0][0][0]) if n_trees else 0
    n_feats = len(anchors[0])
    depth = (n_splits + 1).bit_length() - 1
    if n_trees == 0 or (1 << depth) != n_splits + 1:
        raise ValueError(f"trees must be complete binary trees, got {n_splits} splits")
    for i, (splits_l, leaves_l) in enumerate(levels):
        if len(splits_l) != n_trees or len(anchors[i]) != n_feats or len(deltas[i]) != n_feats:
            raise ValueError(f"cascade level {i} differs in size from level 0; not supported")
        for splits, leaves in zip(splits_l, leaves_l, strict=True):
            if len(splits) != n_splits or len(leaves) != n_splits + 1:
                raise ValueError(f"cascade level {i} has a tree of a different shape")
            if any(len(leaf) != 2 * n_parts for leaf in leaves):
                raise ValueError(f"cascade level {i} has a leaf of the wrong length")

    idx = np.array([[[s[:2] for s in t] for t in sl] for sl, _ in levels], dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n_feats):
        raise ValueError("a split references a feature pixel that does not exist")
    anchor = np.array(anchors, dtype=np.int64)
    if anchor.min() < 0 or anchor.max() >= n_parts:
        raise ValueError("a feature pixel is anchored to a landmark that does not exist")
    index_type = np.uint16 if n_feats <= 1 << 16 else np.uint32
    thresh_slots = np.array([[[s[2] for s in t] for t in sl] for sl, _ in levels], dtype=np.int64)
    leaf_slots = np.array([lv for _, lv in levels], dtype=np.int64)
    return {
        "format_version": np.array([FORMAT_VERSION], dtype=np.int32),
        "initial_shape": floats[np.array(shape_slots)].reshape(n_parts, 2),
        "anchor_idx": anchor.astype(np.uint8 if n_parts <= 256 else np.uint16),
        "deltas": floats[np.array(deltas, dtype=np.int64)],
        "split_idx1": idx[..., 0].astype(index_type),
        "split_idx2": idx[..., 1].astype(index_type),
        "split_thresh": floats[thresh_slots],
        "leaf_values": floats[leaf_slots].reshape(n_levels, n_trees, n_splits + 1, n_parts, 2),
    }


def to_npz(arrays: dict[str, NDArray[np.generic]]) -> bytes:
    """An uncompressed npz with fixed member order and metadata: same arrays, same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return out.getvalue()


def convert(dat_bytes: bytes) -> bytes:
    """dlib ``shape_predictor`` .dat bytes -> deterministic npz bytes."""
    return to_npz(parse(dat_bytes))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m firmware_tools.landmarks_convert IN.dat OUT.npz", file=sys.stderr)
        return 2
    src, dst = Path(args[0]), Path(args[1])
    try:
        data = convert(src.read_bytes())
    except (OSError, ValueError) as e:
        print(f"{src}: {e}", file=sys.stderr)
        return 1
    dst.write_bytes(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
