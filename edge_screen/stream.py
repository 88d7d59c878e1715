"""Live streams (MediaPipe's live-stream running mode): a caller's own camera or stream, frame by
frame, as an object with its own state, so two callers can never share a running verdict.

    with screener.stream() as cam:
        report = cam.screen_frame(rgb, timestamp_ms)   # the verdict over every frame so far
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from types import TracebackType

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .aggregate import Aggregator
from .decode import shown
from .errors import EdgeScreenError
from .faces import TileScan
from .hashes import FrameHash, StreamHashes, frame_hash
from .known import KnownContent
from .models import Worker
from .options import ScreenerOptions
from .policy import Policy
from .probe import check_size
from .report import KNOWN_MATCH, MediaInfo, ScreeningReport


class LiveStream:
    """One stream's running verdict, small-face tile scan and clock. Thread-safe.

    The small-face tiles are spread over the stream's frames as for a video
    (``faces.TileScan``): all on its first frame, then ``sampling.tiles_per_frame`` in turn.
    Every frame's PDQ is kept as a video's vPDQ is, the last ``hashes.STREAM_WINDOW`` distinct
    ones (``hashes.StreamHashes``), and matched against the bundle's hash lists as a video's
    frames are (``known``): the running verdict holds once the frames matched reach the
    policy's ``known_match.video_share`` of the hashable ones.
    """

    def __init__(
        self,
        name: str,
        worker: Callable[[], Worker],
        policy: Policy,
        options: ScreenerOptions,
        models: dict[str, str],
        known: KnownContent | None = None,
    ) -> None:
        self.name = name
        self._known = known
        self._worker = worker  # the Screener's interpreters; raises once it is closed
        self._policy, self._options, self._models = policy, options, models
        self._lock = threading.Lock()
        self._closed = False
        self._reset()

    def _reset(self) -> None:
        sampling = self._options.sampling
        self._agg = Aggregator(self._policy, sampling.top_k)
        self._scan = TileScan(sampling.tiles_per_frame)
        self._hashes = StreamHashes()
        self._tally = None if self._known is None else self._known.tally(still=False)
        self._last_ms = float("-inf")

    def __enter__(self) -> LiveStream:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Forget the stream's state; screening a frame afterwards raises."""
        with self._lock:
            self._closed = True
            self._reset()

    def screen_frame(self, rgb: NDArray[np.uint8], timestamp_ms: float) -> ScreeningReport:
        """Screen one upright HxWx3 uint8 RGB frame; timestamps (ms) must increase. Returns the
        running verdict over every frame of this stream so far. A frame past the video frame
        limits (``ScreenerOptions.video_limits``) raises ``MediaTooLarge``: it was not
        screened, so the caller must not show it as if it had been."""
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3:
            raise TypeError("screen_frame takes an HxWx3 uint8 RGB numpy array")
        if rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
            raise ValueError(f"screen_frame takes an HxWx3 RGB array, got {rgb.shape}")
        t = timestamp_ms
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
            raise ValueError(f"timestamp_ms must be a finite number, got {timestamp_ms!r}")
        start = time.perf_counter()
        h, w = rgb.shape[:2]
        check_size("stream frame", w, h, self._options.video_limits)  # as every video frame
        small = np.asarray(shown(Image.fromarray(rgb), self._options.working_min_side)[0])
        decode_ms = (time.perf_counter() - start) * 1e3  # the reduce to working size
        # Outside the lock: hashing needs no interpreter.
        pdq = frame_hash(small) if self._options.hashes else None
        hash_ms = (time.perf_counter() - start) * 1e3 - decode_ms
        with self._lock:
            if self._closed:
                raise EdgeScreenError(f"stream {self.name!r} is closed; open a new one")
            if timestamp_ms <= self._last_ms:
                raise ValueError(
                    f"timestamp {timestamp_ms} ms is not after the stream's last, {self._last_ms}"
                )
            worker = self._worker()
            with worker.lock:
                self._worker()  # raises if the Screener closed while this frame waited
                sig = worker.extractor.extract(np.ascontiguousarray(small), w, h, self._scan)
            self._last_ms = float(timestamp_ms)
            agg = self._agg
            agg.add(timestamp_ms, sig)
            self._hashes.add(timestamp_ms, pdq)
            d, scores, matches = agg.decision, dict(agg.scores), None
            if self._tally is not None:
                t_match = time.perf_counter()
                self._tally.add(FrameHash(timestamp_ms, pdq))
                known = self._tally.result(self._policy.known_match.video_share)
                d = self._policy.known_match.apply(d, known.reasons)
                scores[KNOWN_MATCH], matches = known.signal, known.matches
                match_ms = (time.perf_counter() - t_match) * 1e3
            else:
                scores[KNOWN_MATCH] = None
            media = MediaInfo(
                "stream",
                None,
                w,
                h,
                agg.frames,
                frames_decoded=agg.frames,
                worst_ms=dict(agg.worst_ms),
                evidence=agg.evidence,
            )
            timing = {"decode": decode_ms, "hash": hash_ms, **agg.timing_ms}
            if self._tally is not None:
                timing["match"] = match_ms
            timing["total"] = (time.perf_counter() - start) * 1e3
            return ScreeningReport(
                f"<stream {self.name}>",
                d.verdict,
                d.reasons,
                scores,
                agg.faces,
                media,
                self._models,
                timing,
                faces_unaged=agg.unaged,
                hashes=self._hashes.result(matches) if self._options.hashes else None,
            )
