"""``--compare``: every measurement of two reports judged against both runs' noise, and what
differs between the runs besides the code."""

from __future__ import annotations

from typing import Any


def compare(
    base: dict[str, Any], cur: dict[str, Any], threshold: float = 0.1
) -> list[dict[str, Any]]:
    """Every measurement in both reports, judged: a change counts only when the medians differ
    by more than ``threshold`` and the two interquartile ranges do not overlap (the noise of
    both runs). Fewer than 3 samples make a verdict tentative (``conclusive`` false). Peers
    are not ours to regress, so they are left out."""
    rows: list[dict[str, Any]] = []

    def walk(b: Any, c: Any, path: str) -> None:
        if not (isinstance(b, dict) and isinstance(c, dict)):
            return
        if "median" in b and "unit" in b and "median" in c:
            higher = str(b["unit"]).endswith("/s")
            change = (c["median"] - b["median"]) / b["median"] if b["median"] else 0.0
            apart = c["q1"] > b["q3"] or b["q1"] > c["q3"]
            better = change > 0 if higher else change < 0
            verdict = "same" if abs(change) <= threshold or not apart else (
                "improvement" if better else "regression")
            rows.append({"metric": path, "unit": b["unit"], "baseline": b["median"],
                         "current": c["median"], "change": round(change, 4), "verdict": verdict,
                         "conclusive": min(b["n"], c["n"]) >= 3})
            return
        for k in b:
            if k != "peers" and k in c:
                walk(b[k], c[k], f"{path}.{k}" if path else k)

    walk(base, cur, "")
    return rows


def comparability(base: dict[str, Any], cur: dict[str, Any]) -> list[str]:
    """What differs between the runs besides the code: such changes are expected, not flagged."""
    checks = [("device", "cpu"), ("device", "cpu_count"), ("config", "threads"),
              ("config", "models"), ("config", "inputs"), ("mode",)]
    out = []
    loads = [(x.get("device") or {}).get("load_average") or [0.0] for x in (base, cur)]
    if abs(loads[0][0] - loads[1][0]) > 0.5:
        out.append(f"1-min load average {loads[0][0]} -> {loads[1][0]}: was one machine busier?")
    for keys in checks:
        b: Any = base
        c: Any = cur
        for k in keys:
            b, c = (b or {}).get(k), (c or {}).get(k)
        if b != c:
            out.append(f"{'.'.join(keys)} differs: {b} -> {c}")
    return out
