"""Write the committed seed corpus (tests/fuzz/corpus/<harness>/), reproducibly:

    python3 tests/fuzz/make_corpus.py

Media seeds are tiny pictures and clips made from the committed test photos (public domain) or
drawn here, one per format and feature the decoders branch on, plus the small hostile files of
tests/data/hostile; the policy and manifest seeds are the shipped ones and variations of them;
report seeds are fixed bytes. Each file is a few KB at most: the fuzzer mutates them, so small
seeds mean fast executions. Nothing here is sexual or violent imagery.
"""

from __future__ import annotations

import io
import json
import random
import shutil
from pathlib import Path

import av
import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DATA = ROOT / "tests" / "data"
MAX_SEED = 16 * 1024


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _face(size: tuple[int, int]) -> Image.Image:
    return Image.open(DATA / "images" / "astronaut.jpg").convert("RGB").resize(size)


def _clip(fmt: str, codec: str, n: int = 4, size: tuple[int, int] = (48, 32)) -> bytes:
    """``n`` frames of a face fading in, a keyframe every other frame."""
    base = np.asarray(_face(size))
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        s = out.add_stream(codec, rate=10)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        s.codec_context.gop_size = 2
        for i in range(n):
            frame = av.VideoFrame.from_ndarray((base * ((i + 1) / n)).astype(np.uint8), "rgb24")
            frame.pts = i
            out.mux(s.encode(frame))
        out.mux(s.encode())
    return buf.getvalue()


def media_seeds() -> dict[str, bytes]:
    face = _face((40, 30))
    exif = face.getexif()
    exif[0x0112] = 6  # rotated: the orientation path
    frames = [face, face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), face.rotate(90)]
    grey = Image.new("RGB", (24, 16), (90, 90, 90))
    rgba = face.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(face.size))
    seeds = {
        "photo.jpg": _encode(face, "JPEG", quality=70),
        "progressive_exif.jpg": _encode(face, "JPEG", progressive=True, exif=exif, quality=60),
        "cmyk.jpg": _encode(face.convert("CMYK"), "JPEG", quality=60),
        "photo.png": _encode(face, "PNG"),
        "alpha.png": _encode(rgba, "PNG"),
        "grey16.png": _encode(face.convert("I;16"), "PNG"),
        "palette.gif": _encode(face.convert("P"), "GIF"),
        "photo.webp": _encode(face, "WEBP", quality=50),
        "photo.bmp": _encode(grey, "BMP"),
        "two_pages.tif": _encode(grey, "TIFF", save_all=True, append_images=[face]),
        "two_pictures.mpo": _encode(grey, "MPO", save_all=True, append_images=[face]),
        "animation.gif": _encode(frames[0], "GIF", save_all=True, append_images=frames[1:],
                                 duration=100, loop=0),
        "animation.webp": _encode(frames[0], "WEBP", save_all=True, append_images=frames[1:],
                                  duration=100, quality=40),
        "animation.png": _encode(frames[0], "PNG", save_all=True, append_images=frames[1:],
                                 duration=100),
        "clip.mkv": _clip("matroska", "mpeg4"),
        "clip.mp4": _clip("mp4", "mpeg4"),
        "clip.avi": _clip("avi", "mpeg4"),
    }
    if "libx264" in av.codecs_available:
        seeds["clip_h264.mp4"] = _clip("mp4", "libx264")
    for name in ("bomb_40000x40000.png", "empty.jpg", "text_named.jpg"):
        seeds[f"hostile_{name}"] = (DATA / "hostile" / name).read_bytes()
    seeds["hostile_truncated.jpg"] = seeds["photo.jpg"][: len(seeds["photo.jpg"]) // 3]
    return seeds


def policy_seeds() -> dict[str, bytes]:
    shipped = (ROOT / "edge_screen" / "default_policy.toml").read_bytes()
    strict = b"""unscreenable = "review"
[child_safety]
minor = 0.3
sexual = 0.1
graphic = 0.2
screen_without = ["sexual"]
[known_match]
video_share = 0.5
[[rules]]
verdict = "hold"
when = { sexual = 0.5, graphic = 0.5 }
[preview]
mode = "blur"
strength = 12.5
size = 64
when = "hold"
faces = "all"
"""
    smallest = b'[child_safety]\nminor = 0.5\nsexual = 0.2\n'
    return {"default.toml": shipped, "strict.toml": strict, "smallest.toml": smallest}


def manifest_seeds() -> dict[str, bytes]:
    shipped = json.loads((ROOT / "models" / "default" / "manifest.json").read_bytes())
    compact = json.dumps(shipped, separators=(",", ":")).encode()
    one_model = dict(shipped, models=shipped["models"][:1], notices=[], hash_lists=[])
    one_model.pop("self_test", None)
    one_model.pop("card", None)
    with_list = dict(one_model, hash_lists=[{
        "id": "known", "file": "known.pdq", "sha256": "0" * 64, "size": 64, "count": 2,
        "label": "known test content", "format": "pdq256"}])
    return {
        "default.json": compact,
        "one_model.json": json.dumps(one_model, separators=(",", ":")).encode(),
        "hash_list.json": json.dumps(with_list, separators=(",", ":")).encode(),
    }


def report_seeds() -> dict[str, bytes]:
    rng = random.Random(16)
    seeds = {"zeros.bin": bytes(64)}
    for i in range(4):
        seeds[f"random{i}.bin"] = rng.randbytes(512)
    return seeds


def main() -> None:
    media = media_seeds()
    made = {"screen": media, "policy": policy_seeds(), "manifest": manifest_seeds(),
            "report": report_seeds()}
    for harness, seeds in made.items():
        out = HERE / "corpus" / harness
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        for name, data in seeds.items():
            assert len(data) <= 24 * 1024, (harness, name, len(data))
            (out / name).write_bytes(data)
        print(harness, len(seeds), "seeds,", sum(map(len, seeds.values())), "bytes")
    shared = HERE / "corpus" / "prepare"  # the same media: a link, not a second copy
    if not shared.is_symlink():
        shared.symlink_to("screen")


if __name__ == "__main__":
    main()
