"""``screen_many``'s scheduling: which item is prepared (read, decoded) on which thread, and which
worker's interpreters screen it, with reports in input order and bounded memory.

With one worker the next item is prepared while the models run on this one; with ``n`` workers
``n`` items are screened at once, each on its own interpreters. Stopping the iteration early
leaves the rest of the input unread.
"""

from __future__ import annotations

import itertools
import queue
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from .models import Worker
from .prepare import Prepared
from .report import ScreeningReport
from .source import MediaInput

Prepare = Callable[[MediaInput], Prepared]
Run = Callable[[Prepared, Worker, float], ScreeningReport]


def one_by_one(
    items: Iterable[MediaInput], prepare: Prepare, run: Run, worker: Worker
) -> Iterator[ScreeningReport]:
    """One item at a time on ``worker``, the next prepared meanwhile."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-screen-decode") as pool:
        it = iter(items)
        pending: Future[Prepared] | None = None
        first = next(it, None)
        if first is not None:
            pending = pool.submit(prepare, first)
        try:
            while pending is not None:
                start = time.perf_counter()
                prepared = pending.result()
                nxt = next(it, None)
                pending = pool.submit(prepare, nxt) if nxt is not None else None
                yield run(prepared, worker, start)
        finally:  # the caller stopped early: close a video opened ahead
            if pending is not None and not pending.cancel():
                ahead = pending.result()
                if ahead.clip is not None:
                    ahead.clip.close()


def pooled(
    items: Iterable[MediaInput], prepare: Prepare, run: Run, workers: list[Worker]
) -> Iterator[ScreeningReport]:
    """``len(workers)`` items at once, each prepared and screened on one worker's thread."""
    free: queue.SimpleQueue[Worker] = queue.SimpleQueue()
    for w in workers:
        free.put(w)

    def job(media: MediaInput) -> ScreeningReport:
        worker = free.get()  # as many jobs run as there are workers: never blocks long
        try:
            prepared = prepare(media)
            return run(prepared, worker, time.perf_counter())
        finally:
            free.put(worker)

    n = len(workers)
    with ThreadPoolExecutor(n, thread_name_prefix="edge-screen-worker") as pool:
        window: deque[Future[ScreeningReport]] = deque()
        try:
            for item in items:  # at most workers + 1 items in flight: bounded memory
                window.append(pool.submit(job, item))
                if len(window) > n:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:  # the caller stopped early: drop what has not started
            for f in window:
                f.cancel()


def head(items: Iterable[MediaInput], n: int) -> tuple[list[MediaInput], Iterator[MediaInput]]:
    """The first ``n`` items, and an iterator over all of them (those included)."""
    it = iter(items)
    first = list(itertools.islice(it, n))
    return first, itertools.chain(first, it)
