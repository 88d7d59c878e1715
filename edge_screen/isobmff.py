"""The pictures an image file in ISO-BMFF (HEIF, AVIF) holds, read from its ``meta`` box alone.

Pillow decodes an AVIF's primary image only: a collection of several images, or thumbnails
next to the primary (file browsers show those), would go unscreened. ``shown_items`` counts
them from the item boxes (``iinf``, ``iref``, ``pitm``), without decoding anything, so such a
file can be refused (``only_the_primary``) instead of screened in part.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import CorruptMedia, UnsupportedMedia

# Item types that are pictures a viewer may show (coded, or derived from other items).
_PICTURES = {b"av01", b"hvc1", b"jpeg", b"grid", b"iovl", b"iden"}
_FULL_BOXES = {b"meta", b"iinf", b"iref", b"pitm", b"infe"}


@dataclass(frozen=True)
class Items:
    """Pictures besides the primary one, and thumbnails, that a file's item boxes declare."""

    others: int
    thumbnails: int


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in ``data[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1 and pos + 16 <= end:
            size, head = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            raise ValueError(f"box {kind!r} at {pos} overruns its parent")
        body = pos + head + (4 if kind in _FULL_BOXES else 0)
        yield kind, body, pos + size
        pos += size


def _find(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    return next(((s, e) for k, s, e in _boxes(data, start, end) if k == kind), None)


def shown_items(data: bytes) -> Items | None:
    """Count the pictures other than the primary and the thumbnails; None without a ``meta``
    box (a sequence or a plain video). Raises ``ValueError`` on boxes that do not add up."""
    meta = _find(data, 0, len(data), b"meta")
    if meta is None:
        return None
    types: dict[int, bytes] = {}
    hidden: set[int] = set()
    iinf = _find(data, *meta, b"iinf")
    if iinf is not None:
        version = data[iinf[0] - 4]
        skip = 2 if version == 0 else 4
        for kind, s, _ in _boxes(data, iinf[0] + skip, iinf[1]):
            if kind != b"infe" or data[s - 4] < 2:
                continue
            wide = data[s - 4] >= 3
            item = struct.unpack_from(">I" if wide else ">H", data, s)[0]
            at = s + (4 if wide else 2) + 2  # item_ID, item_protection_index
            types[item] = bytes(data[at : at + 4])
            if data[s - 1] & 1:  # flags bit 0: a hidden item, not meant to be shown
                hidden.add(item)
    sources: dict[bytes, set[int]] = {}
    targets: dict[bytes, set[int]] = {}
    iref = _find(data, *meta, b"iref")
    if iref is not None:
        fmt, width = (">H", 2) if data[iref[0] - 4] == 0 else (">I", 4)
        for kind, s, _ in _boxes(data, *iref):
            src = struct.unpack_from(fmt, data, s)[0]
            (count,) = struct.unpack_from(">H", data, s + width)
            at = s + width + 2
            dst = {struct.unpack_from(fmt, data, at + i * width)[0] for i in range(count)}
            sources.setdefault(kind, set()).add(src)
            targets.setdefault(kind, set()).update(dst)
    pitm = _find(data, *meta, b"pitm")
    primary = None
    if pitm is not None:
        primary = struct.unpack_from(">H" if data[pitm[0] - 4] == 0 else ">I", data, pitm[0])[0]
    pictures = {i for i, t in types.items() if t in _PICTURES}
    thumbs = pictures & sources.get(b"thmb", set())
    parts = sources.get(b"auxl", set()) | targets.get(b"dimg", set()) | hidden
    others = pictures - thumbs - parts - {primary}
    return Items(len(others), len(thumbs))


def only_the_primary(data: bytes) -> None:
    """Refuse an AVIF whose items hold pictures besides the primary (a collection) or its
    thumbnails: only the primary decodes here, and the rest would go unscreened."""
    try:
        items = shown_items(data)
    except (ValueError, struct.error, IndexError) as exc:
        raise CorruptMedia(f"damaged AVIF item boxes: {exc}") from exc
    if items is not None and (items.others or items.thumbnails):
        raise UnsupportedMedia(
            f"AVIF with {items.others} more picture(s) and {items.thumbnails} thumbnail(s) "
            "besides its primary image: only the primary decodes here, so it is not screened "
            "in part"
        )


# Brands of pictures stored as items (HEIF/AVIF): a file that carries one of these but is probed
# as a video (an AVIF sequence, major brand ``avis``) also has a primary still image item.
_IMAGE_BRANDS = {b"avif", b"mif1", b"heic", b"heix"}


def image_sequence(head: bytes) -> bool:
    """An ISO-BMFF file whose ftyp lists an image-item brand: its ``meta`` box may hold a
    primary picture besides the track a video decoder plays."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return False
    size = min(struct.unpack_from(">I", head, 0)[0], len(head))
    brands = {head[i : i + 4] for i in range(16, size - 3, 4)} | {head[8:12]}
    return bool(brands & _IMAGE_BRANDS)


def as_still(data: bytes) -> bytes:
    """The same file with its sequence brands (``avis``, ``msf1``) renamed to ``avif``/``mif1``:
    an AVIF decoder then decodes the primary item, the still that image viewers show, instead
    of the track. Only the ftyp box changes."""
    size = struct.unpack_from(">I", data, 0)[0]
    ftyp = data[:size].replace(b"avis", b"avif").replace(b"msf1", b"mif1")
    return ftyp + data[size:]


def has_primary_picture(data: bytes) -> bool:
    """Whether the top-level ``meta`` box names a primary item (``pitm``). Its type is not
    looked at: whatever it is, a viewer may show it, so it is decoded and screened."""
    try:
        meta = _find(data, 0, len(data), b"meta")
        return meta is not None and _find(data, *meta, b"pitm") is not None
    except (ValueError, struct.error) as exc:
        raise CorruptMedia(f"damaged ISO-BMFF boxes: {exc}") from exc


def has_movie(data: bytes) -> bool:
    """Whether the file has a top-level ``moov`` box: tracks a player plays, whatever its brand
    says (an image brand makes a still decoder show the primary item and skip the track)."""
    try:
        return _find(data, 0, len(data), b"moov") is not None
    except (ValueError, struct.error) as exc:
        raise CorruptMedia(f"damaged ISO-BMFF boxes: {exc}") from exc
