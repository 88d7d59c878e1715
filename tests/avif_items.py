"""Build AVIF collections from a one-image AVIF: declare a second picture item (stored as the
primary's own data, so every decoder still reads the file) or a thumbnail of the primary."""

import struct

from edge_screen.isobmff import _boxes


def box(kind, payload, full=None):
    head = b"" if full is None else bytes([full[0]]) + full[1].to_bytes(3, "big")
    return struct.pack(">I4s", 8 + len(head) + len(payload), kind) + head + payload


def _uint(data, at, n):
    return int.from_bytes(data[at : at + n], "big") if n else 0


def shift_iloc(payload: bytes, version: int, delta: int) -> bytes:
    """iloc's payload (after version/flags) with every file offset moved by ``delta``."""
    out = bytearray(payload)
    off_size, len_size = payload[0] >> 4, payload[0] & 15
    base_size, idx_size = payload[1] >> 4, (payload[1] & 15 if version else 0)
    pos = 2
    count = _uint(payload, pos, 2 if version < 2 else 4)
    pos += 2 if version < 2 else 4
    for _ in range(count):
        pos += 2 if version < 2 else 4
        method = 0
        if version:
            method = _uint(payload, pos, 2) & 15
            pos += 2
        pos += 2  # data_reference_index
        base_at = pos
        base = _uint(payload, pos, base_size)
        pos += base_size
        n = _uint(payload, pos, 2)
        pos += 2
        if method == 0 and base_size:
            out[base_at : base_at + base_size] = (base + delta).to_bytes(base_size, "big")
        for _ in range(n):
            pos += idx_size
            if method == 0 and not base_size:
                v = _uint(payload, pos, off_size)
                out[pos : pos + off_size] = (v + delta).to_bytes(off_size, "big")
            pos += off_size + len_size
    return bytes(out)


def add_item(avif: bytes, thumb_of=None) -> bytes:
    """The same AVIF with a second image item (id 2) declared, stored as the primary's own
    data: a collection of two pictures, or (``thumb_of=1``) the primary and its thumbnail."""

    def meta(extra_iloc_delta):
        children = b""
        for k, cs, ce in _boxes(avif, s, e):
            full = k in (b"iinf", b"iref", b"pitm")
            start = cs - 12 if full else cs - 8
            if k == b"iinf":
                version = avif[cs - 4]
                n = struct.unpack_from(">H" if version == 0 else ">I", avif, cs)[0]
                rest = avif[cs + (2 if version == 0 else 4) : ce]
                infe = box(b"infe", struct.pack(">HH4s", 2, 0, b"av01") + b"\0", (2, 0))
                count = struct.pack(">H" if version == 0 else ">I", n + 1)
                children += box(b"iinf", count + rest + infe, (version, 0))
            elif k == b"iloc":
                version = avif[cs]
                children += box(
                    b"iloc",
                    shift_iloc(avif[cs + 4 : ce], version, extra_iloc_delta),
                    (version, int.from_bytes(avif[cs + 1 : cs + 4], "big")),
                )
            else:
                children += avif[start:ce]
        if thumb_of is not None:
            children += box(b"iref", box(b"thmb", struct.pack(">HHH", 2, 1, thumb_of)), (0, 0))
        return box(b"meta", children, (0, 0))

    out = b""
    for kind, s, e in _boxes(avif, 0, len(avif)):
        if kind == b"meta":
            grown = len(meta(0)) - (e - (s - 12))
            out += meta(grown)
        else:
            out += avif[s - 8 : e]
    return out


def _primary_extent(data: bytes) -> tuple[int, int, int, int, int, int]:
    """Where the one item's one extent is written in ``iloc``: (offset field, its size, length
    field, its size, offset, length)."""
    from edge_screen.isobmff import _find

    meta = _find(data, 0, len(data), b"meta")
    assert meta is not None
    found = _find(data, *meta, b"iloc")
    assert found is not None
    cs = found[0]
    version, p = data[cs], cs + 4
    off_size, len_size = data[p] >> 4, data[p] & 15
    base_size, idx_size = data[p + 1] >> 4, (data[p + 1] & 15 if version else 0)
    pos = p + 2
    count = _uint(data, pos, 2 if version < 2 else 4)
    pos += (2 if version < 2 else 4) * 2 + (2 if version else 0) + 2 + base_size
    assert count == 1 and _uint(data, pos, 2) == 1
    pos += 2 + idx_size
    return (pos, off_size, pos + off_size, len_size, _uint(data, pos, off_size),
            _uint(data, pos + off_size, len_size))


def sequence_with_other_primary(sequence: bytes, still: bytes) -> bytes:
    """An AVIF sequence whose primary item (what image viewers show) is ``still``'s picture
    while its track (what players play) stays as it was: ``still`` is appended inside a
    ``free`` box and the primary's iloc extent pointed at its picture data."""
    out = bytearray(sequence)
    _, _, _, _, offset, length = _primary_extent(still)
    at, osize, lat, lsize, _, _ = _primary_extent(sequence)
    out[at : at + osize] = (len(sequence) + 8 + offset).to_bytes(osize, "big")
    out[lat : lat + lsize] = length.to_bytes(lsize, "big")
    return bytes(out) + box(b"free", still)
