"""``Screener``: the public facade over the model set, the frame pipeline, the ``screen_many``
scheduler and live streams.

MediaPipe-style: ``ScreenerOptions`` + ``Screener.create_from_options`` (or ``Screener()``), usable
as a context manager. One ``Screener`` serialises its own inference with a lock, so sharing it
between threads is safe; ``screen_many`` screens ``options.workers`` items at once on workers of
their own.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from . import scheduler
from .errors import EdgeScreenError
from .known import KnownContent
from .models import ModelSet, Worker
from .options import ScreenerOptions
from .pipeline import Pipeline
from .policy import Policy
from .prepare import Prepared, prepare
from .preview import Preview, ReportWithPreviews
from .report import ScreeningReport
from .signals import SignalExtractor
from .source import MediaInput
from .stream import LiveStream

__all__ = ["ReportWithPreviews", "Screener", "ScreenerOptions"]


class Screener:
    """Screens photos, videos and animations on the device; one ``ScreeningReport`` per input."""

    def __init__(self, options: ScreenerOptions | None = None, **kwargs: Any) -> None:
        if options is not None and kwargs:
            raise TypeError(
                "pass a ScreenerOptions or keyword options, not both: the keywords "
                f"({', '.join(sorted(kwargs))}) would be ignored"
            )
        if options is None:
            options = ScreenerOptions(**kwargs)
        elif not isinstance(options, ScreenerOptions):
            raise TypeError(f"options must be a ScreenerOptions, got {type(options).__name__}")
        self.options = opts = options
        p = opts.policy
        self.policy = p if isinstance(p, Policy) else Policy.load(p) if p else Policy.default()
        self._models = ModelSet(opts, self.policy)
        self.bundle = self._models.bundle
        self.models = self._models.versions  # model id -> "<version>/<variant>"
        # Policy rules no model of the bundle can feed (also logged as warnings at load).
        self.unused_rules = self._models.unused_rules
        # The bundle's hash lists, verified and indexed once here (a tampered one raises now).
        self.known = KnownContent.from_bundle(self.bundle)
        if self.known is not None and not opts.hashes:
            raise ValueError("ScreenerOptions(hashes=False): this bundle carries hash lists, and "
                             "matching against them needs every frame's hash")
        self._pipeline = Pipeline(self.policy, opts.sampling, self.models, self.known,
                                  opts.hashes)
        self._worker = self._models.worker(opts.threads)
        self._lock = self._worker.lock  # close() takes it: a waiting frame then sees "closed"
        self._pool: list[Worker] = []  # screen_many's workers, created on first use
        self._pool_lock = threading.Lock()
        self._closed = False
        self._streams: weakref.WeakSet[LiveStream] = weakref.WeakSet()

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
        """Release the interpreters and end every live stream; screening afterwards raises
        ``EdgeScreenError``. An item already running finishes on the interpreters it started
        with; a stream frame waiting for them is refused."""
        with self._lock:
            self._closed = True
        with self._pool_lock:
            self._pool = []
        for s in list(self._streams):
            s.close()

    @property
    def _extractor(self) -> SignalExtractor:
        """The Screener's own interpreters (tests and the bench count their invocations)."""
        return self._worker.extractor

    def _current(self) -> Worker:
        if self._closed:
            raise EdgeScreenError("this Screener is closed; create a new one")
        return self._worker

    def _prepare(self, media: MediaInput) -> Prepared:
        return prepare(media, self.options)

    def screen(self, media: MediaInput) -> ScreeningReport:
        """Screen one photo, video or animation (a path, bytes or a binary file).

        Never raises for bad media: an input that cannot be screened gets the policy's
        unscreenable verdict and an error code. Raises ``TypeError`` for what it cannot take.
        Videos are best given as a path: they are streamed from it.
        """
        worker = self._current()
        return self._pipeline.run(self._prepare(media), worker, time.perf_counter())

    def screen_with_preview(self, media: MediaInput) -> ReportWithPreviews:
        """``screen()``, and the reviewer previews of an input whose verdict reaches the
        policy's ``[preview] when``: pixelated or blurred, likely and possible minors' faces
        blocked out (``edge_screen.preview``). Needs ``ScreenerOptions(previews=True)``."""
        self._previews_on()
        worker = self._current()
        p = self._prepare(media)
        report, previews = self._pipeline.run_with_previews(p, worker, time.perf_counter())
        return ReportWithPreviews(report, previews)

    def screen_many(self, items: Iterable[MediaInput]) -> Iterator[ScreeningReport]:
        """Screen many inputs; reports come in input order.

        ``options.workers`` items are screened at once (one decodes while another runs the
        models); with one worker the next item is decoded while the models run on this one.
        """
        if isinstance(items, str | bytes | bytearray | memoryview | os.PathLike):
            raise TypeError("screen_many takes an iterable of inputs; for one input use screen()")
        return self._screen_many(items, self._pipeline.run)

    def screen_many_with_previews(
        self, items: Iterable[MediaInput]
    ) -> Iterator[ReportWithPreviews]:
        """``screen_many()`` with each input's reviewer previews (``screen_with_preview``)."""
        if isinstance(items, str | bytes | bytearray | memoryview | os.PathLike):
            raise TypeError("screen_many_with_previews takes an iterable of inputs; for one "
                            "input use screen_with_preview()")
        self._previews_on()
        return self._with_previews(items)

    def _with_previews(self, items: Iterable[MediaInput]) -> Iterator[ReportWithPreviews]:
        # The scheduler hands reports on: each one's previews wait here, by the report's id,
        # until it comes out (at most workers + 1 items are in flight).
        made: dict[int, tuple[Preview, ...]] = {}

        def run(p: Prepared, worker: Worker, start: float) -> ScreeningReport:
            report, previews = self._pipeline.run_with_previews(p, worker, start)
            made[id(report)] = previews
            return report

        for report in self._screen_many(items, run):
            yield ReportWithPreviews(report, made.pop(id(report)))

    def _previews_on(self) -> None:
        if not self.options.previews:
            raise ValueError("previews are off: make the Screener with "
                             "ScreenerOptions(previews=True)")

    def _screen_many(
        self,
        items: Iterable[MediaInput],
        run: Callable[[Prepared, Worker, float], ScreeningReport],
    ) -> Iterator[ScreeningReport]:
        worker = self._current()
        first, inputs = scheduler.head(items, 2)
        if len(first) < 2:  # one input (a scan of one video): no worker interpreters to create
            yield from (run(self._prepare(m), worker, time.perf_counter()) for m in first)
            return
        if self.options.workers == 1:
            yield from scheduler.one_by_one(inputs, self._prepare, run, worker)
        else:
            yield from scheduler.pooled(inputs, self._prepare, run, self._workers())

    def _workers(self) -> list[Worker]:
        with self._pool_lock:
            self._current()
            if not self._pool:
                n = self.options.workers
                threads = max(1, self.options.threads // n)
                self._pool = [self._models.worker(threads) for _ in range(n)]
            return list(self._pool)

    def stream(self, name: str = "stream") -> LiveStream:
        """A live stream of the caller's own frames, with its own running verdict: use one per
        camera or caller (``with screener.stream() as s: s.screen_frame(rgb, ts)``)."""
        self._current()
        s = LiveStream(str(name), self._current, self.policy, self.options, self.models,
                       self.known)
        self._streams.add(s)
        return s
