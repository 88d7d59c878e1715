"""``Screener``: the public facade over the model set, the frame pipeline, the ``screen_many``
scheduler and live streams.

MediaPipe-style: ``ScreenerOptions`` + ``Screener.create_from_options`` (or ``Screener()``), usable
as a context manager. One ``Screener`` serialises its own inference with a lock, so sharing it
between threads is safe; ``screen_many`` screens ``options.workers`` items at once on workers of
their own. With ``isolation="process"`` those workers are processes (``edge_screen.isolation``)
and every item is screened in one of them; live streams still run in this process.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import replace
from types import TracebackType
from typing import Any, cast

import numpy as np
from PIL import Image

from . import scheduler
from .errors import EdgeScreenError, MediaTooLarge, NotMedia
from .isolation import DEFAULT_MEMORY_MB, ProcessPool, Result
from .known import KnownContent
from .models import ModelSet, Worker
from .options import ScreenerOptions
from .pipeline import Pipeline
from .policy import Policy
from .prepare import Prepared, checked_array, prepare
from .preview import Preview, PreviewKeeper, ReportWithPreviews
from .report import ScreeningReport
from .signals import SignalExtractor
from .source import MediaInput, OpenedInput, check_input, describe
from .stream import LiveStream

__all__ = ["ReportWithPreviews", "Screener", "ScreenerOptions"]

log = logging.getLogger("edge_screen")


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
        self._pool: list[Worker] = []  # screen_many's workers, created on first use
        self._pool_lock = threading.Lock()
        self._closed = False
        self._streams: weakref.WeakSet[LiveStream] = weakref.WeakSet()
        # In process isolation this process runs interpreters only for live streams: made then.
        self._worker_made: Worker | None = None
        self._lock = threading.Lock()  # close() takes it: a waiting frame then sees "closed"
        self._processes: ProcessPool | None = None
        if opts.isolation == "process":
            self._processes = self._start_processes()
            weakref.finalize(self, self._processes.close)  # a Screener never closed
        else:
            self._worker_made = self._models.worker(opts.threads)
            self._lock = self._worker_made.lock

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
        if self._processes is not None:
            self._processes.close()

    def _start_processes(self) -> ProcessPool:
        """The worker processes, started; each builds a ``Screener`` of these options in this
        process's policy and verified bundle (re-verified there), with isolation off."""
        opts = self.options
        child = replace(opts, isolation="none", memory_limit_mb=None, workers=1,
                        threads=max(1, opts.threads // opts.workers), policy=self.policy,
                        bundle=self.bundle.root, store=None)
        pool = ProcessPool(child, opts.workers, opts.sampling.time_budget_s,
                           opts.memory_limit_mb or DEFAULT_MEMORY_MB,
                           functools.partial(_unscreened, self._pipeline))
        try:
            pool.wait_ready()
        except BaseException:  # an alarm or Ctrl-C meanwhile: nothing else could close it
            pool.close()
            raise
        return pool

    @property
    def _extractor(self) -> SignalExtractor:
        """The Screener's own interpreters (tests and the bench count their invocations)."""
        return self._current().extractor

    def _current(self) -> Worker:
        if self._closed:
            raise EdgeScreenError("this Screener is closed; create a new one")
        if self._worker_made is None:
            with self._pool_lock:
                if self._worker_made is None:
                    self._worker_made = self._models.worker(self.options.threads)
        return self._worker_made

    def _prepare(self, media: MediaInput) -> Prepared:
        return prepare(media, self.options)

    def screen(self, media: MediaInput) -> ScreeningReport:
        """Screen one photo, video or animation (a path, bytes or a binary file).

        Never raises for bad media: an input that cannot be screened gets the policy's
        unscreenable verdict and an error code. Raises ``TypeError`` for what it cannot take.
        Videos are best given as a path: they are streamed from it.
        """
        if self._processes is not None:
            return cast(ScreeningReport, self._isolated(media, False).result())
        worker = self._current()
        return self._pipeline.run(self._prepare(media), worker, time.perf_counter())

    def screen_with_preview(self, media: MediaInput) -> ReportWithPreviews:
        """``screen()``, and the reviewer previews of an input whose verdict reaches the
        policy's ``[preview] when``: pixelated or blurred, likely and possible minors' faces
        blocked out (``edge_screen.preview``). Needs ``ScreenerOptions(previews=True)``."""
        self._previews_on()
        if self._processes is not None:
            return cast(ReportWithPreviews, self._isolated(media, True).result())
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
        if self._processes is not None:
            return cast(Iterator[ScreeningReport], self._isolated_many(items, False))
        return self._screen_many(items, self._pipeline.run)

    def screen_many_with_previews(
        self, items: Iterable[MediaInput]
    ) -> Iterator[ReportWithPreviews]:
        """``screen_many()`` with each input's reviewer previews (``screen_with_preview``)."""
        if isinstance(items, str | bytes | bytearray | memoryview | os.PathLike):
            raise TypeError("screen_many_with_previews takes an iterable of inputs; for one "
                            "input use screen_with_preview()")
        self._previews_on()
        if self._processes is not None:
            return cast(Iterator[ReportWithPreviews], self._isolated_many(items, True))
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

    def _isolated(self, media: MediaInput, previews: bool) -> Future[Result]:
        """One item to the worker processes: a path as it is, a file object's bytes read here
        (within ``max_bytes``); ``NotMedia`` at once for what ``screen()`` cannot take."""
        assert self._processes is not None
        if self._closed:
            raise EdgeScreenError("this Screener is closed; create a new one")
        start = time.perf_counter()
        name = describe(media)
        try:
            item = _payload(media, self.options, start + self.options.sampling.time_budget_s)
        except NotMedia:
            raise
        except EdgeScreenError as exc:  # a file object that cannot be read, or too large
            failed: EdgeScreenError = exc
        except Exception as exc:  # a broken file object: an internal error, as in prepare()
            log.exception("internal error while reading %s", name)
            failed = EdgeScreenError(f"{type(exc).__name__}: {exc}")
        else:
            return self._processes.submit(item, name, previews)
        done: Future[Result] = Future()
        done.set_result(_unscreened(self._pipeline, name, failed, start, previews))
        return done

    def _isolated_many(self, items: Iterable[MediaInput], previews: bool) -> Iterator[Result]:
        """``screen_many`` on the worker processes: ``workers`` + 1 items in flight, reports
        in input order. An input iterator that raises gets the reports of the items before
        it first, then its exception; stopping early cancels what no worker has taken."""
        window: deque[Future[Result]] = deque()
        it = iter(items)
        try:
            while True:
                try:
                    item = next(it)
                except StopIteration:
                    break
                except Exception as exc:
                    while window:
                        yield window.popleft().result()
                    raise exc
                try:
                    window.append(self._isolated(item, previews))
                except Exception as exc:  # NotMedia, a name that raises: at its turn
                    failed: Future[Result] = Future()
                    failed.set_exception(exc)
                    window.append(failed)
                if len(window) > self.options.workers:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for f in window:
                f.cancel()

    @property
    def _worker_pids(self) -> list[int]:
        """The worker processes' ids with isolation="process" (tests), else none."""
        return [] if self._processes is None else self._processes.pids()

    def stream(self, name: str = "stream") -> LiveStream:
        """A live stream of the caller's own frames, with its own running verdict: use one per
        camera or caller (``with screener.stream() as s: s.screen_frame(rgb, ts)``)."""
        self._current()
        s = LiveStream(str(name), self._current, self.policy, self.options, self.models,
                       self.known)
        self._streams.add(s)
        return s


def _payload(media: MediaInput, opts: ScreenerOptions, deadline: float) -> object:
    """What a worker is sent for ``media``: a path made absolute (the worker opens it; this
    process's /proc/self and /dev/fd named by its pid), bytes, pixels; a file object is read
    here, within ``max_bytes`` (``MediaError`` else). Nothing is copied that prepare() would
    refuse unread: bytes past both byte limits, an array past the pixel limits (a broadcast
    view is small until it is copied). A PIL image is refused (``NotMedia``): sending it would
    decode it in this process."""
    check_input(media)
    if isinstance(media, str | os.PathLike):
        path = os.fsdecode(media)  # not os.path.abspath: "link/.." is the OS's to resolve
        path = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
        for own, ours in (("/proc/self/", ""), ("/dev/fd/", "fd/")):  # this process's
            if path.startswith(own):  # files, not the worker's
                return f"/proc/{os.getpid()}/{ours}{path[len(own):]}"
        return path
    if isinstance(media, bytes | bytearray | memoryview):
        limit = max(opts.max_bytes, opts.video_limits.max_bytes)
        size = media.nbytes if isinstance(media, memoryview) else len(media)
        if size > limit:
            raise MediaTooLarge(f"more than {limit} bytes, the configured limits")
        return bytes(media)
    if isinstance(media, np.ndarray):
        checked_array(media, opts.image_limits)
        return np.asarray(media)  # a subclass as its pixels: pickle may not find its class
    if isinstance(media, Image.Image):
        raise NotMedia("with isolation='process' a PIL image would be decoded in this process: "
                       "pass its encoded bytes, its path or a numpy array")
    with OpenedInput(media, opts.max_bytes) as src:
        return src.read(deadline)


def _unscreened(pipeline: Pipeline, name: str, error: EdgeScreenError, start: float,
               previews: bool) -> Result:
    """The report (with its preview note, no previews) of an item no worker screened, built
    where every unscreenable report is (``Pipeline.unscreened``): the policy's verdict."""
    report = pipeline.unscreened(Prepared(name, None, None, error, 0.0), error, start)
    if not previews:
        return report
    policy = pipeline.policy
    info, _ = PreviewKeeper(policy.preview, policy.child_safety.when["minor"]).finish(
        report.verdict, False)
    return ReportWithPreviews(replace(report, preview=info), ())
