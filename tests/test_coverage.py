"""Every picture an input shows is screened, or the input is unscreenable (fail closed).

Every video stream and cover picture, every page of a multi-page still and its EXIF thumbnail;
limits on decoded frames, not only headers; the time budget from the start of the item; pixels
(numpy arrays, PIL images) accepted, anything else a ``TypeError``. Media are made here, the
face comes from the committed astronaut photo, and the default bundle screens them for real.
"""

from __future__ import annotations

import io
import os
import struct
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import IMAGES, astronaut, encode
from PIL import ExifTags, Image, features
from test_video import CODEC, FPS, clip, scene, timeline

from edge_screen import ImageLimits, SamplingOptions, Screener, ScreenerOptions, VideoLimits
from edge_screen.prepare import prepare

pytestmark = pytest.mark.filterwarnings("ignore:::PIL")


def _add_track(out: av.container.OutputContainer, frames: list[np.ndarray]) -> av.VideoStream:
    s = out.add_stream(CODEC, rate=FPS)
    s.height, s.width = frames[0].shape[:2]
    s.pix_fmt = "yuv420p"
    s.codec_context.gop_size = FPS
    return s


def tracks(*streams: list[np.ndarray], fmt: str = "matroska") -> bytes:
    """One container with a video stream per list of frames, in that order."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        added = [(_add_track(out, frames), frames) for frames in streams]
        for s, frames in added:
            for i, rgb in enumerate(frames):
                picture = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                picture.pts = i
                out.mux(s.encode(picture))
            out.mux(s.encode())
    return buf.getvalue()


def faceless(n: int = FPS, size: tuple[int, int] = (160, 120)) -> list[np.ndarray]:
    return [scene(False, size)] * n


def face_jpeg(side: int = 240) -> bytes:
    return encode(astronaut().resize((side, side)), "JPEG", quality=90)


# --- every video stream ---------------------------------------------------------------------


def test_face_on_the_second_video_track_behind_a_decoy_first_track_is_found(
    screener: Screener,
) -> None:
    data = tracks(faceless(), [scene(True)] * FPS)
    r = screener.screen(data)
    assert r.ok, r.error
    assert len(r.faces) == 1, "the 480x360 second track shows a face"
    assert r.media.frames_screened >= 2, "frames of both tracks"
    x0, y0, x1, y1 = r.faces[0].box  # in the second track's pixels, not the first's 160x120
    assert 150 < x0 < x1 < 300 and 50 < y0 < y1 < 160, r.faces[0].box


def with_cover(frames: list[np.ndarray], fmt: str = "matroska") -> bytes:
    """A clip of ``frames`` with the astronaut as its cover picture: a Matroska attachment, or
    an MP4 ``covr`` (a video stream with the ``attached_pic`` disposition)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        s = _add_track(out, frames)
        if fmt == "matroska":
            out.add_attachment("cover.jpg", "image/jpeg", face_jpeg())
        else:
            cover = out.add_stream("mjpeg", rate=1)
            cover.width = cover.height = 240
            cover.pix_fmt = "yuvj420p"
            cover.disposition = av.stream.Disposition.attached_pic
        for i, rgb in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            picture.pts = i
            out.mux(s.encode(picture))
        out.mux(s.encode())
        if fmt == "mp4":
            pkt = av.Packet(face_jpeg())
            pkt.stream, pkt.pts, pkt.dts = cover, 0, 0
            out.mux(pkt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["matroska", "mp4"])
def test_cover_picture_with_a_face_is_screened(screener: Screener, fmt: str) -> None:
    data = with_cover(faceless(), fmt)
    with av.open(io.BytesIO(data)) as c:  # the cover is a video stream to FFmpeg
        assert any(s.disposition & av.stream.Disposition.attached_pic for s in c.streams.video)
    r = screener.screen(data)
    assert r.ok, r.error
    assert len(r.faces) == 1 and r.media.frames_screened >= 2


def test_one_frames_generator_gives_covers_first_then_each_stream_with_its_share() -> None:
    """The ``Clip`` protocol is unchanged: one ``frames()``; each frame says its stream
    (``part``) and that stream's upright size, for face boxes."""
    from edge_screen.video import VideoClip

    data = tracks(faceless(4 * FPS), faceless(4 * FPS, (96, 64)))
    buf = io.BytesIO()
    with av.open(io.BytesIO(data)) as src, av.open(buf, "w", format="matroska") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams.video}
        out.add_attachment("cover.jpg", "image/jpeg", face_jpeg())
        for pkt in src.demux():
            if pkt.dts is not None:
                pkt.stream = streams[pkt.stream.index]
                out.mux(pkt)
    clip = VideoClip(buf.getvalue(), "MATROSKA", VideoLimits(), 512)
    try:
        frames = list(clip.frames(SamplingOptions(max_frames=4), time.perf_counter() + 30))
        info = clip.info
    finally:
        clip.close()
    assert (info.streams, info.covers, info.width, info.height) == (3, 1, 160, 120)
    assert [f.part for f in frames] == [2, 0, 0, 1, 1], "the cover, then 4 // 2 per stream"
    assert [(f.width, f.height) for f in frames] == [(240, 240)] + [(160, 120)] * 2 + [(96, 64)] * 2
    assert clip.frames_decoded == 5


def audio(fmt: str, cover: bool) -> bytes:
    """A second of silence in ``fmt`` (mp3, flac), with the astronaut as its cover picture."""
    codec = {"mp3": "libmp3lame", "flac": "flac"}[fmt]
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV wheel has no {codec} encoder")
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        a = out.add_stream(codec, rate=44100)
        if cover:
            picture = out.add_stream("mjpeg", rate=1)
            picture.width = picture.height = 240
            picture.pix_fmt = "yuvj420p"
            picture.disposition = av.stream.Disposition.attached_pic
            pkt = av.Packet(face_jpeg())
            pkt.stream, pkt.pts, pkt.dts = picture, 0, 0
            out.mux(pkt)
        layout = ("s16", np.int16) if fmt == "flac" else ("fltp", np.float32)
        sound = av.AudioFrame.from_ndarray(np.zeros((1, 1152), layout[1]), layout[0], "mono")
        sound.sample_rate = 44100
        for i in range(38):
            sound.pts = i * 1152
            out.mux(a.encode(sound))
        out.mux(a.encode())
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["mp3", "flac"])
def test_cover_picture_of_an_audio_file_is_screened(screener: Screener, fmt: str) -> None:
    r = screener.screen(audio(fmt, cover=True))
    assert r.ok, r.error
    assert len(r.faces) == 1 and r.media.frames_screened == 1
    bare = screener.screen(audio(fmt, cover=False))
    assert bare.error is not None and bare.error.code == "unsupported", bare.error


def test_more_video_streams_than_the_limit_is_too_large(screener: Screener) -> None:
    small = faceless(2, (32, 24))
    r = screener.screen(tracks(*[small] * 9))  # one over the default limit
    assert r.error is not None and r.error.code == "too_large", r.error
    assert "9 video streams" in r.error.message and r.verdict == "hold"
    assert VideoLimits().max_streams == 8
    with Screener(threads=1, video_limits=VideoLimits(max_streams=1)) as s:
        r = s.screen(tracks(small, small))
        assert r.error is not None and r.error.code == "too_large", r.error


def test_second_track_in_a_codec_nothing_here_decodes_makes_the_video_unsupported(
    screener: Screener,
) -> None:
    data = tracks(faceless(), faceless())
    with av.open(io.BytesIO(data)) as c:
        codec_id = {"mpeg4": b"V_MPEG4/ISO/ASP", "h264": b"V_MPEG4/ISO/AVC"}[
            c.streams.video[1].codec_context.name
        ]
    first = data.index(codec_id)
    second = data.index(codec_id, first + 1)
    broken = data[:second] + b"V_ZZZZ/ISO/ZZZ"[: len(codec_id)].ljust(len(codec_id), b"Z")
    broken += data[second + len(codec_id) :]
    r = screener.screen(broken)
    assert r.error is not None and r.error.code == "unsupported", r.error
    assert "stream 1" in r.error.message and r.verdict == "hold"


def test_second_track_without_a_decodable_frame_makes_the_video_corrupt(
    screener: Screener,
) -> None:
    buf = io.BytesIO()
    frames = faceless()
    with av.open(buf, "w", format="matroska") as out:
        s = _add_track(out, frames)
        _add_track(out, frames)  # declared, never written
        for i, rgb in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            picture.pts = i
            out.mux(s.encode(picture))
        out.mux(s.encode())
    r = screener.screen(buf.getvalue())
    assert r.error is not None and r.error.code == "corrupt", r.error
    assert "stream 1" in r.error.message and r.verdict == "hold"


def test_picture_subtitle_stream_makes_the_video_unsupported(screener: Screener) -> None:
    buf = io.BytesIO()
    frames = faceless(3)
    with av.open(buf, "w", format="matroska") as out:
        s = _add_track(out, frames)
        out.add_stream("dvdsub")  # DVD subtitles are pictures drawn over the video
        for i, rgb in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            picture.pts = i
            out.mux(s.encode(picture))
        out.mux(s.encode())
    r = screener.screen(buf.getvalue())
    assert r.error is not None and r.error.code == "unsupported", r.error
    assert "subtitle" in r.error.message


# --- limits on decoded frames -----------------------------------------------------------


def resolution_change(big: tuple[int, int]) -> bytes:
    """A Matroska MJPEG stream whose header says 160x120; its fourth frame is ``big``."""
    sizes = [(160, 120)] * 3 + [big] + [(160, 120)]
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        s = out.add_stream("mjpeg", rate=FPS)
        s.width, s.height, s.pix_fmt = 160, 120, "yuvj420p"
        for i, size in enumerate(sizes):
            pkt = av.Packet(encode(Image.fromarray(scene(False, size)), "JPEG"))
            pkt.stream, pkt.pts, pkt.dts = s, i, i
            pkt.time_base = Fraction(1, FPS)
            pkt.is_keyframe = True
            out.mux(pkt)
    return buf.getvalue()


def test_frame_larger_than_the_limits_mid_stream_is_too_large() -> None:
    data = resolution_change((1280, 960))
    with av.open(io.BytesIO(data)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (160, 120)
    with Screener(threads=1, video_limits=VideoLimits(max_side=1000)) as s:
        r = s.screen(data)
    assert r.error is not None and r.error.code == "too_large", r.error
    assert "decoded frame of 1280x960" in r.error.message and r.verdict == "hold"


def test_page_larger_than_the_limits_is_too_large(screener: Screener) -> None:
    first = Image.new("RGB", (512, 512), (120, 120, 120))
    tif = encode(first, "TIFF", save_all=True, append_images=[Image.new("RGB", (3000, 16))])
    with Screener(threads=1, image_limits=ImageLimits(max_side=2000)) as s:
        r = s.screen(tif)
    assert r.error is not None and r.error.code == "too_large", r.error
    assert "page 2 of 3000x16" in r.error.message


# --- every page of a still --------------------------------------------------------------


def blank() -> Image.Image:
    return Image.fromarray(scene(False, (512, 512)))


@pytest.mark.parametrize("fmt", ["TIFF", "MPO"])
def test_face_on_page_two_is_found(screener: Screener, fmt: str) -> None:
    data = encode(blank(), fmt, save_all=True, append_images=[astronaut()])
    assert screener.screen(encode(blank(), fmt)).faces == (), "page 1 alone shows no face"
    r = screener.screen(data)
    assert r.ok, r.error
    assert len(r.faces) == 1 and r.media.frames_screened == 2
    assert r.media.kind == "image" and (r.media.width, r.media.height) == (512, 512)


def test_face_on_the_second_image_of_a_heif_is_found(screener: Screener) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    try:
        data = encode(blank(), "HEIF", save_all=True, append_images=[astronaut()])
    except (OSError, ValueError, RuntimeError) as exc:
        pytest.skip(f"no HEIF encoder here: {exc}")
    r = screener.screen(data)
    assert r.ok, r.error
    assert len(r.faces) == 1 and r.media.frames_screened == 2


def test_more_pages_than_the_limit_is_too_large(screener: Screener) -> None:
    page = Image.new("RGB", (64, 48))
    over = encode(page, "TIFF", save_all=True, append_images=[page] * 16)  # 17 pages
    r = screener.screen(over)
    assert r.error is not None and r.error.code == "too_large", r.error
    assert "pages" in r.error.message and r.verdict == "hold"
    assert ImageLimits().max_pages == 16
    three = encode(page, "TIFF", save_all=True, append_images=[page, page])
    with Screener(threads=1, image_limits=ImageLimits(max_pages=2)) as s:
        assert s.screen(three).error.code == "too_large"  # type: ignore[union-attr]
    with Screener(threads=1, image_limits=ImageLimits(max_pages=3)) as s:
        r = s.screen(three)
        assert r.ok and r.media.frames_screened == 3, r.error


def exif_with_thumbnail(thumb: bytes, orientation: int = 1) -> bytes:
    """An EXIF block (little-endian TIFF) whose IFD1 holds ``thumb``, a JPEG thumbnail."""
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHII", 0x0112, 3, 1, orientation)
    ifd0 += struct.pack("<I", 26)
    at = 26 + 2 + 3 * 12 + 4
    ifd1 = struct.pack("<H", 3)
    ifd1 += struct.pack("<HHII", 0x0103, 3, 1, 6)  # Compression: JPEG
    ifd1 += struct.pack("<HHII", 0x0201, 4, 1, at)  # JPEGInterchangeFormat
    ifd1 += struct.pack("<HHII", 0x0202, 4, 1, len(thumb))  # ...Length
    ifd1 += struct.pack("<I", 0)
    return b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd0 + ifd1 + thumb


def test_exif_thumbnail_is_screened_as_one_more_page(screener: Screener) -> None:
    """A file browser shows the thumbnail: here it is swapped for a face the photo lacks."""
    data = encode(blank(), "JPEG", exif=exif_with_thumbnail(face_jpeg()))
    im = Image.open(io.BytesIO(data))
    assert im.getexif().get_ifd(ExifTags.IFD.IFD1), "Pillow reads the thumbnail's IFD1"
    r = screener.screen(data)
    assert r.ok, r.error
    assert len(r.faces) == 1 and r.media.frames_screened == 2 and r.media.format == "JPEG"
    damaged = encode(blank(), "JPEG", exif=exif_with_thumbnail(face_jpeg()[:200]))
    r = screener.screen(damaged)
    assert r.error is not None and r.error.code == "corrupt", "a broken thumbnail fails closed"


def test_exif_thumbnail_of_the_second_picture_of_an_mpo_is_screened(screener: Screener) -> None:
    second = blank()
    second.encoderinfo = {"exif": exif_with_thumbnail(face_jpeg())}  # its own APP1
    data = encode(blank(), "MPO", save_all=True, append_images=[second])
    r = screener.screen(data)
    assert r.ok, r.error
    assert len(r.faces) == 1 and r.media.frames_screened == 3


def test_exif_thumbnail_is_turned_upright_with_its_picture(screener: Screener) -> None:
    """A camera held sideways stores picture and thumbnail on their side (orientation 6)."""
    stored = astronaut().resize((240, 240)).transpose(Image.Transpose.ROTATE_90)
    sideways = encode(stored, "JPEG", quality=90)
    main = blank().transpose(Image.Transpose.ROTATE_90)
    data = encode(main, "JPEG", exif=exif_with_thumbnail(sideways, orientation=6))
    r = screener.screen(data)
    assert r.ok and r.media.frames_screened == 2, r.error
    assert len(r.faces) == 1, "the thumbnail's face, upright"


def test_thumbnails_of_a_heif_are_screened(screener: Screener) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    try:
        data = encode(astronaut(), "HEIF", thumbnails=[128])
    except (OSError, ValueError, RuntimeError) as exc:
        pytest.skip(f"no HEIF encoder here: {exc}")
    r = screener.screen(data)
    assert r.ok, r.error
    assert r.media.frames_screened == 2 and len(r.faces) == 1, "the image and its thumbnail"


# --- the time budget covers hashing ----------------------------------------------------------


class SlowFile(io.BytesIO):
    """A seekable binary file whose large reads take 0.1 s each (a slow SD card)."""

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size >= 1 << 20:
            time.sleep(0.1)
        return super().read(size)


def test_hashing_a_video_counts_against_the_time_budget() -> None:
    """20 MiB hashed in 2 s against a 1 s budget: the budget ran out before a frame decoded
    (it used to start after the hash)."""
    video = clip(timeline(FPS, lambda i: True), gop=1000)
    padded = video + struct.pack(">I", 20 << 20) + b"free" + bytes((20 << 20) - 8)
    opts = ScreenerOptions(threads=1, sampling=SamplingOptions(time_budget_s=1.0))
    with Screener(opts) as s:
        assert s.screen(padded).ok, "the clip itself screens within the budget"
        r = s.screen(SlowFile(padded))
    assert r.error is not None and r.error.code == "timeout", r.error
    assert r.verdict == "hold"


def test_an_item_prepared_ahead_keeps_its_budget_while_it_waits() -> None:
    """screen_many prepares the next item while this one is screened: the wait must not count
    against the next one's budget (only prepare's own time does), or a queue of long videos
    would time out one after the other."""
    opts = ScreenerOptions(threads=1, sampling=SamplingOptions(time_budget_s=1.0))
    with Screener(opts) as s:
        p = prepare(clip(timeline(3, lambda i: False)), opts)
        time.sleep(1.2)  # waits longer than the whole budget, as behind a slow item
        r = s._pipeline.run(p, s._current(), time.perf_counter())
    assert r.ok, r.error


# --- pixels in, and what is not an input -----------------------------------------------------


def test_numpy_arrays_and_pil_images_are_screened_as_a_decoded_photo(screener: Screener) -> None:
    rgb = np.asarray(astronaut())
    photo = screener.screen(IMAGES / "astronaut.jpg")
    for pixels in (rgb, astronaut(), rgb[:, :, ::-1].copy()[:, :, ::-1]):
        r = screener.screen(pixels)
        assert r.ok and r.media.kind == "image" and r.sha256 is None, r.error
        assert len(r.faces) == len(photo.faces) == 1
        assert r.signals["sexual"] == pytest.approx(photo.signals["sexual"], abs=1e-6)
    grey = np.asarray(astronaut().convert("L"))
    rgba = np.asarray(astronaut().convert("RGBA"))
    for pixels in (grey, grey[:, :, None], rgba):
        r = screener.screen(pixels)
        assert r.ok and len(r.faces) == 1, (pixels.shape, r.error)
    huge = np.zeros((1, 40_000, 3), np.uint8)
    assert screener.screen(huge).error.code == "too_large"  # type: ignore[union-attr]


def test_every_frame_and_page_of_a_pil_image_is_screened(screener: Screener) -> None:
    tif = Image.open(
        io.BytesIO(encode(blank(), "TIFF", save_all=True, append_images=[astronaut()]))
    )
    r = screener.screen(tif)
    assert r.ok and len(r.faces) == 1 and r.media.frames_screened == 2, r.error
    assert tif.tell() == 0 and tif.load() is not None, "the caller's image is left open"
    frames = [Image.fromarray(f) for f in timeline(6, lambda i: i == 5)]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200)
    r = screener.screen(Image.open(io.BytesIO(gif)))
    assert r.ok and r.media.kind == "animation" and len(r.faces) == 1, r.error


def test_what_screen_cannot_take_is_a_type_error(screener: Screener, tmp_path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes((IMAGES / "astronaut.jpg").read_bytes())

    class Name(str):
        pass

    class Data(bytes):
        pass

    data = path.read_bytes()
    for fine in (Name(path), Data(data), bytearray(data), memoryview(data), str(path)):
        assert screener.screen(fine).ok, type(fine)
    text = open(path, encoding="latin-1")  # noqa: SIM115
    wrong = [
        None,
        3,
        2.5,
        True,
        [data],
        {"path": str(path)},
        text,
        io.StringIO("not bytes"),
        np.zeros((8, 8, 3), np.float32),
        np.frombuffer(data, np.uint8),  # encoded bytes as an array: pass .tobytes()
        np.zeros((8, 8, 2), np.uint8),
        np.zeros((0, 8, 3), np.uint8),
    ]
    try:
        for bad in wrong:
            with pytest.raises(TypeError):
                screener.screen(bad)  # type: ignore[arg-type]
    finally:
        text.close()
    assert os.path.exists(path)


# --- AVIF collections: only the primary decodes here ------------------------------------------


@pytest.mark.parametrize("thumbnail", [False, True])
def test_an_avif_with_more_pictures_than_its_primary_is_unsupported(
    screener: Screener, thumbnail: bool
) -> None:
    """Pillow decodes an AVIF's primary image only: a second picture of a collection, or a
    thumbnail a file browser shows, was left unscreened (`allow` on the primary alone)."""
    from avif_items import add_item

    from edge_screen.isobmff import shown_items

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF codec")
    one = encode(astronaut(), "AVIF")
    assert shown_items(one) is not None and screener.screen(one).ok
    two = add_item(one, thumb_of=1 if thumbnail else None)
    assert Image.open(io.BytesIO(two)).size == (512, 512), "still a readable AVIF"
    r = screener.screen(two)
    assert r.verdict == "hold" and r.error is not None and r.error.code == "unsupported"
    assert "not screened in part" in r.error.message


def _avif_sequence(frames: list[Image.Image]) -> bytes:
    buf = io.BytesIO()
    frames[0].save(buf, "AVIF", save_all=True, append_images=frames[1:], duration=500)
    return buf.getvalue()


def test_an_avif_sequence_screens_its_primary_still_beside_the_track(screener: Screener) -> None:
    """An AVIF sequence carries a primary still item that image viewers and file browsers show
    instead of the track: a decoy track (a cup, a rocket) must not hide a face put there. The
    primary was left to whatever the video decoder exposed; it is now decoded as a still and
    screened as a cover."""
    from avif_items import sequence_with_other_primary

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF codec")
    cup, rocket = (Image.open(IMAGES / n).convert("RGB").resize((256, 256))
                   for n in ("coffee.jpg", "rocket.jpg"))
    face = astronaut().resize((256, 256))
    decoy = sequence_with_other_primary(_avif_sequence([cup, rocket, cup]),
                                        encode(face, "AVIF"))
    from edge_screen.isobmff import as_still

    shown = Image.open(io.BytesIO(as_still(decoy)))
    assert getattr(shown, "n_frames", 1) == 1 and shown.size == (256, 256)
    r = screener.screen(decoy)
    assert r.ok and r.media.kind == "video" and r.media.covers == 1
    assert len(r.faces) == 1, "the face in the primary item"


def test_an_avif_sequence_behind_a_still_brand_screens_its_track(screener: Screener) -> None:
    """The major brand chose the decoder: 'avif' instead of 'avis' sent a sequence to the still
    decoder, which showed the primary (a cup) and skipped the track (faces) (attack review)."""
    from avif_items import sequence_with_other_primary

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF codec")
    cup = Image.open(IMAGES / "coffee.jpg").convert("RGB").resize((256, 256))
    faces = _avif_sequence([astronaut().resize((256, 256))] * 3)
    decoy = sequence_with_other_primary(faces, encode(cup, "AVIF"))
    decoy = decoy[:8] + b"avif" + decoy[12:]
    r = screener.screen(decoy)
    assert r.ok and r.media.kind == "video" and r.media.covers == 1
    assert r.faces, "the faces of the track were screened"


@pytest.mark.parametrize("major", [b"msf1", b"heic", b"mif1"])
def test_a_heif_with_a_track_screens_the_track_and_the_primary(
    screener: Screener, major: bytes
) -> None:
    """HEIF sequence brands went to the still decoder too: an HEVC primary (a cup) and an AV1
    track of faces was screened as the cup alone (attack review)."""
    pillow_heif = pytest.importorskip("pillow_heif")
    if not features.check("avif") or not pillow_heif.libheif_info()["HEIF"]:
        pytest.skip("needs an AVIF encoder and an HEVC encoder")
    from bmff import still_plus_track

    pillow_heif.register_heif_opener()
    cup = Image.open(IMAGES / "coffee.jpg").convert("RGB").resize((256, 256))
    heic = encode(cup, "HEIF", quality=80)
    faces = _avif_sequence([astronaut().resize((256, 256))] * 3)
    data = still_plus_track(heic, faces, major, [b"msf1", b"mif1", b"heic", b"iso8"])
    r = screener.screen(data)
    assert r.verdict != "allow" or r.faces, (r.verdict, r.media)
    if r.ok:
        assert r.media.covers == 1 and r.faces


def test_an_avif_sequence_with_more_items_than_its_primary_is_unsupported(
    screener: Screener,
) -> None:
    """The item check ran on stills only: a sequence went to the video decoder unchecked."""
    from avif_items import add_item

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF codec")
    sequence = _avif_sequence([astronaut().resize((128, 128))] * 2)
    assert screener.screen(sequence).ok
    r = screener.screen(add_item(sequence))
    assert r.verdict == "hold" and r.error is not None and r.error.code == "unsupported"


def test_a_tiff_with_sub_images_is_unsupported(screener: Screener, tmp_path: Path) -> None:
    """A face in a SubIFD of page 0 (where a DNG keeps its full image) was never decoded: the
    cat on page 0 was screened alone and allowed."""
    tifffile = pytest.importorskip("tifffile")
    cat = np.asarray(Image.open(IMAGES / "chelsea.jpg").convert("RGB"))
    path = tmp_path / "sub.tif"
    with tifffile.TiffWriter(path) as t:
        t.write(cat, subifds=1)
        t.write(np.asarray(astronaut()), subfiletype=0)
    plain = tmp_path / "plain.tif"
    Image.fromarray(cat).save(plain)
    assert screener.screen(plain).ok
    r = screener.screen(path)
    assert r.verdict == "hold" and r.error is not None and r.error.code == "unsupported"


def _one_keyframe_mkv(path: Path, live: bool) -> bytes:
    """15 s at 10 fps with a single keyframe: the cat for 2 s, then the face for 13 s."""
    cat = np.asarray(Image.open(IMAGES / "chelsea.jpg").convert("RGB").resize((320, 240)))
    face = np.asarray(astronaut().resize((320, 240)))
    opts = {"live": "1"} if live else {}
    with av.open(str(path), "w", format="matroska", options=opts) as out:
        s = out.add_stream(CODEC, rate=10)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        s.codec_context.gop_size = 10_000
        if CODEC == "libx264":
            s.codec_context.options = {"x264-params": "scenecut=0:keyint=10000:min-keyint=10000"}
        for i in range(150):
            f = av.VideoFrame.from_ndarray(cat if i < 20 else face, format="rgb24")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode())
    return path.read_bytes()


@pytest.mark.parametrize("trick", ["duration says 1 s", "no duration, no index"])
def test_a_video_is_sampled_to_its_real_end_not_its_header(
    screener: Screener, tmp_path: Path, trick: str
) -> None:
    """A Matroska header claiming 1 s for 15 s of video, or a live recording with no duration
    and no cues (a browser's MediaRecorder writes those): only the first frame was screened."""
    data = bytearray(_one_keyframe_mkv(tmp_path / "v.mkv", live=trick.startswith("no")))
    if trick.startswith("duration"):
        at = data.find(b"\x44\x89")  # Segment Duration (ms, a float)
        size = data[at + 2]
        assert size in (0x84, 0x88)
        data[at + 3 : at + 3 + (size & 15)] = struct.pack(">d" if size == 0x88 else ">f", 1000.0)
        with av.open(io.BytesIO(bytes(data))) as c:
            assert c.duration / 1e6 < 2, "the header lies"
    r = screener.screen(bytes(data))
    assert r.ok and r.faces, (r.media.frames_screened, r.media.duration_s)
    assert r.media.duration_s == pytest.approx(15.0, abs=0.2)


def test_an_animation_is_sampled_by_playback_time_too(screener: Screener) -> None:
    """127 frames alternating a 20 ms cat and a 2 s face: evenly spaced by index, all 64 picks
    were cats, though the face is on screen 99% of the time."""
    cat = Image.open(IMAGES / "chelsea.jpg").convert("RGB").resize((240, 180))
    face = astronaut().resize((240, 180))
    n = 127
    frames = [cat if i % 2 == 0 else face for i in range(n)]
    delays = [20 if i % 2 == 0 else 2000 for i in range(n)]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=delays)
    r = screener.screen(gif)
    assert r.ok and r.media.kind == "animation" and r.media.frames_screened <= 64
    assert r.faces, "the face shown 99% of the time was screened"


@pytest.mark.parametrize("ink", ["black", "white"])
def test_a_picture_in_the_alpha_channel_is_screened_on_light_and_dark(
    screener: Screener, ink: str
) -> None:
    """A PNG whose colours are all one ink and whose alpha draws a face shows the face on a
    viewer's white (black ink) or dark (white ink) background; alpha was dropped: 0 faces."""
    grey = np.asarray(astronaut().convert("L"), dtype=np.uint8)
    h, w = grey.shape
    alpha = 255 - grey if ink == "black" else grey
    rgba = np.dstack([np.full((h, w, 3), 0 if ink == "black" else 255, np.uint8), alpha])
    r = screener.screen(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert r.ok and r.faces, "the face drawn in the alpha channel was screened"
    assert r.media.pages == 2
    opaque = screener.screen(encode(astronaut().convert("RGBA"), "PNG"))
    assert opaque.ok and opaque.media.pages == 1, "an opaque RGBA picture is one page"


@pytest.mark.parametrize(("ink", "fmt"), [("black", "PNG"), ("white", "PNG"), ("black", "WEBP")])
def test_a_picture_in_the_alpha_channel_of_an_animation_is_screened_on_light_and_dark(
    screener: Screener, ink: str, fmt: str
) -> None:
    """Animation frames dropped their alpha (stills did not): a face drawn only in the alpha of
    an APNG's or animated WebP's one-ink frames was never seen."""
    grey = np.asarray(astronaut().convert("L"), dtype=np.uint8)
    h, w = grey.shape
    alpha = 255 - grey if ink == "black" else grey
    face = Image.fromarray(np.dstack([np.full((h, w, 3), 0 if ink == "black" else 255,
                                              np.uint8), alpha]), "RGBA")
    blank = Image.new("RGBA", (w, h), (0, 0, 0, 0) if ink == "black" else (255, 255, 255, 0))
    data = encode(face, fmt, save_all=True, append_images=[blank], duration=500, lossless=True)
    r = screener.screen(data)
    assert r.ok and r.media.kind == "animation"
    assert r.faces, "the face drawn in an animation frame's alpha channel was screened"


def test_a_picture_in_the_alpha_of_a_later_tiff_page_is_screened(
    screener: Screener, tmp_path: Path
) -> None:
    """Transparency was looked for on page 0 only: an opaque cat on page 0 and a face drawn
    only in the alpha of page 2's one-ink pixels gave 0 faces."""
    grey = np.asarray(astronaut().convert("L"), dtype=np.uint8)
    h, w = grey.shape
    face = Image.fromarray(np.dstack([np.zeros((h, w, 3), np.uint8), 255 - grey]), "RGBA")
    cat = Image.open(IMAGES / "chelsea.jpg").convert("RGB")
    path = tmp_path / "pages.tif"
    cat.save(path, save_all=True, append_images=[face])
    r = screener.screen(path)
    assert r.ok and r.media.pages == 4, r.media  # both pages, each on white and on black
    assert r.faces, "the face in the alpha of page 2 was screened"


def test_a_picture_in_the_alpha_of_an_rgba_array_is_screened(screener: Screener) -> None:
    """HxWx4 arrays were screened with their alpha dropped, unlike the same pixels as a PNG."""
    grey = np.asarray(astronaut().convert("L"), dtype=np.uint8)
    h, w = grey.shape
    rgba = np.dstack([np.zeros((h, w, 3), np.uint8), 255 - grey])
    r = screener.screen(rgba)
    assert r.ok and r.faces, "the face drawn in the array's alpha was screened"
    opaque = screener.screen(np.dstack([np.asarray(astronaut()), np.full((h, w), 255, np.uint8)]))
    assert opaque.ok and opaque.media.pages == 1 and opaque.faces


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from edge_screen.bench.clip import ClipSpec, make_clip

    path = tmp_path_factory.mktemp("clip") / "face.mp4"
    make_clip(path, ClipSpec(seconds=2, fps=2, width=640, height=360))  # a face in every frame
    return path.read_bytes()


@pytest.mark.parametrize("between", [b"", b"MotionPhoto_Data"])  # Google's, Samsung's
def test_the_video_of_a_motion_photo_is_screened(
    screener: Screener, face_clip: bytes, between: bytes
) -> None:
    """A Motion Photo is a JPEG with a video after its end, which gallery apps play: only the
    JPEG was screened (a cat, `allow`, 0 faces) and the video after it never."""
    cat = encode(Image.open(IMAGES / "chelsea.jpg").convert("RGB"), "JPEG")
    assert not screener.screen(cat).faces
    r = screener.screen(cat + between + face_clip)
    assert r.ok and r.media.kind == "video" and r.media.covers == 1
    assert r.faces, "the face in the motion photo's video was screened"


def test_junk_between_jpeg_segments_does_not_hide_a_motion_photos_video(
    screener: Screener, face_clip: bytes
) -> None:
    """JPEG decoders skip bytes between segments; the marker walk stopped there, and the video
    after the JPEG went unlooked-for."""
    cat = encode(Image.open(IMAGES / "chelsea.jpg").convert("RGB"), "JPEG")
    at = 4 + struct.unpack_from(">H", cat, 4)[0]  # after the first segment (APP0)
    junk = cat[:at] + b"not a marker" + cat[at:]
    assert Image.open(io.BytesIO(junk)).size == (451, 300), "still a readable JPEG"
    r = screener.screen(junk + face_clip)
    assert r.ok and r.media.kind == "video" and r.faces


def test_a_jpeg_end_is_found_past_an_exif_thumbnail_and_plain_trailers(screener: Screener) -> None:
    """The EXIF thumbnail inside APP1 has its own end marker; bytes after the real end that hold
    no video (a maker's metadata trailer) leave the photo a photo."""
    from edge_screen.motion import embedded_video, jpeg_end

    photo = astronaut()
    thumb = encode(photo.resize((64, 64)), "JPEG")  # a whole JPEG, end marker included
    plain = encode(photo, "JPEG")
    app1 = b"Exif\x00\x00" + thumb  # inside a segment: skipped by its length, not scanned
    data = plain[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + plain[2:]
    assert jpeg_end(data) == len(data)
    trailer = data + b"SEFH" + bytes(64)
    assert jpeg_end(trailer) == len(data) and embedded_video(trailer) is None
    r = screener.screen(trailer)
    assert r.ok and r.media.kind == "image" and len(r.faces) == 1


def _exif_with_thumbnail(thumb: bytes) -> bytes:
    """TIFF-structured EXIF: IFD0 (Orientation 1) -> IFD1 pointing at a JPEG thumbnail."""
    ifd0, ifd1 = 8, 8 + 2 + 12 + 4
    data_at = ifd1 + 2 + 2 * 12 + 4
    out = b"II*\x00" + struct.pack("<I", ifd0)
    out += struct.pack("<H", 1) + struct.pack("<HHII", 0x0112, 3, 1, 1) + struct.pack("<I", ifd1)
    out += struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, data_at)
    out += struct.pack("<HHII", 0x0202, 4, 1, len(thumb)) + struct.pack("<I", 0)
    return out + thumb


@pytest.mark.parametrize("after_pixels", [False, True])
def test_a_png_exif_thumbnail_is_screened_wherever_its_chunk_is(
    screener: Screener, after_pixels: bool
) -> None:
    """An eXIf chunk after IDAT was read only once the pixels loaded, after the thumbnails had
    been looked for: a face in its thumbnail was allowed unscreened (attack review)."""
    import zlib

    exif = _exif_with_thumbnail(encode(astronaut().resize((160, 160)), "JPEG", quality=90))
    chunk = struct.pack(">I", len(exif)) + b"eXIf" + exif
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + exif))
    png = encode(Image.open(IMAGES / "coffee.jpg").convert("RGB").resize((256, 256)), "PNG")
    at = png.index(b"IEND") - 4 if after_pixels else png.index(b"IDAT") - 4
    r = screener.screen(png[:at] + chunk + png[at:])
    assert r.ok and r.media.thumbnail and len(r.faces) == 1


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_animation_frames_are_turned_upright_as_the_still_is(screener: Screener, fmt: str) -> None:
    """EXIF orientation turned a still but not an animation's frames: the same upside-down face
    with Orientation 3 was found as a PNG and missed as an APNG (attack review)."""
    upside_down = astronaut().resize((384, 384)).rotate(180)
    exif = Image.Exif()
    exif[0x0112] = 3
    kw = {"lossless": True} if fmt == "WEBP" else {}
    still = encode(upside_down, fmt, exif=exif)
    anim = encode(upside_down, fmt, exif=exif, save_all=True, duration=100, **kw,
                  append_images=[upside_down.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    assert len(screener.screen(still).faces) == 1
    r = screener.screen(anim)
    assert r.ok and r.media.kind == "animation" and r.faces


def _inverting_icc() -> bytes:
    """An ICC v2 RGB display profile whose tone curves run backwards (v -> 1 - v)."""

    def s15(x: float) -> bytes:
        return struct.pack(">i", round(x * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    curve = b"curv" + b"\0" * 4 + struct.pack(">I", 2) + struct.pack(">HH", 65535, 0)
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", 4) + b"inv\0" + b"\0" * (4 + 2 + 1 + 67)
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
            (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)), (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
            (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)), (b"rTRC", curve), (b"gTRC", curve),
            (b"bTRC", curve), (b"cprt", b"text" + b"\0" * 4 + b"x\0")]
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for sig, data in tags:
        while (offset + len(body)) % 4:
            body += b"\0"
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    head = (b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + b"\0" * 12 + b"acspAPPL"
            + b"\0" * 24 + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 48)
    rest = head + struct.pack(">I", len(tags)) + table + body
    return struct.pack(">I", 4 + len(rest)) + rest


@pytest.fixture(scope="module")
def blazeface_only() -> Iterator[Screener]:
    """BlazeFace sees no face in the astronaut's colour negative (CenterFace does): what the
    colour-profile tests below tell apart."""
    with Screener(ScreenerOptions(threads=2, faces="tiles")) as s:
        yield s


def test_a_still_is_screened_through_its_colour_profile(blazeface_only: Screener) -> None:
    """A colour negative of the face with a profile that inverts it shows the face in a
    colour-managed viewer; the raw negative was screened: 0 faces."""
    screener = blazeface_only
    negative = Image.fromarray(255 - np.asarray(astronaut()))
    assert not screener.screen(encode(negative, "PNG")).faces, "the raw negative hides it"
    r = screener.screen(encode(negative, "PNG", icc_profile=_inverting_icc()))
    assert r.ok and r.faces


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_an_animation_is_screened_through_its_colour_profile(
    blazeface_only: Screener, fmt: str
) -> None:
    """Stills and pages went through their colour profile, animation frames did not (three
    copies of the reduce step, one without it): an animated negative with an inverting profile
    hid the face a colour-managed browser shows."""
    screener = blazeface_only
    negative = Image.fromarray(255 - np.asarray(astronaut()))
    frames = [negative, negative.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    kw: dict[str, object] = {"save_all": True, "append_images": frames[1:], "duration": 100}
    if fmt == "WEBP":
        kw["lossless"] = True
    assert not screener.screen(encode(frames[0], fmt, **kw)).faces, "the raw negative hides it"
    r = screener.screen(encode(frames[0], fmt, icc_profile=_inverting_icc(), **kw))
    assert r.ok and r.media.kind == "animation" and r.faces, r.error


def test_a_still_gif_with_transparency_is_screened_on_light_and_dark() -> None:
    """A still GIF was decoded as a photo with its transparency dropped, while the same picture
    given as a PIL image, or as a PNG, was drawn on a light and a dark background (two
    dispatches that disagreed; the one dispatch draws both)."""
    ink = Image.new("P", (96, 96), 1)
    ink.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    ink.paste(0, (24, 24, 72, 72))  # a square of palette index 0, transparent
    gif = encode(ink, "GIF", transparency=0)
    p = prepare(gif, ScreenerOptions())
    assert p.error is None and p.clip is not None and p.image is None
    try:
        assert (p.clip.info.kind, p.clip.info.pages) == ("image", 2)
        light, dark = (f.rgb for f in p.clip.frames(SamplingOptions(), time.perf_counter() + 30))
    finally:
        p.clip.close()
    assert light[48, 48].tolist() == [255, 255, 255] and dark[48, 48].tolist() == [0, 0, 0]
    assert light[4, 4].tolist() == dark[4, 4].tolist() == [255, 255, 255]


def test_a_cover_keeps_its_own_size_and_tile_scan_beside_the_clip() -> None:
    """Faces on a cover (a Motion Photo's still, an AVIF sequence's primary) were mapped with
    the track's size: boxes in the wrong coordinates."""
    from edge_screen.decode import DecodedImage
    from edge_screen.frames import SamplingOptions
    from edge_screen.prepare import StillClip, WithCover

    small = DecodedImage(np.zeros((50, 100, 3), np.uint8), 1000, 500, "JPEG")
    big = DecodedImage(np.zeros((36, 64, 3), np.uint8), 640, 360, "MP4")
    clip = WithCover(StillClip(small), StillClip(big))
    cover, frame = list(clip.frames(SamplingOptions(), float("inf")))
    assert (cover.width, cover.height, cover.part) == (1000, 500, -1)
    assert (frame.width, frame.height, frame.part) == (640, 360, 0)
    assert clip.frames_decoded == 2 and clip.info.covers == 1


def test_a_scan_ends_at_the_first_marker_that_is_not_stuffing_or_a_restart() -> None:
    """The scan's end is found by one search; it stops where a byte-by-byte walk would, over
    stuffing (0xFF00), restart markers, fill bytes and a 0xFF as the last byte."""
    import random

    from edge_screen.motion import _after_scan

    def walk(data: bytes, pos: int) -> int:
        for i in range(pos, len(data) - 1):
            if data[i] == 0xFF and data[i + 1] not in {0x00, 0x01, *range(0xD0, 0xD8)}:
                return i
        return len(data)

    rnd = random.Random(7)
    alphabet = [0x00, 0x01, 0xD0, 0xD7, 0xD8, 0xD9, 0xFF, 0xFF, 0x12]
    cases = [bytes(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 40))) for _ in range(500)]
    for data in [*cases, b"\xff", b"\xff\xff\x00", b"\xff\xd0\xff\x12", b"\x00\xff\x00\xff"]:
        for pos in range(len(data)):
            assert _after_scan(data, pos) == walk(data, pos), (data, pos)
