"""The report's picture (matplotlib, drawn from ``metrics.json`` alone): verdict confusion,
score-delta histograms, ROC curves, age error by band, P(minor) calibration, faces matched."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

SIDES = (("candidate", "-"), ("baseline", "--"))


def draw(metrics: Mapping[str, Any], path: Path) -> None:
    """Write ``path`` (PNG, no timestamps: the same numbers give the same file)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13.5, 7.6), dpi=72, layout="constrained")
    agree = metrics.get("agreement")
    acc = metrics.get("accuracy", {})
    _confusion(axes[0][0], agree, metrics["overview"]["candidate"])
    _deltas(axes[0][1], agree)
    _roc(axes[0][2], acc)
    _ages(axes[1][0], acc)
    _calibration(axes[1][1], acc)
    _faces(axes[1][2], agree)
    title = f"edge-screen evaluate: {metrics['corpus']['items']} items"
    if agree:
        title += f", verdict agreement {agree['verdicts']['agreement']:.4f}"
    fig.suptitle(title)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def _finish(ax: Any, title: str, x: str, y: str, diagonal: bool = False) -> None:
    if diagonal:
        ax.plot([0, 1], [0, 1], ":", color="0.7")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title)
    ax.legend(fontsize=7)


def _colour(name: str) -> str:
    """One colour per signal, the same on every panel and for both sides."""
    names = ("sexual", "drawn_sexual", "graphic", "violence", "minor", "known_match")
    return f"C{names.index(name) if name in names else len(names)}"


def _empty(ax: Any, title: str, why: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _confusion(ax: Any, agree: Mapping[str, Any] | None, cand: Mapping[str, Any]) -> None:
    if not agree:
        verdicts = cand["verdicts"]
        ax.bar(list(verdicts), list(verdicts.values()), color="0.5")
        ax.set_title("candidate verdicts")
        return
    conf = agree["verdicts"]["confusion"]
    names = list(conf)
    grid = [[conf[b][c] for c in names] for b in names]
    ax.imshow(grid, cmap="Blues")
    top = max(max(r) for r in grid) or 1
    for i, r in enumerate(grid):
        for j, v in enumerate(r):
            ax.text(j, i, str(v), ha="center", va="center",
                    color="white" if v > top / 2 else "black")
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("candidate verdict")
    ax.set_ylabel("baseline verdict")
    ax.set_title("verdicts")


def _deltas(ax: Any, agree: Mapping[str, Any] | None) -> None:
    if not agree:
        return _empty(ax, "score deltas", "no baseline")
    drawn = False
    for name, s in agree["signals"].items():
        h = s["histogram"]
        if s["delta"].get("n", 0) == 0:
            continue
        ax.stairs(h["counts"], h["edges"], color=_colour(name),
                  label=f"{name} (max |d| {s['delta']['max_abs']:.3g})")
        drawn = True
    if not drawn:
        return _empty(ax, "score deltas", "no signal both sides measured")
    ax.set_yscale("symlog", linthresh=1)
    _finish(ax, "score deltas per signal", "candidate - baseline score", "items")
    return None


def _roc(ax: Any, acc: Mapping[str, Any]) -> None:
    drawn = False
    for side, style in SIDES:
        for name, s in acc.get(side, {}).get("signals", {}).items():
            if s["roc"]["fpr"]:
                auc = s["roc_auc"]
                ax.plot(s["roc"]["fpr"], s["roc"]["tpr"], style, color=_colour(name),
                        label=f"{side} {name} {auc:.3f}")
                drawn = True
    if not drawn:
        return _empty(ax, "ROC", "no labels with both classes")
    _finish(ax, "ROC per labelled signal (AUC)", "false positive rate", "true positive rate",
            diagonal=True)
    return None


def _ages(ax: Any, acc: Mapping[str, Any]) -> None:
    sides = [(s, acc[s]["age_by_band"]) for s, _ in SIDES if s in acc]
    if not any(b["n"] for _, bands in sides for b in bands.values()):
        return _empty(ax, "age error by band", "no aged faces matched to labelled ages")
    width = 0.8 / len(sides)
    for k, (side, bands) in enumerate(sides):
        xs = [i + k * width for i in range(len(bands))]
        ax.bar(xs, [b["mae"] or 0 for b in bands.values()], width, label=side)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(sides[0][1]))], list(sides[0][1]))
    _finish(ax, "age error by band", "labelled age", "mean absolute error, years")
    return None


def _calibration(ax: Any, acc: Mapping[str, Any]) -> None:
    drawn = False
    for side, style in SIDES:
        c = acc.get(side, {}).get("p_minor_calibration", {})
        if c.get("n"):
            ax.plot([b["mean_p"] for b in c["bins"]], [b["observed"] for b in c["bins"]],
                    style + "o", label=f"{side} ECE {c['ece']:.3f}")
            drawn = True
    if not drawn:
        return _empty(ax, "P(minor) calibration", "no faces matched to labelled ages")
    _finish(ax, "P(minor) calibration", "mean P(minor) in bin", "share under 18", diagonal=True)
    return None


def _faces(ax: Any, agree: Mapping[str, Any] | None) -> None:
    if not agree:
        return _empty(ax, "faces", "no baseline")
    f = agree["faces"]
    names = ["both", "candidate only", "baseline only"]
    values = [f["matched"], f["only_candidate"], f["only_baseline"]]
    ax.bar(names, values, color=["0.5", "tab:blue", "tab:orange"])
    for i, v in enumerate(values):
        ax.text(i, v, str(v), ha="center", va="bottom")
    ax.set_title(f"faces found (IoU >= {agree.get('face_iou', 0.5)})")
    return None
