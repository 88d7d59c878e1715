"""Error-compensating int8 weight rounding (GPTQ) for an ONNX model, before onnx2tf.

Round-to-nearest int8 weights alone move open_nsfw's P(nsfw) by up to 0.10 (float activations).
GPTQ (Frantar et al., 2022) rounds each layer's weights one input column at a time and spreads
the rounding error over the columns not yet rounded, weighted by the inverse of the layer's input
second moment ``H = E[x x^T]`` measured on the calibration images. The result is written back as
float weights that lie exactly on the per-channel symmetric int8 grid the TFLite converter will
use (scale = max |w| / 127 per output channel: each row's largest weight is pinned at +-127 so
the converter recomputes the same scale), so the converter's own rounding is lossless.

Runs in the converter venv (onnx, onnxruntime, numpy); only the stdlib at module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

QMAX = 127
BLOCK = 128


def _conv_patches(x: Any, node: Any, weight_shape: tuple[int, ...]) -> Any:
    """im2col of one NCHW input for a Conv node: ``[positions, C*kh*kw]`` in weight order."""
    import numpy as np
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("group", 1) != 1:
        raise NotImplementedError("grouped convolutions")
    _, c, kh, kw = weight_shape
    sh, sw = attrs.get("strides", [1, 1])
    dh, dw = attrs.get("dilations", [1, 1])
    if (dh, dw) != (1, 1):
        raise NotImplementedError("dilated convolutions")
    pads = attrs.get("pads", [0, 0, 0, 0])
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise NotImplementedError("auto_pad")
    x = np.pad(x[0], ((0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
    # win: [C, OH, OW, kh, kw] -> [OH*OW, C*kh*kw]
    return win.transpose(1, 2, 0, 3, 4).reshape(-1, c * kh * kw)


def _layers(model: Any) -> list[dict[str, Any]]:
    """Conv and Gemm nodes whose weight is an initializer, with their weight as [out, in]."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    layers = []
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm") or node.input[1] not in inits:
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        if node.op_type == "Gemm":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("transA", 0):
                continue
            rows = w if attrs.get("transB", 0) else w.T  # [out, in]
        else:
            rows = w.reshape(w.shape[0], -1)
        layers.append({"node": node, "weight": w, "rows": rows.astype("float64")})
    return layers


def hessians(model_path: Path, feeds: list[dict[str, Any]], layers: list[dict[str, Any]]
             ) -> None:
    """Accumulate ``H = sum x x^T`` of every layer's input over the calibration feeds."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    inputs = {i.name for i in model.graph.input}
    names = [n for n in dict.fromkeys(layer["node"].input[0] for layer in layers)
             if n not in inputs]  # a graph input comes straight from the feed
    known = {o.name for o in model.graph.output}
    for name in names:
        if name not in known:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, 1, None))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    for layer in layers:
        d = layer["rows"].shape[1]
        layer["H"] = np.zeros((d, d))
        layer["count"] = 0
    for feed in feeds:
        outs = {**feed, **dict(zip(names, sess.run(names, feed), strict=True))}
        for layer in layers:
            x = outs[layer["node"].input[0]].astype(np.float32)
            if layer["node"].op_type == "Conv":
                p = _conv_patches(x, layer["node"], layer["weight"].shape)
            else:
                p = x.reshape(x.shape[0], -1)
            layer["H"] += (p.T @ p).astype(np.float64)
            layer["count"] += len(p)


def gptq(rows: Any, h: Any, damp: float = 0.01) -> Any:
    """Integer weights ``q`` (same shape as ``rows``) and per-row scales for ``q * scale``."""
    import numpy as np

    w = rows.copy()
    o, d = w.shape
    scale = np.abs(w).max(axis=1) / QMAX
    scale[scale == 0] = 1.0
    pinned = np.zeros_like(w, dtype=bool)
    pinned[np.arange(o), np.abs(w).argmax(axis=1)] = True
    pin_values = w[pinned]
    h = h.copy()
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h += damp * np.mean(np.diag(h)) * np.eye(d)
    # Upper Cholesky factor of H^-1, as in the GPTQ reference implementation.
    hinv = np.linalg.cholesky(np.linalg.inv(h)).T
    q = np.zeros_like(w)
    for b0 in range(0, d, BLOCK):
        b1 = min(b0 + BLOCK, d)
        err = np.zeros((o, b1 - b0))
        for j in range(b0, b1):
            col = w[:, j]
            qc = np.clip(np.round(col / scale), -QMAX, QMAX)
            q[:, j] = qc
            e = (col - qc * scale) / hinv[j, j]
            w[:, j:b1] -= np.outer(e, hinv[j, j:b1])
            err[:, j - b0] = e
            w[pinned] = pin_values  # the row maxima stay where they are (they fix the scale)
        w[:, b1:] -= err @ hinv[b0:b1, b1:]
        w[pinned] = pin_values
    q[pinned] = np.sign(pin_values) * QMAX
    return q, scale


def quantize_weights(src: Path, dst: Path, feeds: list[dict[str, Any]],
                     log: Any = print) -> None:
    """Write ``dst``: ``src`` with every Conv/Gemm weight replaced by its GPTQ-rounded value."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    layers = _layers(model)
    hessians(src, feeds, layers)
    inits = {i.name: i for i in model.graph.initializer}
    for layer in layers:
        node, w = layer["node"], layer["weight"]
        h = layer["H"] / max(layer["count"], 1)
        q, scale = gptq(layer["rows"], h)
        new_rows = q * scale[:, None]
        before = np.abs(layer["rows"] - np.round(layer["rows"] / scale[:, None]) * scale[:, None])
        # Output error proxy: tr(dW H dW^T), round-to-nearest vs GPTQ.
        rtn = layer["rows"] - np.round(layer["rows"] / scale[:, None]) * scale[:, None]
        d_new = layer["rows"] - new_rows
        gain = np.einsum("ij,jk,ik->", rtn, h, rtn) / max(np.einsum("ij,jk,ik->", d_new, h,
                                                                    d_new), 1e-30)
        log(f"gptq: {node.name or node.output[0]}: {tuple(w.shape)}, output error "
            f"{gain:.2f}x lower than rounding (max rounding step {before.max():.2g})")
        if node.op_type == "Gemm":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            new = new_rows if attrs.get("transB", 0) else new_rows.T
        else:
            new = new_rows.reshape(w.shape)
        inits[node.input[1]].CopyFrom(numpy_helper.from_array(new.astype(w.dtype),
                                                              node.input[1]))
    onnx.save(model, str(dst))
