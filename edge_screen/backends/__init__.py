"""TFLite runtimes behind one small interface, chosen by name, with the fallback in one place.

Each implementation module imports its runtime lazily inside ``load``; a missing runtime makes
that backend unavailable with a clear message and never breaks ``import edge_screen``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
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
