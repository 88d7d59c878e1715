"""Multiply-accumulates (MACs) of one invoke of a LiteRT / tflite-runtime interpreter.

QA compares detection strategies by arithmetic where timings cannot be taken (a 192x192 face
detector on a dozen tiles against one large pass). Only the ops that carry a vision model's
arithmetic are counted: CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED and
BATCH_MATMUL. Everything else counts 0 (adds, activations, pads, pooling, resizes, reshapes and
QUANTIZE/DEQUANTIZE): those cost one or a few operations per element, against tens to thousands
of MACs per output element of a convolution, and leaving them out makes an int8 model and its
float original count the same. Only the main subgraph is read (no control-flow bodies).

A delegate, the runtime's default XNNPACK one included, runs the nodes it takes over itself and
leaves their TFLite tensors at the shapes stored in the model after ``resize_tensor_input``
(ai-edge-litert 2.3; the resize tests in tests/test_macs.py fail if those shapes are read). So a
delegated interpreter is counted through a delegate-free copy of its model at the same input
shapes; when that copy cannot be had, ``ShapesUnknown`` is raised rather than a stale count
returned.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ModelError

Shape = tuple[int, ...]


class ShapesUnknown(ModelError):
    """The interpreter's tensor shapes at its current input size cannot be known: no count."""


def count(interpreter: Any) -> int:
    """MACs of one invoke at the interpreter's current tensor shapes.

    ``interpreter`` is allocated (after any ``resize_tensor_input``). A delegated one is counted
    through a delegate-free copy, which allocates its own tensors if the input was resized.
    Raises ``NotImplementedError`` when the runtime does not list its ops, and ``ShapesUnknown``
    when a delegated interpreter's shapes cannot be confirmed (see the module docstring).
    """
    ops = _ops(interpreter)
    if any(op["op_name"] == "DELEGATE" for op in ops):
        interpreter = _delegate_free_twin(interpreter)
        ops = _ops(interpreter)
    # Without a delegate every node was prepared at the current input shapes.
    shapes = {
        int(t["index"]): tuple(int(d) for d in t["shape"]) for t in interpreter.get_tensor_details()
    }
    return sum(
        _op_macs(
            op["op_name"],
            [shapes.get(int(i)) for i in op["inputs"]],
            [shapes.get(int(i)) for i in op["outputs"]],
        )
        for op in ops
    )


def _ops(interpreter: Any) -> list[dict[str, Any]]:
    try:
        get_ops = interpreter._get_ops_details
    except AttributeError:
        raise NotImplementedError(
            f"{type(interpreter).__module__}.{type(interpreter).__name__} does not list its "
            "ops (no _get_ops_details): its MACs cannot be counted"
        ) from None
    ops: list[dict[str, Any]] = get_ops()
    return ops


def _op_macs(name: str, inputs: Sequence[Shape | None], outputs: Sequence[Shape | None]) -> int:
    """MACs of one op from its tensor shapes; 0 for other ops and for unreadable tensors
    (an absent optional input is tensor -1, which has no shape)."""
    w = inputs[1] if len(inputs) > 1 else None
    out = outputs[0] if outputs else None
    if name == "CONV_2D" and w is not None and out is not None and len(w) == 4:
        return math.prod(out) * w[1] * w[2] * w[3]  # weights [cout, kh, kw, cin / groups]
    if name == "DEPTHWISE_CONV_2D" and w is not None and out is not None and len(w) == 4:
        return math.prod(out) * w[1] * w[2]  # weights [1, kh, kw, cout]
    if name == "TRANSPOSE_CONV" and w is not None and len(w) == 4 and len(inputs) > 2:
        x = inputs[2]  # inputs: output_shape, weights [cout, kh, kw, cin], input
        return math.prod(x) * w[0] * w[1] * w[2] if x is not None else 0
    if name == "FULLY_CONNECTED" and w is not None and out is not None and len(w) == 2:
        return math.prod(out) * w[1]  # weights [out_features, in_features]
    if name == "BATCH_MATMUL" and inputs and inputs[0] is not None and out is not None:
        x = inputs[0]  # [..., M, K], or [..., K, M] with adj_x: the dim that is not M is K
        if len(x) >= 2 and len(out) >= 2:
            return math.prod(out) * (x[-1] if x[-2] == out[-2] else x[-2])
    return 0


def _delegate_free_twin(interpreter: Any) -> Any:
    """The same model in the same runtime without delegates, its inputs at ``interpreter``'s
    current shapes: each of its nodes is prepared by the builtin kernels, so its shapes hold."""
    model = getattr(interpreter, "_model_content", None)
    if not isinstance(model, bytes | bytearray | memoryview):
        raise ShapesUnknown(
            "the interpreter is delegated and was not built from model_content, so whether its "
            "shapes follow the current input size cannot be checked; build it with "
            "model_content=..., or with experimental_op_resolver_type="
            "OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES"
        )
    resolvers = getattr(sys.modules[type(interpreter).__module__], "OpResolverType", None)
    if resolvers is None:
        raise ShapesUnknown("this runtime cannot open a model without its default delegates")
    try:
        twin = type(interpreter)(
            model_content=model,
            experimental_op_resolver_type=resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
    except ValueError as e:  # e.g. a custom op the builtin resolver does not know
        raise ShapesUnknown(f"the model cannot be reopened without delegates: {e}") from e
    current = _input_shapes(interpreter)
    if current == _input_shapes(twin):
        return twin  # never resized: the shapes stored in the model are the shapes it runs
    try:
        for index, shape in current.items():
            twin.resize_tensor_input(index, list(shape))
        twin.allocate_tensors()
    except (RuntimeError, ValueError) as e:
        raise ShapesUnknown(
            f"at input shapes {sorted(current.values())} only the delegate runs this model (the "
            f"builtin kernels refuse: {str(e).strip()}), and a delegate does not report the "
            "shapes it uses; count a model converted at this size instead"
        ) from e
    return twin


def _input_shapes(interpreter: Any) -> Mapping[int, Shape]:
    return {
        int(d["index"]): tuple(int(x) for x in d["shape"]) for d in interpreter.get_input_details()
    }
