"""Write a tiny float TFLite classifier by hand (flatbuffers, the TFLite schema), no TensorFlow.

The graph is ``MEAN over H, W -> FULLY_CONNECTED -> logits``: the mean colour of the image,
weighed. Tests use it to prove a new model category needs only a manifest entry.
"""

from __future__ import annotations

import flatbuffers
import numpy as np

MEAN, FULLY_CONNECTED = 40, 9  # BuiltinOperator codes
FLOAT32, INT32 = 0, 2  # TensorType codes


def _vector(b: flatbuffers.Builder, items: list[int], kind: str) -> int:
    size = {"int32": 4, "uint8": 1, "offset": 4}[kind]
    b.StartVector(size, len(items), size)
    for x in reversed(items):
        {"int32": b.PrependInt32, "uint8": b.PrependUint8, "offset": b.PrependUOffsetTRelative}[
            kind
        ](x)
    return b.EndVector()


def _table(b: flatbuffers.Builder, fields: list[tuple[int, str, int]]) -> int:
    b.StartObject(max(slot for slot, _, _ in fields) + 1)
    for slot, kind, value in fields:
        if kind == "offset":
            b.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == "int32":
            b.PrependInt32Slot(slot, value, -1)
        elif kind == "uint32":
            b.PrependUint32Slot(slot, value, 0xFFFFFFFF)
        else:
            b.PrependInt8Slot(slot, value, -1)
    return b.EndObject()


def tiny_classifier(
    size: int, weights: np.ndarray, bias: np.ndarray, layout: str = "NHWC"
) -> bytes:
    """A [1,size,size,3] (or NCHW [1,3,size,size]) float32 -> [1,n] float32 model:
    ``weights @ mean_channels + bias``."""
    nchw = layout == "NCHW"
    n = weights.shape[0]
    b = flatbuffers.Builder(1024)
    blobs = [
        b"",
        np.array([2, 3] if nchw else [1, 2], np.int32).tobytes(),
        weights.astype(np.float32).tobytes(),
        bias.astype(np.float32).tobytes(),
    ]
    buffers = []
    for blob in blobs:
        data = _vector(b, list(blob), "uint8") if blob else None
        if data is None:
            b.StartObject(1)
            buffers.append(b.EndObject())
        else:
            buffers.append(_table(b, [(0, "offset", data)]))
    # tensors: 0 input, 1 axes, 2 mean, 3 weights, 4 bias, 5 output
    specs = [
        ([1, 3, size, size] if nchw else [1, size, size, 3], FLOAT32, 0),
        ([2], INT32, 1),
        ([1, 3], FLOAT32, 0),
        ([n, 3], FLOAT32, 2),
        ([n], FLOAT32, 3),
        ([1, n], FLOAT32, 0),
    ]
    tensors = []
    for i, (shape, kind, buf) in enumerate(specs):
        name = b.CreateString(f"t{i}")
        sh = _vector(b, shape, "int32")
        tensors.append(
            _table(
                b, [(0, "offset", sh), (1, "int8", kind), (2, "uint32", buf), (3, "offset", name)]
            )
        )
    ops = []
    for code, ins, outs in [(0, [0, 1], [2]), (1, [2, 3, 4], [5])]:
        iv, ov = _vector(b, ins, "int32"), _vector(b, outs, "int32")
        ops.append(_table(b, [(0, "uint32", code), (1, "offset", iv), (2, "offset", ov)]))
    tv, opv = _vector(b, tensors, "offset"), _vector(b, ops, "offset")
    inputs, outputs = _vector(b, [0], "int32"), _vector(b, [5], "int32")
    sg = _table(
        b, [(0, "offset", tv), (1, "offset", inputs), (2, "offset", outputs), (3, "offset", opv)]
    )
    codes = [
        _table(b, [(0, "int8", c), (2, "int32", 1), (3, "int32", c)])
        for c in (MEAN, FULLY_CONNECTED)
    ]
    cv, sgv, bv = (
        _vector(b, codes, "offset"),
        _vector(b, [sg], "offset"),
        _vector(b, buffers, "offset"),
    )
    desc = b.CreateString("edge-screen tiny test classifier")
    model = _table(
        b,
        [
            (0, "uint32", 3),
            (1, "offset", cv),
            (2, "offset", sgv),
            (3, "offset", desc),
            (4, "offset", bv),
        ],
    )
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())
