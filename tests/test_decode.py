import struct
import zlib

import numpy as np
import pytest
from conftest import astronaut, encode
from PIL import Image

from edge_screen.decode import ImageLimits, decode_image
from edge_screen.errors import CorruptMedia, MediaTooLarge
from edge_screen.probe import probe

LIMITS = ImageLimits()


def decode(data: bytes, min_side: int = 512, limits: ImageLimits = LIMITS):
    return decode_image(data, probe(data[:64]), limits, min_side)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width x height``: a decompression bomb's calling card."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "I;16", "I", "F"])
def test_every_mode_becomes_rgb_uint8(mode: str) -> None:
    src = astronaut().resize((64, 48))
    if mode == "I;16":
        im = Image.fromarray(np.asarray(src.convert("L"), dtype=np.uint16) * 257)
        fmt = "PNG"
    else:
        im = src.convert(mode)
        fmt = "TIFF" if mode in ("CMYK", "I", "F") else "PNG"
    out = decode(encode(im, fmt), min_side=64)
    assert out.rgb.dtype == np.uint8 and out.rgb.shape == (48, 64, 3)
    assert (out.width, out.height) == (64, 48)
    assert out.rgb.std() > 5, "the picture survived the conversion"


def test_sixteen_bit_gray_is_scaled_not_clipped() -> None:
    im = Image.fromarray(np.full((20, 20), 32768, dtype=np.uint16))
    out = decode(encode(im, "PNG"), min_side=20)
    assert 120 <= int(out.rgb[0, 0, 0]) <= 135


def test_deep_pictures_are_scaled_in_bands_without_full_size_float_copies() -> None:
    """A flat 16-bit PNG of a few KB once cost 1.3 GB at 64 MP (fuzzing, docs/fuzzing.md): the
    scaling made several full-size float32 copies. Now it costs its input and its 8-bit result."""
    import tracemalloc

    from edge_screen.decode import to_rgb

    im = Image.fromarray(np.full((4000, 4000), 40000, dtype=np.uint16))
    tracemalloc.start()
    try:
        out = to_rgb(im)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (156, 156, 156)
    # np.asarray's copy of the 2-byte pixels, the 1-byte result and a few float32 bands (4.1
    # bytes a pixel measured; the full-size copies cost 20).
    assert peak < 5 * 4000 * 4000, f"{peak / 1e6:.0f} MB traced for a 16 MP 16-bit picture"


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_band_size_does_not_change_the_scaled_pixels(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge_screen import decode as decode_module

    rng = np.random.default_rng(7)
    if mode == "I;16":
        arr: np.ndarray = rng.integers(0, 65535, (97, 61), dtype=np.uint16)
    elif mode == "I":
        arr = rng.integers(-5000, 90000, (97, 61), dtype=np.int32)
    else:
        arr = rng.normal(0, 3, (97, 61)).astype(np.float32)
        arr[rng.random(arr.shape) < 0.05] = np.nan
        arr[0, 0], arr[-1, -1] = np.inf, -np.inf
    im = Image.fromarray(arr)
    whole = np.asarray(decode_module.to_rgb(im))
    monkeypatch.setattr(decode_module, "_BAND_PIXELS", 1)  # one row a band
    assert np.array_equal(np.asarray(decode_module.to_rgb(im)), whole)
    assert whole.std() > 5


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF", "BMP", "TIFF", "JPEG"])
def test_formats_decode(fmt: str) -> None:
    out = decode(encode(astronaut(), fmt), min_side=64)
    assert out.format == fmt and (out.width, out.height) == (512, 512)


def test_jpeg_is_decoded_in_draft_mode_near_the_working_size() -> None:
    big = astronaut().resize((4000, 3000))
    out = decode(encode(big, "JPEG", quality=85), min_side=512)
    assert (out.width, out.height) == (4000, 3000)
    assert 512 <= min(out.rgb.shape[:2]) < 1024  # DCT scaling 1/4, not a full decode


def test_other_formats_are_box_reduced_to_the_working_size() -> None:
    out = decode(encode(astronaut().resize((2048, 2048)), "PNG"), min_side=512)
    assert out.rgb.shape[:2] == (512, 512)


@pytest.mark.parametrize(
    ("orientation", "upright_size"),
    [(1, (300, 200)), (3, (300, 200)), (6, (200, 300)), (8, (200, 300))],
)
def test_exif_orientation_is_applied(orientation: int, upright_size: tuple[int, int]) -> None:
    im = astronaut().resize((300, 200))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = decode(encode(im, "JPEG", exif=exif), min_side=200)
    assert (out.width, out.height) == upright_size
    assert out.rgb.shape[1::-1] == upright_size


def test_header_over_pixel_limit_is_refused_before_decoding() -> None:
    with pytest.raises(MediaTooLarge):
        decode(png_declaring(40000, 40000))


def test_lower_configured_limit_applies() -> None:
    with pytest.raises(MediaTooLarge):
        decode(encode(astronaut(), "PNG"), limits=ImageLimits(max_pixels=100_000))


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_truncated_images_are_corrupt(cut: float) -> None:
    for fmt in ("JPEG", "PNG", "WEBP"):
        data = encode(astronaut(), fmt)
        with pytest.raises(CorruptMedia):
            decode(data[: int(len(data) * cut)])


def test_garbage_after_valid_magic_is_corrupt() -> None:
    with pytest.raises(CorruptMedia):
        decode(b"\xff\xd8\xff" + bytes(range(256)) * 8)


# The transpose that stores an upright picture under each EXIF orientation (the inverse of
# the one that makes it upright again).
_STORE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_detail_patch_is_the_upright_originals_region(fmt: str, orientation: int) -> None:
    upright = astronaut().resize((1600, 1200))
    stored = upright.transpose(_STORE[orientation]) if orientation > 1 else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, fmt, exif=exif, **({"quality": 95} if fmt == "JPEG" else {}))
    img = decode(data)
    assert img.rgb.shape == (600, 800, 3) and img.detail is not None
    assert img.detail.data is data  # the bytes, not a copy and not pixels
    (patch,) = img.detail.patches([(700.3, 200.2, 1001.7, 503.1)], 1.0)
    assert (patch.x0, patch.y0, patch.scale) == (700, 200, 1)
    ref = np.asarray(upright, dtype=np.int16)[200:504, 700:1002]
    assert patch.rgb.shape == ref.shape
    assert np.abs(patch.rgb - ref).mean() < 1.5  # JPEG at quality 95; PNG exactly
    if fmt == "PNG":
        assert (patch.rgb == ref).all()


def test_detail_decodes_a_jpeg_at_the_coarsest_dct_scale_fine_enough() -> None:
    data = encode(astronaut().resize((4000, 3000)), "JPEG", quality=90)
    img = decode(data)
    assert img.rgb.shape == (750, 1000, 3)
    assert img.detail is not None and img.detail.working_scale == 4
    (fine,) = img.detail.patches([(2000, 1000, 2400, 1400)], 2.5)  # 1/2 is the coarsest <= 2.5
    assert (fine.scale, fine.rgb.shape) == (2, (200, 200, 3))
    (full,) = img.detail.patches([(2000, 1000, 2400, 1400)], 1.0)
    assert (full.scale, full.rgb.shape) == (1, (400, 400, 3))
    # Patch pixel (i, j) covers original (x0 + j * scale ...): the half-scale patch is the
    # full-scale one box-averaged, within JPEG's DCT-scaling error.
    halved = full.rgb.reshape(200, 2, 200, 2, 3).mean(axis=(1, 3))
    assert np.abs(fine.rgb - halved).mean() < 3


def test_no_detail_when_the_working_image_is_the_original() -> None:
    assert decode(encode(astronaut(), "JPEG", quality=90)).detail is None
    assert decode(encode(astronaut().resize((800, 600)), "PNG")).detail is None
