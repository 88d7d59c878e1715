"""Videos through PyAV: header limits, then only the sampled frames decoded (see ``frames``).

A video is streamed from its path (or a seekable file, or bytes), never read into memory whole.
Each keyframe is decoded alone: seek to it, feed its one packet with ``skip_frame = "NONKEY"``,
drain the decoder (so a reordering decoder gives it up without waiting for the next keyframe),
flush. Frames are scaled to the working size and converted to RGB in FFmpeg's scaler
(``frame.reformat``), then turned and mirrored as the display matrix says (``_orientation``).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import Any, BinaryIO

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
from .probe import check_dimensions

VideoInput = str | os.PathLike[str] | bytes | BinaryIO
_CHUNK = 1 << 20


def _seekable(media: object) -> bool:
    try:
        return bool(getattr(media, "seekable", lambda: False)())
    except (OSError, ValueError):
        return False


def peek(media: object, size: int = 64) -> bytes | None:
    """The first ``size`` bytes of a path, bytes or seekable file, without consuming them;
    None for a stream that cannot be rewound (it is read into memory instead)."""
    if isinstance(media, bytes | bytearray | memoryview):
        return bytes(media[:size])
    try:
        if isinstance(media, str | os.PathLike):
            with open(media, "rb") as fh:
                return fh.read(size)
        if _seekable(media):
            fh = media  # type: ignore[assignment]
            pos = fh.tell()
            head = fh.read(size)
            fh.seek(pos)
            return bytes(head)
    except OSError as exc:
        raise MediaIOError(f"cannot read {media!s}: {exc.strerror or exc}") from exc
    return None


def hash_input(media: VideoInput, max_bytes: int) -> str:
    """sha256 of the whole input, read in chunks; ``MediaTooLarge`` past ``max_bytes``."""
    digest = hashlib.sha256()
    if isinstance(media, bytes):
        if len(media) > max_bytes:
            raise MediaTooLarge(f"{len(media)} bytes, over the video limit of {max_bytes}")
        digest.update(media)
        return digest.hexdigest()
    try:
        if isinstance(media, str | os.PathLike):
            with open(media, "rb") as fh:
                _hash_file(fh, digest, max_bytes)
        else:
            pos = media.tell()
            _hash_file(media, digest, max_bytes)
            media.seek(pos)
    except OSError as exc:
        raise MediaIOError(f"cannot read {media!s}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def _hash_file(fh: BinaryIO, digest: Any, max_bytes: int) -> None:
    total = 0
    while chunk := fh.read(_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise MediaTooLarge(f"more than {max_bytes} bytes, over the video limit")
        digest.update(chunk)


@contextmanager
def _av_errors(fmt: str) -> Iterator[None]:
    """FFmpeg's errors as ours: a missing file is ``io``, damaged data ``corrupt``."""
    try:
        yield
    except MediaError:
        raise
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        raise MediaIOError(f"cannot read the {fmt} video: {exc}") from exc
    except MemoryError as exc:
        raise MediaTooLarge(f"{fmt} video needs more memory than is available") from exc
    except (av.FFmpegError, OSError, ValueError, EOFError, IndexError) as exc:
        raise CorruptMedia(f"damaged {fmt} video: {exc}") from exc


class VideoClip:
    """An opened video: header checked against the limits; frames decoded only when sampled."""

    def __init__(self, media: VideoInput, fmt: str, limits: VideoLimits, min_side: int) -> None:
        self._fmt, self._min_side = fmt, min_side
        self.frames_decoded = 0
        src: Any = io.BytesIO(media) if isinstance(media, bytes) else media
        with _av_errors(fmt):
            self._c = av.open(src, mode="r")
        try:
            with _av_errors(fmt):
                self._open_stream(limits)
        except MediaError:
            self._c.close()
            raise

    def _open_stream(self, limits: VideoLimits) -> None:
        if not self._c.streams.video:
            raise UnsupportedMedia(f"{self._fmt} file has no video stream")
        s = self._s = self._c.streams.video[0]
        if s.codec_context is None:  # a codec this FFmpeg build cannot decode
            raise UnsupportedMedia(f"{self._fmt} video in a codec no decoder here reads")
        s.codec_context.skip_frame = "NONKEY"
        w, h = s.codec_context.width, s.codec_context.height
        check_dimensions(self._fmt, w, h, limits.max_pixels, limits.max_side)
        self._tb = s.time_base or Fraction(1, 90000)
        self._start = s.start_time or 0
        if s.duration:
            self._duration: float | None = float(s.duration * self._tb)
        elif self._c.duration:
            self._duration = self._c.duration / av.time_base
        else:
            self._duration = None
        if self._duration is not None and self._duration > limits.max_duration_s:
            raise MediaTooLarge(
                f"{self._fmt} header declares {self._duration:.0f} s, over the limit of "
                f"{limits.max_duration_s:.0f} s"
            )
        if s.frames > limits.max_frames:
            raise MediaTooLarge(f"{self._fmt} header declares {s.frames} frames, over the limit")
        rate = s.average_rate or s.guessed_rate
        self._fps = float(rate) if rate else None
        sar = s.sample_aspect_ratio
        self._sar = float(sar) if sar and 0.1 < sar < 10 else 1.0
        self._size = (round(w * self._sar), h)
        # (transpose, mirror x, mirror y), known once a frame is decoded: FFmpeg puts the
        # display matrix on frames
        self._orientation: tuple[bool, bool, bool] | None = None

    @property
    def info(self) -> ClipInfo:
        w, h = self._size
        if self._orientation is not None and self._orientation[0]:
            w, h = h, w
        return ClipInfo("video", self._fmt, w, h, self._duration, self._fps)

    def close(self) -> None:
        self._c.close()

    def frames(self, sampling: SamplingOptions, deadline: float) -> Generator[Frame]:
        """The sampled frames in screening order; decodes nothing the caller does not take."""
        with _av_errors(self._fmt):
            yield from self._frames(sampling, deadline)

    def _frames(self, sampling: SamplingOptions, deadline: float) -> Iterator[Frame]:
        budget, taken = sampling.max_frames, []
        if sampling.keyframes:
            for frame in self._keyframes(budget, deadline):
                taken.append(frame.timestamp_ms / 1e3)
                yield frame
        d = self._duration
        if not d or len(taken) >= budget:
            return
        if taken:
            times = plan_fill(taken, d, sampling.max_gap_s, budget - len(taken))
        else:
            times = [d * i / budget for i in range(budget)]
        self._s.codec_context.skip_frame = "DEFAULT"
        yield from self._fill([self._start + round(t / self._tb) for t in times], deadline)

    def _keyframes(self, budget: int, deadline: float) -> Iterator[Frame]:
        """Keyframes from the container's index, evenly picked; without an index, in order."""
        index = self._index()
        if len(index) > 1:
            for i in pick_evenly(len(index), budget):
                check_deadline(deadline)
                self._c.seek(index[i], stream=self._s)
                found = self._decode_key(index[i])
                if found is None:
                    raise CorruptMedia(f"{self._fmt} keyframe {i} of {len(index)} is missing")
                yield self._convert(found, keyframe=True)
            return
        step = (self._duration or 0.0) / max(budget, 1)
        next_t, count = 0.0, 0
        for pkt in self._c.demux(self._s):
            ts = pkt.pts if pkt.pts is not None else pkt.dts
            if not pkt.is_keyframe or ts is None or float((ts - self._start) * self._tb) < next_t:
                continue
            check_deadline(deadline)
            found = self._decode_packet(pkt)
            if found is not None:
                frame = self._convert(found, keyframe=True)
                yield frame
                count += 1
                next_t = frame.timestamp_ms / 1e3 + step
                if count >= budget:
                    return

    def _decode_key(self, dts: int) -> av.VideoFrame | None:
        """After a seek: the first keyframe packet at or after ``dts``, decoded alone."""
        for pkt in self._c.demux(self._s):
            if pkt.dts is None:
                return None  # end of file
            if pkt.is_keyframe and pkt.dts >= dts:
                return self._decode_packet(pkt)
        return None

    def _decode_packet(self, pkt: Any) -> av.VideoFrame | None:
        cc = self._s.codec_context
        out = [*cc.decode(pkt), *cc.decode(None)]  # drain: a reordering decoder holds frames
        cc.flush_buffers()
        self.frames_decoded += len(out)
        return out[0] if out else None

    def _index(self) -> list[int]:
        """Keyframe timestamps from the container's index (MP4 ``stss``, Matroska cues)."""
        try:
            return [e.timestamp for e in self._s.index_entries if e.is_keyframe]
        except (AttributeError, av.FFmpegError):
            return []

    def _fill(self, targets: list[int], deadline: float) -> Iterator[Frame]:
        """The first frame at or after each target (sorted): seek to the keyframe before it and
        decode forward, or keep decoding when no keyframe lies between here and the target."""
        cc, index = self._s.codec_context, self._index()
        pos: int | None = None  # pts of the last frame decoded, while the decoder is live
        packets: Iterator[Any] = iter(())
        for target in targets:
            check_deadline(deadline)
            if pos is None or not index or any(pos < k <= target for k in index):
                cc.flush_buffers()
                self._c.seek(target, stream=self._s)
                packets = self._c.demux(self._s)
            found = None
            for pkt in packets:
                for f in cc.decode(pkt):
                    self.frames_decoded += 1
                    if found is None and f.pts is not None and f.pts >= target:
                        found = f
                if found is not None or pkt.dts is None:
                    break
            if found is None:
                pos = None
                continue
            pos = found.pts
            yield self._convert(found, keyframe=False)
        cc.flush_buffers()

    def _convert(self, f: av.VideoFrame, keyframe: bool) -> Frame:
        """Working-size RGB from FFmpeg's scaler, then as a player shows it (display matrix)."""
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
        t = 0.0 if f.pts is None else float((f.pts - self._start) * self._tb)
        return Frame(rgb, max(0.0, t) * 1e3, keyframe)


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
