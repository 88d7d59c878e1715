"""What the input is and whether it may be decoded at all: the format from magic bytes, never
from the file name (Pillow's ``_accept`` way), and the one frame-size check every picture passes
before any of its pixels is decoded (Pillow's ``_decompression_bomb_check``, with our limits)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from .errors import CorruptMedia, MediaTooLarge, UnsupportedMedia

_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif"}


@dataclass(frozen=True)
class Probe:
    """What the bytes are: ``kind`` picks the pipeline, ``format`` the Pillow plug-in."""

    kind: Literal["image", "video"]
    format: str


# Atoms a QuickTime file from before ISO BMFF (no ``ftyp``) may start with.
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


def _ftyp(head: bytes) -> Probe | None:
    if len(head) >= 8 and head[4:8] in _QUICKTIME_ATOMS:
        return Probe("video", "MOV")
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    brand = head[8:12]
    if brand in _HEIF_BRANDS:
        return Probe("image", "AVIF" if brand == b"avif" else "HEIF")
    return Probe("video", "MP4")


def probe(head: bytes) -> Probe:
    """Identify ``head`` (the first bytes of the input); raise a typed error when nothing fits."""
    if not head:
        raise CorruptMedia("empty input")
    if head.startswith(b"\xff\xd8\xff"):
        return Probe("image", "JPEG")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Probe("image", "PNG")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Probe("image", "GIF")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Probe("image", "WEBP")
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return Probe("video", "AVI")
    if head[:2] == b"BM" and len(head) >= 14:
        return Probe("image", "BMP")
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return Probe("image", "TIFF")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return Probe("video", "MATROSKA")
    # Audio with tags: its cover pictures (ID3 APIC, FLAC PICTURE) are video streams to FFmpeg,
    # screened as such; one without a picture has no video stream (unsupported, as before).
    if head[:3] == b"ID3":
        return Probe("video", "MP3")
    if head[:4] == b"fLaC":
        return Probe("video", "FLAC")
    found = _ftyp(head)
    if found is not None:
        return found
    raise UnsupportedMedia("not a recognised image or video format (checked magic bytes)")


class PixelLimits(Protocol):
    """What a frame-size check needs of ``ImageLimits`` (stills) or ``VideoLimits`` (videos and
    animations)."""

    @property
    def max_pixels(self) -> int: ...

    @property
    def max_side(self) -> int: ...


def check_size(what: str, width: int, height: int, limits: PixelLimits) -> None:
    """The one frame-size (decompression-bomb) check, for every picture before it is decoded or
    converted: a header's declared size, each video frame, each animation frame and each page
    (a frame may be larger than its header said: a resolution change mid-stream, a later GIF
    frame, a page). An empty picture is damaged data, not a small one."""
    if width <= 0 or height <= 0:
        raise CorruptMedia(f"{what} of {width}x{height}: an empty picture")
    if width * height > limits.max_pixels or max(width, height) > limits.max_side:
        raise MediaTooLarge(
            f"{what} of {width}x{height}, over the limit of {limits.max_pixels} pixels / "
            f"{limits.max_side} per side"
        )
