"""The numbers: agreement between two sides (no labels needed) and accuracy against labels.

Everything is computed from the rows in item-key order, so it does not depend on which worker
screened what or when. An item a side could not screen is never dropped: it counts as
unscreenable, and against labels as flagged at every threshold (its verdict is the policy's
unscreenable one, never ``allow``), which is what an upload of it would get. A screened item
with a null signal (no face to age) counts as 0 for that signal, as the policy reads it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_screen.policy import VERDICTS, Policy

from . import stats
from .labels import CONTENT, Label

if TYPE_CHECKING:
    import pyarrow as pa

FACE_IOU = 0.5  # a face both sides found: boxes overlapping at least this much (same frame)
LABEL_IOU = 0.3  # a labelled face box and a detected one
AGE_BANDS = ((0, 13, "0-12"), (13, 18, "13-17"), (18, 25, "18-24"), (25, 200, "25+"))
TOP_DIFFERENCES = 20


@dataclass(frozen=True)
class SideResults:
    """One side's rows as columns, sorted by item key."""

    keys: list[str]
    uris: list[str]
    verdicts: list[str]
    errors: list[str | None]
    signals: dict[str, np.ndarray]  # NaN where null
    faces: list[list[dict[str, Any]]]

    @classmethod
    def from_table(cls, table: pa.Table) -> SideResults:
        rows = sorted(table.to_pylist(), key=lambda r: r["key"])
        names = sorted({name for r in rows for name, _ in r["signals"]})
        signals = {n: np.full(len(rows), np.nan) for n in names}
        for i, r in enumerate(rows):
            for name, v in r["signals"]:
                if v is not None:
                    signals[name][i] = v
        return cls([r["key"] for r in rows], [r["uri"] for r in rows],
                   [r["verdict"] for r in rows], [r["error"] for r in rows], signals,
                   [r["faces"] for r in rows])

    @property
    def screened(self) -> np.ndarray:
        return np.array([e is None for e in self.errors])

    def overview(self) -> dict[str, Any]:
        return {"items": len(self.keys), "unscreenable": int((~self.screened).sum()),
                "errors": dict(sorted(Counter(e for e in self.errors if e).items())),
                "verdicts": {v: self.verdicts.count(v) for v in VERDICTS},
                "faces": sum(len(f) for f in self.faces)}


def agreement(cand: SideResults, base: SideResults, top: int = TOP_DIFFERENCES
              ) -> dict[str, Any]:
    """Verdict confusion matrix, per-signal score deltas, faces found by one side only, and
    the ``top`` items that differ most."""
    if cand.keys != base.keys:
        raise ValueError("the two sides screened different items")
    confusion = {str(b): {str(c): 0 for c in VERDICTS} for b in VERDICTS}
    for vb, vc in zip(base.verdicts, cand.verdicts, strict=True):
        confusion[vb][vc] += 1
    rank = {str(v): i for i, v in enumerate(VERDICTS)}
    step = np.array([rank[vc] - rank[vb] for vb, vc in zip(base.verdicts, cand.verdicts,
                                                           strict=True)])
    signals, deltas = {}, {}
    nothing = np.full(len(cand.keys), np.nan)
    for name in sorted(set(cand.signals) | set(base.signals)):
        sc, sb = cand.signals.get(name, nothing), base.signals.get(name, nothing)
        d = sc - sb
        deltas[name] = d
        signals[name] = {
            "delta": stats.summary(d), "histogram": stats.histogram(d),
            "only_candidate": int((np.isfinite(sc) & ~np.isfinite(sb)).sum()),
            "only_baseline": int((~np.isfinite(sc) & np.isfinite(sb)).sum()),
        }
    faces, face_diff = _faces(cand, base)
    return {
        "items": len(cand.keys),
        "verdicts": {"confusion": confusion, "same": int((step == 0).sum()),
                     "raised": int((step > 0).sum()), "lowered": int((step < 0).sum()),
                     "agreement": stats.rounded((step == 0).mean()) if step.size else None},
        "signals": signals,
        "faces": faces,
        "differences": _top(cand, base, step, deltas, face_diff, top),
    }


def _faces(cand: SideResults, base: SideResults) -> tuple[dict[str, Any], np.ndarray]:
    """Faces matched across sides by IoU in the same frame; age and P(minor) deltas of those."""
    matched = only_c = only_b = 0
    age_d: list[float] = []
    pm_d: list[float] = []
    per_item = np.zeros(len(cand.keys))
    for i, (fc, fb) in enumerate(zip(cand.faces, base.faces, strict=True)):
        pairs = []
        for t in sorted({f["t_ms"] for f in fc + fb}, key=lambda x: -1.0 if x is None else x):
            ic = [k for k, f in enumerate(fc) if f["t_ms"] == t]
            ib = [k for k, f in enumerate(fb) if f["t_ms"] == t]
            got = stats.match([_box(fc[k]) for k in ic], [_box(fb[k]) for k in ib], FACE_IOU)
            pairs += [(ic[a], ib[b]) for a, b in got]
        matched += len(pairs)
        only_c += len(fc) - len(pairs)
        only_b += len(fb) - len(pairs)
        per_item[i] = len(fc) + len(fb) - 2 * len(pairs)
        for a, b in pairs:
            for key, out in (("age", age_d), ("p_minor", pm_d)):
                if fc[a][key] is not None and fb[b][key] is not None:
                    out.append(fc[a][key] - fb[b][key])
    return ({"matched": matched, "only_candidate": only_c, "only_baseline": only_b,
             "items_with_unmatched_faces": int((per_item > 0).sum()),
             "age_delta": stats.summary(np.array(age_d)),
             "p_minor_delta": stats.summary(np.array(pm_d))}, per_item)


def _top(cand: SideResults, base: SideResults, step: np.ndarray, deltas: Mapping[str, Any],
         face_diff: np.ndarray, top: int) -> list[dict[str, Any]]:
    """The items that differ most: a verdict change first, then the largest signal move, then
    faces found by one side only."""
    biggest = np.nanmax(np.abs(np.stack(list(deltas.values()))), axis=0, initial=0.0) \
        if deltas else np.zeros(len(cand.keys))
    biggest = np.nan_to_num(biggest)
    errs = np.array([c != b for c, b in zip(cand.errors, base.errors, strict=True)])
    score = 10.0 * np.abs(step) + 10.0 * errs + biggest * (biggest >= 0.001) + 0.01 * face_diff
    order = sorted(range(len(score)), key=lambda i: (-score[i], cand.keys[i]))
    out = []
    for i in order[:top]:
        if score[i] <= 0:
            break
        out.append({
            "key": cand.keys[i], "uri": cand.uris[i],
            "verdict": {"baseline": base.verdicts[i], "candidate": cand.verdicts[i]},
            "error": {"baseline": base.errors[i], "candidate": cand.errors[i]},
            "delta": {n: None if not np.isfinite(d[i]) else stats.rounded(d[i])
                      for n, d in deltas.items()},
            "faces": {"baseline": len(base.faces[i]), "candidate": len(cand.faces[i])},
        })
    return out


def policy_thresholds(policy: Policy) -> dict[str, list[dict[str, Any]]]:
    """Every threshold the policy compares each signal with, and what crossing it does."""
    out: dict[str, dict[float, list[str]]] = {}
    for rule in (*policy.child_rules, *policy.rules):
        for name, t in rule.when.items():
            out.setdefault(name, {}).setdefault(float(t), []).append(
                f"{rule.verdict}: {rule.reason}")
    return {n: [{"threshold": t, "rules": r} for t, r in sorted(ts.items())]
            for n, ts in sorted(out.items())}


def accuracy(side: SideResults, labels: Mapping[str, Label], policy: Policy
             ) -> dict[str, Any]:
    """Per labelled signal ROC-AUC and precision/recall at the policy's thresholds; age error
    by band and calibration of P(minor) over faces matched to labelled ones."""
    index = {k: i for i, k in enumerate(side.keys)}
    screened = side.screened
    thresholds = policy_thresholds(policy)
    signals = {}
    for name in CONTENT:
        pairs = [(index[k], lab.content[name]) for k, lab in sorted(labels.items())
                 if name in lab.content and k in index]
        if not pairs:
            continue
        rows = np.array([i for i, _ in pairs])
        positive = np.array([p for _, p in pairs], dtype=bool)
        raw = side.signals.get(name, np.full(len(side.keys), np.nan))[rows]
        # Unscreened: flagged, as its verdict is; screened without a value: 0, as the policy.
        scores = np.where(screened[rows], np.nan_to_num(raw, nan=0.0), np.inf)
        signals[name] = {
            "n": len(pairs), "positives": int(positive.sum()),
            "unscreenable": int((~screened[rows]).sum()),
            "roc_auc": stats.roc_auc(np.minimum(scores, 2.0), positive),
            "roc": stats.roc_curve(np.minimum(scores, 2.0), positive),
            "at_thresholds": [{**stats.at_threshold(scores, positive, t["threshold"]),
                               "rules": t["rules"]} for t in thresholds.get(name, [])],
        }
    return {"signals": signals, **_ages(side, labels, index)}


def _ages(side: SideResults, labels: Mapping[str, Label], index: Mapping[str, int]
          ) -> dict[str, Any]:
    errors: dict[str, list[float]] = {b: [] for _, _, b in AGE_BANDS}
    missed = dict.fromkeys(errors, 0)
    p, minor = [], []
    for key, lab in sorted(labels.items()):
        if not lab.ages or key not in index:
            continue
        faces = side.faces[index[key]]
        got: dict[int, dict[str, Any]] = {}
        if lab.boxes is not None:
            for a, k in stats.match(list(lab.boxes), [_box(f) for f in faces], LABEL_IOU):
                got[a] = faces[k]
        elif len(lab.ages) == 1 and faces:
            got[0] = max(faces, key=lambda f: (f["x1"] - f["x0"]) * (f["y1"] - f["y0"]))
        for a, age in enumerate(lab.ages):
            band = next(b for lo, hi, b in AGE_BANDS if lo <= age < hi)
            face = got.get(a)
            if face is None or face["age"] is None:
                missed[band] += 1  # not found, or found too small to age
                continue
            errors[band].append(face["age"] - age)
            if face["p_minor"] is not None:
                p.append(face["p_minor"])
                minor.append(age < 18)
    bands = {}
    for band, e in errors.items():
        arr = np.array(e)
        bands[band] = {"n": int(arr.size), "missed": missed[band],
                       "mae": stats.rounded(np.abs(arr).mean()) if arr.size else None,
                       "bias": stats.rounded(arr.mean()) if arr.size else None}
    return {"age_by_band": bands,
            "p_minor_calibration": stats.calibration(np.array(p, float), np.array(minor, bool))}


def _box(f: Mapping[str, Any]) -> tuple[float, float, float, float]:
    return (f["x0"], f["y0"], f["x1"], f["y1"])
