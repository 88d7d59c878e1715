import pytest

from edge_screen.errors import CorruptMedia, UnsupportedMedia
from edge_screen.probe import probe


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
