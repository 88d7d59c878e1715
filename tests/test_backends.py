"""Backend selection: by name, with the fallback in one place and a clear error when absent."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

from edge_screen import BackendUnavailable, Screener
from edge_screen.backends import BACKENDS, available_backends, get_backend
from firmware_tools.pipeline.venv import tflite_venv_dir, venv_python


def test_auto_picks_litert_first_when_installed() -> None:
    assert available_backends()[0] == get_backend("auto").name
    if importlib.util.find_spec("ai_edge_litert") is not None:
        assert get_backend().name == "litert"


def test_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(BackendUnavailable, match="litert"):
        get_backend("tensorrt")


@pytest.mark.skipif(
    importlib.util.find_spec("tflite_runtime") is not None, reason="tflite-runtime is installed"
)
def test_missing_runtime_is_a_clear_error_not_an_import_crash() -> None:
    with pytest.raises(BackendUnavailable, match="tflite_runtime"):
        Screener(backend="tflite-runtime")


@pytest.mark.parametrize("name", [n for n in BACKENDS if BACKENDS[n].available()])
def test_every_installed_backend_screens_the_default_bundle(name: str) -> None:
    from conftest import IMAGES

    with Screener(backend=name, threads=1) as s:
        r = s.screen(IMAGES / "astronaut.jpg")
    assert r.ok and len(r.faces) == 1


INNER = "EDGE_SCREEN_INNER_BACKEND_RUN"
# The screener's behaviour end to end: photos, bad and hostile input, faces, video and live mode.
ON_TFLITE = ["test_screener.py", "test_hostile.py", "test_faces.py", "test_video.py", "test_invariants.py",
             "test_backends.py"]


@pytest.mark.skipif(bool(os.environ.get(INNER)), reason="already inside the backend run")
def test_the_screener_tests_pass_on_the_tflite_runtime_backend() -> None:
    """The alternative backend is held to the same tests, in its own numpy<2 venv (made by
    ``python3 -m firmware_tools setup``) with ``edge_screen`` from this checkout."""
    python = venv_python(tflite_venv_dir())
    if not python.exists():
        pytest.skip("no tflite-runtime venv: run python3 -m firmware_tools setup")
    here = Path(__file__).resolve().parent
    env = dict(os.environ, PYTHONPATH=str(here.parent), **{INNER: "1"})
    code = "import edge_screen.backends as b; print(b.get_backend().name)"
    picked = subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True)
    assert picked.stdout.strip() == "tflite-runtime", picked.stderr[-2000:]
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", *(str(here / t) for t in ON_TFLITE)]
    run = subprocess.run([str(python), *args], env=env, capture_output=True, text=True, cwd=here)
    assert run.returncode == 0, run.stdout[-4000:]
