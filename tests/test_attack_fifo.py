"""Kept from the attack review of the input path; each test asserts the safe behaviour.

Hole (hang, fixed): Screener.screen(path) opened the path with a plain ``open(path, "rb")``
(source.OpenedInput) -- a FIFO blocks in open()/read() forever, outside every time budget
(SamplingOptions.time_budget_s only starts being checked between hash chunks). The CLI's
``scan DIR`` walks directories with os.walk and hands every non-directory entry, FIFOs
included, to screen(): one FIFO in an upload folder stalls the whole batch; nothing after it is
screened and no report is written. (files.py already refuses FIFOs for bundle files; source.py
does not.)"""
import os
import subprocess
import sys

import pytest
from conftest import IMAGES

CODE = r"""
import sys
from edge_screen import Screener, ScreenerOptions
from edge_screen.frames import SamplingOptions
s = Screener(ScreenerOptions(threads=1, workers=1, sampling=SamplingOptions(time_budget_s=2.0)))
r = s.screen(sys.argv[1])
print("REPORT", r.verdict, r.error)
"""


def test_screen_of_a_fifo_returns_within_the_time_budget(tmp_path):
    fifo = tmp_path / "upload.jpg"
    os.mkfifo(fifo)
    try:
        p = subprocess.run([sys.executable, "-c", CODE, str(fifo)], cwd="/tmp",
                           capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("screen(<fifo>) still blocked after 30 s with a 2 s time budget")
    assert "REPORT hold" in p.stdout, p.stdout + p.stderr


def test_cli_scan_of_a_folder_with_a_fifo_finishes(tmp_path):
    d = tmp_path / "uploads"
    d.mkdir()
    os.mkfifo(d / "a.jpg")
    (d / "b.jpg").write_bytes((IMAGES / "astronaut.jpg").read_bytes())
    try:
        p = subprocess.run([sys.executable, "-m", "edge_screen", "scan", str(d)], cwd="/tmp",
                           capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"CLI scan hung on a FIFO; output so far: {e.stdout!r}")
    assert "b.jpg" in p.stdout, p.stdout + p.stderr
