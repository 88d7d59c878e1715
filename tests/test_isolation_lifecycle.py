"""Process isolation's life cycle and misuse: options checked as strictly as the others, close()
and the context manager leave no worker process, file descriptor or temporary file behind after
any error path, close() from another thread during screen_many, a limit too low to start, and
``edge-screen scan --isolation process``."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
from collections.abc import Iterator
from multiprocessing import resource_tracker
from pathlib import Path

import pytest
from conftest import IMAGES

from edge_screen import EdgeScreenError, SamplingOptions, Screener, ScreenerOptions, isolation
from edge_screen.cli import main

PHOTOS = [IMAGES / "astronaut.jpg", IMAGES / "coffee.jpg", IMAGES / "rocket.jpg"]


def children() -> set[int]:
    """This process's live child processes, from /proc (whatever started them)."""
    me, out = str(os.getpid()), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            out.add(int(entry))
    return out


def fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """TMPDIR of this test alone (this process's and its workers'), to count files left."""
    d = tmp_path / "tmpdir"
    d.mkdir()
    monkeypatch.setenv("TMPDIR", str(d))
    monkeypatch.setattr(tempfile, "tempdir", None)
    yield d
    tempfile.tempdir = None


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"isolation": "processes"}, ValueError),
    ({"isolation": "Process"}, ValueError),
    ({"isolation": True}, TypeError),
    ({"isolation": None}, TypeError),
    ({"memory_limit_mb": 1024}, ValueError),  # without isolation it would limit nothing
    ({"isolation": "process", "memory_limit_mb": "2048"}, ValueError),
    ({"isolation": "process", "memory_limit_mb": True}, ValueError),
    ({"isolation": "process", "memory_limit_mb": 100}, ValueError),
    ({"isolation": "process", "memory_limit_mb": 1024.0}, ValueError),
])
def test_wrong_isolation_options_are_refused(kwargs: dict[str, object],
                                             error: type[Exception]) -> None:
    with pytest.raises(error):
        ScreenerOptions(**kwargs)  # type: ignore[arg-type]


def test_close_after_every_fault_leaves_no_process_fd_or_temp_file(
    private_tmp: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # multiprocessing's own resource tracker (one per host process) may start with the first
    # worker: started here first, so it is in the baseline, not counted as ours.
    resource_tracker.ensure_running()
    before_children, before_fds = children(), fds()
    faults = {"kill": "crashed", "segv": "crashed", "allocate": "too_large", "hang": "timeout",
              "forged_answer": "crashed"}
    names = []
    for action in faults:
        names.append(str(tmp_path / action))
        monkeypatch.setitem(isolation.FAULTS, names[-1], action)
    opts = ScreenerOptions(isolation="process", workers=2, threads=2,
                           sampling=SamplingOptions(time_budget_s=3.0))
    with Screener(opts) as s:
        assert len(children() - before_children) == 2
        reports = list(s.screen_many([PHOTOS[0], *names, PHOTOS[1]]))
        assert [r.error.code if r.error else None for r in reports] == [
            None, *faults.values(), None]
    assert children() == before_children, "no worker left"
    assert not multiprocessing.active_children()
    assert fds() == before_fds, "no pipe or sentinel left open"
    assert not list(private_tmp.iterdir()), "no temporary file left"


def test_a_screener_that_cannot_start_its_workers_raises_and_leaves_nothing() -> None:
    resource_tracker.ensure_running()
    before_children, before_fds = children(), fds()
    with pytest.raises(EdgeScreenError, match="memory_limit_mb"):
        Screener(isolation="process", workers=1, memory_limit_mb=512)
    assert children() == before_children and fds() == before_fds


def test_close_during_screen_many_ends_the_iteration_and_every_worker() -> None:
    resource_tracker.ensure_running()
    before = children()
    s = Screener(isolation="process", workers=1, threads=1)
    got: list[str] = []
    failed: list[BaseException] = []
    first = threading.Event()

    def consume() -> None:
        try:
            for r in s.screen_many(PHOTOS * 20):
                got.append(r.path)
                first.set()
        except EdgeScreenError as exc:
            failed.append(exc)
        finally:
            first.set()

    t = threading.Thread(target=consume)
    t.start()
    first.wait()
    s.close()
    t.join()
    assert got and len(got) < len(PHOTOS) * 20
    assert failed and "closed" in str(failed[0])
    assert children() == before
    with pytest.raises(EdgeScreenError, match="closed"):
        s.screen(PHOTOS[0])
    s.close()  # twice: nothing left to do, no error


def test_scan_isolation_process_screens_each_input_in_a_worker(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = str(tmp_path / "crashes.jpg")
    monkeypatch.setitem(isolation.FAULTS, bad, "segv")
    code = main(["scan", "--isolation", "process", "--workers", "1", str(PHOTOS[0]), bad,
                 str(PHOTOS[1])])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1, "an input could not be screened"
    assert [line.split()[0] for line in lines] == ["allow", "hold", "allow"]
    assert "error crashed" in lines[1] and "SIGSEGV" in lines[1]


def test_scan_refuses_an_unknown_isolation(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["scan", "--isolation", "thread", str(PHOTOS[0])])
    assert exit_.value.code == 2
