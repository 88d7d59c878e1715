"""Shared fixtures: the default bundle's screener (built once) and test images made in code."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from edge_screen import Screener

DATA = Path(__file__).parent / "data"
# The report's documented top-level keys (docs/report.md); "path" only on request
# (``to_json(include_path=True)``, as the CLI does).
REPORT_KEYS = frozenset(
    {
        "schema",
        "verdict",
        "reasons",
        "signals",
        "faces",
        "faces_unaged",
        "hashes",
        "preview",
        "media",
        "models",
        "timing_ms",
        "error",
    }
)
IMAGES = DATA / "images"


# What the README's test command installs: in CI (CI set) a test skipped for lack of it means
# an install step failed, so it fails instead of passing quietly as a skip.
_INSTALLED_BY_THE_TEST_COMMAND = re.compile(r"venv|extra|firmware_tools setup", re.IGNORECASE)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if not (os.environ.get("CI") and report.skipped and isinstance(report.longrepr, tuple)):
        return
    reason = str(report.longrepr[2])
    if _INSTALLED_BY_THE_TEST_COMMAND.search(reason):
        report.outcome = "failed"
        report.longrepr = f"CI: skipped for something the test command installs: {reason}"


@pytest.fixture(scope="session")
def screener() -> Iterator[Screener]:
    """The default bundle, as an embedding engineer gets it: no configuration."""
    with Screener(threads=2) as s:
        yield s


def encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def astronaut() -> Image.Image:
    return Image.open(IMAGES / "astronaut.jpg").convert("RGB")


def portrait() -> np.ndarray:
    """A 600x800 portrait with the astronaut's face in its upper half."""
    canvas = Image.new("RGB", (600, 800), (90, 110, 130))
    canvas.paste(astronaut().resize((400, 400)), (100, 120))
    return np.asarray(canvas)


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Two signing key pairs made for this run (``signed.make_keys``)."""
    pytest.importorskip("cryptography", reason="test extra: pip install '.[test]'")
    from signed import make_keys

    return make_keys(tmp_path_factory.mktemp("keys"))
