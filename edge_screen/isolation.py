"""Process isolation (``ScreenerOptions(isolation="process")``): every item is screened whole in
one of a small pool of worker processes, so a hostile file that crashes a native decoder, hangs
in it or eats memory costs that item's report and nothing else.

The pool is ``options.workers`` processes, started once with the multiprocessing "spawn" context
(no copy of the host's threads or locks), each with its own ``Screener`` (``isolation_worker``)
reused across items. One dispatcher thread owns them: it hands queued jobs to idle workers,
waits on their pipes and process sentinels at once, and enforces each item's deadline. A worker
that dies (a signal, an abort), misses the deadline (``time_budget_s`` + ``GRACE_S`` from when
the item was handed to it: nothing inside the worker can overrun it), or goes past its memory
limit is killed and replaced, and the item gets the policy's unscreenable verdict with the code
``crashed``, ``timeout`` or ``too_large``. Each item is tried once: a file that crashes a
worker would crash the next one too.

``close()`` ends every worker (stop, then SIGKILL after ``STOP_S``) and the dispatcher; jobs not
answered then raise ``EdgeScreenError``. Workers are daemonic, ignore SIGINT, and on Linux die
with the host even while stuck in C.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from .errors import (
    EdgeScreenError,
    MediaError,
    MediaTooLarge,
    NotMedia,
    ScreeningTimeout,
    WorkerCrashed,
)
from .isolation_worker import EXIT_MEMORY, FAULT_ACTIONS, MAX_ANSWER, dumps, loads_answer, serve
from .options import ScreenerOptions
from .policy import VERDICTS
from .preview import ReportWithPreviews
from .report import ScreeningReport

log = logging.getLogger("edge_screen")

GRACE_S = 2.0  # past time_budget_s, for the worker's own timeout report to arrive first
START_S = 120.0  # a worker's start (imports, bundle verification, interpreters) at most
STOP_S = 2.0  # close(): how long a worker may take to exit before it is killed
MAX_WAIT_S = 3600.0  # one wait on the pipes at most (a far deadline overflows the OS's wait)
START_FAILURES = 3  # workers in a row that die or hang while starting: the pool is broken
DEFAULT_MEMORY_MB = 2048  # a worker's address space; its measured peak: README#isolation
# Test hook: an input's path (as given to screen) -> a fault its worker acts out instead of
# screening it (``isolation_worker.FAULT_ACTIONS``). Empty outside tests; filled by code only.
FAULTS: dict[str, str] = {}

Result = ScreeningReport | ReportWithPreviews
# Builds the unscreenable result of an item the pool could not screen: its name, the error, when
# its screening started, and whether previews were asked for.
Unscreened = Callable[[str, MediaError, float, bool], Result]


@dataclass
class _Job:
    message: bytes  # pickled (what the worker's screen() takes, previews, fault)
    name: str  # what the report's path says (as the caller gave it)
    previews: bool
    future: Future[Result]
    start: float = 0.0  # when a worker took it


@dataclass
class _Slot:
    process: BaseProcess
    pid: int
    conn: Connection
    deadline: float  # to start, or to answer its job
    job: _Job | None = None
    ready: bool = False
    ended: bool = False


@dataclass
class _State:
    queue: deque[_Job] = field(default_factory=deque)
    closing: bool = False  # the dispatcher is to end (close(), or the pool is broken)
    closed: bool = False  # close() was called
    broken: EdgeScreenError | None = None
    start_failures: int = 0


class ProcessPool:
    """``size`` worker processes screening with ``options`` (isolation off, one item each)."""

    def __init__(self, options: ScreenerOptions, size: int, budget_s: float, memory_mb: int,
                 unscreened: Unscreened) -> None:
        self._options = options
        self._deadline_s = budget_s + GRACE_S
        self._memory_mb = memory_mb
        self._unscreened = unscreened
        self._ctx = multiprocessing.get_context("spawn")
        self._pid = os.getpid()  # a forked child has the pool's state, not its threads
        self._lock = threading.Lock()
        self._state = _State()
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._slots: list[_Slot] = []
        try:
            for _ in range(size):
                self._slots.append(self._start())
        except BaseException:
            self._end_all()
            self._wake_w.close()
            self._wake_r.close()
            raise
        self._thread = threading.Thread(target=self._dispatch, name="edge-screen-isolation",
                                        daemon=True)
        self._thread.start()

    def wait_ready(self) -> None:
        """Block until every worker has started; raise what keeps them from starting."""
        while True:
            with self._lock:
                broken = self._state.broken
                if broken is None and all(s.ready and not s.ended for s in self._slots):
                    return
            if broken is not None or not self._thread.is_alive():
                self.close()
                raise broken or EdgeScreenError("the isolation dispatcher stopped")
            time.sleep(0.02)

    def pids(self) -> list[int]:
        """The workers' process ids once all have started (tests count them)."""
        self.wait_ready()
        return [s.pid for s in list(self._slots)]

    def busy(self) -> list[int]:
        """The process ids of the workers screening an item now (tests kill one)."""
        return [s.pid for s in list(self._slots) if s.job is not None and not s.ended]

    def submit(self, media: object, name: str, previews: bool) -> Future[Result]:
        """Queue one item; its future gets its report (or ``NotMedia`` from the worker). It is
        pickled here: what cannot be is the caller's error, not the dispatcher's."""
        if os.getpid() != self._pid:
            raise EdgeScreenError("this isolated Screener was made before a fork: its workers "
                                  "and dispatcher are the parent's; make one in this process")
        fault = FAULTS.get(name) if FAULTS else None
        if fault is not None and fault not in FAULT_ACTIONS:
            raise ValueError(f"unknown test fault {fault!r}")
        job = _Job(dumps((media, previews, fault)), name, previews, Future())
        with self._lock:
            if self._state.broken is not None:
                raise self._state.broken
            if self._state.closing:
                raise EdgeScreenError("this Screener is closed; create a new one")
            self._state.queue.append(job)
            self._wake_w.send_bytes(b"")
        return job.future

    def close(self) -> None:
        """End every worker and the dispatcher; unanswered jobs raise ``EdgeScreenError``."""
        with self._lock:
            first, self._state.closed = not self._state.closed, True
            if first:
                self._state.closing = True
                self._wake_w.send_bytes(b"")
        self._thread.join()
        if first:
            self._wake_w.close()
            self._wake_r.close()

    # -- the dispatcher thread ------------------------------------------------------------

    def _start(self) -> _Slot:
        ours, theirs = self._ctx.Pipe()
        process = self._ctx.Process(
            target=serve, args=(theirs, os.getpid(), self._memory_mb << 20),
            name="edge-screen-worker", daemon=True,
        )
        try:
            process.start()
            ours.send_bytes(dumps(self._options))
        except BaseException:
            ours.close()
            if process.pid is not None:
                process.kill()
                process.join()
            raise
        finally:
            theirs.close()
        assert process.pid is not None  # started
        return _Slot(process, process.pid, ours, time.monotonic() + START_S)

    def _dispatch(self) -> None:
        try:
            while True:
                with self._lock:
                    if self._state.closing:
                        break
                self._assign()
                self._step()
        except BaseException as exc:  # a bug here must not leave callers waiting forever
            log.exception("the isolation dispatcher failed")
            with self._lock:
                self._state.broken = EdgeScreenError(f"the isolation dispatcher failed: {exc!r}")
        finally:
            self._end_all()

    def _assign(self) -> None:
        for slot in self._slots:
            if not slot.ready or slot.job is not None:
                continue
            with self._lock:
                job = self._state.queue.popleft() if self._state.queue else None
            while job is not None and not job.future.set_running_or_notify_cancel():
                with self._lock:  # cancelled (screen_many stopped early): skip it
                    job = self._state.queue.popleft() if self._state.queue else None
            if job is None:
                return
            job.start = time.perf_counter()
            slot.job, slot.deadline = job, time.monotonic() + self._deadline_s
            with contextlib.suppress(OSError):  # it died meanwhile: its sentinel says so next
                slot.conn.send_bytes(job.message)

    def _step(self) -> None:
        waits: list[Any] = [self._wake_r]
        for s in self._slots:
            waits += [s.conn, s.process.sentinel]
        first = min(s.deadline for s in self._slots)
        ready = set(wait(waits, None if first == float("inf")
                         else min(MAX_WAIT_S, max(0.0, first - time.monotonic()))))
        if self._wake_r in ready:
            while self._wake_r.poll():
                self._wake_r.recv_bytes()
        for i, slot in enumerate(self._slots):
            if slot.conn in ready:
                self._read(i, slot)
            elif slot.process.sentinel in ready:
                self._replace(i, self._death(slot))
            elif time.monotonic() >= slot.deadline:
                late = slot.job is not None
                self._replace(i, ScreeningTimeout(
                    f"no answer within the item's deadline of {self._deadline_s:g} s "
                    "(time budget + grace): the worker screening it was killed") if late else None)

    def _read(self, i: int, slot: _Slot) -> None:
        try:
            answer = loads_answer(slot.conn.recv_bytes(MAX_ANSWER))
        except (EOFError, OSError):  # it died (or sent more than an answer can be)
            self._replace(i, self._death(slot))
            return
        except Exception as exc:  # a refused or malformed answer: that worker is not trusted
            log.warning("worker %s sent a refused answer: %s", slot.process.pid, exc)
            self._replace(i, WorkerCrashed(f"its worker's answer was refused: {exc}"))
            return
        if not self._accept(slot, answer):
            self._replace(i, WorkerCrashed("its worker's answer was malformed"))

    def _accept(self, slot: _Slot, answer: Any) -> bool:
        if not isinstance(answer, tuple) or not 1 <= len(answer) <= 2:
            return False
        kind, job = answer[0], slot.job
        if not slot.ready:
            if answer == ("ready",):
                slot.ready, slot.deadline = True, float("inf")
                with self._lock:
                    self._state.start_failures = 0
                return True
            if kind == "failed" and len(answer) == 2 and isinstance(answer[1], str):
                self._fail(EdgeScreenError(f"a worker could not start (memory_limit_mb="
                                           f"{self._memory_mb}): {answer[1]}"))
                return True
            return False
        if job is None or len(answer) != 2:
            return False
        result = answer[1]
        if kind == "not_media" and isinstance(result, str):
            job.future.set_exception(NotMedia(result))
        elif kind == "report" and _well_formed(result, job.previews):
            job.future.set_result(_named(result, job.name))
        else:
            return False
        slot.job, slot.deadline = None, float("inf")
        return True

    def _death(self, slot: _Slot) -> MediaError | None:
        """Why a worker ended, as the error of the item it held (None: it held none)."""
        slot.process.join(STOP_S)
        code = slot.process.exitcode
        if slot.job is None:
            return None
        if code == EXIT_MEMORY:
            return MediaTooLarge(f"the worker screening it went past its memory limit of "
                                 f"{self._memory_mb} MB and was replaced")
        if code is not None and code < 0:
            try:
                how = signal.Signals(-code).name
            except ValueError:
                how = f"signal {-code}"
            return WorkerCrashed(f"the worker screening it was killed by {how} and replaced")
        return WorkerCrashed(f"the worker screening it exited (status {code}) and was replaced")

    def _replace(self, i: int, error: MediaError | None) -> None:
        """End slot ``i``'s worker, report its item as ``error``, start a fresh worker."""
        slot = self._slots[i]
        status = self._end(slot)
        if slot.job is not None:
            job = slot.job
            slot.job = None
            why = error or WorkerCrashed("its worker was lost")
            job.future.set_result(self._unscreened(job.name, why, job.start, job.previews))
        elif not slot.ready:
            with self._lock:
                self._state.start_failures += 1
                failures = self._state.start_failures
            if failures >= START_FAILURES and status == EXIT_MEMORY:
                self._fail(EdgeScreenError(f"a worker cannot load the models within "
                                           f"memory_limit_mb={self._memory_mb}"))
                return
            if failures >= START_FAILURES:
                self._fail(EdgeScreenError(
                    f"{failures} workers in a row died or hung while starting; their stderr "
                    "says why. A script that makes an isolated Screener when it is imported "
                    "needs `if __name__ == '__main__':` (multiprocessing's spawn imports the "
                    "main module again)"))
                return
        try:
            self._slots[i] = self._start()
        except Exception as exc:
            self._fail(EdgeScreenError(f"cannot start a worker process: {exc}"))

    def _fail(self, error: EdgeScreenError) -> None:
        with self._lock:
            self._state.broken = error
            self._state.closing = True  # the loop ends; _end_all fails what is queued

    def _end(self, slot: _Slot) -> int | None:
        """Kill (if need be) and reap the slot's worker; its exit status."""
        if slot.ended:
            return None
        slot.ended = True
        if slot.process.exitcode is None:
            slot.process.kill()
        slot.process.join()
        status = slot.process.exitcode
        slot.conn.close()
        slot.process.close()
        return status

    def _end_all(self) -> None:
        """Stop every worker (kill those that do not stop in ``STOP_S``), fail every job left."""
        for s in self._slots:
            if not s.ended:
                with contextlib.suppress(OSError):
                    s.conn.send_bytes(dumps(None))
        end = time.monotonic() + STOP_S
        for s in self._slots:
            if s.job is None and s.ready and not s.ended:
                s.process.join(max(0.0, end - time.monotonic()))
            self._end(s)
        with self._lock:
            error = self._state.broken or EdgeScreenError("the Screener was closed before "
                                                          "this item was screened")
            self._state.closing = True
            left = [s.job for s in self._slots if s.job is not None] + list(self._state.queue)
            self._state.queue.clear()
        for job in left:
            if not job.future.done():
                job.future.set_exception(error)
        self._slots = []


def _well_formed(result: object, previews: bool) -> bool:
    """A worker's report is of the kind asked for, with a verdict there is."""
    report = result.report if isinstance(result, ReportWithPreviews) else result
    kind_ok = isinstance(result, ReportWithPreviews) == previews
    return kind_ok and isinstance(report, ScreeningReport) and report.verdict in VERDICTS


def _named(result: Result, name: str) -> Result:
    """The report's path as the caller gave it (the worker saw an absolute path or bytes)."""
    if isinstance(result, ReportWithPreviews):
        return ReportWithPreviews(replace(result.report, path=name), result.previews)
    return replace(result, path=name)


