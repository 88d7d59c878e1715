"""The top rows of a JPEG without decoding the rest: the frame header's height made smaller.

A JPEG's entropy-coded data can only be read from its start, so a region of a photo costs the
decode of every row above it; the rows below it need not be decoded at all. ``top_rows`` gives
a copy of the file whose SOF header declares ``rows`` lines: libjpeg then decodes the MCU rows
those lines need and skips the rest of each scan as data after the frame's end (a warning, not
an error), which costs a byte search instead of Huffman decoding, inverse DCTs and colour
conversion. This is what makes the age chip's finer decode of a face in the upper half of a
12 MP photo cheaper (``decode.Detail.patches``).

The rows kept are the same pixels as a full decode's, but for the last one or two, whose chroma
upsampling has no row below: callers keep ``MARGIN`` rows more than they use.
"""

from __future__ import annotations

import struct

# SOF0-SOF15 but DHT (C4), JPG (C8) and DAC (CC): the markers whose segment is the frame header.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RST0-7 carry no length
_SOS = 0xDA
MCU = 16  # the tallest MCU (vertical sampling 2, 8 px blocks): the rows kept are a multiple
MARGIN = 2 * MCU  # original rows kept past the last row used (chroma upsampling context)


def _height_field(data: bytes) -> int | None:
    """The offset of the frame header's height (2 bytes, big-endian) in ``data``, or None when
    the markers before the first scan hold no frame header (or are not a JPEG's)."""
    if not data.startswith(b"\xff\xd8"):
        return None
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None  # junk between header segments: leave such a file to the full decode
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker == _SOS:
            return None  # a scan before any frame header
        if marker in _SOF:
            return pos + 5 if pos + 9 <= n else None  # length (2), precision (1), height
        (length,) = struct.unpack_from(">H", data, pos + 2)
        pos += 2 + length
    return None


def top_rows(data: bytes, rows: int) -> bytes | None:
    """A copy of ``data`` whose frame header declares only its first ``rows`` (rounded up to
    ``MCU``) lines, or None when that would not be fewer lines, or the header is not found or
    declares its height elsewhere (a DNL marker: height 0)."""
    at = _height_field(data)
    if at is None:
        return None
    (height,) = struct.unpack_from(">H", data, at)
    kept = -(-max(rows, 1) // MCU) * MCU
    if height == 0 or kept >= height:
        return None
    out = bytearray(data)
    struct.pack_into(">H", out, at, kept)
    return bytes(out)
