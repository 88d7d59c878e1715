"""A phone-like video made in code: 1080p H.264 High, a keyframe a second, ~17 Mbit/s, with
sensor-like noise on every frame so the encoder cannot shrink it to nothing, and a face.

``edge-screen bench`` screens a short one (few frames a second: the pipeline decodes keyframes
only, so the frame rate changes the encoding time, not the screening); ``benchmarks/test_video.py``
a 60 s 30 fps one, and compares it with decoding every frame.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from .inputs import source_dir


@dataclass(frozen=True)
class ClipSpec:
    seconds: int
    fps: int = 30
    width: int = 1920
    height: int = 1080
    bitrate: int = 17_000_000

    @property
    def codec(self) -> str:
        """H.264 where the PyAV wheel can encode it, else MPEG-4 Part 2."""
        return "libx264" if "libx264" in av.codecs_available else "mpeg4"

    @property
    def key(self) -> str:
        """What the file's bytes depend on (for a cache)."""
        return (f"{self.width}x{self.height}@{self.fps}-{self.seconds}s-{self.bitrate}-"
                f"{self.codec}-high-gop{self.fps}-noise6-av{av.__version__}")


def make_clip(path: Path, spec: ClipSpec) -> None:
    """Encode ``spec`` to ``path`` (written to a ``.part`` file first, then renamed)."""
    w, h, fps = spec.width, spec.height, spec.fps
    src = source_dir()
    if src is not None:  # a slow pan over a photo with a portrait in it
        bg = Image.open(src / "coffee.jpg").convert("RGB").resize((w * 3 // 2, h * 3 // 2))
        face = Image.open(src / "astronaut.jpg").convert("RGB").resize((h * 5 // 6,) * 2)
        bg.paste(face, (w * 5 // 8, h * 5 // 18))
    else:  # no photos shipped: stripes, and no face
        yy, xx = np.mgrid[0 : h * 3 // 2, 0 : w * 3 // 2]
        bg = Image.fromarray(((xx * 3 + yy) % 256).astype(np.uint8)).convert("RGB")
    ycc = np.asarray(bg.convert("YCbCr"))
    y, cb, cr = ycc[..., 0], ycc[::2, ::2, 1], ycc[::2, ::2, 2]
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 6, (h + 64, w + 64)).astype(np.int16)  # cropped at a random offset
    tmp = path.with_suffix(".part")
    with av.open(str(tmp), "w", format="mp4") as out:
        s = out.add_stream(spec.codec, rate=fps)
        assert isinstance(s, av.VideoStream)
        s.width, s.height, s.pix_fmt, s.bit_rate = w, h, "yuv420p", spec.bitrate
        s.codec_context.gop_size = fps
        if spec.codec == "libx264":
            s.codec_context.options = {
                "profile": "high",
                "preset": "veryfast",
                "keyint_min": str(fps),
                "sc_threshold": "0",
                "maxrate": f"{spec.bitrate * 20 // 17 // 1_000_000}M",
                "bufsize": f"{spec.bitrate * 2 // 1_000_000}M",
            }
        for i in range(fps * spec.seconds):
            x, t = (i * 15 // fps) % (w // 2), (i * 15 // (2 * fps)) % (h // 2)  # slow pan
            ox, oy = rng.integers(0, 64, 2)
            luma = y[t : t + h, x : x + w] + noise[oy : oy + h, ox : ox + w]
            planes = [
                np.clip(luma, 0, 255).astype(np.uint8),
                cb[t // 2 : t // 2 + h // 2, x // 2 : x // 2 + w // 2].reshape(h // 4, w),
                cr[t // 2 : t // 2 + h // 2, x // 2 : x // 2 + w // 2].reshape(h // 4, w),
            ]
            frame = av.VideoFrame.from_ndarray(np.concatenate(planes), format="yuv420p")
            frame.pts = i
            out.mux(s.encode(frame))
        out.mux(s.encode())
    os.replace(tmp, path)
