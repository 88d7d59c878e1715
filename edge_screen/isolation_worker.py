"""The worker side of process isolation (``edge_screen.isolation``), and the wire between the two.

A worker is a spawned process with its own ``Screener`` (the parent's options, minus isolation),
reused across items: it takes one job at a time from its pipe, screens it, answers with the
report, and exits when the pipe says stop or closes. Its address space is capped with
``RLIMIT_AS`` (Linux only); a ``MemoryError`` anywhere in an item ends the worker with
``EXIT_MEMORY``, so the parent reports the item ``too_large`` and starts a fresh worker (after
one, the process's state is not trusted). It ignores SIGINT (the host's Ctrl-C is the parent's
to handle) and, on Linux, dies with its parent.

The wire is pickle, both ways, but the parent unpickles a worker's answer with an allow-list of
the report's own classes (``loads_answer``): a worker taken over by a hostile file could lie
about its item's verdict (as it could in the host's own process), but cannot make the host run
code.
"""

from __future__ import annotations

import copyreg
import ctypes
import io
import logging
import os
import pickle
import signal
import struct
import sys
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from types import MappingProxyType
from typing import Any

from .errors import NotMedia

EXIT_MEMORY = 86  # a worker's exit status after a MemoryError: the item gets "too_large"
MAX_ANSWER = 32 << 20  # bytes of one answer (a report, its previews); more: the worker is wrong
# Fault-injection hook for tests (``isolation.FAULTS``): what a worker does with the job instead
# of screening it. Only the parent puts one in a job, from its test-only table; no input can.
FAULT_ACTIONS = ("kill", "segv", "abort", "hang", "allocate", "forged_answer", "partial_answer")


def _proxy(d: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(d)


def dumps(obj: object) -> bytes:
    """Pickled, read-only mappings included (a policy's rules hold them; pickle cannot)."""
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table,
                              MappingProxyType: lambda m: (_proxy, (dict(m),))}
    pickler.dump(obj)
    return buf.getvalue()


# What a worker's answer may be made of: the report, its previews and hashes; nothing that runs.
_ANSWER_CLASSES = {
    "edge_screen.report": {"ScreeningReport", "MediaInfo", "Face", "Evidence", "ReportError",
                           "PreviewInfo", "PreviewFrame"},
    "edge_screen.preview": {"Preview", "ReportWithPreviews"},
    "edge_screen.hashes": {"Hashes", "FrameHash"},
    "edge_screen.pdq": {"PdqHash"},
    "edge_screen.known": {"Match"},
    "edge_screen.isolation_worker": {"_proxy"},
}


class RefusedAnswer(pickle.UnpicklingError):
    """A worker's answer named something outside the allow-list."""


class _AnswerUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if name in _ANSWER_CLASSES.get(module, ()):
            return super().find_class(module, name)
        raise RefusedAnswer(f"a worker's answer may not hold {module}.{name}")


def loads_answer(data: bytes) -> Any:
    """A worker's answer, unpickled with the report classes only (``RefusedAnswer`` else)."""
    return _AnswerUnpickler(io.BytesIO(data)).load()


class _MemoryWatch(logging.Handler):
    """Sees the ``MemoryError`` the pipeline caught and logged as an internal error."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.hit = False

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is not None and isinstance(record.exc_info[1], MemoryError):
            self.hit = True


def _limit_memory(limit_bytes: int) -> None:
    """RLIMIT_AS on Linux; elsewhere (macOS does not enforce it, Windows has none) nothing."""
    if sys.platform.startswith("linux"):
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the parent dies, even while it is stuck in C."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def serve(conn: Connection, parent: int, limit_bytes: int) -> None:
    """A worker's life: set up from the first message (the options), then one job at a time."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above
        return
    from .screener import Screener  # here: the parent's module imports this one

    watch = _MemoryWatch()
    logging.getLogger("edge_screen").addHandler(watch)
    options = pickle.loads(conn.recv_bytes())
    _limit_memory(limit_bytes)
    try:
        screener = Screener(options)
    except MemoryError:
        os._exit(EXIT_MEMORY)
    except Exception as exc:  # the parent raises it: a setup that cannot screen at all
        conn.send_bytes(dumps(("failed", f"{type(exc).__name__}: {exc}")))
        return
    conn.send_bytes(dumps(("ready",)))
    while True:
        try:
            job = pickle.loads(conn.recv_bytes())
        except EOFError:  # the parent is gone
            return
        if job is None:
            return
        media, previews, fault = job
        watch.hit = False
        try:
            if fault is not None:
                _fault(fault, limit_bytes, conn)
            try:
                result = (screener.screen_with_preview(media) if previews
                          else screener.screen(media))
                answer: tuple[str, object] = ("report", result)
            except NotMedia as exc:
                answer = ("not_media", str(exc))
            data = dumps(answer)
        except MemoryError:
            os._exit(EXIT_MEMORY)
        if watch.hit:
            os._exit(EXIT_MEMORY)
        try:
            conn.send_bytes(data)
        except OSError:  # the parent is gone
            return


def _fault(action: str, limit_bytes: int, conn: Connection) -> None:
    """The test hook's faults, as a hostile file in a native decoder would cause them."""
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif action == "abort":
        os.abort()
    elif action == "hang":  # stuck as a decoder in C is: no Python-level deadline check runs
        while True:
            time.sleep(60)
    elif action == "allocate":
        bytearray(limit_bytes)  # the whole address space allowed, on top of what is mapped
    elif action == "forged_answer":  # a taken-over worker trying to run code in the host
        conn.send_bytes(pickle.dumps(("report", _Forged())))
    elif action == "partial_answer":  # killed while its answer is on the pipe: a header
        os.write(conn.fileno(), struct.pack("!i", 1 << 20) + b"half an answer")  # and a part
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # an unknown action or a survived one: the parent's deadline ends it


class _Forged:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo forged answer ran in the host",))
