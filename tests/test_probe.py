import pytest

from edge_screen.errors import CorruptMedia, MediaTooLarge, UnsupportedMedia
from edge_screen.probe import check_size, probe


@pytest.mark.parametrize(
    ("head", "kind", "fmt"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image", "JPEG"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image", "PNG"),
        (b"GIF89a\x01\x00", "image", "GIF"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image", "WEBP"),
        (b"BM" + b"\x00" * 20, "image", "BMP"),
        (b"II*\x00\x08\x00\x00\x00", "image", "TIFF"),
        (b"MM\x00*\x00\x00\x00\x08", "image", "TIFF"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00", "image", "HEIF"),
        (b"\x00\x00\x00\x18ftypavif\x00\x00", "image", "AVIF"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00", "video", "MP4"),
        (b"\x1a\x45\xdf\xa3\x01\x00", "video", "MATROSKA"),
        (b"ID3\x04\x00\x00\x00\x01", "video", "MP3"),  # its cover pictures are screened
        (b"fLaC\x00\x00\x00\x22", "video", "FLAC"),
    ],
)
def test_probe_recognises_format_from_magic_bytes(head: bytes, kind: str, fmt: str) -> None:
    found = probe(head)
    assert (found.kind, found.format) == (kind, fmt)


def test_probe_rejects_text_with_unsupported() -> None:
    with pytest.raises(UnsupportedMedia):
        probe(b"<html>this is not an image</html>")


def test_probe_reports_empty_input_as_corrupt() -> None:
    with pytest.raises(CorruptMedia):
        probe(b"")


# --- the one frame-size check: headers, pages, animation frames and video frames alike ---------

SIZE_ERROR = r" of (\d+)x(\d+), over the limit of \d+ pixels / (\d+) per side"


def _first_error(data: bytes, opts: object) -> Exception:
    """What preparing ``data`` and decoding all of its frames raised first."""
    import time

    from edge_screen.frames import SamplingOptions
    from edge_screen.prepare import prepare

    p = prepare(data, opts)  # type: ignore[arg-type]
    if p.error is not None:
        return p.error
    assert p.clip is not None, "decoded without an error"
    try:
        for _ in p.clip.frames(SamplingOptions(), time.perf_counter() + 30):
            pass
    except Exception as exc:
        return exc
    finally:
        p.clip.close()
    raise AssertionError("every frame decoded without an error")


def _gif_growing_to(side: int) -> bytes:
    """A GIF of 64x64 frames whose second frame declares ``side`` x ``side`` pixels."""
    from conftest import encode
    from PIL import Image
    from test_hostile import _gif_image_descriptors

    ims = [Image.new("RGB", (64, 64), (i * 60, 90, 120)) for i in range(3)]
    gif = bytearray(encode(ims[0], "GIF", save_all=True, append_images=ims[1:], duration=100))
    at = _gif_image_descriptors(bytes(gif))[1]
    gif[at + 5 : at + 9] = side.to_bytes(2, "little") * 2
    return bytes(gif)


def test_one_size_check_refuses_a_still_a_page_and_an_animation_frame_alike() -> None:
    """An oversized still (its header), a TIFF's oversized second page and an animation's
    oversized later frame all meet the same check (``probe.check_size``): the same error,
    saying the same things, whichever decoder the input went to."""
    import re

    from conftest import encode
    from PIL import Image

    from edge_screen import ImageLimits, ScreenerOptions, VideoLimits

    small = Image.new("RGB", (64, 64), (90, 110, 130))
    opts = ScreenerOptions(
        image_limits=ImageLimits(max_side=1000), video_limits=VideoLimits(max_side=1000)
    )
    cases = {
        "PNG header": encode(Image.new("RGB", (1200, 16)), "PNG"),
        "TIFF page 2": encode(
            small, "TIFF", save_all=True, append_images=[Image.new("RGB", (1200, 16))]
        ),
        "GIF frame": _gif_growing_to(1200),
    }
    for what, data in cases.items():
        error = _first_error(data, opts)
        assert isinstance(error, MediaTooLarge), (what, error)
        found = re.search(what + SIZE_ERROR, str(error))
        assert found is not None, (what, str(error))
        assert int(found.group(1)) == 1200 and found.group(3) == "1000", str(error)


@pytest.mark.parametrize("size", [(0, 16), (16, 0)])
def test_an_empty_picture_is_corrupt_not_small(size: tuple[int, int]) -> None:
    from edge_screen import ImageLimits

    with pytest.raises(CorruptMedia, match="empty picture"):
        check_size("PNG header", *size, ImageLimits())


def test_the_limits_are_inclusive_and_both_apply() -> None:
    from edge_screen import ImageLimits, VideoLimits

    check_size("frame", 100, 100, ImageLimits(max_pixels=10_000, max_side=100))
    with pytest.raises(MediaTooLarge):
        check_size("frame", 101, 99, ImageLimits(max_pixels=10_000, max_side=100))
    with pytest.raises(MediaTooLarge):
        check_size("frame", 100, 101, VideoLimits(max_pixels=10_000, max_side=1000))
