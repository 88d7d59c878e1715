"""Small, exact statistics in numpy (no scikit-learn on a model team's cluster image needed).

Every function is deterministic for a given input order, and the callers sort by item key
first, so the local and the Ray run of one corpus give the same numbers to the last bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
CURVE_POINTS = 200  # a ROC curve in the JSON keeps at most this many points


def summary(values: Floats) -> dict[str, Any]:
    """n, mean, mean |x|, max |x| and the ``QUANTILES`` of ``values`` (NaN dropped)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"n": 0}
    q = np.quantile(v, QUANTILES)
    return {"n": int(v.size), "mean": rounded(v.mean()), "mean_abs": rounded(np.abs(v).mean()),
            "max_abs": rounded(np.abs(v).max()),
            "quantiles": {f"{p:g}": rounded(x) for p, x in zip(QUANTILES, q, strict=True)}}


def histogram(values: Floats, bins: int = 40) -> dict[str, list[float] | list[int]]:
    """Counts over ``bins`` equal bins symmetric about 0, wide enough for the largest |x|."""
    v = values[np.isfinite(values)]
    top = float(np.abs(v).max()) if v.size else 0.0
    top = max(top, 1e-6)
    edges = np.linspace(-top, top, bins + 1)
    counts, _ = np.histogram(v, edges)
    return {"edges": [rounded(e) for e in edges], "counts": [int(c) for c in counts]}


def roc_auc(scores: Floats, positive: NDArray[np.bool_]) -> float | None:
    """The area under the ROC curve (Mann-Whitney U, ties counted half); None with one class."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(scores)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
    return rounded(u / (n_pos * n_neg))


def roc_curve(scores: Floats, positive: NDArray[np.bool_]) -> dict[str, list[float]]:
    """False and true positive rates at every distinct score, thinned to ``CURVE_POINTS``."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return {"fpr": [], "tpr": []}
    order = np.argsort(-scores, kind="stable")
    s, p = scores[order], positive[order]
    tp, fp = np.cumsum(p), np.cumsum(~p)
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # the end of each run of equal scores
    fpr = np.r_[0.0, fp[last] / n_neg]
    tpr = np.r_[0.0, tp[last] / n_pos]
    if fpr.size > CURVE_POINTS:
        keep = np.unique(np.linspace(0, fpr.size - 1, CURVE_POINTS).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return {"fpr": [rounded(x) for x in fpr], "tpr": [rounded(x) for x in tpr]}


def at_threshold(scores: Floats, positive: NDArray[np.bool_], t: float) -> dict[str, Any]:
    """Precision and recall of ``score >= t`` (the policy's own comparison)."""
    flagged = scores >= t
    tp = int((flagged & positive).sum())
    fp = int((flagged & ~positive).sum())
    fn = int((~flagged & positive).sum())
    tn = int((~flagged & ~positive).sum())
    return {"threshold": t, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": rounded(tp / (tp + fp)) if tp + fp else None,
            "recall": rounded(tp / (tp + fn)) if tp + fn else None}


def calibration(p: Floats, outcome: NDArray[np.bool_], bins: int = 10) -> dict[str, Any]:
    """Reliability of probabilities ``p``: per equal-width bin the mean p and the observed
    rate; the expected calibration error (ECE) and the Brier score."""
    if p.size == 0:
        return {"n": 0}
    idx = np.minimum((p * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = idx == b
        n = int(m.sum())
        if n:
            mean_p, rate = float(p[m].mean()), float(outcome[m].mean())
            ece += n / p.size * abs(mean_p - rate)
            rows.append({"bin": [b / bins, (b + 1) / bins], "n": n, "mean_p": rounded(mean_p),
                         "observed": rounded(rate)})
    brier = float(((p - outcome) ** 2).mean())
    return {"n": int(p.size), "ece": rounded(ece), "brier": rounded(brier), "bins": rows}


def match(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], min_iou: float
          ) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of boxes (x0, y0, x1, y1) by IoU, best pairs first (ties:
    lower indices first); the pairs (index in a, index in b) in order of a."""
    if not len(a) or not len(b):
        return []
    x, y = np.asarray(a, np.float64)[:, None, :], np.asarray(b, np.float64)[None, :, :]
    inter = (np.clip(np.minimum(x[..., 2], y[..., 2]) - np.maximum(x[..., 0], y[..., 0]), 0, None)
             * np.clip(np.minimum(x[..., 3], y[..., 3]) - np.maximum(x[..., 1], y[..., 1]), 0,
                       None))
    areas = ((x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])
             + (y[..., 2] - y[..., 0]) * (y[..., 3] - y[..., 1]))
    union = areas - inter
    overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    order = np.lexsort((np.arange(overlap.size), -overlap.ravel()))
    used_a, used_b, out = set(), set(), []
    for flat in order:
        i, j = divmod(int(flat), overlap.shape[1])
        if overlap[i, j] < min_iou:
            break
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            out.append((i, j))
    return sorted(out)


def _average_ranks(x: Floats) -> Floats:
    order = np.argsort(x, kind="stable")
    s = x[order]
    ranks = np.empty(x.size, np.float64)
    starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]
    ends = np.r_[starts[1:], s.size]
    for lo, hi in zip(starts, ends, strict=True):
        ranks[order[lo:hi]] = (lo + hi + 1) / 2  # ranks lo+1 .. hi, averaged
    return ranks


def rounded(x: float) -> float:
    """Rounded for the JSON: 6 decimals are below any difference worth reporting."""
    return round(float(x), 6)
