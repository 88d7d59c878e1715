"""Process isolation's fault tests: a worker killed (SIGKILL, SIGSEGV, abort) mid-item, a worker
stuck as a hung decoder is, one allocating past its memory limit, one forging its answer; each:
that item's code, every other item screened in order, the pool back to full size.

One isolated Screener serves the module (worker start is the slow part); the faults come from
the test-only hook ``edge_screen.isolation.FAULTS`` (an input's name -> what its worker does).
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, IMAGES, encode, portrait
from PIL import Image

from edge_screen import (
    NotMedia,
    ReportWithPreviews,
    SamplingOptions,
    Screener,
    ScreenerOptions,
    ScreeningReport,
    isolation,
)
from edge_screen.isolation_worker import RefusedAnswer, _MemoryWatch, loads_answer

BUDGET_S = 4.0  # the module's time budget: the hang test waits for it (+ isolation.GRACE_S)
GOOD = [IMAGES / "astronaut.jpg", DATA / "hostile" / "truncated.jpg", IMAGES / "coffee.jpg"]


@pytest.fixture(scope="module")
def isolated() -> Iterator[Screener]:
    opts = ScreenerOptions(threads=2, workers=2, isolation="process", previews=True,
                           sampling=SamplingOptions(time_budget_s=BUDGET_S))
    with Screener(opts) as s:
        yield s


@pytest.fixture(scope="module")
def expected(screener: Screener) -> dict[str, ScreeningReport]:
    """What the in-process screener says of the good inputs."""
    return {str(p): screener.screen(p) for p in GOOD}


def fault(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, action: str) -> str:
    """A name that makes its worker act out ``action`` (the file need not exist)."""
    name = str(tmp_path / f"fault-{action}.jpg")
    monkeypatch.setitem(isolation.FAULTS, name, action)
    return name


def alive(pids: list[int]) -> bool:
    return all(Path(f"/proc/{pid}").exists() for pid in pids)


def check_others(reports: list[ScreeningReport], expected: dict[str, ScreeningReport]) -> None:
    for r in reports:
        want = expected[r.path]
        assert (r.verdict, r.error, r.signals.keys()) == (want.verdict, want.error,
                                                          want.signals.keys()), r.path
        for k, v in want.signals.items():
            assert v is None or r.signals[k] == pytest.approx(v, abs=1e-3), (r.path, k)


@pytest.mark.parametrize(("action", "code", "says"), [
    ("kill", "crashed", "SIGKILL"),
    ("segv", "crashed", "SIGSEGV"),
    ("abort", "crashed", "SIGABRT"),
    ("allocate", "too_large", "memory limit"),
    ("hang", "timeout", "deadline"),
    ("forged_answer", "crashed", "refused"),
])
def test_a_worker_fault_costs_its_item_only_and_the_pool_is_refilled(
    isolated: Screener, expected: dict[str, ScreeningReport], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, action: str, code: str, says: str,
) -> None:
    before = isolated._worker_pids
    bad = fault(monkeypatch, tmp_path, action)
    items = [str(p) for p in GOOD[:2]] + [bad] + [str(p) for p in GOOD]
    reports = list(isolated.screen_many(items))
    assert [r.path for r in reports] == items, "one report per input, in input order"
    hit = reports[2].report if isinstance(reports[2], ReportWithPreviews) else reports[2]
    assert hit.error is not None and hit.error.code == code and says in hit.error.message
    assert hit.verdict == isolated.policy.unscreenable == "hold"
    assert hit.signals["sexual"] is None and hit.hashes is None
    check_others(reports[:2] + reports[3:], expected)
    after = isolated._worker_pids
    assert len(after) == 2 and alive(after), "the pool is back to full size"
    assert len(set(before) - set(after)) == 1, "exactly the faulted worker was replaced"


def test_a_worker_killed_from_outside_mid_item_costs_that_item_only(
    isolated: Screener, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As the kernel's OOM killer or an operator would: SIGKILL to a worker that is busy."""
    pool = isolated._processes
    assert pool is not None
    assert len(isolated._worker_pids) == 2  # both started
    stuck = fault(monkeypatch, tmp_path, "hang")
    with ThreadPoolExecutor(1) as ex:
        pending = ex.submit(isolated.screen, stuck)
        while not pool.busy():
            time.sleep(0.01)
        os.kill(pool.busy()[0], signal.SIGKILL)
        r = pending.result()
    assert r.error is not None and r.error.code == "crashed" and "SIGKILL" in r.error.message
    assert isolated.screen(IMAGES / "coffee.jpg").ok and len(isolated._worker_pids) == 2


def test_threads_may_share_an_isolated_screener(
    isolated: Screener, expected: dict[str, ScreeningReport], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(IMAGES)  # a relative path is the caller's, resolved when it is given
    with ThreadPoolExecutor(4) as ex:
        reports = list(ex.map(isolated.screen, [str(p) for p in GOOD] * 2))
    check_others(reports, expected)
    assert isolated.screen("coffee.jpg").path == "coffee.jpg"


def test_a_forged_answer_runs_nothing_in_the_host(
    isolated: Screener, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("EDGE_SCREEN_FORGED_RAN", raising=False)
    r = isolated.screen(fault(monkeypatch, tmp_path, "forged_answer"))
    assert r.error is not None and r.error.code == "crashed"
    assert "EDGE_SCREEN_FORGED_RAN" not in os.environ


def test_answers_are_unpickled_with_the_report_classes_only() -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            return (exec, ("raise SystemExit('ran')",))

    with pytest.raises(RefusedAnswer):
        loads_answer(pickle.dumps(("report", Evil())))
    with pytest.raises(RefusedAnswer):
        loads_answer(pickle.dumps(("report", Path("/etc/passwd"))))


def test_a_worker_dying_on_every_item_gives_each_a_crashed_report(
    isolated: Screener, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    names = [str(tmp_path / f"every-{i}.jpg") for i in range(3)]
    for n in names:
        monkeypatch.setitem(isolation.FAULTS, n, "kill")
    reports = list(isolated.screen_many(names))
    assert [r.path for r in reports] == names
    assert all(r.error is not None and r.error.code == "crashed" and r.verdict == "hold"
               for r in reports)
    assert len(isolated._worker_pids) == 2 and alive(isolated._worker_pids)
    assert isolated.screen(IMAGES / "coffee.jpg").ok, "the pool still screens afterwards"


def test_a_fault_cannot_come_from_the_media(isolated: Screener, tmp_path: Path) -> None:
    """The hook reads only its table, which code fills: names and bytes of the actions are
    screened as media."""
    assert not isolation.FAULTS
    named = tmp_path / "segv"
    named.write_bytes(b"kill segv hang allocate")
    pids = isolated._worker_pids
    for media in (named, b"segv", b"hang" * 100, "kill"):
        r = isolated.screen(media)
        assert r.error is not None and r.error.code in ("unsupported", "io", "corrupt"), r.error
    assert isolated._worker_pids == pids, "no worker died"


def test_isolated_reports_match_in_process_ones(
    isolated: Screener, expected: dict[str, ScreeningReport]
) -> None:
    check_others([isolated.screen(p) for p in GOOD], expected)
    r = isolated.screen(str(GOOD[0]))
    assert r.path == str(GOOD[0]) and r.sha256 == expected[str(GOOD[0])].sha256


def test_bytes_file_objects_and_arrays_are_screened_in_the_workers(isolated: Screener) -> None:
    data = (IMAGES / "astronaut.jpg").read_bytes()
    with open(IMAGES / "astronaut.jpg", "rb") as f:
        from_file = isolated.screen(f)
    from_bytes, from_array = isolated.screen(data), isolated.screen(portrait())
    assert from_file.path == str(IMAGES / "astronaut.jpg") and from_bytes.path == "<bytes>"
    assert from_file.sha256 == from_bytes.sha256 and from_file.verdict == from_bytes.verdict
    assert from_array.ok and len(from_array.faces) == 1


def test_an_endless_file_object_is_too_large(isolated: Screener) -> None:
    class Endless(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            b[:] = b"\xff" * len(b)
            return len(b)

    pids = isolated._worker_pids
    r = isolated.screen(Endless())  # read in the host, max_bytes + 1 at most
    assert r.error is not None and r.error.code == "too_large" and r.verdict == "hold"
    assert r.path == "<stream>" and isolated._worker_pids == pids


def test_what_screen_cannot_take_raises_as_in_process(isolated: Screener) -> None:
    with pytest.raises(NotMedia, match="PIL image"):
        isolated.screen(Image.new("RGB", (64, 64)))
    with pytest.raises(NotMedia):
        isolated.screen(np.zeros((8, 8, 3), np.float32))  # refused in the worker
    with open(IMAGES / "coffee.jpg") as text, pytest.raises(NotMedia):
        isolated.screen(text)  # type: ignore[arg-type]
    assert isolated.screen(IMAGES / "coffee.jpg").ok


def test_previews_come_back_from_the_workers(isolated: Screener, screener: Screener,
                                             monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    hold = DATA / "decision" / "hold_rocket.png"
    got = isolated.screen_with_preview(hold)
    assert got.report.verdict != "allow" and got.report.preview is not None
    assert got.report.preview.made == bool(got.previews) and got.previews
    bad = fault(monkeypatch, tmp_path, "segv")
    first, second = isolated.screen_many_with_previews([hold, bad])
    assert first.previews and second.previews == ()
    assert second.report.preview is not None and not second.report.preview.made
    assert second.report.error is not None and second.report.error.code == "crashed"


def test_an_input_iterator_that_raises_keeps_the_reports_before_it(isolated: Screener) -> None:
    def items() -> Iterator[Path]:
        yield from GOOD
        raise OSError("the upload queue broke")

    got: list[ScreeningReport] = []
    with pytest.raises(OSError, match="upload queue"):
        for r in isolated.screen_many(items()):
            got.append(r)
    assert [r.path for r in got] == [str(p) for p in GOOD]


def test_stopping_screen_many_early_leaves_the_pool_usable(isolated: Screener) -> None:
    it = isolated.screen_many([*GOOD, *GOOD])
    assert next(it).path == str(GOOD[0])
    it.close()
    assert [r.path for r in isolated.screen_many(GOOD)] == [str(p) for p in GOOD]


def test_live_streams_run_in_this_process(isolated: Screener) -> None:
    pids = isolated._worker_pids
    with isolated.stream("cam") as cam:
        r = cam.screen_frame(portrait(), 0.0)
    assert r.ok and len(r.faces) == 1 and isolated._worker_pids == pids


def test_a_memory_error_the_pipeline_caught_is_seen() -> None:
    """Where the pipeline turns a MemoryError into an internal report, the worker sees it in
    the log and ends itself, so the parent reports too_large."""
    watch = _MemoryWatch()
    log = logging.getLogger("edge_screen.test")
    log.addHandler(watch)
    try:
        try:
            raise ValueError("not memory")
        except ValueError:
            log.exception("internal error")
        assert not watch.hit
        try:
            raise MemoryError
        except MemoryError:
            log.exception("internal error")
        assert watch.hit
    finally:
        log.removeHandler(watch)


def test_a_png_still_decodes_in_a_worker(isolated: Screener) -> None:
    r = isolated.screen(encode(Image.fromarray(portrait()), "PNG"))
    assert r.ok and r.media.format == "PNG"
