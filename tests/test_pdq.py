"""PDQ: bit-exact with Meta's reference C++ on arrays (through PyPI's ``pdqhash``, which wraps it,
and through hashes the reference computed on the arrays built here), close to the hashes Meta
publishes for its own test images, and robust the way a perceptual hash must be."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from conftest import DATA, IMAGES
from PIL import Image

from edge_screen import PdqHash, pdq_hash, pdq_hash_dihedral
from edge_screen.pdq import DIHEDRAL_NAMES, pdq_hash_dihedral_from_luma, pdq_hash_from_luma

PDQ_DATA = DATA / "pdq"


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Integer-hash noise: the same pixels on every numpy, so the committed C++ hashes hold."""
    y, x, c = (a.astype(np.uint64) for a in np.indices((h, w, 3)))
    v = (x * 0x9E3779B1 + y * 0x85EBCA77 + c * 0xC2B2AE3D + seed * 0x27D4EB2F) & 0xFFFFFFFF
    for shift, mul in ((15, 0x2C1B3C6D), (12, 0x297A2D39)):
        v = ((v ^ (v >> shift)) * mul) & 0xFFFFFFFF
    return ((v ^ (v >> 15)) & 255).astype(np.uint8)


def shapes(h: int, w: int) -> np.ndarray:
    """Discs and bars on a two-tone ground: strong edges at many scales."""
    y, x = np.indices((h, w))
    img = np.zeros((h, w, 3), np.uint8)
    img[...] = (40, 90, 160)
    img[y > h * 2 // 3] = (200, 180, 60)
    for k in range(6):
        cy, cx, r = (k * 37 % 11) * h // 11, (k * 53 % 13) * w // 13, (k + 2) * min(h, w) // 16
        img[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = ((k * 71) % 256, (k * 113) % 256, 255 - k * 40)
    img[(x // max(w // 9, 1)) % 4 == 1, :] = (250, 250, 250)
    return img


def gradient(h: int, w: int, diagonal: bool = False) -> np.ndarray:
    y, x = np.indices((h, w))
    a = (x * 255 // max(w - 1, 1) + (y * 255 // max(h - 1, 1) if diagonal else 0)) // (1 + diagonal)
    return np.stack([a, 255 - a, (a * 3) % 256], axis=-1).astype(np.uint8)


def checker(h: int, w: int, cell: int) -> np.ndarray:
    y, x = np.indices((h, w))
    return np.repeat((((y // cell + x // cell) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)


def low_contrast(h: int, w: int) -> np.ndarray:
    """A flat picture with faint texture: low quality, where near-median bits are many."""
    return (100 + noise(h, w, 7) // 32).astype(np.uint8)


def stripes(h: int, w: int) -> np.ndarray:
    y, x = np.indices((h, w))
    a = ((x * 7 + y * 3) // 5 % 2 * 180 + (y % 17) * 4).astype(np.uint8)
    return np.stack([a, a // 2, 255 - a], axis=-1)


def smooth(h: int, w: int) -> np.ndarray:
    """A 4x4 grid of colours blown up: almost no gradients anywhere but the cell edges."""
    cells = noise(4, 4, 3)
    y, x = np.indices((h, w))
    return cells[y * 4 // h, x * 4 // w]


# Built in code; tests/data/pdq/cpp_arrays.json holds the reference C++'s hashes of each.
GENERATED: dict[str, Callable[[], np.ndarray]] = {
    "noise_97x131": lambda: noise(97, 131),
    "noise_1500x1100": lambda: noise(1100, 1500, 1),
    "gradient_480x640": lambda: gradient(480, 640),
    "diagonal_333x517": lambda: gradient(333, 517, diagonal=True),
    "shapes_600x400": lambda: shapes(400, 600),
    "checker_256x256": lambda: checker(256, 256, 16),
    "tiny_1x1": lambda: noise(1, 1),
    "tiny_3x5": lambda: noise(5, 3),
    "smallest_5x5": lambda: shapes(5, 5),
    "shapes_63x64": lambda: shapes(64, 63),
    "shapes_64x64": lambda: shapes(64, 64),  # the reference skips the blur at exactly 64x64
    "shapes_65x64": lambda: shapes(64, 65),
    "portrait_300x1024": lambda: shapes(1024, 300),
    "constant_300x200": lambda: np.full((200, 300, 3), (120, 60, 200), np.uint8),
    "constant_64x64": lambda: np.full((64, 64, 3), 77, np.uint8),
    "stripes_255x127": lambda: stripes(127, 255),
    "wide_2000x20": lambda: shapes(20, 2000),
    "low_contrast_200x300": lambda: low_contrast(300, 200),
    "smooth_700x500": lambda: smooth(500, 700),
}


def decoded(path: Path | io.BytesIO) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


ARRAYS: dict[str, Callable[[], np.ndarray]] = {
    **GENERATED,
    **{p.name: (lambda p=p: decoded(p)) for p in sorted(IMAGES.glob("*.jpg"))},
    "bridge-1-original.jpg": lambda: decoded(PDQ_DATA / "bridge-1-original.jpg"),
}


def pdqhash_luma(rgb: np.ndarray) -> np.ndarray:
    """What pdqhash.compute does before the C++: luma in double, rounded to float32."""
    return (rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587 + rgb[:, :, 2] * 0.114).astype("float32")


def from_vector(bits: np.ndarray, quality: int) -> PdqHash:
    return PdqHash(np.packbits(bits.astype(np.uint8)).tobytes().hex(), quality)


@pytest.mark.parametrize("name", list(ARRAYS))
def test_matches_pdqhash_bit_for_bit_given_its_luma(name: str) -> None:
    rgb = ARRAYS[name]()
    luma = pdqhash_luma(rgb)
    assert pdq_hash_from_luma(luma) == from_vector(*pdqhash.compute(rgb))
    vectors, quality = pdqhash.compute_dihedral(rgb)
    ours = pdq_hash_dihedral_from_luma(luma)
    assert [ours[n] for n in DIHEDRAL_NAMES] == [from_vector(v, quality) for v in vectors]


@pytest.fixture(scope="module")
def cpp_arrays() -> dict[str, dict[str, object]]:
    return json.loads((PDQ_DATA / "cpp_arrays.json").read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", list(GENERATED))
def test_matches_the_reference_cpp_bit_for_bit_on_rgb(
    name: str, cpp_arrays: dict[str, dict[str, object]]
) -> None:
    """pdq_hash's own luma is the reference's fillFloatLumaFromRGB, in float."""
    rgb, expected = GENERATED[name](), cpp_arrays[name]
    assert pdq_hash(rgb) == PdqHash(str(expected["hash"]), int(str(expected["quality"])))
    dihedral = {k: h.hex for k, h in pdq_hash_dihedral(rgb).items()}
    assert dihedral == expected["dihedral"]
    assert pdq_hash_dihedral(rgb)["original"].quality == expected["dihedral_quality"]


def test_pdqhash_on_rgb_parts_from_the_reference_only_where_near_median_bits_abound() -> None:
    """pdqhash computes luma in double, the reference (and pdq_hash) in float: some pixels differ
    in the last bit. That moves near-median bits only, which flat pictures (and strips a few
    pixels thin) have many of; there the reference sides with pdq_hash (the test above)."""
    parted = set()
    for name, build in ARRAYS.items():
        rgb = build()
        ours, theirs = pdq_hash(rgb), from_vector(*pdqhash.compute(rgb))
        assert ours.quality == theirs.quality, name
        if ours != theirs:
            parted.add(name)
    assert parted == {"gradient_480x640", "constant_300x200"}  # qualities 14 and 0


def test_pictures_under_5_pixels_a_side_get_the_zero_hash() -> None:
    for shape in ((1, 1, 3), (4, 300, 3), (300, 4, 3)):
        h = pdq_hash(np.full(shape, 200, np.uint8))
        assert h == PdqHash("0" * 64, 0)
        assert set(pdq_hash_dihedral(np.full(shape, 200, np.uint8)).values()) == {h}


# -- Meta's published hashes of its own test images -----------------------------------------------


def published() -> list[dict[str, str]]:
    return json.loads((PDQ_DATA / "published.json").read_text())  # type: ignore[no-any-return]


def prepared(entry: dict[str, str]) -> np.ndarray:
    with Image.open(PDQ_DATA / entry["file"]) as im:
        im = im.convert("RGB")
        if entry["prepare"] == "thumbnail512":  # the Python reference's fromFile
            im.thumbnail((512, 512))
        return np.asarray(im)


@pytest.mark.parametrize("entry", published(), ids=lambda e: f"{e['file']}-{e['prepare']}")
def test_hashes_of_meta_test_images_are_within_the_reference_tolerance(
    entry: dict[str, str],
) -> None:
    """Files, not arrays: each reference decoded them with its own library (Java ImageIO,
    Pillow, CImg). Meta calls an implementation correct when hashes of quality >= 80 land
    within 10 of the reference's; its Python test allows 16 for all. Today, with Pillow's
    libjpeg-turbo, the Java and Python ones are equal bit for bit (tests/data/pdq/README.md)."""
    ours = pdq_hash(prepared(entry))
    assert ours.distance(PdqHash(entry["hash"], 0)) <= (10 if ours.quality >= 80 else 16)


def test_dihedral_hashes_of_bridge_match_the_rotated_files_meta_hashed() -> None:
    """Meta's C++ tool hashed eight rotated and flipped copies of bridge; each of our variants
    of the original lands near the matching file's hash and far from the other seven."""
    files = json.loads((PDQ_DATA / "cpp_bin_readme_dih.json").read_text())
    ours = pdq_hash_dihedral(decoded(PDQ_DATA / "bridge-1-original.jpg"))
    for name in DIHEDRAL_NAMES:
        distances = {other: ours[name].distance(PdqHash(h, 0)) for other, h in files.items()}
        assert distances.pop(name) <= 10, name
        assert min(distances.values()) > 31, name


# -- the properties a perceptual hash is for --------------------------------------------------------

PHOTOS = sorted(IMAGES.glob("*.jpg"))


@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.name)
def test_a_reencoded_or_resized_copy_stays_within_31(path: Path) -> None:
    with Image.open(path) as im:
        im = im.convert("RGB")
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=80)
    original = pdq_hash(np.asarray(im))
    assert original.distance(pdq_hash(decoded(buf))) <= 31
    half = im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR)
    assert original.distance(pdq_hash(np.asarray(half))) <= 31


def test_unrelated_pictures_are_more_than_31_apart() -> None:
    hashes = [pdq_hash(decoded(p)) for p in PHOTOS]
    hashes.append(pdq_hash(shapes(400, 600)))
    assert all(h.quality >= 50 for h in hashes)
    pairs = [(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    assert min(a.distance(b) for a, b in pairs) > 31


@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.name)
def test_dihedral_variants_match_hashing_the_turned_pixels(path: Path) -> None:
    """Each variant matches (<= 31) the hash of the picture turned that way, and no other turn.
    Not bit for bit: a turn shifts the 64x64 sample grid, as Meta's README warns (up to 22 here)."""
    rgb = decoded(path)
    turned = {
        "original": rgb,
        "rotate90": np.rot90(rgb, 1),
        "rotate180": np.rot90(rgb, 2),
        "rotate270": np.rot90(rgb, 3),
        "flipx": rgb[::-1],
        "flipy": rgb[:, ::-1],
        "flip_plus1": rgb.transpose(1, 0, 2),
        "flip_minus1": np.rot90(rgb, 2).transpose(1, 0, 2),
    }
    hashes = {name: pdq_hash(np.ascontiguousarray(pixels)) for name, pixels in turned.items()}
    for name, variant in pdq_hash_dihedral(rgb).items():
        assert [n for n, h in hashes.items() if variant.distance(h) <= 31] == [name]


# -- inputs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 3), np.uint16), [[0, 1], [2, 3]], None],
    ids=["float32", "uint16", "list", "none"],
)
def test_wrong_types_are_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        pdq_hash(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "shape", [(8, 8, 4), (8, 8, 1), (8, 8, 3, 1), (64,), (0, 10, 3), (10, 0)], ids=str
)
def test_wrong_shapes_are_a_value_error(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        pdq_hash(np.zeros(shape, np.uint8))


def test_bad_luma_is_refused() -> None:
    with pytest.raises(ValueError):
        pdq_hash_from_luma(np.full((20, 20), np.nan))
    with pytest.raises(ValueError):
        pdq_hash_from_luma(np.zeros((20, 20, 3)))
    with pytest.raises(TypeError):
        pdq_hash_from_luma(np.zeros((20, 20), complex))


def test_a_2d_array_is_grey_luma_as_the_reference_reads_one_channel_files() -> None:
    grey = np.asarray(Image.open(IMAGES / "chelsea.jpg").convert("L"))
    assert pdq_hash(grey) == pdq_hash_from_luma(grey)
    as_rgb = pdq_hash(np.repeat(grey[..., None], 3, axis=2))  # float luma of r=g=b: ~grey
    assert pdq_hash(grey).distance(as_rgb) <= 4


def test_input_arrays_are_left_alone_and_views_work() -> None:
    rgb = shapes(120, 90)
    keep = rgb.copy()
    assert pdq_hash(rgb[:, ::-1]) == pdq_hash(np.ascontiguousarray(rgb[:, ::-1]))
    assert pdq_hash(rgb[10:, 5:]) == pdq_hash(rgb[10:, 5:].copy())
    luma = pdqhash_luma(rgb)
    luma_keep = luma.copy()
    pdq_hash_from_luma(luma)
    assert np.array_equal(rgb, keep) and np.array_equal(luma, luma_keep)


# -- the hash value ---------------------------------------------------------------------------------


def test_bits_bytes_and_words_follow_meta_order() -> None:
    rgb = shapes(400, 600)
    h = pdq_hash(rgb)
    vector, _ = pdqhash.compute(rgb)
    assert np.array_equal(h.bits(), vector)  # pdqhash's vector: printed order
    assert h.to_bytes() == bytes.fromhex(h.hex) and len(h.to_bytes()) == 32
    words = h.words()
    assert words.dtype == np.uint16 and words.shape == (16,)
    assert f"{words[15]:04x}" == h.hex[:4] and f"{words[0]:04x}" == h.hex[-4:]  # Hash256.w


def test_hex_round_trips_and_is_validated() -> None:
    h = pdq_hash(shapes(400, 600))
    assert PdqHash.from_hex(f"  {h.hex.upper()}\n", h.quality) == h
    assert h.distance(h) == 0
    flipped = PdqHash(f"{int(h.hex, 16) ^ 0b1011:064x}", h.quality)
    assert h.distance(flipped) == 3
    for bad in ("0" * 63, "g" * 64, "0" * 65, "A" * 64):
        with pytest.raises(ValueError):
            PdqHash(bad, 50)
    with pytest.raises(ValueError):
        PdqHash("0" * 64, 101)
