"""The test photos: phone-like JPEGs composed in code, so a bench needs no data download."""

from __future__ import annotations

import io
import math
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

# (name, x, y, width as fractions of the canvas) per layout: 1, 2, 0 and 1 (close-up) faces.
LAYOUTS: tuple[tuple[str, tuple[tuple[str, float, float, float], ...]], ...] = (
    ("portrait", (("coffee", 0, 0, 1), ("astronaut", 0.28, 0.2, 0.45))),
    ("group", (("rocket", 0, 0, 1), ("grace_hopper", 0.1, 0.3, 0.28),
               ("astronaut", 0.6, 0.4, 0.25))),
    ("pet", (("chelsea", 0, 0, 1),)),
    ("close_up", (("coffee", 0, 0, 1), ("grace_hopper", 0.12, -0.1, 0.75))),
    ("scene", (("rocket", 0, 0, 1),)),
)


def source_dir() -> Path | None:
    """Photos to compose from: shipped with the package if it ships them, else a checkout's."""
    here = Path(__file__).resolve().parents[1]  # the edge_screen package
    for d in (here / "bench_images", here.parent / "tests" / "data" / "images"):
        if (d / "astronaut.jpg").is_file():
            return d
    return None


@cache
def make_inputs(
    count: int, megapixels: float = 12.0, seed: int = 0
) -> tuple[tuple[str, bytes], ...]:
    """``count`` phone-like 4:3 JPEGs (q90, sensor noise), deterministic for a given Pillow."""
    w = round(math.sqrt(megapixels * 1e6 * 4 / 3))
    h = w * 3 // 4
    src = source_dir()
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        name, parts = LAYOUTS[i % len(LAYOUTS)]
        if src is None:  # no photos to compose: stripes, and no face for the age path
            yy, xx = np.mgrid[0:h, 0:w]
            gray = ((xx * 3 + yy * (i + 1)) % 256).astype(np.uint8)
            canvas = Image.fromarray(gray).convert("RGB")
        else:
            canvas = Image.new("RGB", (w, h), (96, 110, 124))
            for part, fx, fy, fw in parts:
                im = Image.open(src / f"{part}.jpg").convert("RGB")
                size = (round(fw * w), round(fw * w * im.height / im.width)) if fw < 1 else (w, h)
                xy = (round(fx * w), round(fy * h))
                canvas.paste(im.resize(size, Image.Resampling.BICUBIC), xy)
        pixels = np.asarray(canvas).astype(np.int16)
        for y in range(0, h, 256):  # noise in bands keeps the peak memory of a 12 MP frame low
            band = pixels[y : y + 256]
            band += (rng.standard_normal(band.shape, np.float32) * 4).round().astype(np.int16)
        buf = io.BytesIO()
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
        out.append((f"{i:02d}_{name}.jpg", buf.getvalue()))
    return tuple(out)
