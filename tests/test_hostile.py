"""No input crashes or hangs the screener: mutated real files always end in a defined report."""

from __future__ import annotations

import random

import av
import pytest
from conftest import astronaut, encode
from PIL import Image

from edge_screen import Screener
from edge_screen.report import ERROR_CODES

# Pillow warns about what it meets in these files (corrupt EXIF, truncated reads): expected.
pytestmark = pytest.mark.filterwarnings("ignore:::PIL")

SEEDS = range(40)
VIDEO_SEEDS = range(15)


def _mutants(data: bytes, seed: int) -> list[bytes]:
    """Byte flips, truncations, splices and zeroed runs of a valid file, reproducible by seed."""
    rng = random.Random(seed)
    out = []
    for _ in range(3):
        b = bytearray(data)
        kind = rng.choice(["flip", "truncate", "zero", "splice", "dup"])
        if kind == "flip":
            for _ in range(rng.randint(1, 20)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif kind == "truncate":
            b = b[: rng.randrange(1, len(b))]
        elif kind == "zero":
            start = rng.randrange(len(b))
            b[start : start + rng.randint(1, 512)] = bytes(min(512, len(b) - start))
        elif kind == "splice":
            start = rng.randrange(len(b))
            b[start:start] = rng.randbytes(rng.randint(1, 256))
        else:
            start = rng.randrange(len(b) // 2)
            b += b[start : start + rng.randint(1, 4096)]
        out.append(bytes(b))
    return out


@pytest.fixture(scope="module")
def originals() -> dict[str, bytes]:
    from test_coverage import exif_with_thumbnail, face_jpeg

    small = astronaut().resize((160, 120))
    out = {fmt: encode(small, fmt) for fmt in ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")}
    exif = small.getexif()
    exif[0x0112] = 6  # rotated: the EXIF parser runs too
    out |= {
        "JPEG-progressive-exif": encode(small, "JPEG", progressive=True, exif=exif),
        "JPEG-CMYK": encode(small.convert("CMYK"), "JPEG"),
        "PNG-16bit": encode(small.convert("I;16"), "PNG"),
        "TIFF-lzw": encode(small, "TIFF", compression="tiff_lzw"),
    }
    blank = Image.new("RGB", (160, 120), (100, 100, 100))
    out |= {  # several pictures: pages, the pictures of an MPO, an EXIF thumbnail
        "TIFF-2-pages": encode(blank, "TIFF", save_all=True, append_images=[small]),
        "MPO": encode(blank, "MPO", save_all=True, append_images=[small]),
        "JPEG-exif-thumbnail": encode(blank, "JPEG", exif=exif_with_thumbnail(face_jpeg(64))),
    }
    from PIL import features

    if features.check("avif"):  # Pillow's own AV1 decoder: fuzzing found its RuntimeError
        out["AVIF"] = encode(small, "AVIF")
    return out


@pytest.fixture(scope="module")
def moving() -> dict[str, bytes]:
    """Small clips and animations: several keyframes, a face on some frames."""
    from test_coverage import tracks, with_cover
    from test_video import clip, timeline

    frames = [f[::3, ::3].copy() for f in timeline(12, lambda i: i % 4 == 0)]
    out = {
        "mp4": clip(frames, gop=4),
        "mp4-faststart": clip(frames, gop=4, movflags="faststart"),
        "matroska": clip(frames, fmt="matroska", gop=4),
    }
    if "libvpx-vp9" in av.codecs_available:
        out["webm"] = clip(frames, fmt="webm", codec="libvpx-vp9", gop=4)
    out["matroska-2-tracks"] = tracks(frames[:6], [f[::2, ::2].copy() for f in frames[6:]])
    out["matroska-cover"] = with_cover(frames)
    ims = [Image.fromarray(f) for f in frames]
    for fmt in ("GIF", "WEBP", "PNG"):
        out[fmt] = encode(ims[0], fmt, save_all=True, append_images=ims[1:], duration=100)
    return out


def _screen_mutants(screener: Screener, originals: dict[str, bytes], seed: int) -> None:
    """Every mutant of every original gets a verdict; one it cannot screen gets a known error
    code (never ``internal``, which means a bug, nor ``io``: these are bytes in memory, and a
    failed seek in FFmpeg said EPERM) and the unscreenable verdict."""
    for fmt, data in originals.items():
        for mutant in _mutants(data, seed * 31 + len(fmt)):
            r = screener.screen(mutant)
            assert r.verdict in ("allow", "review", "hold")
            if r.error is not None:
                assert r.error.code in ERROR_CODES, (fmt, r.error)
                assert r.error.code not in ("internal", "io"), (fmt, seed, r.error.message)
                assert r.verdict == "hold"


@pytest.mark.parametrize("seed", VIDEO_SEEDS)
def test_mutated_videos_and_animations_always_get_a_defined_report(
    screener: Screener, moving: dict[str, bytes], seed: int
) -> None:
    _screen_mutants(screener, moving, seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_mutated_media_always_gets_a_defined_report(
    screener: Screener, originals: dict[str, bytes], seed: int
) -> None:
    _screen_mutants(screener, originals, seed)


def _gif_image_descriptors(gif: bytes) -> list[int]:
    """Offsets of the frames' image descriptors (0x2C) in a GIF."""
    pos = 13 + (3 * 2 ** ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0)
    out = []
    while pos < len(gif) and gif[pos] != 0x3B:
        if gif[pos] == 0x21:  # extension: label, then sub-blocks
            pos += 2
        else:
            out.append(pos)
            packed, pos = gif[pos + 9], pos + 10
            pos += (3 * 2 ** ((packed & 7) + 1) if packed & 0x80 else 0) + 1
        while gif[pos]:
            pos += gif[pos] + 1
        pos += 1
    return out


def test_animation_frame_declaring_gigapixels_is_too_large(screener: Screener) -> None:
    """Fuzzing found it: a later GIF frame at 65535,65535 of 65535x65535 px made Pillow's bomb
    check raise while seeking, reported as an internal error."""
    from test_video import timeline

    ims = [Image.fromarray(f[::3, ::3].copy()) for f in timeline(3, lambda i: True)]
    gif = bytearray(encode(ims[0], "GIF", save_all=True, append_images=ims[1:], duration=100))
    at = _gif_image_descriptors(bytes(gif))[1]
    gif[at + 1 : at + 9] = (0xFFFF).to_bytes(2, "little") * 4
    r = screener.screen(bytes(gif))
    assert r.error is not None and r.error.code == "too_large" and r.verdict == "hold"


def test_video_in_a_codec_nothing_here_decodes_is_unsupported(screener: Screener) -> None:
    """Fuzzing found it: an unknown codec tag leaves PyAV's stream without a codec context, and
    the AttributeError escaped ``screen()``."""
    from test_video import clip, timeline

    mp4 = clip([f[::3, ::3].copy() for f in timeline(3, lambda i: True)])
    r = screener.screen(mp4.replace(b"avc1", b"zzzz"))
    assert r.error is not None and r.error.code == "unsupported" and r.verdict == "hold"


def test_avif_with_damaged_picture_data_is_corrupt(screener: Screener) -> None:
    """Fuzzing found it: Pillow's AVIF decoder raises RuntimeError ("Decoding of color planes
    failed") on damaged AV1 data, which was reported as an internal error."""
    from PIL import features

    if not (features.check("avif") or _has("pillow_heif")):
        pytest.skip("no AVIF encoder here: pip install '.[heif]'")
    if not features.check("avif"):
        __import__("pillow_heif").register_heif_opener()
    data = bytearray(encode(astronaut().resize((160, 120)), "AVIF"))
    at = data.find(b"mdat")
    data[at + 20 : at + 400] = bytes(380)
    r = screener.screen(bytes(data))
    assert r.error is not None and r.error.code == "corrupt" and r.verdict == "hold", r.error


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
