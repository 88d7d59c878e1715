"""Motion Photos: a JPEG with a video after its end (Google's MicroVideo / MotionPhoto, Samsung's
motion photos). Gallery apps play that video, so it is a picture the upload shows: it is found
by walking the JPEG's markers to the main image's end (EOI) and looking at what follows, never
by trusting the XMP that announces it (an uploader can leave that out)."""

from __future__ import annotations

import re
import struct

_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RST0-7 carry no length
_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
# A marker that ends a scan: 0xFF then anything but stuffing (0x00), TEM or RST0-7.
_SCAN_END = re.compile(rb"\xff[^\x00\x01\xd0-\xd7]")


def jpeg_end(data: bytes) -> int | None:
    """The offset just past the main image's EOI marker, or None when there is none. Bytes
    between segments that are no marker are skipped, as a JPEG decoder skips them, so junk
    there cannot stop the walk short of a video that follows."""
    if not data.startswith(b"\xff\xd8"):
        return None
    pos, n = 2, len(data)
    while pos + 2 <= n:
        if data[pos] != 0xFF:  # extraneous bytes: on to the next marker
            pos = data.find(b"\xff", pos)
            if pos == -1:
                return None
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == _EOI:
            return pos + 2
        if marker in _STANDALONE or marker == _SOI:
            pos += 2
            continue
        if pos + 4 > n:
            return None
        (length,) = struct.unpack_from(">H", data, pos + 2)
        pos += 2 + length
        if marker == _SOS:
            pos = _after_scan(data, pos)
    return None


def _after_scan(data: bytes, pos: int) -> int:
    """Where the entropy-coded data that starts at ``pos`` ends: the next 0xFF that is neither
    byte stuffing (0xFF00) nor a restart marker. One regular-expression search in C, since a
    12 MP photo holds megabytes of scan data (a byte loop took 0.6 s, a ``find`` loop 3 ms)."""
    found = _SCAN_END.search(data, pos)
    return found.start() if found else len(data)


def embedded_video(data: bytes) -> bytes | None:
    """The ISO-BMFF file (MP4/MOV) that follows a JPEG's end, if one does: the first ``ftyp``
    box after the EOI, whatever lies between (Samsung writes a marker string there)."""
    end = jpeg_end(data)
    if end is None or end >= len(data):
        return None
    at = end + 4
    while (at := data.find(b"ftyp", at)) != -1:
        (size,) = struct.unpack_from(">I", data, at - 4)
        if 8 <= size <= len(data) - (at - 4):
            return data[at - 4 :]
        at += 4
    return None
