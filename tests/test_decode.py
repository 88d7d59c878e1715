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
