"""Kept from the attack review of process isolation; each test asserts the safe behaviour.

A hostile uploader (paths, sizes) and a careless integrator (odd arrays, broken file objects,
extreme options, a fork) against ``ScreenerOptions(isolation="process")``: no item is screened
other than in-process would be, no input or option breaks the pool for the items after it, no
report is lost, nothing hangs."""

from __future__ import annotations

import io
import os
import shutil
import signal
import threading
import tracemalloc
from collections.abc import Iterator
from multiprocessing import resource_tracker
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, IMAGES
from PIL import Image
from test_isolation_lifecycle import children
from test_video import clip, scene

from edge_screen import (
    EdgeScreenError,
    ImageLimits,
    NotMedia,
    SamplingOptions,
    Screener,
    ScreenerOptions,
    VideoLimits,
    isolation,
)
from edge_screen.isolation_worker import dumps, loads_answer

COFFEE = IMAGES / "coffee.jpg"
HOLD = DATA / "decision" / "hold_rocket.png"
LIMIT = 1 << 20  # bytes of a still and of a video, pixels of a picture


@pytest.fixture(scope="module")
def isolated() -> Iterator[Screener]:
    opts = ScreenerOptions(threads=1, workers=1, isolation="process", max_bytes=LIMIT,
                           video_limits=VideoLimits(max_bytes=LIMIT),
                           image_limits=ImageLimits(max_pixels=LIMIT))
    with Screener(opts) as s:
        yield s


def _host_peak(call: object) -> int:
    """The bytes this process allocated at most while ``call()`` ran (numpy's too)."""
    tracemalloc.start()
    try:
        call()  # type: ignore[operator]
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_dotdot_path_through_a_symlink_is_the_file_the_os_opens(
    isolated: Screener, screener: Screener, tmp_path: Path
) -> None:
    """``link/../x`` names the file next to the link's target; the host once made it absolute
    lexically (os.path.abspath drops ``link/..``), so the worker screened another file, an
    allowed one, under the held one's name."""
    (tmp_path / "elsewhere" / "sub").mkdir(parents=True)
    shutil.copy(HOLD, tmp_path / "elsewhere" / "photo.png")
    shutil.copy(COFFEE, tmp_path / "photo.png")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere" / "sub")
    name = str(tmp_path / "link" / ".." / "photo.png")
    want = screener.screen(name)
    assert want.verdict == "hold"
    got = isolated.screen(name)
    assert (got.path, got.sha256, got.verdict) == (name, want.sha256, want.verdict)


def test_an_unpicklable_array_is_refused_and_the_pool_still_screens(isolated: Screener) -> None:
    """An object array once reached the dispatcher thread, whose pickling error broke the pool:
    every later item raised."""
    a = np.empty((4, 4, 3), dtype=object)
    a[...] = lambda: 0
    with pytest.raises(NotMedia, match="object"):
        isolated.screen(a)
    assert isolated.screen(COFFEE).ok


def test_a_uint8_array_of_a_local_subclass_is_screened(isolated: Screener) -> None:
    """A subclass pickle cannot name: screened as its pixels, as in-process."""

    class Pixels(np.ndarray):
        pass

    rgb = np.asarray(Image.open(COFFEE).convert("RGB").resize((400, 300))).view(Pixels)
    assert isolated.screen(rgb).ok
    assert isolated.screen(COFFEE).ok


def test_an_array_view_past_the_limits_is_refused_before_it_is_copied(
    isolated: Screener,
) -> None:
    """A broadcast view costs nothing until it is copied: the host once pickled it whole (at
    40000x40000, 4.8 GB in the host, or a MemoryError that broke the pool) for the worker to
    refuse it."""
    view = np.broadcast_to(np.zeros(3, np.uint8), (2000, 2000, 3))  # 12 MB, 4x the limit
    got: list[object] = []
    peak = _host_peak(lambda: got.append(isolated.screen(view)))
    r = got[0]
    assert r.error is not None and r.error.code == "too_large" and r.verdict == "hold"
    assert peak < 4 << 20, f"{peak >> 20} MB allocated for a refused view"


def test_bytes_past_every_byte_limit_are_refused_in_the_host(isolated: Screener) -> None:
    """Bytes over the still and the video limits were copied, pickled and sent whole (a 900 MB
    upload killed a 1 GB worker while it was received: "crashed", a new worker)."""
    data = COFFEE.read_bytes() + bytes(8 * LIMIT)
    pids = isolated._worker_pids
    got: list[object] = []
    peak = _host_peak(lambda: got.append(isolated.screen(data)))
    r = got[0]
    assert r.error is not None and r.error.code == "too_large" and r.verdict == "hold"
    assert peak < 4 * LIMIT, f"{peak >> 20} MB allocated for refused bytes"
    assert isolated._worker_pids == pids


def test_a_file_object_that_fails_to_read_gets_a_report_as_in_process(
    isolated: Screener, screener: Screener
) -> None:
    """A closed file raises ValueError when read: in-process that is an internal-error report;
    in the host it once escaped screen(), and screen_many lost the reports before it."""
    def closed() -> io.BufferedReader:
        f = open(COFFEE, "rb")  # noqa: SIM115
        f.close()
        return f

    want = screener.screen(closed())
    got = isolated.screen(closed())
    assert (got.verdict, got.error) == (want.verdict, want.error)
    assert want.error is not None and want.error.code == "internal"
    reports = list(isolated.screen_many([COFFEE, COFFEE, closed(), COFFEE]))
    assert [r.error is None for r in reports] == [True, True, False, True]


def test_an_input_that_raises_in_screen_many_comes_at_its_turn(isolated: Screener) -> None:
    """A file object whose name raises: the reports of the items before it come first, as
    in-process."""
    class Nameless(io.BytesIO):
        @property
        def name(self) -> str:
            raise RuntimeError("no name")

    got: list[str] = []
    with pytest.raises(RuntimeError, match="no name"):
        for r in isolated.screen_many([COFFEE, COFFEE, Nameless(b"x"), COFFEE]):
            got.append(r.path)
    assert got == [str(COFFEE), str(COFFEE)]


def test_a_time_budget_past_what_the_os_can_wait_still_screens() -> None:
    """time_budget_s=1e10 passed the options' check, then the dispatcher's wait overflowed
    ("timestamp too large") and every item raised."""
    opts = ScreenerOptions(threads=1, workers=1, isolation="process",
                           sampling=SamplingOptions(time_budget_s=1e10))
    with Screener(opts) as s:
        assert s.screen(COFFEE).ok
        assert s.screen(COFFEE).ok


@pytest.mark.parametrize("budget", [float("nan"), -1.0, float("-inf"), "5"])
def test_a_time_budget_that_is_no_deadline_is_refused_with_isolation(budget: object) -> None:
    """The hard deadline is time_budget_s + 2 s: NaN would compare false with every clock."""
    with pytest.raises(ValueError, match="time_budget_s"):
        ScreenerOptions(isolation="process",
                        sampling=SamplingOptions(time_budget_s=budget))  # type: ignore[arg-type]


def test_a_memory_limit_past_what_rlimit_takes_is_refused() -> None:
    """memory_limit_mb=2**43 is 2**63 bytes: setrlimit overflowed in every worker and the
    Screener blamed a missing ``if __name__ == '__main__'``."""
    with pytest.raises(ValueError, match="memory_limit_mb"):
        ScreenerOptions(isolation="process", memory_limit_mb=1 << 43)


def test_a_forked_child_is_refused_rather_than_left_waiting(isolated: Screener) -> None:
    """The pool's dispatcher thread does not survive a fork: a child's screen() queued its item
    where nothing would ever take it, and waited forever."""
    assert isolated.screen(COFFEE).ok
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what screen() did, never run pytest's code
        os.close(r)
        signal.alarm(30)  # a hang ends here, as "hung"
        try:
            isolated.screen(COFFEE)
            os.write(w, b"screened")
        except EdgeScreenError as exc:
            os.write(w, f"raised: {exc}".encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        said = f.read().decode()
    os.waitpid(pid, 0)
    assert said.startswith("raised") and "fork" in said, said or "hung"
    assert isolated.screen(COFFEE).ok, "the parent's pool is untouched"


def test_a_worker_dying_mid_answer_costs_its_item_only(
    isolated: Screener, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Half an answer on the pipe, then the worker is gone: crashed, the next item screened."""
    name = str(tmp_path / "partial.jpg")
    monkeypatch.setitem(isolation.FAULTS, name, "partial_answer")
    first, second = isolated.screen_many([name, COFFEE])
    assert first.path == name and first.error is not None and first.error.code == "crashed"
    assert first.verdict == "hold" and second.ok


def test_every_kind_of_report_crosses_the_answer_allow_list(screener: Screener) -> None:
    """Video, animation, still and unscreenable reports are made of the
    allow-listed classes only: a numpy scalar or a Fraction in a report would turn every such
    item into "crashed" in isolation."""
    frames = [scene(True), scene(False), scene(True)]
    gif = io.BytesIO()
    Image.fromarray(frames[0]).save(gif, "GIF", save_all=True,
                                    append_images=[Image.fromarray(f) for f in frames[1:]])
    for media in (clip(frames), gif.getvalue(), COFFEE, HOLD, b"not media"):
        report = screener.screen(media)
        assert loads_answer(dumps(("report", report))) == ("report", report)


def test_an_exception_while_the_workers_start_leaves_none_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An alarm (an integrator's start-up timeout) or Ctrl-C while Screener() waited for its
    workers left them and the dispatcher running, with nothing to close them."""
    resource_tracker.ensure_running()
    before, threads = children(), set(threading.enumerate())

    def interrupted(self: isolation.ProcessPool) -> None:
        raise TimeoutError("the integrator's start-up alarm")

    monkeypatch.setattr(isolation.ProcessPool, "wait_ready", interrupted)
    with pytest.raises(TimeoutError):
        Screener(isolation="process", workers=2, threads=2)
    assert children() == before
    assert set(threading.enumerate()) == threads, "the dispatcher thread ended too"


def test_a_proc_self_path_names_the_hosts_file(
    isolated: Screener, screener: Screener
) -> None:
    """/proc/self/fd/N (an upload held open or unlinked) and /dev/fd/N name this process's
    descriptor; opened as they were in the worker, they named the worker's own (an "io" error
    here, or another file)."""
    fd = os.open(HOLD, os.O_RDONLY)
    try:
        want = screener.screen(f"/proc/self/fd/{fd}")
        assert want.verdict == "hold" and want.error is None
        for name in (f"/proc/self/fd/{fd}", f"/dev/fd/{fd}"):
            got = isolated.screen(name)
            assert (got.path, got.error, got.sha256) == (name, None, want.sha256)
    finally:
        os.close(fd)
