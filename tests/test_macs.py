"""MAC counts: each counted op checked against hand arithmetic on a one-op model written here
(flatbuffers, no TensorFlow), then the shipped models, then resizes under the XNNPACK delegate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import pytest
from tiny_tflite import _table, _vector

from edge_screen import macs

ai_edge_litert = pytest.importorskip("ai_edge_litert.interpreter")
Interpreter = ai_edge_litert.Interpreter
NO_DELEGATES = ai_edge_litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES

MODELS = Path(__file__).parent.parent / "models" / "default"
# BuiltinOperator, BuiltinOptions and Padding codes of the TFLite schema.
ADD, CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV, BATCH_MATMUL = 0, 3, 4, 9, 67, 126
CONV_OPTIONS, DEPTHWISE_OPTIONS, FC_OPTIONS, TCONV_OPTIONS, BMM_OPTIONS = 1, 2, 8, 49, 101
SAME, VALID = 0, 1


def _stride(padding: int, stride: int) -> list[tuple[int, str, int]]:
    return [(0, "int8", padding), (1, "int32", stride), (2, "int32", stride)]


# An op: (builtin code, input tensors, output tensors, options type, options fields).
Op = tuple[int, list[int], list[int], int, list[tuple[int, str, int]]]


def _model(tensors: list[list[int] | np.ndarray], ops: list[Op], inputs: list[int]) -> bytes:
    """A float32 graph: a tensor is a shape (computed) or an array (a constant; int32 for
    int arrays). Outputs are the tensors no op reads."""
    b = flatbuffers.Builder(1024)
    b.StartObject(1)
    buffers = [b.EndObject()]  # buffer 0: no data
    tables = []
    for i, t in enumerate(tensors):
        fields = [(3, "offset", b.CreateString(f"t{i}"))]
        if isinstance(t, np.ndarray):
            kind = 2 if t.dtype.kind == "i" else 0  # INT32 or FLOAT32
            data = t.astype(np.int32 if kind == 2 else np.float32).tobytes()
            buffers.append(_table(b, [(0, "offset", _vector(b, list(data), "uint8"))]))
            fields += [(1, "int8", kind), (2, "uint32", len(buffers) - 1)]
            shape = list(t.shape)
        else:
            fields += [(1, "int8", 0)]
            shape = t
        tables.append(_table(b, [(0, "offset", _vector(b, shape, "int32")), *fields]))
    codes = sorted({op[0] for op in ops})
    op_tables = []
    for code, ins, outs, options_type, options in ops:
        opts = _table(b, options) if options else 0
        fields = [
            (0, "uint32", codes.index(code)),
            (1, "offset", _vector(b, ins, "int32")),
            (2, "offset", _vector(b, outs, "int32")),
        ]
        if opts:
            fields += [(3, "int8", options_type), (4, "offset", opts)]
        op_tables.append(_table(b, fields))
    read = {i for op in ops for i in op[1]}
    outputs = [i for op in ops for i in op[2] if i not in read]
    sg = _table(
        b,
        [
            (0, "offset", _vector(b, tables, "offset")),
            (1, "offset", _vector(b, inputs, "int32")),
            (2, "offset", _vector(b, outputs, "int32")),
            (3, "offset", _vector(b, op_tables, "offset")),
        ],
    )
    code_tables = [_table(b, [(0, "int8", c), (2, "int32", 1), (3, "int32", c)]) for c in codes]
    model = _table(
        b,
        [
            (0, "uint32", 3),
            (1, "offset", _vector(b, code_tables, "offset")),
            (2, "offset", _vector(b, [sg], "offset")),
            (4, "offset", _vector(b, buffers, "offset")),
        ],
    )
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def _weights(*shape: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)


def _open(model: bytes, delegates: bool = True) -> Any:
    kwargs = {} if delegates else {"experimental_op_resolver_type": NO_DELEGATES}
    interpreter = Interpreter(model_content=model, **kwargs)
    interpreter.allocate_tensors()
    return interpreter


def _delegated(interpreter: Any) -> bool:
    return any(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())


def _resize(interpreter: Any, shape: list[int]) -> Any:
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], shape)
    interpreter.allocate_tensors()
    return interpreter


CONV = _model(  # 9x9x3, 3x3 stride 2 SAME, 4 filters -> 5x5x4
    [[1, 9, 9, 3], _weights(4, 3, 3, 3), _weights(4), [1, 5, 5, 4]],
    [(CONV_2D, [0, 1, 2], [3], CONV_OPTIONS, _stride(SAME, 2))],
    [0],
)
DEPTHWISE = _model(  # 8x8x6, 3x3 stride 1 SAME, multiplier 1 -> 8x8x6
    [[1, 8, 8, 6], _weights(1, 3, 3, 6), _weights(6), [1, 8, 8, 6]],
    [(DEPTHWISE_CONV_2D, [0, 1, 2], [3], DEPTHWISE_OPTIONS, [*_stride(SAME, 1), (3, "int32", 1)])],
    [0],
)
TRANSPOSED = _model(  # 4x4x3, 2x2 stride 2, 5 filters -> 8x8x5
    [np.array([1, 8, 8, 5]), _weights(5, 2, 2, 3), [1, 4, 4, 3], [1, 8, 8, 5]],
    [(TRANSPOSE_CONV, [0, 1, 2], [3], TCONV_OPTIONS, _stride(VALID, 2))],
    [2],
)
DENSE = _model(  # a batch of 2, 6 features in, 7 out
    [[2, 6], _weights(7, 6), _weights(7), [2, 7]],
    [(FULLY_CONNECTED, [0, 1, 2], [3], FC_OPTIONS, [(0, "int8", 0)])],
    [0],
)
MATMUL = _model(  # [2, 3, 4] @ [2, 4, 5]
    [[2, 3, 4], _weights(2, 4, 5), [2, 3, 5]],
    [(BATCH_MATMUL, [0, 1], [2], BMM_OPTIONS, [(0, "int8", 0)])],
    [0],
)
MATMUL_ADJ_X = _model(  # the same product with its left operand stored transposed
    [[2, 4, 3], _weights(2, 4, 5), [2, 3, 5]],
    [(BATCH_MATMUL, [0, 1], [2], BMM_OPTIONS, [(0, "int8", 1)])],
    [0],
)
ELEMENTWISE = _model(
    [[1, 4, 4, 3], _weights(1, 4, 4, 3), [1, 4, 4, 3]], [(ADD, [0, 1], [2], 0, [])], [0]
)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        pytest.param(CONV, 5 * 5 * 4 * (3 * 3 * 3), id="conv: out elements x kh kw cin"),
        pytest.param(DEPTHWISE, 8 * 8 * 6 * (3 * 3), id="depthwise: out elements x kh kw"),
        pytest.param(
            TRANSPOSED, 4 * 4 * 3 * (2 * 2 * 5), id="transpose conv: in elements x kh kw cout"
        ),
        pytest.param(DENSE, 2 * 7 * 6, id="fully connected: batch x out x in"),
        pytest.param(MATMUL, 2 * 3 * 5 * 4, id="batch matmul: batch x M x N x K"),
        pytest.param(MATMUL_ADJ_X, 2 * 3 * 5 * 4, id="batch matmul, adj_x"),
        pytest.param(ELEMENTWISE, 0, id="add counts nothing"),
    ],
)
def test_one_op_counts_its_hand_computed_macs(model: bytes, expected: int) -> None:
    assert macs.count(_open(model, delegates=False)) == expected
    assert macs.count(_open(model)) == expected


def test_int8_and_fp32_face_detectors_count_the_same() -> None:
    fp32 = macs.count(_open((MODELS / "face_detector.fp32.tflite").read_bytes()))
    int8 = macs.count(_open((MODELS / "face_detector.int8.tflite").read_bytes()))
    assert fp32 > 0
    assert abs(int8 - fp32) <= 0.01 * fp32


def test_nodes_a_delegate_took_over_count_once() -> None:
    model = (MODELS / "face_detector.fp32.tflite").read_bytes()
    delegated = _open(model)
    assert _delegated(delegated)  # else this test proves nothing
    assert macs.count(delegated) == macs.count(_open(model, delegates=False))


FCN = _model(  # two SAME convolutions, the second reading a tensor inside the delegate
    [
        [1, 16, 16, 3],
        _weights(8, 3, 3, 3),
        _weights(8),
        [1, 8, 8, 8],
        _weights(8, 3, 3, 8),
        _weights(8),
        [1, 8, 8, 8],
    ],
    [
        (CONV_2D, [0, 1, 2], [3], CONV_OPTIONS, _stride(SAME, 2)),
        (CONV_2D, [3, 4, 5], [6], CONV_OPTIONS, _stride(SAME, 1)),
    ],
    [0],
)


def test_fully_convolutional_count_scales_with_input_area_after_a_resize() -> None:
    interpreter = _open(FCN)
    assert _delegated(interpreter)
    small = macs.count(interpreter)
    assert small == 8 * 8 * 8 * 27 + 8 * 8 * 8 * 72
    assert macs.count(_resize(interpreter, [1, 32, 48, 3])) == 6 * small
    assert macs.count(_resize(interpreter, [1, 16, 16, 3])) == small


def test_resized_age_estimator_counts_as_without_delegates() -> None:
    """VALID convolutions: 4x the area is not 4x the MACs, so compare with the builtin kernels."""
    model = (MODELS / "age_estimator.fp16.tflite").read_bytes()
    delegated = _open(model)
    before = macs.count(delegated)
    after = macs.count(_resize(delegated, [1, 128, 128, 3]))
    assert after == macs.count(_resize(_open(model, delegates=False), [1, 128, 128, 3]))
    assert after > 4 * before


def test_a_resize_only_the_delegate_can_run_is_refused() -> None:
    """The builtin TRANSPOSE_CONV keeps its stored output shape; XNNPACK follows the input."""
    interpreter = _resize(_open(TRANSPOSED), [1, 6, 6, 3])
    assert interpreter.get_output_details()[0]["shape"].tolist() == [1, 12, 12, 5]
    with pytest.raises(macs.ShapesUnknown, match="converted at this size"):
        macs.count(interpreter)


def test_a_delegated_interpreter_from_a_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "fcn.tflite").write_bytes(FCN)
    interpreter = Interpreter(model_path=str(tmp_path / "fcn.tflite"))
    interpreter.allocate_tensors()
    with pytest.raises(macs.ShapesUnknown, match="model_content"):
        macs.count(interpreter)


def test_a_runtime_that_does_not_list_its_ops_is_not_counted_as_zero() -> None:
    with pytest.raises(NotImplementedError, match="_get_ops_details"):
        macs.count(object())
