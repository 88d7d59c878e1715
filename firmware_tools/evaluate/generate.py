"""``edge-screen-fw eval-corpus``: a corpus made in code to evaluate bundles on, no downloads.

Most items are face composites of the held-out kind (``pipeline.face_scenes``: real faces
pasted into scikit-image scenes; the same generator as the converter's held-out sets, scaled
up); then scenes without faces, the classifiers' synthetic high-score inputs
(``firmware_tools/data/*_synthetic.npz``: optimised noise, not real content), short videos
panning over a composite, and a corrupt file now and then (an evaluation must count those as
unscreenable). JPEG, PNG and WebP. ``labels.jsonl`` says 1 for the signal a synthetic input
was made to score high on and 0 for the scenes: it exercises the labelled metrics, it is no
measure of accuracy on real content. Seeded: the same packages give the same pictures (and a
corpus of n items is the first n of a larger one); the video encoder's bytes may differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ..pipeline import face_scenes
from ..pipeline.composite import SCENES, as_rgb, crop_resize
from ..pipeline.recipe import REPO_ROOT

SYNTHETIC = {"sexual": "open_nsfw", "graphic": "graphic", "drawn_sexual": "nsfwjs"}
SIZES = ((240, 320), (320, 240), (480, 640), (360, 360))  # (height, width)
FORMATS = ("JPEG", "JPEG", "JPEG", "PNG", "JPEG", "WEBP")
EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
VIDEO_EVERY, CORRUPT_EVERY = 50, 250  # one video in 50 items, one corrupt file in 250


def kind(i: int) -> str:
    """What item ``i`` is: the mix is a fixed pattern, so a corpus of n is a prefix of n+1."""
    if i % CORRUPT_EVERY == 12:
        return "corrupt"
    if i % VIDEO_EVERY == VIDEO_EVERY // 2:
        return "video"
    return {3: "scene", 7: "synthetic"}.get(i % 10, "faces")


def _faces(seed: int) -> Iterator[NDArray[np.uint8]]:
    """Face composites in batches (the face patches load once a batch), sizes in turn."""
    batch = 0
    while True:
        size = SIZES[batch % len(SIZES)]
        yield from face_scenes.build("heldout", size, 32, seed * 100_003 + batch)
        batch += 1


def _scenes(seed: int) -> Iterator[NDArray[np.uint8]]:
    import skimage.data

    sources = [as_rgb(getattr(skimage.data, n)()) for n in SCENES["heldout"]]
    rng = np.random.default_rng(seed + 7)
    for i in range(1 << 62):
        size = SIZES[i % len(SIZES)]
        yield np.round(crop_resize(sources[i % len(sources)], size, rng, 0.3)).astype(np.uint8)


def _synthetic() -> Iterator[tuple[str, NDArray[np.uint8]]]:
    sets = [(signal, np.load(REPO_ROOT / "firmware_tools" / "data" / f"{model}_synthetic.npz")
             ["images"]) for signal, model in SYNTHETIC.items()]
    for i in range(1 << 62):
        signal, images = sets[i % len(sets)]
        img = images[(i // len(sets)) % len(images)]
        yield signal, (img[:, ::-1] if (i // (3 * len(images))) % 2 else img)


def video(path: Path, frame: NDArray[np.uint8], seconds: int = 2, fps: int = 8) -> None:
    """A short pan across ``frame`` (H.264 where available, else MPEG-4)."""
    import av

    h, w = (frame.shape[0] // 2) * 2 - 16, (frame.shape[1] // 2) * 2 - 16
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w", format="mp4") as out:
        s = out.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for t in range(seconds * fps):
            crop = np.ascontiguousarray(frame[t % 16 : t % 16 + h, t % 16 : t % 16 + w])
            for packet in s.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)


def generate(out: Path, count: int, seed: int = 0) -> tuple[int, Path]:
    """Write ``count`` items and ``labels.jsonl`` into ``out/items`` and ``out``; returns the
    item count and the items directory (the corpus SPEC)."""
    items = out / "items"
    items.mkdir(parents=True, exist_ok=True)
    faces, scenes, synthetic = _faces(seed), _scenes(seed), _synthetic()
    labels = []
    for i in range(count):
        k = kind(i)
        fmt = FORMATS[i % len(FORMATS)]
        name = f"{i:06d}-{k}"
        if k == "corrupt":  # a JPEG cut short: screenable by nobody
            path = items / f"{name}.jpg"
            buf = Image.fromarray(next(faces))
            buf.save(path, "JPEG", quality=90)
            path.write_bytes(path.read_bytes()[: 400 + i % 300])
        elif k == "video":
            path = items / f"{name}.mp4"
            video(path, next(faces))
        elif k == "synthetic":
            signal, img = next(synthetic)
            path = items / f"{name}-{signal}.png"  # lossless: the optimised pixels as they are
            Image.fromarray(img).save(path)
            labels.append({"key": path.name, **{s: int(s == signal) for s in SYNTHETIC}})
        else:
            img = next(faces) if k == "faces" else next(scenes)
            path = items / f"{name}.{EXT[fmt]}"
            Image.fromarray(img).save(path, fmt, **({"quality": 85 + i % 10}
                                                   if fmt != "PNG" else {}))
            if k == "scene":
                labels.append({"key": path.name, **dict.fromkeys(SYNTHETIC, 0)})
    with open(out / "labels.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(rec) + "\n" for rec in labels)
    return count, items


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edge-screen-fw eval-corpus", description=__doc__)
    p.add_argument("--count", type=int, required=True, help="items to write")
    p.add_argument("--out", type=Path, required=True,
                   help="writes OUT/items/ (the corpus) and OUT/labels.jsonl")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    n, items = generate(args.out, args.count, args.seed)
    print(f"eval-corpus: {n} items in {items}, labels in {args.out / 'labels.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
