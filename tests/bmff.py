"""ISO-BMFF surgery for tests (from the attack review): a still HEIF/AVIF and a sequence's track
in one file, with every offset moved to where its data went."""
import struct

from avif_items import box, shift_iloc

from edge_screen.isobmff import _boxes

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf"}


def top(data):
    return {k: data[s - 8:e] for k, s, e in _boxes(data, 0, len(data))}


def shift_moov(moov: bytes, delta: int) -> bytes:
    def walk(buf, start, end):
        out = b""
        pos = start
        while pos + 8 <= end:
            size, kind = struct.unpack_from(">I4s", buf, pos)
            body = buf[pos + 8:pos + size]
            if kind in _CONTAINERS:
                body = walk(buf, pos + 8, pos + size)
            elif kind == b"stco":
                n = struct.unpack_from(">I", body, 4)[0]
                offs = struct.unpack_from(f">{n}I", body, 8)
                body = body[:8] + struct.pack(f">{n}I", *(o + delta for o in offs))
            elif kind == b"co64":
                n = struct.unpack_from(">I", body, 4)[0]
                offs = struct.unpack_from(f">{n}Q", body, 8)
                body = body[:8] + struct.pack(f">{n}Q", *(o + delta for o in offs))
            out += struct.pack(">I4s", 8 + len(body), kind) + body
            pos += size
        return out
    return walk(moov, 0, len(moov))


def shift_meta(meta: bytes, delta: int) -> bytes:
    """a whole meta box (header included) with iloc offsets moved by delta"""
    children = b""
    for k, cs, ce in _boxes(meta, 12, len(meta)):
        full = k in (b"iinf", b"iref", b"pitm")
        start = cs - 12 if full else cs - 8
        if k == b"iloc":
            version = meta[cs]
            children += box(b"iloc", shift_iloc(meta[cs + 4:ce], version, delta),
                            (version, int.from_bytes(meta[cs + 1:cs + 4], "big")))
        else:
            children += meta[start:ce]
    return box(b"meta", children, (0, 0))


def ftyp(major: bytes, compat: list[bytes]) -> bytes:
    return box(b"ftyp", major + b"\0\0\0\0" + b"".join(compat))


def still_plus_track(still: bytes, seq: bytes, major: bytes, compat: list[bytes]) -> bytes:
    """ftyp + still's meta + still's mdat + seq's moov + seq's mdat, offsets fixed."""
    st = list(_boxes(still, 0, len(still)))
    sq = list(_boxes(seq, 0, len(seq)))
    s_meta = next((s - 12, e) for k, s, e in st if k == b"meta")
    s_mdat = next((s - 8, e) for k, s, e in st if k == b"mdat")
    q_moov = next((s - 8, e) for k, s, e in sq if k == b"moov")
    q_mdat = next((s - 8, e) for k, s, e in sq if k == b"mdat")
    head = ftyp(major, compat)
    meta = still[s_meta[0]:s_meta[1]]
    meta_new = shift_meta(meta, 0)
    assert len(meta_new) == len(meta)
    new_s_mdat = len(head) + len(meta)
    meta_new = shift_meta(meta, new_s_mdat - s_mdat[0])
    moov = seq[q_moov[0]:q_moov[1]]
    new_q_mdat = new_s_mdat + (s_mdat[1] - s_mdat[0]) + len(moov)
    moov_new = shift_moov(moov, new_q_mdat - q_mdat[0])
    return head + meta_new + still[s_mdat[0]:s_mdat[1]] + moov_new + seq[q_mdat[0]:q_mdat[1]]
