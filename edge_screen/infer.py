"""One loaded model: an interpreter created once, fed float inputs, returning float outputs.

Quantised tensors are converted with the tensor's own scale and zero point, so the rest of the
pipeline never sees int8. An interpreter is not thread-safe: one ``Model`` per thread.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import macs, preprocess
from .backends import Backend, TFLiteInterpreter, quiet_first_allocation
from .errors import ModelError
from .manifest import ModelSpec, Variant


def _quantise(x: NDArray[np.float32], detail: dict[str, Any]) -> NDArray[Any]:
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return x
    if dtype == np.float16:
        return x.astype(np.float16)
    scale, zero = detail["quantization"]
    if not scale:
        raise ModelError(f"input tensor {detail['name']!r} is {dtype} without quantisation")
    info = np.iinfo(dtype)
    q = np.round(x / scale + zero)
    out: NDArray[Any] = np.clip(q, info.min, info.max).astype(dtype)
    return out


def _dequantise(y: NDArray[Any], detail: dict[str, Any]) -> NDArray[np.float32]:
    scale, zero = detail["quantization"]
    if np.issubdtype(y.dtype, np.integer) and scale:
        y = (y.astype(np.float32) - zero) * scale
    out: NDArray[np.float32] = y.astype(np.float32, copy=False)
    return out


class Model:
    """A manifest model bound to one interpreter of one backend."""

    def __init__(
        self, spec: ModelSpec, variant: Variant, content: bytes, backend: Backend, threads: int
    ) -> None:
        if spec.input is None:
            raise ModelError(f"{spec.id}: a {spec.task} model is not a TFLite model")
        self.spec = spec
        self.input = spec.input
        self.variant = variant
        self.backend = backend.name
        self.invocations = 0  # how often the model ran: what the bench's limit counts
        try:
            self._interp = backend.load(content, threads)
            with quiet_first_allocation(backend.name):
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"{spec.id} ({variant.file}): the interpreter rejected it: {exc}"
            ) from exc
        inputs = self._interp.get_input_details()
        if len(inputs) != 1:
            raise ModelError(f"{spec.id}: expected one input tensor, found {len(inputs)}")
        self._input = inputs[0]
        self._outputs = self._interp.get_output_details()
        h, w = self.input.size
        want = [1, 3, h, w] if self.input.layout == "NCHW" else [1, h, w, 3]
        if list(self._input["shape"]) != want:
            raise ModelError(
                f"{spec.id}: input shape {list(self._input['shape'])}, manifest says {want}"
            )
        self._in_place = np.dtype(self._input["dtype"]) == np.float32
        self._mean = np.asarray(self.input.mean, np.float32)
        self._std = np.asarray(self.input.std, np.float32)
        self._raw = not self._mean.any() and bool((self._std == 1).all())
        self.shape = (h, w)  # the input tensor's current size (a "fit" input changes it)
        self._runs: Counter[tuple[int, int]] = Counter()  # invocations per input size
        self._load = (backend, content)
        self._base_macs: int | None = None
        self._resizable: bool | None = None
        self._broken: str | None = None  # why the interpreter can no longer be used

    @property
    def output_names(self) -> list[str]:
        """The output tensors' names, in the order ``run`` returns them."""
        return [str(d["name"]) for d in self._outputs]

    def output_shapes(self) -> dict[str, tuple[int, ...]]:
        """Output tensor name -> shape at the current input size."""
        return {str(d["name"]): tuple(int(v) for v in d["shape"]) for d in self._outputs}

    def fit(self, height: int, width: int) -> None:
        """Resize the input tensor of a fully convolutional (``resize: fit``) model; the
        interpreter keeps the size until the next call asks for another one.

        Raises ``ModelError`` without touching the interpreter where the runtime cannot run the
        graph at another size (tflite-runtime 2.14: TRANSPOSE_CONV keeps the output shape
        stored in the file, and re-allocating an interpreter after a failed resize crashes the
        process), as a throwaway interpreter shows once (``resizable``). A resize that fails
        anyway leaves the interpreter unusable: every later call is a ``ModelError``."""
        if (height, width) == self.shape:
            return
        if self.input.resize != "fit":
            raise ModelError(f"{self.spec.id}: its input size is fixed at {self.input.size}")
        if not self.resizable():
            raise ModelError(f"{self.spec.id}: this runtime cannot resize its input")
        try:
            self._resize(self._interp, height, width)
        except (ValueError, RuntimeError) as exc:
            self._broken = f"{self.spec.id}: a resize to {height}x{width} failed: {exc}"
            raise ModelError(self._broken) from exc
        self._input = self._interp.get_input_details()[0]
        self._outputs = self._interp.get_output_details()
        self.shape = (height, width)

    def resizable(self) -> bool:
        """Whether this runtime runs the graph at another input size: tried once, on a
        throwaway interpreter at the file's size turned (a portrait picture)."""
        if self._resizable is None:
            backend, content = self._load
            h, w = self.input.size
            try:
                probe = backend.load(content, 1)
                probe.allocate_tensors()
                self._resize(probe, w, h)
                self._resizable = True
            except (ValueError, RuntimeError):
                self._resizable = False
        return self._resizable

    def _resize(self, interp: TFLiteInterpreter, height: int, width: int) -> None:
        shape = [1, 3, height, width] if self.input.layout == "NCHW" else [1, height, width, 3]
        interp.resize_tensor_input(interp.get_input_details()[0]["index"], shape)
        interp.allocate_tensors()

    def run_pixels(self, pixels: NDArray[np.uint8]) -> list[NDArray[np.float32]]:
        """``run`` on uint8 RGB pixels of the input's size, normalised as the manifest says.

        A float input is written straight into the interpreter's own input buffer: nothing is
        allocated per call (the hot loop of a video); a quantised one goes through ``run``.
        """
        if not self._in_place:
            return self.run(preprocess.normalise(pixels, self.input))
        return self._invoke(self._fill, pixels)

    def run(self, x: NDArray[np.float32]) -> list[NDArray[np.float32]]:
        """Invoke on one float input; outputs in the interpreter's order, dequantised."""
        return self._invoke(self._set, x)

    def _invoke(self, feed: Callable[[Any], None], x: Any) -> list[NDArray[np.float32]]:
        if self._broken is not None:
            raise ModelError(self._broken)
        self.invocations += 1
        self._runs[self.shape] += 1
        try:
            feed(x)
            self._interp.invoke()
            out = [_dequantise(self._interp.get_tensor(d["index"]), d) for d in self._outputs]
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.spec.id}: inference failed: {exc}") from exc
        # A NaN matches no policy rule and would pass as "nothing found": fail closed here.
        if not all(np.isfinite(o).all() for o in out):
            raise ModelError(f"{self.spec.id} ({self.variant.name}): non-finite output")
        return out

    def runs(self) -> Counter[tuple[int, int]]:
        """Invocations so far per input size (height, width)."""
        return Counter(self._runs)

    def invoke_only(self) -> None:
        """The bare invoke on whatever input is set: what the bench's bounds are made of."""
        self._interp.invoke()

    def macs(self) -> int:
        """Multiply-accumulates of every invocation so far (``edge_screen.macs``), for the
        bench: counted once, on a fresh interpreter at the file's own size, and scaled by input
        area for a ``fit`` model (fully convolutional: its MACs are proportional to the area).
        Raises ``NotImplementedError`` where the runtime does not list its ops."""
        if self._base_macs is None:
            backend, content = self._load
            fresh = backend.load(content, 1)
            fresh.allocate_tensors()
            self._base_macs = macs.count(fresh)
        h0, w0 = self.input.size
        area = sum(n * h * w for (h, w), n in self._runs.items())
        return round(self._base_macs * area / (h0 * w0))

    def _set(self, x: NDArray[np.float32]) -> None:
        self._interp.set_tensor(self._input["index"], _quantise(x, self._input))

    def _fill(self, pixels: NDArray[np.uint8]) -> None:
        """Normalise into the input tensor; the view must be gone before ``invoke``."""
        view = self._interp.tensor(self._input["index"])()[0]
        src = pixels[..., ::-1] if self.input.color == "BGR" else pixels
        mean, std = self._mean, self._std
        if self.input.layout == "NCHW":
            src, mean, std = src.transpose(2, 0, 1), mean[:, None, None], std[:, None, None]
        if self._raw:  # pixel values as they are (CenterFace): one converting copy
            np.copyto(view, src, casting="unsafe")
            return
        np.subtract(src, mean, out=view)
        np.divide(view, std, out=view)
