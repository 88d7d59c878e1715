"""PDQ and vPDQ in the report: from the pixels the models saw, robust as PDQ is, comparable with
Meta's reference hashes of the same media, and never a reason for a report to fail.

Harmless pictures only (tests/data/images) and media generated here."""

from __future__ import annotations

import io
import json
import re

import av
import numpy as np
import pytest
from conftest import IMAGES, encode
from PIL import Image, ImageOps
from test_video import FPS, clip, scene, timeline

from edge_screen import PdqHash, Screener, pdq_hash
from edge_screen import hashes as hashes_mod
from edge_screen.hashes import (
    DEDUP_DISTANCE,
    FrameHash,
    StreamHashes,
    frame_hash,
    vpdq,
)

HEX = re.compile(r"[0-9a-f]{64}")
MATCH = 31  # Meta's suggested PDQ match threshold
PORT = 10  # Meta's bar for an end-to-end port (at quality >= 80)


def photo(name: str) -> Image.Image:
    with Image.open(IMAGES / name) as im:
        return im.convert("RGB")


def hash_of(screener: Screener, media: object) -> PdqHash:
    r = screener.screen(media)  # type: ignore[arg-type]
    assert r.ok and r.hashes is not None and r.hashes.pdq is not None, r.error
    return r.hashes.pdq


def test_photo_report_has_a_64_hex_pdq_and_an_int_quality(screener: Screener) -> None:
    r = screener.screen(IMAGES / "astronaut.jpg")
    d = json.loads(r.to_json())["hashes"]
    assert HEX.fullmatch(d["pdq"]) and isinstance(d["pdq_quality"], int)
    assert 80 <= d["pdq_quality"] <= 100
    assert d["pages"] is None and d["vpdq"] is None
    assert d == r.to_dict()["hashes"]
    # a 512x512 JPEG is its own working image: the hash is the reference's on its pixels
    assert d["pdq"] == pdq_hash(np.asarray(photo("astronaut.jpg"))).hex


def test_photo_hash_survives_reencoding_resizing_and_cropping_not_another_photo(
    screener: Screener,
) -> None:
    im = photo("rocket.jpg")
    w, h = im.size
    original = hash_of(screener, IMAGES / "rocket.jpg")
    dx, dy = round(w * 0.01), round(h * 0.01)  # 2% of the width and height, 1% a side
    copies = {
        "q80": encode(im, "JPEG", quality=80),
        "0.5x": encode(im.resize((w // 2, h // 2), Image.Resampling.BICUBIC), "PNG"),
        "crop 2%": encode(im.crop((dx, dy, w - dx, h - dy)), "JPEG", quality=90),
    }
    for name, data in copies.items():
        assert hash_of(screener, data).distance(original) <= MATCH, name
    for other in ("coffee.jpg", "chelsea.jpg", "grace_hopper.jpg"):
        assert hash_of(screener, IMAGES / other).distance(original) > MATCH, other


def test_a_draft_decoded_phone_photo_hashes_within_metas_bar_of_its_full_decode(
    screener: Screener,
) -> None:
    from edge_screen.bench.inputs import make_inputs

    name, data = make_inputs(1)[0]  # a generated 12 MP phone photo: decoded at 1/4 scale
    r = screener.screen(data)
    assert r.ok and r.hashes is not None and r.hashes.pdq is not None
    with Image.open(io.BytesIO(data)) as im:
        full = pdq_hash(np.asarray(im.convert("RGB")))
    assert r.hashes.pdq.quality >= 80 and r.hashes.pdq.distance(full) <= PORT, name


def test_an_exif_rotated_photo_hashes_as_its_upright_pixels(screener: Screener) -> None:
    upright = photo("coffee.jpg").resize((2400, 1600), Image.Resampling.BICUBIC)  # draft: 1/2
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # orientation 6 turns it back
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(stored, "JPEG", quality=92, exif=exif.tobytes())
    with Image.open(io.BytesIO(data)) as im:
        assert ImageOps.exif_transpose(im).size == upright.size  # a viewer shows it upright
    got = hash_of(screener, data)
    assert got.distance(pdq_hash(np.asarray(upright))) <= PORT
    assert got.distance(pdq_hash(np.asarray(stored))) > MATCH, "hashed as stored, not upright"


def test_a_still_of_several_pages_hashes_its_main_picture_and_lists_every_page(
    screener: Screener,
) -> None:
    first, second = photo("rocket.jpg"), photo("chelsea.jpg")
    r = screener.screen(encode(first, "TIFF", save_all=True, append_images=[second]))
    assert r.ok and r.media.pages == 2 and r.hashes is not None
    assert r.hashes.pages is not None and len(r.hashes.pages) == 2
    assert r.hashes.pdq == r.hashes.pages[0]
    assert r.hashes.pages[0] == pdq_hash(np.asarray(first))
    assert r.hashes.pages[1] == pdq_hash(np.asarray(second))
    assert r.hashes.vpdq is None


def _pan(seconds: int, size: tuple[int, int] = (1280, 720)) -> list[np.ndarray]:
    """A camera pan across two photos side by side: every frame differs from the last."""
    w, h = size
    strip = Image.new("RGB", (w * 2, h))
    strip.paste(photo("rocket.jpg").resize((w, h)), (0, 0))
    strip.paste(photo("coffee.jpg").resize((w, h)), (w, 0))
    pixels = np.asarray(strip)
    n = seconds * FPS
    return [pixels[:, i * w // n : i * w // n + w] for i in range(n)]


def _reference(data: bytes) -> list[tuple[float, PdqHash]]:
    """Meta's vPDQ frame hashes, done as the reference does: every frame decoded at full
    resolution, converted to RGB by FFmpeg, PDQ; with its time from the stream's start."""
    out = []
    with av.open(io.BytesIO(data)) as c:
        s = c.streams.video[0]
        start = s.start_time or 0
        for f in c.decode(s):
            out.append((float((f.pts - start) * s.time_base) * 1e3,
                        pdq_hash(f.to_ndarray(format="rgb24"))))
    return out


def test_video_vpdq_matches_the_reference_frame_hashes(screener: Screener) -> None:
    data = clip(_pan(3), gop=5)  # 720p: screened at 910x512; a keyframe every 0.5 s
    r = screener.screen(data)
    assert r.ok and r.hashes is not None and r.hashes.vpdq, r.error
    entries = r.hashes.vpdq
    assert r.hashes.pdq is None and r.hashes.pages is None
    times = [e.timestamp_ms for e in entries]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert len(entries) == r.media.frames_screened == 6, "a pan: no frame is a duplicate"
    reference = _reference(data)
    for e in entries:
        t, ref = min(reference, key=lambda x: abs(x[0] - e.timestamp_ms))
        assert abs(t - e.timestamp_ms) < 1, "the entry is the time of a decoded frame"
        assert e.pdq is not None and e.pdq.distance(ref) <= MATCH, e
        assert e.pdq.distance(ref) <= PORT, "in practice much closer than a match"
    d = r.to_dict()["hashes"]["vpdq"]
    assert [set(x) for x in d] == [{"timestamp_ms", "pdq", "quality"}] * len(entries)


def test_a_static_clip_collapses_to_few_vpdq_entries(screener: Screener) -> None:
    data = clip(timeline(6 * FPS, lambda i: True), gop=5)  # 12 keyframes of one scene
    r = screener.screen(data)
    assert r.ok and r.media.frames_screened == 12 and r.hashes is not None
    assert r.hashes.vpdq is not None and 1 <= len(r.hashes.vpdq) <= 2


def test_a_gif_animation_gets_vpdq(screener: Screener) -> None:
    frames = [Image.fromarray(scene(i % 2 == 0)) for i in range(4)]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)
    r = screener.screen(gif)
    assert r.ok and r.media.kind == "animation" and r.hashes is not None
    assert r.hashes.pdq is None and r.hashes.vpdq is not None
    assert [e.timestamp_ms for e in r.hashes.vpdq] == [0, 200, 400, 600]  # scenes alternate
    assert all(e.quality > 0 for e in r.hashes.vpdq)
    assert r.hashes.vpdq[0].pdq is not None and r.hashes.vpdq[2].pdq is not None
    assert r.hashes.vpdq[0].pdq.distance(r.hashes.vpdq[2].pdq) <= MATCH


@pytest.mark.parametrize("data", [b"junk", (IMAGES / "coffee.jpg").read_bytes()[:2000]])
def test_an_unscreenable_input_has_hashes_null(screener: Screener, data: bytes) -> None:
    r = screener.screen(data)
    assert not r.ok and r.hashes is None
    assert json.loads(r.to_json())["hashes"] is None


def test_a_picture_too_small_for_pdq_is_screened_with_no_hash_and_quality_0(
    screener: Screener,
) -> None:
    r = screener.screen(np.full((4, 4, 3), 120, np.uint8))
    assert r.ok and r.hashes is not None
    assert r.to_dict()["hashes"] == {"pdq": None, "pdq_quality": 0, "pages": None, "vpdq": None,
                                     "matches": None}


def test_a_failing_hash_is_logged_and_leaves_the_frame_unhashed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(rgb: np.ndarray) -> PdqHash:
        raise ValueError("boom")

    monkeypatch.setattr(hashes_mod, "pdq_hash", broken)
    assert frame_hash(np.zeros((64, 64, 3), np.uint8)) is None
    assert "PDQ failed" in caplog.text


def test_live_stream_reports_carry_the_running_vpdq(screener: Screener) -> None:
    a, b = scene(True), scene(False)
    with screener.stream("cam") as cam:
        for i, rgb in enumerate([a, a, a, b, b, a]):
            r = cam.screen_frame(rgb, i * 100.0)
    assert r.hashes is not None and r.hashes.vpdq is not None
    assert [e.timestamp_ms for e in r.hashes.vpdq] == [0, 300, 500]
    assert r.hashes.pdq is None
    assert json.loads(r.to_json())["hashes"]["vpdq"][1]["timestamp_ms"] == 300


def _h(bits: int) -> PdqHash:
    """A hash with its ``bits`` lowest bits set."""
    return PdqHash(f"{(1 << bits) - 1:064x}", 100)


def test_vpdq_sorts_each_picture_by_time_and_drops_near_repeats() -> None:
    frames = [
        FrameHash(0, _h(0), part=1),  # a stream's keyframes first ...
        FrameHash(2000, _h(40), part=1),
        FrameHash(1000, _h(DEDUP_DISTANCE), part=1),  # ... then the fill: sorted in
        FrameHash(0, _h(100), part=-1),  # a cover, a picture of its own
        FrameHash(500, None, part=-1),
        FrameHash(600, None, part=-1),
    ]
    got = [(f.part, f.timestamp_ms) for f in vpdq(frames)]
    assert got == [(1, 0), (1, 2000), (-1, 0), (-1, 500)]
    assert vpdq(frames, distance=0)[1].timestamp_ms == 1000


def test_a_stream_keeps_a_window_of_its_last_distinct_hashes() -> None:
    s = StreamHashes(window=3)
    for i in range(10):
        s.add(i * 10.0, _h(i * DEDUP_DISTANCE * 2))
        s.add(i * 10.0 + 5, _h(i * DEDUP_DISTANCE * 2 + 1))  # a near repeat: dropped
    got = s.result()
    assert got is not None and got.vpdq is not None
    assert [f.timestamp_ms for f in got.vpdq] == [70.0, 80.0, 90.0]
    assert StreamHashes().result() is None
