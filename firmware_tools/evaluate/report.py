"""The evaluation's outputs in ``--out``: ``metrics.json`` (every number), ``report.md`` and
``report.png`` (``figure``), all from the metrics alone, so the same results give the same
files; ``run.json`` holds what varies between runs (workers, timings, throughput)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import figure

SCHEMA = "edge-screen.evaluation/1"


def write(metrics: Mapping[str, Any], run: Mapping[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, allow_nan=False) + "\n")
    (out / "run.json").write_text(json.dumps(run, indent=1) + "\n")
    figure.draw(metrics, out / "report.png")
    (out / "report.md").write_text(markdown(metrics), "utf-8")


def markdown(m: Mapping[str, Any]) -> str:
    lines = [f"# Evaluation of {m['corpus']['items']} items", "",
             f"Corpus `{m['corpus']['spec']}`; policy `{m['sides']['candidate']['policy']}`; "
             "every number below is in `metrics.json`.", "", "![report](report.png)", ""]
    lines += _sides(m)
    agree = m.get("agreement")
    if agree:
        lines += _agreement(agree)
    for side in ("candidate", "baseline"):
        if side in m.get("accuracy", {}):
            lines += _accuracy(side, m["accuracy"][side])
    return "\n".join(lines) + "\n"


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return [*out, ""]


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")


def _sides(m: Mapping[str, Any]) -> list[str]:
    sides = [s for s in ("candidate", "baseline") if s in m["sides"]]
    models = sorted({k for s in sides for k in m["sides"][s]["models"]})
    rows = [["bundle", *(m["sides"][s]["bundle_version"] for s in sides)]]
    rows += [[k, *(m["sides"][s]["models"].get(k) for s in sides)] for k in models]
    ov = m["overview"]
    rows += [["unscreenable", *(ov[s]["unscreenable"] for s in sides)],
             ["errors", *(", ".join(f"{k} {v}" for k, v in ov[s]["errors"].items()) or "-"
                          for s in sides)],
             ["faces found", *(ov[s]["faces"] for s in sides)]]
    rows += [[f"verdict {v}", *(ov[s]["verdicts"][v] for s in sides)]
             for v in ov["candidate"]["verdicts"]]
    return ["## Sides", "", *_table(["", *sides], rows)]


def _agreement(a: Mapping[str, Any]) -> list[str]:
    v = a["verdicts"]
    conf = v["confusion"]
    lines = ["## Agreement (candidate against baseline)", "",
             f"Same verdict on {v['same']} of {a['items']} items ({v['agreement']}); candidate "
             f"stricter on {v['raised']}, more lenient on {v['lowered']}.", "",
             *_table(["baseline \\ candidate", *conf], [[b, *r.values()] for b, r in
                                                       conf.items()])]
    rows = []
    for name, s in a["signals"].items():
        d = s["delta"]
        q = d.get("quantiles", {})
        rows.append([name, d["n"], d.get("mean"), d.get("mean_abs"), q.get("0.01"), q.get("0.5"),
                     q.get("0.99"), d.get("max_abs"), s["only_candidate"], s["only_baseline"]])
    lines += ["Score deltas (candidate - baseline) on items both sides measured:", "",
              *_table(["signal", "n", "mean", "mean abs", "q01", "median", "q99", "max abs",
                       "only candidate", "only baseline"], rows)]
    f = a["faces"]
    lines += [f"Faces: {f['matched']} found by both, {f['only_candidate']} by the candidate "
              f"only, {f['only_baseline']} by the baseline only (on "
              f"{f['items_with_unmatched_faces']} items); age delta of faces both found: "
              f"mean abs {f['age_delta'].get('mean_abs')}, max abs "
              f"{f['age_delta'].get('max_abs')}; P(minor) delta max abs "
              f"{f['p_minor_delta'].get('max_abs')}.", ""]
    if a["differences"]:
        rows = [[d["key"], f"{d['verdict']['baseline']} -> {d['verdict']['candidate']}",
                 ", ".join(f"{k} {x:+.3f}" for k, x in d["delta"].items()
                           if x is not None and abs(x) >= 0.001) or "-",
                 f"{d['faces']['baseline']} -> {d['faces']['candidate']}"]
                for d in a["differences"]]
        lines += ["Items that differ most:", "",
                  *_table(["item", "verdict", "signal deltas", "faces"], rows)]
    return lines


def _accuracy(side: str, acc: Mapping[str, Any]) -> list[str]:
    lines = [f"## Against the labels: {side}", ""]
    rows = []
    for name, s in acc["signals"].items():
        at = "; ".join(f">= {t['threshold']:g}: P {_cell(t['precision'])} R {_cell(t['recall'])}"
                       for t in s["at_thresholds"])
        rows.append([name, s["n"], s["positives"], s["unscreenable"], s["roc_auc"], at or "-"])
    lines += _table(["signal", "labelled", "positive", "unscreenable", "ROC-AUC",
                     "precision / recall at the policy's thresholds"], rows)
    rows = [[b, x["n"], x["missed"], x["mae"], x["bias"]] for b, x in acc["age_by_band"].items()]
    lines += _table(["age band", "faces aged", "missed or unaged", "MAE (years)", "bias"], rows)
    c = acc["p_minor_calibration"]
    if c.get("n"):
        lines += [f"P(minor) calibration over {c['n']} faces: ECE {c['ece']}, "
                  f"Brier {c['brier']}.", ""]
    return lines
