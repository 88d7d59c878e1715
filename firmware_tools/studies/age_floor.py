"""The age floors: how small, and how unsure, a face may be and still get an age.

``edge_screen.signals`` ages a face only when its box is at least ``MIN_AGE_FACE`` px wide in
the pixels its chip is cut from and the detector scores it at least ``MIN_AGE_SCORE``. This
measures both, with the runtime's own decoder and models, from what the repo has:

- **size**: the faces of tests/data/images/astronaut.jpg and grace_hopper.jpg (adults), pasted
  as ``face_recall`` pastes them at widths of 24-320 px into 1 MP photos (the working image is
  the original, so the chip's pixels are the face's own) over three backgrounds, two places and
  both flips, JPEG quality 90. Each face's reference is its mean age at 256-320 px. Per width:
  the worst |age - reference| and the highest P(minor) (both faces are adults: any P(minor) is an
  error). The model scatters by several years even on large faces (brightness, background,
  flip), so the floor is the smallest width from which every larger width stays within that
  large-face scatter (the worst error at >= ``LARGE`` px) plus ``AGE_SLACK`` years, with P(minor)
  <= ``P_MINOR_TOLERANCE``.
- **score**: every detection on face-free photos (coffee, chelsea, rocket: the originals and
  noisy copies of 1, 2, 4, 12 and 27 MP, three seeds, with the runtime's tiles) is a false
  positive. The runtime gates on the detector's box and score, not the pasted width: per
  candidate score floor, the box floor goes just above every badly aged pasting that score lets
  by; the pair chosen is the candidate above every false positive that leaves the fewest found
  faces of at least the width floor unaged.

Measured here (2 cores, fp32 detector, fp16 age model): width floor 48 px (40 px pastings are
aged up to 25 y off, 32 px ones 8.7 y; from 48 px up within the 6.5 y large-face scatter + 1);
one false positive on 48 face-free photos, scored 0.608; chosen score >= 0.67 with box >= 38 px,
leaving 7 of 141 found faces of >= 48 px unaged (score >= 0.62 would need box >= 55 px: 14).

    python -m firmware_tools.studies.age_floor [--json OUT]
    python -m firmware_tools.studies.age_floor --sizes [--chip-source 1]  # one face, 1-27 MP

``--sizes`` measures what ``signals.CHIP_SHIFTS`` is for: each face pasted 212 px wide at three
places over three backgrounds (18 placements) into photos of 1, 4, 12 and 27 MP, screened with
the runtime's chips (the chip and four half-pixel shifts) and with one chip; per placement aged
at two sizes or more, the spread of its ages.

Only adult faces are in the repo, so this measures how small faces drift (towards "minor", as
the tile-pass false positive on the space shuttle did: aged 2.1 y, P(minor) 1.0), not how a
child's face ages when small.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

from edge_screen import Screener
from edge_screen.decode import ImageLimits, decode_image
from edge_screen.probe import probe
from edge_screen.signals import SignalExtractor

from ..pipeline.composite import IMAGES, background, match, paste, photo_patch

WIDTHS = (24, 32, 40, 48, 56, 64, 72, 80, 96, 112, 128, 160, 212, 256, 320)
REFERENCE = (256, 320)  # widths whose mean age is each face's reference
SWEEP_SIZE = (1155, 866)  # 1 MP: decoded at full size, the chip's pixels are the original's
BACKGROUNDS = ("coffee", "chelsea", "rocket")
PLACES = ((0.25, 0.3), (0.6, 0.45))  # face box top-left, fractions of the photo
EMPTY_SIZES = {"1MP": (1155, 866), "2MP": (1600, 1200), "4MP": (2309, 1732),
               "12MP": (4000, 3000), "27MP": (6000, 4500)}
EMPTY_SEEDS = (0, 1, 2)
SCORE_FLOORS = (0.6, 0.62, 0.65, 0.67, 0.7, 0.75, 0.8)  # candidate detector-score floors
LARGE = 128  # px: chips of faces this wide have >= 2 source px per chip px
AGE_SLACK = 1.0  # years over the large-face scatter
P_MINOR_TOLERANCE = 0.1  # both faces are adults


def _jpeg(im: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)  # type: ignore[attr-defined]
    return buf.getvalue()


def sweep(ungated: SignalExtractor) -> list[dict[str, object]]:
    """Every pasted face: its width, the detector's box width and score, age and P(minor)."""
    rows: list[dict[str, object]] = []
    for name in ("astronaut", "grace_hopper"):
        patch = photo_patch(name)
        for width in WIDTHS:
            for bg in BACKGROUNDS:
                for i, (fx, fy) in enumerate(PLACES):
                    canvas = background(bg, SWEEP_SIZE, np.random.default_rng(i))
                    x, y = fx * SWEEP_SIZE[0], fy * SWEEP_SIZE[1]
                    # Seeds 0/1 pick the flip (and the brightness gain) of face_recall's paste.
                    truth = paste(canvas, patch, width, x, y, np.random.default_rng(i))
                    data = _jpeg(canvas)
                    img = decode_image(data, probe(data[:64]), ImageLimits(), 512)
                    sig = ungated.extract(img.rgb, img.width, img.height, detail=img.detail)
                    found = [f for f in sig.faces if match([truth], [f.box])[0][0]]
                    face = found[0] if found else None
                    rows.append({
                        "face": name, "width": width, "background": bg, "place": i,
                        "found": face is not None,
                        "box_width": None if face is None else face.box[2] - face.box[0],
                        "score": None if face is None else face.score,
                        "age": None if face is None else face.age,
                        "p_minor": None if face is None else face.p_minor,
                    })
        print(f"  {name}: swept", file=sys.stderr, flush=True)
    return rows


def false_positives(screener: Screener) -> list[dict[str, object]]:
    """Every detection on face-free photos, with the runtime's defaults (tiles included)."""
    rows: list[dict[str, object]] = []
    inputs: list[tuple[str, bytes]] = [
        (f"{bg}.jpg", (IMAGES / f"{bg}.jpg").read_bytes()) for bg in BACKGROUNDS]
    for label, size in EMPTY_SIZES.items():
        for bg in BACKGROUNDS:
            for seed in EMPTY_SEEDS:
                inputs.append((f"{label}-{bg}-{seed}",
                               _jpeg(background(bg, size, np.random.default_rng(seed)))))
    for label, data in inputs:
        report = screener.screen(data)
        for f in report.faces:
            rows.append({"image": label, "score": f.score, "box_width": f.box[2] - f.box[0],
                         "age": f.age, "p_minor": f.p_minor})
        print(f"  {label}: {len(report.faces)} detections", file=sys.stderr, flush=True)
    return [{"images": len(inputs)}, *rows]


SIZE_SWEEP = {"1MP": (1155, 866), "4MP": (2309, 1732), "12MP": (4000, 3000),
              "27MP": (6000, 4500)}
SIZE_PLACES = ((0.4, 0.3), (0.2, 0.5), (0.65, 0.25))


def sizes(screener: Screener) -> dict[str, dict[str, list[float | None]]]:
    """Placement -> chips ("five", "one") -> its age in each photo size (None: not aged)."""
    from edge_screen import signals

    out: dict[str, dict[str, list[float | None]]] = {}
    five = signals.CHIP_SHIFTS
    try:
        for name in ("astronaut", "grace_hopper"):
            patch = photo_patch(name)
            for bg in BACKGROUNDS:
                for seed, (fx, fy) in enumerate(SIZE_PLACES):
                    key = f"{name}/{bg}/{seed}"
                    out[key] = {}
                    photos = []
                    for size in SIZE_SWEEP.values():
                        canvas = background(bg, size, np.random.default_rng(seed))
                        paste(canvas, patch, 212, fx * size[0], fy * size[1],
                              np.random.default_rng(seed))
                        photos.append(_jpeg(canvas))
                    for label, shifts in (("five", five), ("one", ((0.0, 0.0),))):
                        signals.CHIP_SHIFTS = shifts
                        faces = [screener.screen(d).faces for d in photos]
                        out[key][label] = [f[0].age if f else None for f in faces]
                    print(f"  {key}: {out[key]}", file=sys.stderr, flush=True)
    finally:
        signals.CHIP_SHIFTS = five
    return out


def sizes_table(result: dict[str, dict[str, list[float | None]]]) -> str:
    lines = [f"{'placement':28} {'ages 1/4/12/27 MP, five':>24} {'one chip':>24}"]
    spreads: dict[str, list[float]] = {"five": [], "one": []}
    for key, row in result.items():
        cells = []
        for label in ("five", "one"):
            ages = row[label]
            cells.append(" ".join("-" if a is None else f"{a:.1f}" for a in ages))
            aged = [a for a in ages if a is not None]
            if len(aged) >= 2:
                spreads[label].append(max(aged) - min(aged))
        lines.append(f"{key:28} {cells[0]:>24} {cells[1]:>24}")
    for label, sp in spreads.items():
        lines.append(f"{label} chip(s): spread of the ages of {len(sp)} placements aged at two "
                     "sizes or more: " + ", ".join(f"{v:.1f}" for v in sorted(sp, reverse=True)))
    return "\n".join(lines)


def floors(rows: list[dict], fps: list[dict]) -> dict[str, object]:  # type: ignore[type-arg]
    """The size floor (width), the score floor, and what they leave unaged."""
    ref = {}
    for name in ("astronaut", "grace_hopper"):
        ages = [r["age"] for r in rows if r["face"] == name and r["width"] in REFERENCE
                and r["age"] is not None]
        ref[name] = float(np.mean(ages))
    per_width = {}
    for w in WIDTHS:
        aged = [r for r in rows if r["width"] == w and r["age"] is not None]
        found = [r for r in rows if r["width"] == w and r["found"]]
        per_width[w] = {
            "n": sum(1 for r in rows if r["width"] == w), "found": len(found),
            "max_age_error": max((abs(r["age"] - ref[r["face"]]) for r in aged), default=None),
            "max_p_minor": max((r["p_minor"] for r in aged), default=None),
            "min_score": min((r["score"] for r in found), default=None),
            "median_box_width": float(np.median([r["box_width"] for r in found])) if found
            else None,
            "min_box_width": min((r["box_width"] for r in found), default=None),
        }
    scatter = max(per_width[w]["max_age_error"] for w in WIDTHS if w >= LARGE)
    size_floor = None
    for w in reversed(WIDTHS):
        cell = per_width[w]
        ok = (cell["max_age_error"] is not None
              and cell["max_age_error"] <= scatter + AGE_SLACK
              and cell["max_p_minor"] <= P_MINOR_TOLERANCE)
        if not ok:
            break
        size_floor = w
    # The runtime gates on the detector's box and score, not on the pasted width: per candidate
    # score floor, the box floor is just above every badly aged face that score floor lets by.
    tolerance = scatter + AGE_SLACK

    def bad(r: dict) -> bool:  # type: ignore[type-arg]
        return abs(r["age"] - ref[r["face"]]) > tolerance or r["p_minor"] > P_MINOR_TOLERANCE

    aged = [r for r in rows if r["age"] is not None]
    ageable = [r for r in rows if r["found"] and size_floor is not None
               and r["width"] >= size_floor]
    fp_scores = [r["score"] for r in fps[1:]]
    max_fp = max(fp_scores, default=0.0)
    gates = {}
    for t in SCORE_FLOORS:
        let_by = [r["box_width"] for r in aged if r["score"] >= t and bad(r)]
        box = float(np.floor(max(let_by)) + 1) if let_by else 0.0
        gates[t] = {"box_floor": box, "unaged": sum(
            r["score"] < t or r["box_width"] < box for r in ageable)}
    above = [t for t in SCORE_FLOORS if t > max_fp]
    score_floor = min(above, key=lambda t: (gates[t]["unaged"], -t)) if above else None
    return {
        "reference_age": ref, "large_face_scatter": scatter, "tolerance": tolerance,
        "per_width": per_width, "size_floor": size_floor,
        "false_positive_scores": sorted(fp_scores, reverse=True),
        "face_free_images": fps[0]["images"], "ageable": len(ageable), "gates": gates,
        "score_floor": score_floor,
        "box_floor": None if score_floor is None else gates[score_floor]["box_floor"],
    }


def table(result: dict) -> str:  # type: ignore[type-arg]
    f = result["floors"]
    lines = [f"reference ages: {', '.join(f'{k} {v:.1f}' for k, v in f['reference_age'].items())}"
             f"; worst error at >= {LARGE} px: {f['large_face_scatter']:.1f} y",
             f"{'width':>5} {'found':>7} {'box px':>7} {'min score':>9} {'max |dage|':>10} "
             f"{'max P(minor)':>12}"]
    for w, c in f["per_width"].items():
        def fmt(v: float | None, spec: str) -> str:
            return "-" if v is None else format(v, spec)
        lines.append(f"{w:>5} {c['found']:>3}/{c['n']:<3} {fmt(c['median_box_width'], '.0f'):>7} "
                     f"{fmt(c['min_score'], '.3f'):>9} {fmt(c['max_age_error'], '.1f'):>10} "
                     f"{fmt(c['max_p_minor'], '.3f'):>12}")

    lines += [
        f"width floor (every larger width within {f['tolerance']:.1f} y and P(minor) <= "
        f"{P_MINOR_TOLERANCE:g}): {f['size_floor']} px",
        f"false positives on {f['face_free_images']} face-free photos: "
        f"{len(f['false_positive_scores'])}, scores "
        f"{', '.join(f'{s:.3f}' for s in f['false_positive_scores']) or '-'}",
        f"gates (score floor: box floor just above every badly aged face it lets by, and the "
        f"faces of >= {f['size_floor']} px it leaves unaged, of {f['ageable']}):",
        *(f"  score >= {t:<5g} box >= {g['box_floor']:>5.0f} px  unaged {g['unaged']}"
          for t, g in f["gates"].items()),
        f"chosen (above every false positive, fewest unaged): score >= {f['score_floor']}, "
        f"box >= {f['box_floor']} px",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m firmware_tools.studies.age_floor",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, help="write every face's result here")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", action="store_true", help="the same face in 1-27 MP photos")
    ap.add_argument("--chip-source", type=float, help="with --sizes: signals.CHIP_SOURCE to try")
    args = ap.parse_args(argv)
    if args.sizes:
        if args.chip_source is not None:
            from edge_screen import signals

            signals.CHIP_SOURCE = args.chip_source
        with Screener(threads=args.threads) as screener:
            by_size = sizes(screener)
        if args.json:
            args.json.write_text(json.dumps(by_size, indent=1))
        print(sizes_table(by_size))
        return 0
    with Screener(threads=args.threads) as screener:
        ext = screener._extractor  # the screener's own models, so the numbers are the runtime's
        assert ext.detector is not None and ext.age is not None
        ungated = SignalExtractor([ext.detector, ext.age], ext.landmarker, min_age_face=0.0,
                                  min_age_score=0.0)
        rows = sweep(ungated)
        fps = false_positives(screener)
    result = {"faces": rows, "false_positives": fps[1:], "floors": floors(rows, fps)}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
