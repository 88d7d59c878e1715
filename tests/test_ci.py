"""CI honesty: with CI set, a test skipped for want of something the test command installs fails
(a failed venv install used to turn its tests into a silent skip while CI stayed green)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = "EDGE_SCREEN_CI_PROBE"


@pytest.mark.skipif(not os.environ.get(PROBE), reason="runs only inside the test below")
def test_probe_skips_for_a_missing_venv() -> None:
    pytest.skip("no tflite-runtime venv: run python3 -m firmware_tools setup")


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 failed"), ("", "1 skipped")])
def test_a_skip_for_a_missing_install_fails_in_ci(ci: str, outcome: str) -> None:
    env = {**os.environ, PROBE: "1", "CI": ci}
    node = f"{Path(__file__).name}::test_probe_skips_for_a_missing_venv"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", node],
        cwd=Path(__file__).parent,
        env=env,
        capture_output=True,
        text=True,
    )
    assert outcome in run.stdout, run.stdout[-2000:]


def test_ci_runs_lint_and_types_before_the_tests() -> None:
    script = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert script.index("ruff check") < script.index("mypy") < script.index("pytest")
