"""TFLite runtimes behind one small interface, chosen by name, with the fallback in one place.

Each implementation module imports its runtime lazily inside ``load``; a missing runtime makes
that backend unavailable with a clear message and never breaks ``import edge_screen``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import BackendUnavailable


class TFLiteInterpreter(Protocol):
    """The subset of ``tf.lite.Interpreter`` both runtimes share and edge-screen uses."""

    def allocate_tensors(self) -> None: ...
    def get_input_details(self) -> list[dict[str, Any]]: ...
    def get_output_details(self) -> list[dict[str, Any]]: ...
    def set_tensor(self, tensor_index: int, value: Any) -> None: ...
    def get_tensor(self, tensor_index: int) -> Any: ...
    def tensor(self, tensor_index: int) -> Callable[[], Any]: ...  # a view of the buffer
    def invoke(self) -> None: ...
    def resize_tensor_input(self, input_index: int, tensor_size: Any) -> None: ...


@dataclass(frozen=True)
class Backend:
    """A named TFLite runtime: ``module`` is what must be importable for it to work."""

    name: str
    module: str
    factory: Callable[[bytes, int], TFLiteInterpreter]

    def available(self) -> bool:
        return importlib.util.find_spec(self.module.split(".")[0]) is not None

    def load(self, model: bytes, num_threads: int) -> TFLiteInterpreter:
        if not self.available():
            raise BackendUnavailable(
                f"backend {self.name!r} needs the {self.module.split('.')[0]!r} package; "
                f"install it or choose another backend ({', '.join(available_backends())})"
            )
        return self.factory(model, num_threads)


_QUIET_LOCK = threading.Lock()
_QUIETED: set[str] = set()
# What the runtimes print on fd 2, once per process, at the first allocate_tensors.
_CHATTER = (b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)


@contextmanager
def quiet_first_allocation(backend: str) -> Iterator[None]:
    """Keep the runtime's one-off INFO line off the host's stderr (a library must not write
    there); anything else the runtime prints meanwhile is passed on. Only the backend's first
    allocation in the process is wrapped, so the fd 2 swap happens once, under a lock."""
    with _QUIET_LOCK:
        if backend in _QUIETED:
            yield
            return
        _QUIETED.add(backend)
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no fd 2 (embedded, closed): nothing to keep quiet
            yield
            return
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                rest = [ln for ln in sink.read().splitlines() if ln.strip() not in _CHATTER]
                if rest:
                    os.write(2, b"\n".join(rest) + b"\n")


def _litert(model: bytes, num_threads: int) -> TFLiteInterpreter:
    from ai_edge_litert.interpreter import Interpreter

    interpreter: TFLiteInterpreter = Interpreter(model_content=model, num_threads=num_threads)
    return interpreter


def _tflite_runtime(model: bytes, num_threads: int) -> TFLiteInterpreter:
    from tflite_runtime.interpreter import Interpreter

    interpreter: TFLiteInterpreter = Interpreter(model_content=model, num_threads=num_threads)
    return interpreter


# In order of preference: LiteRT is the maintained successor; tflite-runtime serves older
# Pi OS / armv7 images where no LiteRT wheel exists. Both apply XNNPACK by default.
BACKENDS: dict[str, Backend] = {
    "litert": Backend("litert", "ai_edge_litert.interpreter", _litert),
    "tflite-runtime": Backend("tflite-runtime", "tflite_runtime.interpreter", _tflite_runtime),
}


def available_backends() -> list[str]:
    return [name for name, b in BACKENDS.items() if b.available()]


def get_backend(name: str | None = None) -> Backend:
    """The named backend, or the first available one when ``name`` is None or ``"auto"``."""
    if name in (None, "auto"):
        for backend in BACKENDS.values():
            if backend.available():
                return backend
        raise BackendUnavailable(
            "no TFLite runtime installed: pip install ai-edge-litert (or tflite-runtime)"
        )
    try:
        return BACKENDS[name]
    except KeyError:
        raise BackendUnavailable(
            f"unknown backend {name!r}; known: {', '.join(BACKENDS)}"
        ) from None
