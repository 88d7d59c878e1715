"""Face recall by face size: whole-image BlazeFace full-range vs short-range vs full-range + tiles.

A missed face is a missed minor, so the model card quotes these numbers. Test scenes are made in
code from what the repo has: the faces of tests/data/images/astronaut.jpg and grace_hopper.jpg and
scikit-image's ``lfw_subset()`` (100 25x25 grey faces), pasted with feathered edges at known
places and sizes into 12 MP and 1-2 MP backgrounds (coffee, chelsea, rocket, plus noise), JPEG
encoded, then decoded and detected by the runtime's own ``decode_image`` and ``SignalExtractor``
(detector only). Ground truth is where the faces were pasted; a detection matches at IoU >= 0.3.
Timing is the extractor's ``faces`` time, median of ``--repeats`` runs (a noisy shared machine:
compare columns of one run, not runs)::

    python -m firmware_tools.studies.face_recall [--short-range FILE] [--json OUT] [--repeats N]

``--short-range``: ``face_detection_short_range.tflite`` from the mediapipe 0.10.14 wheel.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import itertools
import json
import math
import platform
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_screen import faces
from edge_screen.backends import get_backend
from edge_screen.bundle import Bundle
from edge_screen.decode import ImageLimits, decode_image
from edge_screen.infer import Model
from edge_screen.manifest import CenterFaceOutput, FaceDetectorOutput
from edge_screen.probe import probe
from edge_screen.signals import SignalExtractor

from ..pipeline.composite import IMAGES, background, face_patches, match, paste

BACKGROUNDS = ("coffee", "chelsea", "rocket")
# Scene sizes (width, height) and the face widths (original pixels) swept in each.
SCENES = {
    "12MP": ((4000, 3000), (60, 80, 100, 130, 160, 200, 260, 350, 450, 600)),
    "2MP": ((1600, 1200), (30, 40, 50, 65, 80, 100, 150, 250, 400)),
    "1MP": ((1200, 900), (25, 30, 40, 50, 65, 80, 120, 200, 300)),
}
GROUP_SIZES = {"12MP": (60, 600), "2MP": (40, 300), "1MP": (30, 250)}
# The full-range + tiles settings measured: ``min_face``, a fraction of the short side.
MIN_FACES = (0.08, 0.065, 0.05, 0.03)


@dataclass
class Scene:
    name: str
    kind: str  # "sweep", "group" or "empty"
    scene: str
    face_px: int  # face width in the sweep; 0 otherwise
    jpeg: bytes
    truth: list[tuple[float, float, float, float]]
    sources: list[str]


def _place(size: tuple[int, int], widths: list[float], rng: np.random.Generator
           ) -> list[tuple[float, float, float]]:
    """Non-overlapping (x, y, width) face places; faces that do not fit are dropped."""
    placed: list[tuple[float, float, float]] = []
    for w in widths:
        for _ in range(200):
            x = rng.uniform(0.3 * w, size[0] - 1.5 * w)
            y = rng.uniform(0.4 * w, size[1] - 1.6 * w)
            if all(x + 1.4 * w < px or px + 1.4 * pw < x or y + 1.6 * w < py or py + 1.6 * pw < y
                   for px, py, pw in placed):
                placed.append((x, y, w))
                break
    return placed


def scenes(seed: int = 0) -> Iterator[Scene]:
    """Size sweeps (8 faces of one size), group photos (5-10 faces of mixed sizes), empties."""
    rng = np.random.default_rng(seed)
    patches = face_patches()
    photo = [p for p in patches if p.source != "lfw"]
    lfw = [p for p in patches if p.source == "lfw"]

    def make(name: str, kind: str, scene: str, px: int, size: tuple[int, int], bg: str,
             widths: list[float]) -> Scene:
        canvas = background(bg, size, rng)
        truth, sources = [], []
        for x, y, w in _place(size, widths, rng):
            # Half the faces from the two real photos, half from lfw: the photos are sharp and
            # in colour, lfw crops are tight 25 px grey faces (blurry when enlarged).
            p = photo[rng.integers(len(photo))] if rng.random() < 0.5 else lfw[rng.integers(100)]
            truth.append(paste(canvas, p, w, x, y, rng))
            sources.append(p.source)
        buf = io.BytesIO()
        canvas.save(buf, format="JPEG", quality=90)
        return Scene(name, kind, scene, px, buf.getvalue(), truth, sources)

    for scene, (size, widths) in SCENES.items():
        for bg in BACKGROUNDS:
            yield make(f"{scene}-{bg}-empty", "empty", scene, 0, size, bg, [])
            for px in widths:
                yield make(f"{scene}-{bg}-{px}px", "sweep", scene, px, size, bg, [px] * 8)
            lo, hi = GROUP_SIZES[scene]
            for i in range(2):
                n = int(rng.integers(5, 11))
                ws = list(np.exp(rng.uniform(math.log(lo), math.log(hi), n)))
                yield make(f"{scene}-{bg}-group{i}", "group", scene, 0, size, bg, ws)
    for bg in BACKGROUNDS:  # the originals, as shipped
        data = (IMAGES / f"{bg}.jpg").read_bytes()
        yield Scene(f"{bg}.jpg", "empty", "orig", 0, data, [], [])


def extractors(
    short_range: Path | None, threads: int, variant_name: str | None = None,
    bundle_dir: Path | None = None, dense_thresholds: tuple[float, ...] = (),
    min_faces: tuple[float, ...] = MIN_FACES, dense_budgets: tuple[tuple[int, int], ...] = (),
) -> dict[str, SignalExtractor]:
    """Detector-only extractors: the shipped full-range model at each setting, short-range, and
    the centerface strategy where the bundle has CenterFace."""
    bundle = Bundle.open(bundle_dir)
    backend = get_backend("auto")
    spec = next(m for m in bundle.manifest.models if isinstance(m.output, FaceDetectorOutput))
    variant = bundle.select(spec, variant_name)
    full = Model(spec, variant, bundle.model_bytes(variant), backend, threads)
    out: dict[str, SignalExtractor] = {"full": SignalExtractor([full], min_face=0.0)}
    for dspec in bundle.manifest.models:
        if not isinstance(dspec.output, CenterFaceOutput):
            continue
        dv = bundle.select(dspec, None)
        assert dspec.input is not None
        here = dspec.input.budget(platform.machine())
        for (h, w), thr in itertools.product(
            dense_budgets or (here,), dense_thresholds or (dspec.output.score_threshold,)
        ):
            spec_t = dataclasses.replace(
                dspec, output=dataclasses.replace(dspec.output, score_threshold=thr),
                input=dataclasses.replace(dspec.input, budgets=((platform.machine(), (h, w)),)))
            dense = Model(spec_t, dv, bundle.model_bytes(dv), backend, threads)
            out[f"cf.{dv.name}.{w}x{h}@{thr:g}"] = SignalExtractor([full, dense],
                                                                  strategy="centerface")
    if short_range is not None:
        content = short_range.read_bytes()
        assert spec.input is not None and isinstance(spec.output, FaceDetectorOutput)
        # MediaPipe's face_detection_short_range graph: 128x128, 896 anchors, threshold 0.5.
        sspec = dataclasses.replace(
            spec,
            input=dataclasses.replace(spec.input, size=(128, 128)),
            output=dataclasses.replace(spec.output, strides=(8, 16, 16, 16), anchors_per_layer=2,
                                       score_threshold=0.5),
        )
        sv = dataclasses.replace(variant, file=short_range.name, size=len(content),
                                 sha256=hashlib.sha256(content).hexdigest())
        out["short"] = SignalExtractor([Model(sspec, sv, content, backend, threads)], min_face=0.0)
    for f in min_faces:
        out[f"full+tiles@{f:g}"] = SignalExtractor([full], min_face=f)
    return out


def run(
    short_range: Path | None, repeats: int, threads: int, variant: str | None = None,
    bundle_dir: Path | None = None, dense_thresholds: tuple[float, ...] = (),
    min_faces: tuple[float, ...] = MIN_FACES, dense_budgets: tuple[tuple[int, int], ...] = (),
) -> dict[str, object]:
    exs = extractors(short_range, threads, variant, bundle_dir, dense_thresholds, min_faces,
                     dense_budgets)
    rows: list[dict[str, object]] = []
    for sc in scenes():
        img = decode_image(sc.jpeg, probe(sc.jpeg[:64]), ImageLimits(), 512)
        h, w = img.rgb.shape[:2]
        row: dict[str, object] = {
            "name": sc.name, "kind": sc.kind, "scene": sc.scene, "face_px": sc.face_px,
            "working": [w, h], "sources": sc.sources, "modes": {}}
        for mode, ex in exs.items():
            ms, found = [], None
            for _ in range(repeats):
                before = sum(m.macs() for m in ex.models())
                sig = ex.extract(img.rgb, img.width, img.height)
                ms.append(sig.timing_ms["faces"])
                macs = sum(m.macs() for m in ex.models()) - before
                found = [f.box for f in sig.faces]
            assert found is not None
            hit, fp = match(sc.truth, found)
            tiles, stage = 0, ex.faces
            if stage is not None and stage.strategy == "tiles":
                tiles = len(faces.tiles(w, h, (192, 192), stage.min_face,
                                        faces.SMALLEST_INPUT_FACE))
            row["modes"][mode] = {  # type: ignore[index]
                "hit": hit, "false_positives": fp, "ms": statistics.median(ms), "tiles": tiles,
                "gmacs": macs / 1e9}
        rows.append(row)
        print(f"  {sc.name}", file=sys.stderr, flush=True)
    return {"modes": list(exs), "images": rows}


def _recall(rows: list[dict], mode: str) -> str:  # type: ignore[type-arg]
    """Recall of the photo faces / of the lfw faces."""
    cells = []
    for lfw in (False, True):
        hits = [h for r in rows for h, s in zip(r["modes"][mode]["hit"], r["sources"], strict=True)
                if (s == "lfw") == lfw]
        cells.append(f"{sum(hits) / len(hits):.2f}" if hits else "-")
    return "/".join(cells)


def table(result: dict) -> str:  # type: ignore[type-arg]
    """Recall per scene and face size, false positives and median faces time per mode."""
    modes: list[str] = result["modes"]
    rows: list[dict] = result["images"]  # type: ignore[type-arg]
    head = f"{'scene':6} {'face px':>8} {'@input':>6} {'n':>4} " + " ".join(
        f"{m:>15}" for m in modes)
    lines = [head, "-" * len(head)]
    for scene, (size, widths) in SCENES.items():
        sr = [r for r in rows if r["scene"] == scene]
        work = sr[0]["working"]
        per_input = 192 / max(work) * (work[0] / size[0])  # model px per original px, one pass
        for px in widths:
            cell = [r for r in sr if r["kind"] == "sweep" and r["face_px"] == px]
            n = sum(len(r["modes"][modes[0]]["hit"]) for r in cell)
            lines.append(f"{scene:6} {px:>8} {px * per_input:>6.1f} {n:>4} "
                         + " ".join(f"{_recall(cell, m):>15}" for m in modes))
        lo, hi = GROUP_SIZES[scene]
        cell = [r for r in sr if r["kind"] == "group"]
        n = sum(len(r["modes"][modes[0]]["hit"]) for r in cell)
        lines.append(f"{scene:6} {f'{lo}-{hi}':>8} {'group':>6} {n:>4} "
                     + " ".join(f"{_recall(cell, m):>15}" for m in modes))
    lines.append("-" * len(head))
    empty = [r for r in rows if r["kind"] == "empty"]
    faced = [r for r in rows if r["kind"] != "empty"]
    for label, sel in ((f"false positives, {len(empty)} face-free images", empty),
                       (f"false positives, {len(faced)} images with faces", faced)):
        lines.append(f"{label:<26}" + " ".join(
            f"{sum(r['modes'][m]['false_positives'] for r in sel):>15}" for m in modes))
    for scene in (*SCENES, "orig"):
        sr = [r for r in rows if r["scene"] == scene]
        w, h = sr[0]["working"]
        ms = {m: statistics.median(r["modes"][m]["ms"] for r in sr) for m in modes}
        lines.append(f"{f'ms/image {scene} ({w}x{h})':<26}" + " ".join(
            f"{ms[m]:>9.1f} ({sr[0]['modes'][m]['tiles']:>2}t)" for m in modes))
        gm = {m: statistics.median(r["modes"][m]["gmacs"] for r in sr) for m in modes}
        lines.append(f"{f'GMACs/image {scene}':<26}" + " ".join(f"{gm[m]:>15.2f}" for m in modes))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m firmware_tools.studies.face_recall",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short-range", type=Path, help="face_detection_short_range.tflite")
    ap.add_argument("--json", type=Path, help="write every image's result here")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per image and mode")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variant", help="face detector variant (default: this machine's preferred)")
    ap.add_argument("--bundle", type=Path, help="bundle directory (default: the shipped one)")
    ap.add_argument("--centerface-threshold", type=float, action="append", default=[],
                    help="CenterFace score thresholds to measure (default: the manifest's)")
    ap.add_argument("--min-face", type=float, action="append", default=[],
                    help=f"tile settings to measure (default: {', '.join(map(str, MIN_FACES))})")
    ap.add_argument("--centerface-budget", action="append", default=[], metavar="WxH",
                    help="CenterFace pixel budgets to measure (default: this machine's)")
    args = ap.parse_args(argv)
    budgets = tuple((int(b.split("x")[1]), int(b.split("x")[0])) for b in args.centerface_budget)
    result = run(args.short_range, args.repeats, args.threads, args.variant, args.bundle,
                 tuple(args.centerface_threshold), tuple(args.min_face) or MIN_FACES, budgets)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
