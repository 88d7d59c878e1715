"""Meta's PDQ perceptual hash in numpy, bit-exact with the reference C++.

PDQ turns a picture into 256 bits that survive re-encoding, resizing and mild edits: luma, a tent
filter (two box-filter passes each way, Jarosz), 64x64 samples, the 16x16 lowest DCT coefficients
and one bit per coefficient above their median. The quality (0-100) counts strong gradients. Meta
suggests Hamming distance <= 31 as a match and dropping hashes of quality <= 49.

The reference is pdq/cpp in facebook/ThreatExchange (hashing/pdqhashing.cpp,
downscaling/downscaling.cpp, hashing/torben.cpp); PyPI's ``pdqhash`` wraps that same C++. Every
step here keeps the reference's float32/float64 split and its order of float32 additions, so hex
and quality equal the reference's on any array (tests/test_pdq.py). What the reference does
before it, and we do not: its command-line tools squash files larger than 512 px to 512x512.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

F32 = np.float32
# The reference keeps these as C++ floats: the double literals rounded once to float32.
_LUMA_COEFFS = (F32(0.299), F32(0.587), F32(0.114))
_MIN_DIM = 5  # smaller pictures get the all-zero hash with quality 0, as in the reference
_BAND = 64  # rows per band when transposing: keeps a band in cache on large pictures
_HEX = re.compile(r"[0-9a-f]{64}")

# The reference's order and names for the eight rotations and flips (pdqDihedralHash256es...).
DIHEDRAL_NAMES = (
    "original", "rotate90", "rotate180", "rotate270", "flipx", "flipy", "flip_plus1", "flip_minus1",
)


def _dct_matrix() -> NDArray[np.float32]:
    """The reference's 16x64 DCT-II rows 1..16: float scale times a double cosine, stored as float.
    math.cos is the platform's libm, as std::cos is for the reference."""
    scale = float(F32(math.sqrt(2.0 / 64.0)))
    step = math.pi / 2.0 / 64.0
    rows = [[scale * math.cos(step * (i + 1) * (2 * j + 1)) for j in range(64)] for i in range(16)]
    return np.array(rows, dtype=np.float64).astype(F32)


_DCT = _dct_matrix()


@dataclass(frozen=True)
class PdqHash:
    """A PDQ hash as the reference prints it (64 hex digits, word 15 first) and its quality.

    ``to_bytes``, ``words`` and ``bits`` give the 256 bits for a hash-list index; ``distance`` is
    the Hamming distance such lists threshold.
    """

    hex: str
    quality: int

    def __post_init__(self) -> None:
        if not (isinstance(self.hex, str) and _HEX.fullmatch(self.hex)):
            raise ValueError(f"a PDQ hash is 64 lowercase hex digits, not {self.hex!r}")
        if not 0 <= self.quality <= 100:
            raise ValueError(f"PDQ quality is 0-100, not {self.quality}")

    @classmethod
    def from_hex(cls, text: str, quality: int) -> PdqHash:
        """A hash from a list: either case, surrounding blanks ignored. Lists seldom carry the
        quality, hence no default: the caller says what it knows."""
        return cls(text.strip().lower(), quality)

    def distance(self, other: PdqHash) -> int:
        """Hamming distance: how many of the 256 bits differ."""
        return (int(self.hex, 16) ^ int(other.hex, 16)).bit_count()

    def to_bytes(self) -> bytes:
        """32 bytes in printed order: word 15 big-endian first."""
        return bytes.fromhex(self.hex)

    def words(self) -> NDArray[np.uint16]:
        """The reference's Hash256.w: 16 words, word i holds DCT row i with column j at bit j."""
        return np.frombuffer(self.to_bytes(), dtype=">u2")[::-1].astype(np.uint16)

    def bits(self) -> NDArray[np.uint8]:
        """256 zeros and ones in printed order, the order of ``pdqhash.compute``'s vector."""
        return np.unpackbits(np.frombuffer(self.to_bytes(), dtype=np.uint8))


def pdq_hash(image: NDArray[np.uint8]) -> PdqHash:
    """PDQ of an HxWx3 uint8 RGB array, or of an HxW uint8 grey one (luma = the value, as the
    reference does for one-channel files). Convert RGBA, palette or 16-bit pictures first."""
    return _hash16(_dct16(_luma(image), shortcut_64=True))


def pdq_hash_dihedral(image: NDArray[np.uint8]) -> dict[str, PdqHash]:
    """The hashes of the eight rotations and flips, from one DCT, keyed by ``DIHEDRAL_NAMES``.

    As in the reference, this blurs a 64x64 picture and ``pdq_hash`` does not, so their
    "original" can differ at that one size.
    """
    return _dihedral(_dct16(_luma(image), shortcut_64=False))


def pdq_hash_with_dihedral(image: NDArray[np.uint8]) -> dict[str, PdqHash]:
    """The eight rotations and flips from ``pdq_hash``'s own DCT (one DCT, ~0.2 ms more than
    ``pdq_hash``): "original" is exactly ``pdq_hash(image)``, at 64x64 too, where
    ``pdq_hash_dihedral`` blurs and may differ. For matching a still against hash lists."""
    return _dihedral(_dct16(_luma(image), shortcut_64=True))


def pdq_hash_from_luma(luma: NDArray[Any]) -> PdqHash:
    """PDQ of an HxW luma buffer, rounded to float32 as the reference takes floats.

    ``pdqhash`` (and python-threatexchange, which calls it) compute luma in double, not in float
    as the reference's own RGB path and ``pdq_hash`` do; their exact hash comes from
    ``(rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.float32)``.
    The two differ in near-median bits only: many on flat or very thin (a few pixels) pictures,
    seldom any on photos.
    """
    return _hash16(_dct16(_check_luma(luma), shortcut_64=True))


def pdq_hash_dihedral_from_luma(luma: NDArray[Any]) -> dict[str, PdqHash]:
    """``pdq_hash_dihedral`` of an HxW luma buffer."""
    return _dihedral(_dct16(_check_luma(luma), shortcut_64=False))


def _luma(image: NDArray[np.uint8]) -> NDArray[np.float32]:
    """fillFloatLumaFromRGB (three float products summed left to right in float), or the grey
    value; stored transposed, as the first box pass wants it."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"pdq_hash takes a numpy array, not {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"pdq_hash takes uint8 pixels, not {image.dtype}")
    if image.ndim == 2:
        return _transpose(image, _empty_t(image.shape))
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"pdq_hash takes HxWx3 RGB or HxW grey, not shape {image.shape}")
    r, g, b = _LUMA_COEFFS
    out = _empty_t(image.shape)
    for i in range(0, image.shape[0], _BAND):  # in bands of rows: each stays in cache
        band = image[i : i + _BAND]
        y = r * band[:, :, 0].astype(F32)
        y += g * band[:, :, 1].astype(F32)
        y += b * band[:, :, 2].astype(F32)
        out[:, i : i + _BAND] = y.T
    return out


def _check_luma(luma: NDArray[Any]) -> NDArray[np.float32]:
    if not isinstance(luma, np.ndarray):
        raise TypeError(f"luma must be a numpy array, not {type(luma).__name__}")
    if luma.dtype.kind not in "fiu":
        raise TypeError(f"luma must be real numbers, not {luma.dtype}")
    if luma.ndim != 2:
        raise ValueError(f"luma must be HxW, not shape {luma.shape}")
    out = _transpose(luma, _empty_t(luma.shape))
    if not np.isfinite(out).all():
        raise ValueError("luma has NaN or infinite values (or values beyond float32)")
    return out


def _empty_t(shape: tuple[int, ...]) -> NDArray[np.float32]:
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"cannot hash an empty image (shape {shape})")
    return np.empty((shape[1], shape[0]), F32)


def _transpose(src: NDArray[Any], dst: NDArray[np.float32]) -> NDArray[np.float32]:
    """dst = src.T as float32, in bands of rows: a plain transpose thrashes the cache."""
    for i in range(0, src.shape[0], _BAND):
        dst[:, i : i + _BAND] = src[i : i + _BAND].T
    return dst


_Dct = tuple[NDArray[np.float32], int] | None  # the 16x16 DCT and the quality; None: too small


def _dct16(luma_t: NDArray[np.float32], *, shortcut_64: bool) -> _Dct:
    """pdqFloat256FromFloatLuma on the transposed luma (overwritten): 64x64, quality, 16x16 DCT."""
    cols, rows = luma_t.shape
    if rows < _MIN_DIM or cols < _MIN_DIM:
        return None
    if shortcut_64 and rows == 64 and cols == 64:
        grid = np.ascontiguousarray(luma_t.T)  # the reference takes 64x64 as already downsampled
    else:
        grid = _downsample(luma_t)
    t = np.cumsum(_DCT[:, :, None] * grid[None, :, :], axis=1)[:, -1, :]  # D A, sums in k order
    dct = np.cumsum(t[:, None, :] * _DCT[None, :, :], axis=2)[:, :, -1]  # (D A) D^T
    if not np.isfinite(dct).all():
        raise ValueError("luma too large: the DCT overflowed float32")
    return dct, _quality(grid)


def _downsample(p: NDArray[np.float32]) -> NDArray[np.float32]:
    """jaroszFilterFloat (rows, columns, rows, columns) and decimateFloat: the 64x64 grid.

    p is the transposed luma and becomes scratch; two buffers, as the reference uses.
    """
    cols, rows = p.shape
    rws, cws = (cols + 127) // 128, (rows + 127) // 128  # computeJaroszFilterWindowSize(n, 64)
    q = np.empty_like(p)
    p_rc, q_rc = p.reshape(rows, cols), q.reshape(rows, cols)  # the same memory, other layout
    _box_steps(p, rws, q)
    _box_steps(_transpose(q, p_rc), cws, q_rc)
    _box_steps(_transpose(q_rc, p), rws, q)
    sampled = np.ascontiguousarray(q[_decimation(cols)].T)  # the last pass needs 64 columns
    return _box_steps(sampled, cws, np.empty_like(sampled))[_decimation(rows)]


def _decimation(n: int) -> NDArray[np.intp]:
    """decimateFloat's sample indices: centres of 64 equal cells, computed in double."""
    return ((np.arange(64) + 0.5) * n / 64).astype(np.intp)


def _box_steps(
    x: NDArray[np.float32], window: int, out: NDArray[np.float32]
) -> NDArray[np.float32]:
    """box1DFloat down axis 0, for all columns at once, into out.

    The reference keeps one float32 running sum per line: add the entering sample, subtract the
    leaving one, divide by how many samples the window holds. Each step here is that add and that
    subtract on a whole row of lines, so every rounding is the reference's. A box filter from a
    cumulative sum and differences rounds otherwise and flips near-median bits.
    """
    n = x.shape[0]
    half = (window + 2) // 2
    full = n - window  # steps with a full window: one add and one subtract each
    first = window - half + 1  # outputs before those
    xs, ss = list(x), list(out)  # row views, made once: the loops below are call-bound
    add, sub = np.add, np.subtract
    np.copyto(ss[0], xs[0])
    for k in range(1, half):
        add(ss[0], xs[k], ss[0])
    for prev, cur, enter in zip(ss[: first - 1], ss[1:first], xs[half:window], strict=True):
        add(prev, enter, cur)
    end = n - half + 1
    steady = zip(ss[first - 1 : end - 1], ss[first:end], xs[window:], xs[:full], strict=True)
    for prev, cur, enter, leave in steady:
        add(prev, enter, cur)
        sub(cur, leave, cur)
    tail = zip(ss[end - 1 : -1], ss[end:], xs[full : full + half - 1], strict=True)
    for prev, cur, leave in tail:
        sub(prev, leave, cur)
    counts = np.full(n, window, F32)
    counts[:first] = np.arange(half, window + 1)
    counts[end:] = np.arange(window - 1, window - half, -1)
    out /= counts[:, None]
    return out


def _quality(a: NDArray[np.float32]) -> int:
    """pdqImageDomainQualityMetric: truncated float32 percent-of-255 steps, summed, / 90."""
    total = 0
    for diff in (a[:-1, :] - a[1:, :], a[:, :-1] - a[:, 1:]):
        steps = (diff * F32(100)) / F32(255)
        total += int(np.abs(steps.astype(np.int64)).sum())
    return min(total // 90, 100)


# Each variant is (transpose?, sign pattern over (row i, column j)) applied to the 16x16 DCT, as
# dct16OriginalToRotate90 & co. do; negating and transposing are exact, so bits stay exact.
_I, _J = np.indices((16, 16))
_ODD_I, _ODD_J, _ODD_IJ = (_I & 1) * 2 - 1, (_J & 1) * 2 - 1, 1 - ((_I + _J) & 1) * 2
_ONE = np.ones((16, 16), np.int64)
_VARIANTS = (
    (False, _ONE), (True, _ODD_J), (False, _ODD_IJ), (True, _ODD_I),
    (False, _ODD_I), (False, _ODD_J), (True, _ONE), (True, _ODD_IJ),
)


def _dihedral(dct: _Dct) -> dict[str, PdqHash]:
    if dct is None:
        return {name: _hash16(None) for name in DIHEDRAL_NAMES}
    coeffs, quality = dct
    out = {}
    for name, (transpose, sign) in zip(DIHEDRAL_NAMES, _VARIANTS, strict=True):
        signed = np.where(sign > 0, coeffs, -coeffs)
        out[name] = _hash16((signed.T if transpose else signed, quality))
    return out


def _hash16(dct: _Dct) -> PdqHash:
    """pdqBuffer16x16ToBits: bit i*16+j is set when coefficient (i, j) exceeds the median.

    Torben's median of 256 values is the 128th smallest, which np.partition finds exactly.
    """
    if dct is None:
        return PdqHash("0" * 64, 0)
    coeffs, quality = dct
    median = np.partition(coeffs.reshape(256), 127)[127]
    bits = (coeffs > median).astype(np.uint16)
    words = (bits << np.arange(16, dtype=np.uint16)).sum(axis=1, dtype=np.uint16)
    return PdqHash(words[::-1].astype(">u2").tobytes().hex(), quality)
