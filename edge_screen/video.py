"""Videos through PyAV: header limits, then only the sampled frames decoded (see ``frames``).

Every video stream of the container is screened, so a decoy first track hides nothing. Attached
cover pictures (streams with the ``attached_pic`` disposition: an MP4 ``covr``, a Matroska image
attachment) come first, one frame each, outside the frame budget. Then each moving stream in
container order, sampled as ``frames`` says with an equal share of ``SamplingOptions.max_frames``
(at least one frame each); the time budget covers them all. More video streams than
``VideoLimits.max_streams``, a stream no decoder here reads, a cover that does not decode, or
a bitmap subtitle stream (pictures drawn over the video, not screened) make the input
unscreenable, never a silent skip.

A video is streamed from its path (or a seekable file, or bytes), never read into memory whole.
Each keyframe is decoded alone: seek to it, feed its one packet with ``skip_frame = "NONKEY"``,
drain the decoder (so a reordering decoder gives it up without waiting for the next keyframe),
flush. Every decoded frame's size is checked against the limits (a stream may change resolution
mid-way), then it is scaled to the working size and converted to RGB in FFmpeg's scaler
(``frame.reformat``), and turned and mirrored as the display matrix says (``_orientation``).
"""

from __future__ import annotations

import gc
import io
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from .errors import CorruptMedia, MediaError, MediaIOError, MediaTooLarge, UnsupportedMedia
from .frames import (
    ClipInfo,
    Frame,
    SamplingOptions,
    VideoLimits,
    check_deadline,
    pick_evenly,
    plan_fill,
    working_size,
)
from .probe import check_size
from .source import VideoInput


@contextmanager
def _av_errors(fmt: str, opening: bool = False) -> Iterator[None]:
    """FFmpeg's errors as ours: a missing file is ``io``, damaged data ``corrupt``. Once the
    file is open, EPERM (a failed seek is -1, ``AVERROR(EPERM)``) means damaged data too."""
    try:
        yield
    except MediaError:
        raise
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        if not opening:
            raise CorruptMedia(f"damaged {fmt} video: {exc}") from exc
        raise MediaIOError(f"cannot read the {fmt} video: {exc}") from exc
    except MemoryError as exc:
        raise MediaTooLarge(f"{fmt} video needs more memory than is available") from exc
    except (av.FFmpegError, OSError, ValueError, EOFError, IndexError) as exc:
        raise CorruptMedia(f"damaged {fmt} video: {exc}") from exc


class VideoClip:
    """An opened video: every video stream's header checked against the limits; frames
    decoded only when sampled."""

    def __init__(self, media: VideoInput, fmt: str, limits: VideoLimits, min_side: int) -> None:
        self._fmt = fmt
        self.frames_decoded = 0
        src: Any = io.BytesIO(media) if isinstance(media, bytes) else media
        with _av_errors(fmt, opening=True):
            self._c = av.open(src, mode="r")
        try:
            with _av_errors(fmt):
                self._open_streams(limits, min_side)
        except MediaError:
            self._c.close()
            raise

    def _open_streams(self, limits: VideoLimits, min_side: int) -> None:
        streams = list(self._c.streams.video)
        if not streams:
            raise UnsupportedMedia(f"{self._fmt} file has no video stream")
        if len(streams) > limits.max_streams:
            raise MediaTooLarge(
                f"{self._fmt} file has {len(streams)} video streams (tracks and cover "
                f"pictures), over the limit of {limits.max_streams}: not screened in part"
            )
        for sub in self._c.streams.subtitles:
            cc = sub.codec_context
            if cc is None or cc.codec.bitmap_sub:  # an unknown codec may draw pictures too
                name = cc.name if cc is not None else "an unknown codec"
                raise UnsupportedMedia(
                    f"{self._fmt} file has a picture subtitle stream ({name}): not screened"
                )
        self._tracks = [_Track(self._c, s, self._fmt, limits, min_side) for s in streams]
        self._covers = [t for t in self._tracks if t.cover]
        self._moving = [t for t in self._tracks if not t.cover]

    @property
    def info(self) -> ClipInfo:
        main = (self._moving or self._covers)[0]
        w, h = main.size
        durations = [t.duration for t in self._moving if t.duration is not None]
        duration = max(durations) if durations else None
        n, covers = len(self._tracks), len(self._covers)
        return ClipInfo("video", self._fmt, w, h, duration, main.fps, n, covers)

    def close(self) -> None:
        """Close the container, then collect the cycle ``_orientation`` leaves (a decoded frame
        and its side data): it holds the decoder, and FFmpeg's decoding threads with it, until
        the cyclic collector runs; over a soak they piled up two a clip and took an isolated
        worker's address space past its limit (docs/soak.md). One full collection a clip."""
        self._c.close()
        if any(t.oriented for t in getattr(self, "_tracks", ())):
            gc.collect()

    def frames(self, sampling: SamplingOptions, deadline: float) -> Generator[Frame]:
        """Covers, then each moving stream's sampled frames; decodes nothing the caller does
        not take."""
        try:
            with _av_errors(self._fmt):
                for frame in self._all(sampling, deadline):
                    self.frames_decoded = sum(t.decoded for t in self._tracks)
                    yield frame
        finally:
            self.frames_decoded = sum(t.decoded for t in self._tracks)

    def _all(self, sampling: SamplingOptions, deadline: float) -> Iterator[Frame]:
        if self._covers:
            yield from self._cover_frames(deadline)
        share = max(1, sampling.max_frames // max(1, len(self._moving)))
        for n, track in enumerate(self._moving):
            found = False
            for frame in track.sample(share, sampling, deadline, n > 0 or bool(self._covers)):
                found = True
                yield frame
            if not found:  # a stream that shows nothing here may show something to a player
                raise CorruptMedia(f"no frame of {self._fmt} stream {track.index} could be decoded")

    def _cover_frames(self, deadline: float) -> Iterator[Frame]:
        """Each cover's one picture: FFmpeg queues them ahead of the file's other packets."""
        waiting = {t.index: t for t in self._covers}
        for pkt in self._c.demux([t.stream for t in self._covers]):
            check_deadline(deadline)
            track = waiting.pop(pkt.stream.index, None) if pkt.size else None
            if track is None:
                continue
            found = track.decode_packet(pkt)
            if found is None:
                raise CorruptMedia(f"{self._fmt} cover picture (stream {track.index}) is damaged")
            yield track.convert(found, keyframe=True)
            if not waiting:
                return
        missing = ", ".join(str(i) for i in waiting)
        raise CorruptMedia(f"{self._fmt} cover picture (stream {missing}) has no data")


class _Track:
    """One video stream: its header checked; its frames sampled, checked and converted."""

    def __init__(self, c: Any, s: Any, fmt: str, limits: VideoLimits, min_side: int) -> None:
        self._c, self.stream, self.index = c, s, s.index
        self._fmt, self._limits, self._min_side = fmt, limits, min_side
        self.cover = bool(s.disposition & av.stream.Disposition.attached_pic)
        self.decoded = 0
        what = f"{fmt} stream {s.index}"
        if s.codec_context is None:  # a codec this FFmpeg build cannot decode
            raise UnsupportedMedia(f"{what} is in a codec no decoder here reads")
        s.codec_context.skip_frame = "DEFAULT" if self.cover else "NONKEY"
        w, h = s.codec_context.width, s.codec_context.height
        check_size(f"{what} header", w, h, limits)
        self._tb = s.time_base or Fraction(1, 90000)
        self._start = s.start_time or 0
        if self.cover:
            self.duration: float | None = None
        elif s.duration:
            self.duration = float(s.duration * self._tb)
        elif c.duration:
            self.duration = c.duration / av.time_base
        else:
            self.duration = None
        if self.duration is not None and self.duration > limits.max_duration_s:
            raise MediaTooLarge(
                f"{what} header declares {self.duration:.0f} s, over the limit of "
                f"{limits.max_duration_s:.0f} s"
            )
        if s.frames > limits.max_frames:
            raise MediaTooLarge(f"{what} header declares {s.frames} frames, over the limit")
        rate = None if self.cover else (s.average_rate or s.guessed_rate)
        self.fps = float(rate) if rate else None
        sar = s.sample_aspect_ratio
        self._sar = float(sar) if sar and 0.1 < sar < 10 else 1.0
        self._size = (round(w * self._sar), h)
        # (transpose, mirror x, mirror y), known once a frame is decoded: FFmpeg puts the
        # display matrix on frames
        self._orientation: tuple[bool, bool, bool] | None = None
        self._scanned: list[int] = []  # keyframe times read by ``_scan``

    @property
    def oriented(self) -> bool:
        """Whether a frame's side data was read (``_orientation``'s cycle exists)."""
        return self._orientation is not None

    @property
    def size(self) -> tuple[int, int]:
        """Upright (displayed) size, as the header says."""
        w, h = self._size
        return (h, w) if self._orientation is not None and self._orientation[0] else (w, h)

    def sample(
        self, budget: int, sampling: SamplingOptions, deadline: float, rewind: bool
    ) -> Iterator[Frame]:
        """This stream's sampled frames in screening order: keyframes, then the fill."""
        self._scan(deadline)
        taken = []
        if sampling.keyframes:
            for frame in self._keyframes(budget, deadline, True):
                taken.append(frame.timestamp_ms / 1e3)
                yield frame
        d = self.duration
        if not d or len(taken) >= budget:
            return
        if taken:
            times = plan_fill(taken, d, sampling.max_gap_s, budget - len(taken))
        else:
            times = [d * i / budget for i in range(budget)]
        self.stream.codec_context.skip_frame = "DEFAULT"
        yield from self._fill([self._start + round(t / self._tb) for t in times], deadline)

    def _scan(self, deadline: float) -> None:
        """Read the stream's packets once, without decoding: where it really ends and where its
        keyframes are. A header's duration may be short, missing (a browser's recording) or a
        lie, and an index may be missing; sampling over what the header says would leave the
        rest of the video unseen."""
        try:
            self._c.seek(self._start, stream=self.stream)
        except av.FFmpegError as exc:
            raise CorruptMedia(f"{self._fmt} stream {self.index} cannot be read: {exc}") from exc
        keys: list[int] = []
        end: int | None = None
        for n, pkt in enumerate(self._c.demux(self.stream)):
            if n % 256 == 0:
                check_deadline(deadline)
            t = pkt.dts if pkt.dts is not None else pkt.pts
            if t is None:
                continue
            if pkt.is_keyframe:
                keys.append(t)
            last = (pkt.pts if pkt.pts is not None else t) + (pkt.duration or 0)
            end = last if end is None else max(end, last)
        self._scanned = sorted(set(keys))
        if end is not None:
            real = float((end - self._start) * self._tb)
            self.duration = max(self.duration or 0.0, real) or None
        if self.duration is not None and self.duration > self._limits.max_duration_s:
            raise MediaTooLarge(
                f"{self._fmt} stream {self.index} runs {self.duration:.0f} s, over the limit of "
                f"{self._limits.max_duration_s:.0f} s"
            )

    def _keyframes(self, budget: int, deadline: float, rewind: bool) -> Iterator[Frame]:
        """Keyframes from the container's index, evenly picked; without an index, in order
        (from the start of the file when another stream was read before)."""
        index = self._index()
        if len(index) > 1:
            for i in pick_evenly(len(index), budget):
                check_deadline(deadline)
                self._c.seek(index[i], stream=self.stream)
                found = self._decode_key(index[i])
                if found is None:
                    raise CorruptMedia(f"{self._fmt} keyframe {i} of {len(index)} is missing")
                yield self.convert(found, keyframe=True)
            return
        if rewind:
            try:
                self._c.seek(self._start, stream=self.stream)
            except av.FFmpegError as exc:
                raise CorruptMedia(
                    f"{self._fmt} stream {self.index} cannot be read from its start: {exc}"
                ) from exc
        step = (self.duration or 0.0) / max(budget, 1)
        next_t, count = 0.0, 0
        for pkt in self._c.demux(self.stream):
            ts = pkt.pts if pkt.pts is not None else pkt.dts
            if not pkt.is_keyframe or ts is None or float((ts - self._start) * self._tb) < next_t:
                continue
            check_deadline(deadline)
            found = self.decode_packet(pkt)
            if found is not None:
                frame = self.convert(found, keyframe=True)
                yield frame
                count += 1
                next_t = frame.timestamp_ms / 1e3 + step
                if count >= budget:
                    return

    def _decode_key(self, ts: int) -> av.VideoFrame | None:
        """After a seek: the first keyframe packet at or after ``ts`` (the index's time: decode
        time in MP4, presentation time in Matroska, whose packets after a seek may have no
        decode time yet), decoded alone."""
        for pkt in self._c.demux(self.stream):
            if not pkt.size:
                return None  # end of file: PyAV's empty packet
            t = pkt.dts if pkt.dts is not None else pkt.pts
            if pkt.is_keyframe and t is not None and t >= ts:
                return self.decode_packet(pkt)
        return None

    def decode_packet(self, pkt: Any) -> av.VideoFrame | None:
        """``pkt`` decoded alone: the decoder drained (a reordering one holds frames), flushed."""
        cc = self.stream.codec_context
        out = [*cc.decode(pkt), *cc.decode(None)]
        cc.flush_buffers()
        self.decoded += len(out)
        return out[0] if out else None

    def _index(self) -> list[int]:
        """Keyframe timestamps from the container's index (MP4 ``stss``, Matroska cues)."""
        try:
            found = [e.timestamp for e in self.stream.index_entries if e.is_keyframe]
        except (AttributeError, av.FFmpegError):
            found = []
        # No index in the container (a live recording): the keyframes ``_scan`` read.
        return found if len(found) > 1 else self._scanned

    def _fill(self, targets: list[int], deadline: float) -> Iterator[Frame]:
        """The first frame at or after each target (sorted): seek to the keyframe before it and
        decode forward, or keep decoding when no keyframe lies between here and the target."""
        cc, index = self.stream.codec_context, self._index()
        pos: int | None = None  # pts of the last frame decoded, while the decoder is live
        packets: Iterator[Any] = iter(())
        for target in targets:
            check_deadline(deadline)
            if pos is None or not index or any(pos < k <= target for k in index):
                cc.flush_buffers()
                self._c.seek(target, stream=self.stream)
                packets = self._c.demux(self.stream)
            found = None
            for pkt in packets:
                for f in cc.decode(pkt):
                    self.decoded += 1
                    if found is None and f.pts is not None and f.pts >= target:
                        found = f
                if found is not None or not pkt.size:  # found, or the end of file
                    break
            if found is None:
                pos = None
                continue
            pos = found.pts
            yield self.convert(found, keyframe=False)
        cc.flush_buffers()

    def convert(self, f: av.VideoFrame, keyframe: bool) -> Frame:
        """Size checked, then working-size RGB from FFmpeg's scaler, then as a player shows it
        (display matrix)."""
        what = f"{self._fmt} stream {self.index} decoded frame"
        check_size(what, f.width, f.height, self._limits)
        if self._orientation is None:  # a track's display matrix: read once, from its first frame
            self._orientation = _orientation(f)
        transpose, mirror_x, mirror_y = self._orientation
        tw, th = working_size(f.width * self._sar, f.height, self._min_side)
        rgb: NDArray[np.uint8] = np.asarray(f.reformat(tw, th, "rgb24").to_ndarray(), np.uint8)
        if transpose:
            rgb = rgb.transpose(1, 0, 2)
        if mirror_x or mirror_y:
            rgb = rgb[:: -1 if mirror_y else 1, :: -1 if mirror_x else 1]
        if transpose or mirror_x or mirror_y:
            rgb = np.ascontiguousarray(rgb)
        t = 0.0 if f.pts is None or self.cover else float((f.pts - self._start) * self._tb)
        w, h = round(f.width * self._sar), f.height
        w, h = (h, w) if transpose else (w, h)
        return Frame(rgb, max(0.0, t) * 1e3, keyframe, self.index, w, h)


def _orientation(f: av.VideoFrame) -> tuple[bool, bool, bool]:
    """(transpose, mirror x, mirror y) that turn a decoded frame into what a player shows.

    From the display matrix side data, FFmpeg's ``x' = a x + c y``, ``y' = b x + d y`` in image
    coordinates (y down): quarter turns and the mirrors of all eight EXIF-like orientations
    (``frame.rotation`` alone loses the mirrors). Other angles go to the nearest quarter turn.
    Read once per clip: ``frame.side_data`` ties the frame into a reference cycle, so reading
    it on every frame kept each decoded 1080p frame alive until the garbage collector ran
    (peak RSS 146 -> 310 MB on the benchmark clip).
    """
    sd: Any = f.side_data.get("DISPLAYMATRIX")  # 9 int32, 16.16 fixed point but for the last column
    m = np.frombuffer(bytes(sd), dtype=np.int32) if sd is not None else None
    if m is None or m.size < 9:
        return False, False, False
    a, b, c, d = (int(v) for v in (m[0], m[1], m[3], m[4]))
    if abs(a) + abs(d) >= abs(b) + abs(c):
        return False, a < 0, d < 0
    return True, c < 0, b < 0
