"""The smoke set: every model of the default bundle on real test pictures and a video, as a
comparable summary. Run where the package is installed (an emulated Pi, the tflite-runtime venv)
and compared with this machine's own answers (``test_platforms.py``)::

    python3 tests/smoke.py --variants aarch64 --out OUT.json INPUT...

``--variants MACHINE`` screens with the variants the manifest prefers on MACHINE (``native``:
this machine's own choice), so kernel differences and variant differences can be told apart.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PHOTOS = (
    "images/astronaut.jpg",  # an adult face: detector, landmarks, age
    "images/grace_hopper.jpg",
    "decision/hold_minor_drawn_face.jpg",  # a likely minor with a sexual score: child-safety hold
    "decision/review_noise.jpg",  # a sexual score in the review range
)
# Allowed differences from this machine's LiteRT answers; test_platforms.py says what was measured.
TOLERANCE = {"score": 0.03, "box_px": 3.0, "age": 3.0}
# tflite-runtime's int8 kernels are not LiteRT's: open_nsfw int8 moved by 0.027 on these inputs.
TFLITE_TOLERANCE = {"score": 0.06, "box_px": 3.0, "age": 3.0}


def inputs(data: Path) -> list[Path]:
    return [data / p for p in PHOTOS]


def reports(paths: Sequence[str | Path], variants: str = "native") -> dict[str, Any]:
    """Verdict, signals and faces of each input, screened with one variant set."""
    from edge_screen import SamplingOptions, Screener, ScreenerOptions
    from edge_screen.bundle import Bundle

    chosen: dict[str, str] = {}
    if variants != "native":
        chosen = {m.id: m.preferred_variant(variants).name for m in Bundle.open().manifest.models}
    out: dict[str, Any] = {}
    # The answers are compared, not the speed: an emulated CPU (QEMU) is 10-50x slower than a
    # device, so the clip gets a budget no device needs.
    sampling = SamplingOptions(time_budget_s=1800.0)
    opts = ScreenerOptions(variants=chosen, threads=2, workers=1, sampling=sampling)
    with Screener(opts) as screener:
        for path in paths:
            r = screener.screen(path)
            out[Path(path).name] = {
                "verdict": r.verdict,
                "error": None if r.error is None else r.error.code,
                "signals": dict(r.signals),
                "faces": [{"box": list(f.box), "score": f.score, "age": f.age,
                           "p_minor": f.p_minor} for f in r.faces],
                "models": dict(r.models),
            }
    return out


def differences(a: dict[str, Any], b: dict[str, Any], tol: dict[str, float]) -> list[str]:
    """What differs between two summaries beyond the tolerances, item by item."""
    out = []
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name), b.get(name)
        if x is None or y is None:
            out.append(f"{name}: only on one side")
            continue
        for key in ("verdict", "error", "models"):
            if x[key] != y[key]:
                out.append(f"{name}: {key} {x[key]} vs {y[key]}")
        for sig in set(x["signals"]) | set(y["signals"]):
            p, q = x["signals"].get(sig), y["signals"].get(sig)
            if (p is None) != (q is None) or (p is not None and abs(p - q) > tol["score"]):
                out.append(f"{name}: {sig} {p} vs {q}")
        if len(x["faces"]) != len(y["faces"]):
            out.append(f"{name}: {len(x['faces'])} vs {len(y['faces'])} faces")
            continue
        for i, (f, g) in enumerate(zip(x["faces"], y["faces"], strict=True)):
            if max(abs(u - v) for u, v in zip(f["box"], g["box"], strict=True)) > tol["box_px"]:
                out.append(f"{name}: face {i} box {f['box']} vs {g['box']}")
            if abs(f["score"] - g["score"]) > tol["score"]:
                out.append(f"{name}: face {i} score {f['score']} vs {g['score']}")
            for key, t in (("age", tol["age"]), ("p_minor", tol["score"])):
                if (f[key] is None) != (g[key] is None) or (
                        f[key] is not None and abs(f[key] - g[key]) > t):
                    out.append(f"{name}: face {i} {key} {f[key]} vs {g[key]}")
    return out


def largest(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """The largest difference of each kind, for the record."""
    worst = {"score": 0.0, "box_px": 0.0, "age": 0.0}
    for name in set(a) & set(b):
        x, y = a[name], b[name]
        for sig, p in x["signals"].items():
            q = y["signals"].get(sig)
            if p is not None and q is not None:
                worst["score"] = max(worst["score"], abs(p - q))
        for f, g in zip(x["faces"], y["faces"], strict=False):
            worst["box_px"] = max(worst["box_px"], *(abs(u - v) for u, v in
                                                      zip(f["box"], g["box"], strict=True)))
            worst["score"] = max(worst["score"], abs(f["score"] - g["score"]))
            if f["age"] is not None and g["age"] is not None:
                worst["age"] = max(worst["age"], abs(f["age"] - g["age"]))
    return worst


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="native")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("inputs", nargs="+")
    args = p.parse_args(argv)
    args.out.write_text(json.dumps(reports(args.inputs, args.variants), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
