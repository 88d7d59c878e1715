"""Backend selection: by name, with the fallback in one place and a clear error when absent."""

from __future__ import annotations

import importlib.util

import pytest

from edge_screen import BackendUnavailable, Screener
from edge_screen.backends import BACKENDS, available_backends, get_backend


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
