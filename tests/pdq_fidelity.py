"""How far the PDQ of the working image (what the screener hashes: a JPEG draft-decoded, box-
reduced, turned upright) is from the PDQ of the full decode, on harmless pictures only.

    python3 -m tests.pdq_fidelity            # the table in docs/report.md#hashes

Meta's bar for an end-to-end port of PDQ is a Hamming distance <= 10 at quality >= 80; a match
against a hash list is <= 31. Pictures: the bench's generated 12 MP phone photos
(``edge_screen.bench.inputs.make_inputs``), each re-encoded at JPEG q80 and resized to 0.5x, and
the committed test photos enlarged to phone sizes (their working image is their full decode at
their own size, so they are measured enlarged, where draft mode applies).
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from edge_screen.decode import ImageLimits, decode_image
from edge_screen.pdq import PdqHash, pdq_hash
from edge_screen.probe import probe

IMAGES = Path(__file__).parent / "data" / "images"
MIN_SIDE = 512  # ScreenerOptions.working_min_side's default


def jpeg(im: Image.Image, quality: int = 90, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


def full_hash(data: bytes) -> PdqHash:
    """The reference way: every pixel decoded, EXIF orientation applied, then PDQ."""
    with Image.open(io.BytesIO(data)) as im:
        up = ImageOps.exif_transpose(im).convert("RGB")
        return pdq_hash(np.asarray(up))


def working(data: bytes) -> np.ndarray:
    """The screener's working image of ``data`` (``decode.decode_image``, as ``prepare`` does)."""
    return decode_image(data, probe(data[:64]), ImageLimits(), MIN_SIDE).rgb


def pictures(count: int = 5, megapixels: float = 12.0) -> Iterator[tuple[str, bytes]]:
    """(name, JPEG bytes): generated phone photos with their q80 and 0.5x copies, and the test
    photos enlarged to 4032x3024 (or 3024x4032) and to 2x."""
    from edge_screen.bench.inputs import make_inputs

    for name, data in make_inputs(count, megapixels):
        yield name, data
        with Image.open(io.BytesIO(data)) as im:
            rgb = im.convert("RGB")
        yield f"{name} q80", jpeg(rgb, 80)
        yield f"{name} 0.5x", jpeg(rgb.resize((rgb.width // 2, rgb.height // 2), Image.BICUBIC))
    for path in sorted(IMAGES.glob("*.jpg")):
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        size = (4032, 3024) if rgb.width >= rgb.height else (3024, 4032)
        yield f"{path.name} {size[0]}x{size[1]}", jpeg(rgb.resize(size, Image.BICUBIC))
        yield f"{path.name} 2x", jpeg(rgb.resize((rgb.width * 2, rgb.height * 2), Image.BICUBIC))
        # stored turned a quarter, EXIF orientation 6 turns it back: the full decode is upright
        exif = Image.Exif()
        exif[0x0112] = 6
        stored = rgb.resize(size, Image.BICUBIC).transpose(Image.Transpose.ROTATE_90)
        yield f"{path.name} EXIF 6", jpeg(stored, exif=exif.tobytes())


def measure(name: str, data: bytes) -> dict[str, object]:
    full = full_hash(data)
    rgb = working(data)
    t = time.perf_counter()
    ours = pdq_hash(rgb)
    ms = (time.perf_counter() - t) * 1e3
    with Image.open(io.BytesIO(data)) as im:
        size = im.size
    return {
        "name": name, "size": size, "working": (rgb.shape[1], rgb.shape[0]),
        "distance": ours.distance(full), "quality": ours.quality, "full_quality": full.quality,
        "hash_ms": ms,
    }


def main(argv: list[str]) -> int:
    count = int(argv[1]) if len(argv) > 1 else 5
    rows = [measure(name, data) for name, data in pictures(count)]
    print(f"{'picture':34} {'original':>10} {'working':>9} {'dist':>4} {'q':>4} {'q full':>6} "
          f"{'hash ms':>7}")
    for r in rows:
        w, h = r["size"]  # type: ignore[misc]
        ww, wh = r["working"]  # type: ignore[misc]
        print(f"{r['name']:34} {f'{w}x{h}':>10} {f'{ww}x{wh}':>9} {r['distance']:>4} "
              f"{r['quality']:>4} {r['full_quality']:>6} {r['hash_ms']:>7.1f}")
    d = [int(r["distance"]) for r in rows]  # type: ignore[call-overload]
    print(f"max distance {max(d)}, median {statistics.median(d)}, "
          f"over 10: {sum(x > 10 for x in d)} of {len(d)}")
    cost()
    return 0


def _median_ms(fn: object, runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def cost() -> None:
    """What hashing adds: PDQ on working images (a 12 MP photo's, 1080p and 720p video frames')
    against a 12 MP photo's screening, and what a second, full decode would have cost."""
    from edge_screen import Screener
    from edge_screen.bench.inputs import make_inputs

    rng = np.random.default_rng(0)
    print("\nPDQ per working image (median ms):")
    sizes = {"12 MP photo": (1000, 750), "720p/1080p frame": (910, 512), "360p frame": (640, 360)}
    for what, (w, h) in sizes.items():
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        print(f"  {what:16} {w}x{h}: {_median_ms(lambda rgb=rgb: pdq_hash(rgb)):6.1f}")
    _, data = make_inputs(1)[0]

    def full() -> None:
        with Image.open(io.BytesIO(data)) as im:
            pdq_hash(np.asarray(im.convert("RGB")))

    print(f"  a second full decode + PDQ of the 12 MP photo instead: {_median_ms(full, 5):.1f}")
    with Screener() as s:
        s.screen(data)
        report = s.screen(data)
        total = _median_ms(lambda: s.screen(data), 5)
    print(f"  screen() of that 12 MP photo, total: {total:.1f} "
          f"(its report's timing_ms.hash: {report.timing_ms['hash']:.1f})")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
