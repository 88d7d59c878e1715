"""How much the age estimate moves when the 64x64 face chip moves by a pixel or is rescaled.

The model card quotes this to explain why faces are aligned exactly as the age model was
trained. Uses the shipped bundle's own landmark and age models (the variants this machine
prefers: fp16 everywhere since the device bundle dropped fp32); prints one line per shift:

    python -m firmware_tools.studies.age_sensitivity [IMAGE]  # default: astronaut.jpg
"""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image

from edge_screen import Screener, preprocess
from edge_screen.manifest import Alignment

from ..pipeline.recipe import REPO_ROOT


def main(argv: list[str]) -> int:
    path = argv[0] if argv else str(REPO_ROOT / "tests" / "data" / "images" / "astronaut.jpg")
    rgb = np.asarray(Image.open(path).convert("RGB"))
    with Screener(threads=1) as s:  # the age variant this machine prefers
        face = s.screen(path).faces[0]
        ext = s._extractor  # the screener's own models, so the numbers are the runtime's
        assert ext.age is not None and ext.landmarker is not None
        x0, y0, x1, y1 = face.box
        points = ext.landmarker(rgb, np.array([x0, x1], np.float32), np.array([y0, y1], np.float32))
        spec = ext.age.input
        assert spec.alignment is not None
        base = np.asarray(spec.alignment.template)
        ages = np.asarray(ext.age.spec.output.ages, np.float32)  # type: ignore[union-attr]

        def age(template: np.ndarray) -> float:
            a = Alignment(spec.alignment.keypoints, tuple(map(tuple, template)), "landmarks")  # type: ignore[union-attr]
            chip = preprocess.align_face(rgb, points, a, spec.size)
            return float(ext.age.run(preprocess.normalise(chip, spec))[0].reshape(-1) @ ages)  # type: ignore[union-attr]

        print(f"{path}: as aligned: {age(base):.1f} years")
        w = spec.size[1]
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            # The template moves by (dx, dy) chip pixels, so the face moves the other way.
            moved = age(base + np.array([dx, dy]) / w)
            print(f"  template shifted by ({dx:+d}, {dy:+d}) px: {moved:.1f}")
        for scale in (0.95, 1.05):
            print(f"  template scaled by {scale}: {age((base - 0.5) * scale + 0.5):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
