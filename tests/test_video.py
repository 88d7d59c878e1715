"""Videos, animations and live streams end to end on the default bundle, with media made here.

Clips are small (a few seconds, 480x360 at most) and encoded in code with PyAV: H.264 where the
wheel has libx264, else MPEG-4 Part 2. Faces come from the committed photos, so detection and
age estimation run for real.
"""

from __future__ import annotations

import gc
import io
import os
import struct
import tempfile
import time
from collections.abc import Callable

import av
import numpy as np
import pytest
from conftest import IMAGES, astronaut, encode
from PIL import Image

from edge_screen import (
    REPORT_SCHEMA,
    Policy,
    SamplingOptions,
    Screener,
    ScreenerOptions,
    VideoLimits,
)
from edge_screen.aggregate import Aggregator
from edge_screen.frames import pick_evenly, plan_fill
from edge_screen.report import Face
from edge_screen.signals import Signals
from edge_screen.video import VideoClip

CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"
FPS = 10


def scene(face: bool, size: tuple[int, int] = (480, 360)) -> np.ndarray:
    """A coffee-table background, with the astronaut's portrait pasted in when ``face``."""
    w, h = size
    im = Image.open(IMAGES / "coffee.jpg").convert("RGB").resize((w, h))
    if face:
        side = min(w, h) * 3 // 4
        im.paste(astronaut().resize((side, side)), ((w - side) // 2, (h - side) // 2))
    return np.asarray(im)


def clip(
    frames: list[np.ndarray],
    fmt: str = "mp4",
    codec: str = CODEC,
    gop: int = FPS,
    rotation: int | None = None,
    flips: tuple[bool, bool] = (False, False),
    **muxer: str,
) -> bytes:
    """Encode RGB frames at ``FPS`` with a keyframe every ``gop`` frames."""
    h, w = frames[0].shape[:2]
    with tempfile.TemporaryDirectory() as tmp:  # faststart rewrites the file: not a BytesIO
        path = os.path.join(tmp, "clip")
        _encode(path, frames, w, h, fmt, codec, gop, rotation, flips, muxer)
        with open(path, "rb") as fh:
            return fh.read()


def _encode(
    path: str,
    frames: list[np.ndarray],
    w: int,
    h: int,
    fmt: str,
    codec: str,
    gop: int,
    rotation: int | None,
    flips: tuple[bool, bool],
    muxer: dict[str, str],
) -> None:
    with av.open(path, "w", format=fmt, options=muxer) as out:
        s = out.add_stream(codec, rate=FPS)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.gop_size = gop
        if codec == "libx264":
            s.codec_context.options = {"keyint_min": str(gop), "sc_threshold": "0"}
        if rotation is not None:
            s.set_display_rotation(rotation, hflip=flips[0], vflip=flips[1])
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            out.mux(s.encode(frame))
        out.mux(s.encode())


def timeline(n: int, face_at: Callable[[int], bool]) -> list[np.ndarray]:
    """``n`` frames, the face in those ``face_at`` picks; each a little brighter than the last,
    so no encoder (GIF's, WebP's) merges them."""
    with_face, without = scene(True), scene(False)
    return [np.minimum(with_face if face_at(i) else without, 200) + i * 9 % 50 for i in range(n)]


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


@pytest.fixture(scope="module")
def three_seconds() -> bytes:
    return clip(timeline(3 * FPS, lambda i: True))


def test_video_is_screened_on_its_keyframes_only(screener: Screener, three_seconds: bytes) -> None:
    r = screener.screen(three_seconds)
    assert r.ok and r.verdict == "allow", r.error
    m = r.media
    assert (m.kind, m.format, m.width, m.height) == ("video", "MP4", 480, 360)
    assert m.duration_s == pytest.approx(3.0, abs=0.15) and m.fps == pytest.approx(FPS)
    assert m.frames_screened == 3 and m.frames_decoded == 3, "one decode per keyframe, no more"
    assert len(r.faces) == 1 and r.faces[0].age is not None
    # the same face on every keyframe: the report keeps the frame where it looked youngest
    assert r.faces[0].timestamp_ms in (0, 1000, 2000)
    assert r.signals["minor"] == r.faces[0].p_minor and r.signals["sexual"] is not None


def test_video_report_keeps_schema_1_and_adds_sampling_fields(
    screener: Screener, three_seconds: bytes
) -> None:
    d = screener.screen(three_seconds).to_dict()
    assert d["schema"] == REPORT_SCHEMA
    assert {"duration_s", "fps", "frames_decoded", "worst_ms", "evidence"} <= set(d["media"])
    assert [e["timestamp_ms"] for e in d["media"]["evidence"]]
    assert d["faces"][0]["timestamp_ms"] in (0, 1000, 2000)
    image = screener.screen(IMAGES / "astronaut.jpg").to_dict()
    assert image["media"]["duration_s"] is None and image["media"]["frames_decoded"] == 1
    assert "timestamp_ms" not in image["faces"][0], "photo faces keep their old keys"


def test_video_as_bytes_path_and_file_object_agree(
    screener: Screener, three_seconds: bytes, tmp_path
) -> None:
    path = tmp_path / "clip.bin"  # the name says nothing: magic bytes decide
    path.write_bytes(three_seconds)
    reports = [screener.screen(m) for m in (three_seconds, path, open(path, "rb"))]  # noqa: SIM115
    assert len({r.sha256 for r in reports}) == 1
    assert len({(r.signals["sexual"], r.media.frames_screened) for r in reports}) == 1


def test_face_only_on_one_keyframe_is_found_with_its_time(screener: Screener) -> None:
    r = screener.screen(clip(timeline(4 * FPS, lambda i: i == 2 * FPS)))
    assert len(r.faces) == 1 and r.faces[0].timestamp_ms == pytest.approx(2000, abs=1)
    assert r.media.worst_ms["minor"] == pytest.approx(2000, abs=1)


def test_face_only_between_keyframes_is_missed_by_the_default_strategy(screener: Screener) -> None:
    """Documented limit: with a keyframe every second, a half-second scene off them is unseen."""
    r = screener.screen(clip(timeline(4 * FPS, lambda i: 13 <= i <= 17)))
    assert r.ok and r.faces == () and r.media.frames_decoded == 4


def test_long_gop_is_filled_by_seeking_to_mid_gap_frames(screener: Screener) -> None:
    """One keyframe in 6 s: the fill decodes frames at 3 s, then 1.5 s and 4.5 s."""
    r = screener.screen(clip(timeline(6 * FPS, lambda i: i == 3 * FPS), gop=1000))
    assert r.media.frames_screened == 4
    assert r.media.frames_decoded < 6 * FPS, "seeks, not a decode of everything"
    assert len(r.faces) == 1 and r.faces[0].timestamp_ms == pytest.approx(3000, abs=1)


def test_portrait_clip_with_rotation_metadata_finds_the_faces_of_the_upright_clip(
    screener: Screener,
) -> None:
    upright = [scene(True, (360, 480))] * FPS
    stored = [np.ascontiguousarray(np.rot90(f, -1)) for f in upright]  # sensor landscape
    a = screener.screen(clip(upright))
    b = screener.screen(clip(stored, rotation=90))  # displayed a quarter turn anticlockwise
    assert (b.media.width, b.media.height) == (a.media.width, a.media.height) == (360, 480)
    assert len(a.faces) == len(b.faces) == 1
    assert iou(a.faces[0].box, b.faces[0].box) > 0.8
    assert b.faces[0].age == pytest.approx(a.faces[0].age, abs=6)


@pytest.mark.parametrize("flips", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_frames_come_out_as_a_player_shows_them_turned_and_mirrored(
    degrees: int, flips: tuple[bool, bool]
) -> None:
    """The display matrix of every EXIF-like orientation (a selfie camera's mirror too): PyAV
    writes it as a counter-clockwise turn, then the mirrors."""
    h, w = 48, 64
    stored = np.zeros((h, w, 3), np.uint8)
    stored[: h // 2, : w // 2] = (255, 0, 0)
    stored[: h // 2, w // 2 :] = (0, 255, 0)
    stored[h // 2 :, : w // 2] = (0, 0, 255)
    stored[h // 2 :, w // 2 :] = (255, 255, 255)
    shown = np.rot90(stored, degrees // 90)
    shown = shown[:, ::-1] if flips[0] else shown
    shown = shown[::-1] if flips[1] else shown
    data = clip([stored] * 3, rotation=degrees, flips=flips)
    video = VideoClip(data, "MP4", VideoLimits(), 512)
    try:
        frame = next(video.frames(SamplingOptions(), time.perf_counter() + 30))
        assert (video.info.width, video.info.height) == (shown.shape[1], shown.shape[0])
    finally:
        video.close()
    assert frame.rgb.shape == shown.shape

    def quadrants(a: np.ndarray) -> np.ndarray:
        qh, qw = a.shape[0] // 2, a.shape[1] // 2
        return np.array([a[y : y + qh, x : x + qw].mean((0, 1)) for y in (0, qh) for x in (0, qw)])

    assert np.abs(quadrants(frame.rgb) - quadrants(shown)).max() < 40


def test_quicktime_file_without_ftyp_is_a_video(screener: Screener) -> None:
    """Old QuickTime files start with a plain atom (here ``free`` where ``ftyp`` was, so the
    chunk offsets stay valid)."""
    mov = clip(timeline(3 * FPS, lambda i: True), fmt="mov")
    assert mov[4:8] == b"ftyp"
    old = b"free".join([mov[:4], mov[8:]])
    r = screener.screen(old)
    assert r.ok, r.error
    assert r.media.kind == "video" and r.media.format == "MOV" and r.faces


@pytest.mark.parametrize(
    ("fmt", "codec"),
    [
        ("matroska", CODEC),
        ("webm", "libvpx-vp9"),
        ("webm", "libvpx"),  # VP8
        ("mov", CODEC),
        ("mp4", "libx265"),  # HEVC, what iPhones record
        ("mp4", "libsvtav1"),  # AV1
    ],
)
def test_other_containers_and_codecs_are_sampled_the_same_way(
    screener: Screener, fmt: str, codec: str
) -> None:
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV wheel has no {codec} encoder")
    r = screener.screen(clip(timeline(2 * FPS, lambda i: True), fmt=fmt, codec=codec))
    assert r.ok and r.media.kind == "video", r.error
    assert r.media.frames_screened == 2 and len(r.faces) == 1


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animations_are_screened_frame_by_frame(screener: Screener, fmt: str) -> None:
    frames = [Image.fromarray(f) for f in timeline(6, lambda i: i == 5)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=200, loop=0)
    r = screener.screen(data)
    assert r.ok and (r.media.kind, r.media.format) == ("animation", fmt), r.error
    assert r.media.frames_screened == 6 and r.media.duration_s == pytest.approx(1.2)
    assert len(r.faces) == 1 and r.faces[0].timestamp_ms == pytest.approx(1000)


def test_animation_limits_and_time_budget_keep_their_error_codes() -> None:
    """A later frame over the frame limit is too_large, a spent budget a timeout: both used to
    come out as 'corrupt' (they are ValueError / OSError too)."""
    frames = [Image.fromarray(f) for f in timeline(4, lambda i: True)]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    h, w = timeline(1, lambda i: True)[0].shape[:2]
    with Screener(threads=1, video_limits=VideoLimits(max_pixels=w * h)) as s:
        assert s.screen(gif).ok  # the limit is the frames' own size: allowed
    from test_hostile import _gif_image_descriptors

    grown = bytearray(gif)  # the second frame claims 3000x3000 px: the canvas grows on seek
    at = _gif_image_descriptors(gif)[1]
    grown[at + 5 : at + 9] = (3000).to_bytes(2, "little") * 2
    with Screener(threads=1, video_limits=VideoLimits(max_pixels=w * h * 4)) as s:
        r = s.screen(bytes(grown))
        assert r.error is not None and r.error.code == "too_large", r.error
        assert "frame of 3000x3000" in r.error.message
    with Screener(threads=1, sampling=SamplingOptions(time_budget_s=1e-9)) as s:
        r = s.screen(gif)
        assert r.error is not None and r.error.code == "timeout", r.error


def test_still_gif_is_screened_as_a_photo(screener: Screener) -> None:
    r = screener.screen(encode(Image.fromarray(scene(True)), "GIF"))
    assert r.ok and r.media.kind == "image" and len(r.faces) == 1


def audio_only() -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        s = out.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
        frame.sample_rate = 44100
        for i in range(10):
            frame.pts = i * 1024
            out.mux(s.encode(frame))
        out.mux(s.encode())
    return buf.getvalue()


def test_audio_track_is_ignored(screener: Screener) -> None:
    """A phone clip has sound first in its file (stream 0); the video is screened the same."""
    frames = timeline(2 * FPS, lambda i: True)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        a = out.add_stream("aac", rate=44100)
        v = out.add_stream(CODEC, rate=FPS)
        v.width, v.height, v.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        v.codec_context.gop_size = FPS
        sound = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
        sound.sample_rate = 44100
        for i in range(2 * 44100 // 1024):
            sound.pts = i * 1024
            out.mux(a.encode(sound))
        for i, rgb in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            picture.pts = i
            out.mux(v.encode(picture))
        out.mux(a.encode())
        out.mux(v.encode())
    with_sound = screener.screen(buf.getvalue())
    silent = screener.screen(clip(frames))
    assert with_sound.ok, with_sound.error
    assert with_sound.media.frames_screened == silent.media.frames_screened == 2
    assert len(with_sound.faces) == len(silent.faces) == 1


def absurd_duration() -> bytes:
    """A Matroska clip whose Segment Duration is rewritten to 10^12 ms (31 years)."""
    data = bytearray(clip(timeline(FPS, lambda i: False), fmt="matroska"))
    at = data.find(b"\x44\x89\x88")  # Duration, an 8-byte float
    data[at + 3 : at + 11] = struct.pack(">d", 1e12)
    return bytes(data)


def truncated(faststart: bool) -> bytes:
    muxer = {"movflags": "faststart"} if faststart else {}
    data = clip(timeline(3 * FPS, lambda i: True), **muxer)
    return data[: len(data) * 2 // 3]


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (audio_only, "unsupported"),
        (absurd_duration, "too_large"),
        (lambda: truncated(faststart=False), "corrupt"),  # the index (moov) is lost
        (lambda: truncated(faststart=True), "corrupt"),  # the index lists missing keyframes
        (lambda: clip(timeline(FPS, lambda i: False))[:200], "corrupt"),
    ],
    ids=["no-video-stream", "absurd-duration", "truncated", "truncated-faststart", "header-only"],
)
def test_bad_videos_get_a_typed_error_and_the_unscreenable_verdict(
    screener: Screener, make: Callable[[], bytes], code: str
) -> None:
    r = screener.screen(make())
    assert r.error is not None and r.error.code == code, r.error
    assert r.verdict == "hold"  # frames screened before the damage keep their signals


def test_limits_and_time_budget_are_enforced_before_decoding(three_seconds: bytes) -> None:
    small = VideoLimits(max_side=256)
    no_time = SamplingOptions(time_budget_s=1e-9)
    with Screener(ScreenerOptions(threads=1, video_limits=small)) as s:
        assert s.screen(three_seconds).error.code == "too_large"  # type: ignore[union-attr]
    with Screener(ScreenerOptions(threads=1, sampling=no_time)) as s:
        assert s.screen(three_seconds).error.code == "timeout"  # type: ignore[union-attr]


def test_hold_stops_the_video_early(three_seconds: bytes) -> None:
    strict = Policy.from_toml(
        '[child_safety]\nminor = 0.5\nsexual = 0.2\n[[rules]]\nverdict = "hold"\n'
        "when = { sexual = 0.0 }\n"
    )
    with Screener(ScreenerOptions(threads=1, policy=strict)) as s:
        r = s.screen(three_seconds)
    assert r.verdict == "hold" and r.media.frames_screened == 1


def test_screen_many_mixes_photos_videos_and_animations(
    screener: Screener, three_seconds: bytes
) -> None:
    gif = [Image.fromarray(f) for f in timeline(3, lambda i: True)]
    items = [
        IMAGES / "astronaut.jpg",
        three_seconds,
        encode(gif[0], "GIF", save_all=True, append_images=gif[1:]),
    ]
    kinds = [r.media.kind for r in screener.screen_many(items)]
    assert kinds == ["image", "video", "animation"]


def test_live_mode_keeps_a_running_verdict_per_stream(screener: Screener) -> None:
    with_face, without = scene(True, (1280, 960)), scene(False, (1280, 960))
    with screener.stream("cam") as cam:
        first = cam.screen_frame(without, 0)
        assert first.media.kind == "stream" and first.faces == ()
        assert first.media.frames_screened == 1
        second = cam.screen_frame(with_face, 33.3)
        third = cam.screen_frame(without, 66.6)
        assert third.media.frames_screened == 3 and len(third.faces) == 1
        assert third.faces[0].timestamp_ms == pytest.approx(33.3) and second.faces
        assert (third.media.width, third.media.height) == (1280, 960)
        with pytest.raises(ValueError, match="not after"):
            cam.screen_frame(without, 50)
    with screener.stream("cam") as cam:  # a new stream starts a new running verdict
        assert cam.screen_frame(without, 0).faces == ()


def test_aggregator_keeps_the_worst_of_each_signal_and_its_time() -> None:
    agg = Aggregator(Policy.default(), top_k=2)
    face = Face((0, 0, 1, 1), 0.9, 12.0, 0.7)
    agg.add(0, Signals({"sexual": 0.1, "minor": None, "violence": None}, (), {"classify": 1}))
    agg.add(500, Signals({"sexual": 0.5, "minor": 0.7, "violence": None}, (face,), {}))
    agg.add(900, Signals({"sexual": 0.3, "minor": None, "violence": None}, (), {"classify": 2}))
    assert agg.scores == {"sexual": 0.5, "minor": 0.7, "violence": None}
    assert agg.worst_ms == {"sexual": 500, "minor": 500} and agg.timing_ms == {"classify": 3}
    assert agg.decision.verdict == "hold" and agg.settled, "minor with sexual content"
    assert [e.timestamp_ms for e in agg.evidence] == [500, 900]
    assert agg.faces[0].timestamp_ms == 500


def test_sampling_plans() -> None:
    assert pick_evenly(3, 64) == [0, 1, 2]
    assert pick_evenly(100, 5) == [0, 25, 50, 74, 99]
    assert pick_evenly(10, 1) == [0]
    assert plan_fill([0.0], 6.0, 2.0, 10) == [1.5, 3.0, 4.5]
    assert plan_fill([0.0], 6.0, 2.0, 1) == [3.0]
    assert plan_fill([0.0, 1.0, 2.0], 3.0, 2.0, 10) == []


def test_decoded_frames_are_freed_as_the_clip_is_screened(screener: Screener) -> None:
    """No decoded frame outlives its screening in a reference cycle (reading every frame's
    side data once kept each 1080p frame alive until the garbage collector ran)."""
    data = clip(timeline(4 * FPS, lambda i: True), gop=2)  # 20 keyframes
    gc.collect()
    gc.disable()
    try:
        r = screener.screen(data)
        alive = sum(isinstance(o, av.VideoFrame) for o in gc.get_objects())
    finally:
        gc.enable()
    assert r.ok and r.media.frames_screened == 20
    assert alive <= 1, f"{alive} decoded frames kept alive"


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="threads counted in /proc")
def test_screened_clips_leave_no_decoder_thread_behind(screener: Screener) -> None:
    """FFmpeg's decoding threads end with their clip. The frame ``_orientation`` reads side data
    from stays in a reference cycle that held the decoder (two threads a clip, piling up until
    the collector ran: an isolated worker's address space reached its limit in a soak). With
    automatic collection off, only ``VideoClip.close`` can free it."""
    data = clip(timeline(2 * FPS, lambda i: i == 0))
    screener.screen(data)  # warm-up: the interpreters' own threads exist from here on
    gc.collect()
    before = len(os.listdir("/proc/self/task"))
    gc.disable()
    try:
        for _ in range(3):
            assert screener.screen(data).ok
        after = len(os.listdir("/proc/self/task"))
    finally:
        gc.enable()
    assert after == before, f"{after - before} threads left by 3 clips"
