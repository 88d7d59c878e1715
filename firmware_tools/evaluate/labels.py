"""Labels a model team has for some items: content yes/no (or a score) and ages of faces.

A labels FILE is JSON Lines (``.jsonl``), a JSON list, CSV or Parquet, one record per item:

- ``key``: the item's corpus key (its path relative to a corpus directory, or the list or
  table entry);
- ``sexual``, ``drawn_sexual``, ``graphic``, ``violence``, ``minor``: 0/1, true/false or a
  score in [0, 1] (>= 0.5 is positive); absent or null: not labelled for that signal;
- ``ages``: the ages of faces in the item (a list; in CSV ``"7;34"``), with ``boxes`` (a list
  of ``[x0, y0, x1, y1]`` in pixels of the upright picture, one per age) where known. Without
  boxes an age is matched only when it is the item's single labelled face (to its largest
  detected face). ``minor`` defaults to "some age < 18" when ages are given.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .corpus import read_table
from .errors import EvaluationError

CONTENT = ("sexual", "drawn_sexual", "graphic", "violence", "minor")
_WORDS = {"true": 1.0, "yes": 1.0, "1": 1.0, "false": 0.0, "no": 0.0, "0": 0.0}


@dataclass(frozen=True)
class Label:
    key: str
    content: dict[str, bool]  # signal -> positive, only for the signals labelled
    ages: tuple[float, ...] = ()
    boxes: tuple[tuple[float, float, float, float], ...] | None = None


def load(path: str | Path) -> dict[str, Label]:
    """Labels by item key; raises ``EvaluationError`` naming the bad record."""
    p = Path(path)
    try:
        if p.suffix.lower() == ".jsonl":
            records = [json.loads(ln) for ln in p.read_text("utf-8").splitlines() if ln.strip()]
        elif p.suffix.lower() == ".json":
            records = json.loads(p.read_text("utf-8"))
        elif p.suffix.lower() in (".csv", ".parquet", ".pq"):
            records = read_table(p, "labels").to_pylist()
        else:
            raise EvaluationError(f"labels {p}: expected .jsonl, .json, .csv or .parquet")
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"labels {p}: {exc}") from exc
    if not isinstance(records, list):
        raise EvaluationError(f"labels {p}: expected a list of records")
    out: dict[str, Label] = {}
    for n, rec in enumerate(records, 1):
        try:
            label = _label(rec)
        except (TypeError, ValueError, KeyError) as exc:
            raise EvaluationError(f"labels {p}: record {n}: {exc}") from exc
        if label.key in out:
            raise EvaluationError(f"labels {p}: record {n}: key {label.key!r} again")
        out[label.key] = label
    return out


def _label(rec: Any) -> Label:
    if not isinstance(rec, dict) or "key" not in rec:
        raise ValueError("a record needs a 'key'")
    content = {}
    for name in CONTENT:
        v = rec.get(name)
        if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
            continue
        value = _WORDS[v.lower()] if isinstance(v, str) and v.lower() in _WORDS else float(v)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} = {v!r} is not 0/1 or a score in [0, 1]")
        content[name] = value >= 0.5
    ages = _ages(rec.get("ages"))
    boxes = rec.get("boxes")
    if boxes is not None:
        boxes = tuple(tuple(float(c) for c in b) for b in boxes)
        if len(boxes) != len(ages) or any(len(b) != 4 for b in boxes):
            raise ValueError("boxes must give one [x0, y0, x1, y1] per age")
    if ages and "minor" not in content:
        content["minor"] = min(ages) < 18
    return Label(str(rec["key"]), content, ages, boxes)


def _ages(v: Any) -> tuple[float, ...]:
    if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
        return ()
    if isinstance(v, str):
        v = [x for x in v.replace(",", ";").split(";") if x.strip()]
    elif isinstance(v, int | float):
        v = [v]
    ages = tuple(float(a) for a in v)
    if any(not 0 <= a < 130 for a in ages):
        raise ValueError(f"ages {ages} out of range")
    return ages
