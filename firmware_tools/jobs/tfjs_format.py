"""TensorFlow.js layers models as npm packages ship them (nsfwjs): a ``model.json`` and its
weight shards, each wrapped in a minified JavaScript module, back to plain files.

nsfwjs bundles ``model.min.js`` (the model.json as a JavaScript object literal: unquoted keys,
``!0``/``!1`` for booleans, ``.5`` for 0.5) and ``group1-shard1of1.min.js`` (the shard's bytes as
one base64 string literal). Nothing here runs JavaScript: the literal is parsed as data, so the
tarball's code is never executed. ``dequantize`` turns the weights back into float32 as tfjs
does at load (``q * scale + min`` for the uint8/uint16 quantised ones).

Used by ``pipeline.fetch`` (main env) and ``tfjs_job`` (converter venv), so only the stdlib is
imported at module level (numpy inside the functions that need it).
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import PurePosixPath
from typing import Any

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<punct>[{}\[\]:,])
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<bool>!0|!1)
  | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_$][\w$]*)
""", re.VERBOSE)
_WORDS = {"true": True, "false": False, "null": None, "undefined": None}
DTYPES = {"float32": "float32", "int32": "int32", "bool": "bool"}
QUANTIZED = {"uint8": "uint8", "uint16": "uint16", "float16": "float16"}


class TfjsFormatError(ValueError):
    """The file is not a tfjs layers model (or shard) in the expected wrapping."""


def parse_literal(text: str, start: int = 0) -> tuple[Any, int]:
    """The JavaScript object/array/scalar literal at ``text[start:]`` as Python data, and the
    index just after it. Only data: objects, arrays, strings, numbers, ``!0``/``!1``, ``true``,
    ``false``, ``null``; keys may be bare names or strings."""
    tokens = _tokens(text, start)
    value, end = _value(tokens, 0)
    return value, tokens[end - 1][2]


def _tokens(text: str, start: int) -> list[tuple[str, str, int]]:
    """Tokens from ``start`` to the end of the first complete value: (kind, text, end)."""
    out: list[tuple[str, str, int]] = []
    depth, pos = 0, start
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise TfjsFormatError(f"unexpected {text[pos:pos + 20]!r} at {pos}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind == "ws":
            continue
        out.append((kind, m.group(), pos))
        if m.group() in "{[":
            depth += 1
        elif m.group() in "}]":
            depth -= 1
        if depth == 0 and m.group() not in ":,":
            return out
    raise TfjsFormatError("the literal does not end")


def _value(toks: list[tuple[str, str, int]], i: int) -> tuple[Any, int]:
    kind, text, _ = toks[i]
    if text == "{":
        obj: dict[str, Any] = {}
        i += 1
        while toks[i][1] != "}":
            key_kind, key, _ = toks[i]
            if key_kind == "string":
                key = json.loads(key)
            elif key_kind != "name":
                raise TfjsFormatError(f"bad key {key!r}")
            if toks[i + 1][1] != ":":
                raise TfjsFormatError(f"no ':' after key {key!r}")
            obj[key], i = _value(toks, i + 2)
            if toks[i][1] == ",":
                i += 1
        return obj, i + 1
    if text == "[":
        arr: list[Any] = []
        i += 1
        while toks[i][1] != "]":
            item, i = _value(toks, i)
            arr.append(item)
            if toks[i][1] == ",":
                i += 1
        return arr, i + 1
    if kind == "string":
        return json.loads(text), i + 1
    if kind == "bool":
        return text == "!0", i + 1
    if kind == "number":
        number = float(text)
        return (int(number) if re.fullmatch(r"-?\d+", text) else number), i + 1
    if kind == "name" and text in _WORDS:
        return _WORDS[text], i + 1
    raise TfjsFormatError(f"unexpected token {text!r}")


def _exported(js: str) -> Any:
    """The value a browserify-wrapped module assigns to ``<name>.exports=`` (the first one)."""
    m = re.search(r"\b[A-Za-z_$][\w$]*\.exports\s*=\s*(?=[{\"])", js)
    if m is None:
        raise TfjsFormatError("no '.exports=' literal in the module")
    return parse_literal(js, m.end())[0]


def model_json(js: str) -> dict[str, Any]:
    """``model.min.js`` -> the model.json it wraps (``modelTopology``, ``weightsManifest``)."""
    value = _exported(js)
    if not isinstance(value, dict) or not {"modelTopology", "weightsManifest"} <= set(value):
        raise TfjsFormatError("the module does not export a tfjs layers model.json")
    return value


def shard_bytes(js: str) -> bytes:
    """``groupN-shardKofM.min.js`` -> the shard's bytes (a base64 string in the module)."""
    value = _exported(js)
    if not isinstance(value, str):
        raise TfjsFormatError("the shard module does not export a string")
    return base64.b64decode(value, validate=True)


def shard_members(model_member: str, model: dict[str, Any]) -> list[str]:
    """Tarball members of the shards a ``model.min.js`` refers to, in weightsManifest order."""
    folder = PurePosixPath(model_member).parent
    return [str(folder / f"{p}.min.js") for group in model["weightsManifest"]
            for p in group["paths"]]


def dequantize(model: dict[str, Any], data: bytes) -> dict[str, Any]:
    """Every weight of ``model`` (its shards' bytes concatenated) by name, as a numpy array, as
    tfjs loads it: quantised weights become ``q * scale + min`` in their stated dtype."""
    import numpy as np

    out: dict[str, Any] = {}
    offset = 0
    for group in model["weightsManifest"]:
        for w in group["weights"]:
            shape = [int(d) for d in w["shape"]]
            n = int(np.prod(shape)) if shape else 1
            q = w.get("quantization")
            stored = np.dtype(QUANTIZED[q["dtype"]] if q else DTYPES[w["dtype"]])
            size = n * stored.itemsize
            if offset + size > len(data):
                raise TfjsFormatError(f"{w['name']}: the shards end at {len(data)} bytes")
            raw = np.frombuffer(data, stored, n, offset)
            offset += size
            if q and q["dtype"] in ("uint8", "uint16"):
                values = raw.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])
            else:
                values = raw.astype(DTYPES[w["dtype"]])
            out[str(w["name"])] = values.reshape(shape)
    if offset != len(data):
        raise TfjsFormatError(f"{len(data) - offset} bytes of the shards are not weights")
    return out


def unpack(read: Any, model_member: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model.json and float weights of the model at ``model_member``; ``read(member)``
    returns a member's bytes (of the locked tarball)."""
    model = model_json(read(model_member).decode("utf-8"))
    data = b"".join(shard_bytes(read(m).decode("ascii"))
                    for m in shard_members(model_member, model))
    return model, dequantize(model, data)
