"""``Screener``: the public entry point that runs source -> decode -> signals -> policy -> report.

MediaPipe-style: ``ScreenerOptions`` + ``Screener.create_from_options`` (or ``Screener()``), usable
as a context manager. One ``Screener`` serialises its own inference with a lock, so sharing it
between threads is safe; for parallel screening give each thread its own ``Screener``.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .aggregate import Aggregator
from .backends import get_backend
from .bundle import Bundle
from .decode import reduce_factor
from .errors import BundleError, CorruptMedia, EdgeScreenError, MediaError, ModelError
from .faces import TileScan
from .frames import Clip, Frame, check_deadline
from .infer import Model
from .landmarks import ShapePredictor
from .manifest import ModelSpec, Variant
from .options import ScreenerOptions
from .policy import Policy
from .prepare import Prepared, prepare
from .report import CORE_SIGNALS, MediaInfo, ReportError, ScreeningReport
from .signals import Landmarker, SignalExtractor
from .source import MediaInput

log = logging.getLogger("edge_screen")

__all__ = ["Screener", "ScreenerOptions"]


@dataclass
class _Worker:
    """One set of interpreters and the lock that serialises their use (not thread-safe)."""

    extractor: SignalExtractor
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Live:
    """Per-stream state of ``screen_frame``."""

    aggregator: Aggregator
    scan: TileScan
    last_ms: float = float("-inf")
    width: int = 0
    height: int = 0


class Screener:
    """Screens photos on the device and returns a ``ScreeningReport`` per input."""

    def __init__(self, options: ScreenerOptions | None = None, **kwargs: object) -> None:
        opts = options or ScreenerOptions(**kwargs)  # type: ignore[arg-type]
        self.options = opts
        self.bundle = Bundle.open(opts.bundle)
        p = opts.policy
        self.policy = p if isinstance(p, Policy) else Policy.load(p) if p else Policy.default()
        self._backend = get_backend(opts.backend)
        self.models = {}
        # Model bytes and the landmark cascade are read-only: every worker's interpreters share
        # them (each interpreter still has its own arena and packed weights, ~30 MB a set).
        self._chosen: list[tuple[ModelSpec, Variant, bytes]] = []
        self._landmarker: Landmarker | None = None
        for spec in self.bundle.manifest.models:
            variant = self.bundle.select(spec, opts.variants.get(spec.id))
            self.models[spec.id] = f"{spec.version}/{variant.name}"
            content = self.bundle.model_bytes(variant)
            if spec.task == "face_landmarks":
                self._landmarker = Landmarker(spec, ShapePredictor.from_npz(content))
            else:
                self._chosen.append((spec, variant, content))
        for spec, _, _ in self._chosen:
            a = spec.input.alignment if spec.input else None
            if a is not None and a.source == "landmarks" and self._landmarker is None:
                raise BundleError(f"{spec.id} aligns faces by landmarks; the bundle has none")
        self._extractor = self._load(opts.threads)
        self._lock = threading.Lock()
        self._pool: list[_Worker] = []  # screen_many's workers, created on first use
        self._closed = False
        self._streams: dict[str, _Live] = {}

    def _load(self, threads: int) -> SignalExtractor:
        """A fresh set of interpreters for the bundle's chosen variants."""
        opts = self.options
        models = [
            Model(spec, v, content, self._backend, threads) for spec, v, content in self._chosen
        ]
        return SignalExtractor(
            models, self._landmarker, opts.max_faces, opts.face_threshold, opts.min_face
        )

    @classmethod
    def create_from_options(cls, options: ScreenerOptions) -> Screener:
        return cls(options)

    def __enter__(self) -> Screener:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the interpreters; screening afterwards raises ``EdgeScreenError``. A frame
        or item already running finishes on the interpreters it started with."""
        with self._lock:  # screen_frame checks _closed under it, so no frame runs no models
            self._closed = True
            self._extractor = SignalExtractor([])
            self._pool = []

    def _check_open(self) -> None:
        if self._closed:
            raise EdgeScreenError("this Screener is closed; create a new one")

    def screen(self, media: MediaInput) -> ScreeningReport:
        """Screen one photo, video or animation (path, bytes or binary file).

        Never raises for bad media. Videos are best given as a path: they are streamed from it.
        """
        self._check_open()
        return self._finish(prepare(media, self.options), time.perf_counter())

    def screen_many(self, items: Iterable[MediaInput]) -> Iterator[ScreeningReport]:
        """Screen many inputs; reports come in input order.

        ``options.workers`` items are screened at once (one decodes while another runs the
        models); with one worker the next item is decoded while the models run on this one.
        """
        self._check_open()
        workers = max(1, self.options.workers)
        it = iter(items)
        head = list(itertools.islice(it, 2))
        if len(head) < 2:  # one input (a scan of one video): no worker interpreters to create
            yield from (self.screen(m) for m in head)
            return
        inputs = itertools.chain(head, it)
        if workers == 1:
            yield from self._screen_one_by_one(inputs)
            return
        if not self._pool:
            threads = max(1, self.options.threads // workers)
            self._pool = [_Worker(self._load(threads)) for _ in range(workers)]
        free: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        for w in self._pool:
            free.put(w)

        def job(media: MediaInput) -> ScreeningReport:
            worker = free.get()  # as many jobs run as there are workers: never blocks long
            try:
                prepared = prepare(media, self.options)
                return self._finish(prepared, time.perf_counter(), worker)
            finally:
                free.put(worker)

        with ThreadPoolExecutor(workers, thread_name_prefix="edge-screen-worker") as pool:
            window: deque[Future[ScreeningReport]] = deque()
            try:
                for item in inputs:  # at most workers + 1 items in flight: bounded memory
                    window.append(pool.submit(job, item))
                    if len(window) > workers:
                        yield window.popleft().result()
                while window:
                    yield window.popleft().result()
            finally:  # the caller stopped early: drop what has not started
                for f in window:
                    f.cancel()

    def _screen_one_by_one(self, items: Iterable[MediaInput]) -> Iterator[ScreeningReport]:
        """One item at a time on this Screener's interpreters, the next decoded meanwhile."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-screen-decode") as pool:
            it = iter(items)
            pending: Future[Prepared] | None = None
            first = next(it, None)
            if first is not None:
                pending = pool.submit(prepare, first, self.options)
            try:
                while pending is not None:
                    start = time.perf_counter()
                    prepared = pending.result()
                    nxt = next(it, None)
                    pending = pool.submit(prepare, nxt, self.options) if nxt is not None else None
                    yield self._finish(prepared, start)
            finally:  # the caller stopped early: close a video opened ahead
                if pending is not None and not pending.cancel():
                    ahead = pending.result()
                    if ahead.clip is not None:
                        ahead.clip.close()

    # --- stages --------------------------------------------------------------------------

    def _finish(self, p: Prepared, start: float, worker: _Worker | None = None) -> ScreeningReport:
        """Models, policy and report for one prepared item, on ``worker``'s interpreters (this
        Screener's own by default)."""
        extractor, lock = (
            (worker.extractor, worker.lock) if worker else (self._extractor, self._lock)
        )
        if self._closed:
            if p.clip is not None:
                p.clip.close()
            self._check_open()
        timing = {"decode": p.decode_ms}
        if p.clip is not None:
            try:
                return self._screen_clip(p, p.clip, timing, start, extractor, lock)
            finally:
                p.clip.close()
        if p.image is None:
            assert p.error is not None
            return self._failed(p, p.error.code, str(p.error), timing, start)
        img = p.image
        try:
            with lock:
                sig = extractor.extract(img.rgb, img.width, img.height)
        except ModelError as exc:
            return self._failed(p, exc.code, str(exc), timing, start)
        except Exception as exc:  # a bug must not take the caller down: report it, log it
            log.exception("internal error while screening %s", p.name)
            return self._failed(p, "internal", f"{type(exc).__name__}: {exc}", timing, start)
        decision = self.policy.decide(sig.scores)
        timing.update(sig.timing_ms)
        timing["total"] = p.decode_ms + (time.perf_counter() - start) * 1e3
        media = MediaInfo("image", img.format, img.width, img.height, 1, frames_decoded=1)
        return ScreeningReport(
            p.name,
            decision.verdict,
            decision.reasons,
            sig.scores,
            sig.faces,
            media,
            self.models,
            timing,
            p.sha256,
        )

    def _failed(
        self, p: Prepared, code: str, message: str, timing: dict[str, float], start: float
    ) -> ScreeningReport:
        decision = self.policy.unscreened(code)
        timing["total"] = p.decode_ms + (time.perf_counter() - start) * 1e3
        return ScreeningReport(
            p.name,
            decision.verdict,
            decision.reasons,
            dict.fromkeys(CORE_SIGNALS),
            (),
            MediaInfo("unknown", None, None, None, 0),
            self.models,
            timing,
            p.sha256,
            ReportError(code, message),
        )

    # --- videos, animations, live streams --------------------------------------------------

    def _screen_clip(
        self,
        p: Prepared,
        clip: Clip,
        timing: dict[str, float],
        start: float,
        extractor: SignalExtractor,
        lock: threading.Lock,
    ) -> ScreeningReport:
        """Decode frame N+1 on a worker thread while the models run on frame N (both release
        the GIL); stop early once the verdict cannot change."""
        sampling = self.options.sampling
        deadline = start + sampling.time_budget_s
        agg = Aggregator(self.policy, sampling.top_k)
        scan = TileScan(sampling.tiles_per_frame)
        decode_ms = [0.0]
        frames = clip.frames(sampling, deadline)

        def pull() -> Frame | None:
            t = time.perf_counter()
            frame = next(frames, None)
            decode_ms[0] += (time.perf_counter() - t) * 1e3
            return frame

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-screen-frames")
        pending = pool.submit(pull)
        try:
            while (frame := pending.result()) is not None:
                pending = pool.submit(pull)
                info = clip.info
                with lock:
                    sig = extractor.extract(frame.rgb, info.width, info.height, scan)
                agg.add(frame.timestamp_ms, sig)
                if sampling.early_stop and agg.settled:
                    break
                check_deadline(deadline)
            if agg.frames == 0:
                raise CorruptMedia(f"no frame of the {clip.info.format} could be decoded")
        except (MediaError, ModelError) as exc:
            return self._failed(p, exc.code, str(exc), timing, start)
        except Exception as exc:  # a bug must not take the caller down: report it, log it
            log.exception("internal error while screening %s", p.name)
            return self._failed(p, "internal", f"{type(exc).__name__}: {exc}", timing, start)
        finally:
            wait([pending])  # the generator may be running on the worker: let it finish first
            frames.close()
            pool.shutdown()
        info = clip.info
        timing["decode"] += decode_ms[0]  # overlapped with inference: not part of the total
        media = MediaInfo(
            info.kind,
            info.format,
            info.width,
            info.height,
            agg.frames,
            info.duration_s,
            info.fps,
            clip.frames_decoded,
            dict(agg.worst_ms),
            agg.evidence,
        )
        return self._aggregated(p.name, p.sha256, agg, media, timing, p.decode_ms, start)

    def _aggregated(
        self,
        name: str,
        sha: str | None,
        agg: Aggregator,
        media: MediaInfo,
        timing: dict[str, float],
        before_ms: float,
        start: float,
    ) -> ScreeningReport:
        """The report over the frames so far; total is ``before_ms`` plus the time since start."""
        timing.update(agg.timing_ms)
        timing["total"] = before_ms + (time.perf_counter() - start) * 1e3
        d = agg.decision
        scores = dict(agg.scores)
        return ScreeningReport(
            name, d.verdict, d.reasons, scores, agg.faces, media, self.models, timing, sha
        )

    def screen_frame(
        self, rgb: NDArray[np.uint8], timestamp_ms: float, stream: str = "default"
    ) -> ScreeningReport:
        """Live mode (MediaPipe's video running mode): one upright RGB frame of the caller's own
        camera or stream; returns the running verdict over every frame of ``stream`` so far.

        Timestamps must increase within a stream; ``end_stream`` forgets a stream's state. The
        small-face tiles are spread over the stream's frames as for a video (``faces.TileScan``):
        all on its first frame, then ``sampling.tiles_per_frame`` in turn.
        """
        self._check_open()
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3:
            raise ValueError("screen_frame takes an HxWx3 uint8 RGB array")
        if rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
            raise ValueError(f"screen_frame takes an HxWx3 RGB array, got {rgb.shape}")
        start = time.perf_counter()
        h, w = rgb.shape[:2]
        factor = reduce_factor(w, h, self.options.working_min_side)
        small = np.asarray(Image.fromarray(rgb).reduce(factor)) if factor > 1 else rgb
        decode_ms = (time.perf_counter() - start) * 1e3  # the reduce to working size
        with self._lock:
            self._check_open()  # again, under the lock close() takes
            live = self._streams.get(stream)
            if live is None:
                sampling = self.options.sampling
                live = _Live(
                    Aggregator(self.policy, sampling.top_k), TileScan(sampling.tiles_per_frame)
                )
                self._streams[stream] = live
            if timestamp_ms <= live.last_ms:
                raise ValueError(
                    f"timestamp {timestamp_ms} ms is not after the stream's last, {live.last_ms}"
                )
            live.last_ms, live.width, live.height = timestamp_ms, w, h
            sig = self._extractor.extract(np.ascontiguousarray(small), w, h, live.scan)
            live.aggregator.add(timestamp_ms, sig)
        agg = live.aggregator
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
        timing = {"decode": decode_ms}
        return self._aggregated(f"<stream {stream}>", None, agg, media, timing, 0.0, start)

    def end_stream(self, stream: str = "default") -> None:
        """Forget a live stream's state; its next frame starts a new running verdict."""
        with self._lock:
            self._streams.pop(stream, None)
