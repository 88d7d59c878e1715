"""The soak: ``screen_many`` over a long mix of photos, animations, clips and hostile files in one
process. Every item gets exactly one report, in order, the right one (each item is its own path,
a hard link to one of a few templates, and ``report.path`` names it); memory after a warm-up
stays flat. The short run below is part of the test suite; ``benchmarks/test_soak.py`` runs the
5,000 items (docs/soak.md has its numbers). ``run_soak`` is shared by both, parametrised by the
``ScreenerOptions`` fields to run with, so a new mode (process isolation) is one more dict.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from edge_screen import Screener

pytestmark = pytest.mark.filterwarnings("ignore:::PIL")

DATA = Path(__file__).parent / "data"
# What each kind of template must give: None, a report without error; else the error code.
HOSTILE = {"empty.jpg": "corrupt", "text_named.jpg": "unsupported",
           "bomb_40000x40000.png": "too_large", "wrong_magic.png": "unsupported"}
# Options each soak runs with: the default, one item at a time (next decoded ahead) and process
# isolation (RSS then counts the worker processes too); the short run in the test suite takes the
# default and isolation.
MODES: tuple[Mapping[str, Any], ...] = ({}, {"workers": 1}, {"isolation": "process"})
SHORT_MODES: tuple[Mapping[str, Any], ...] = ({}, {"isolation": "process"})


@dataclass(frozen=True)
class Template:
    name: str
    kind: str  # photo, animation, clip, hostile
    data: bytes
    error: str | None  # the error code it must get, None for a screened report


def _encode(im: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _clip(fmt: str, frames: list[np.ndarray]) -> bytes:
    """Two seconds at 10 fps, a keyframe a second: MPEG-4 Part 2 (in every PyAV wheel)."""
    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        s = out.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.gop_size = 10
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            out.mux(s.encode(frame))
        out.mux(s.encode())
    return buf.getvalue()


def templates() -> list[Template]:
    """A few of each kind, small: committed photos and decision pictures (allow, review, hold),
    animations and clips made from them, the hostile files and a clip cut in half."""
    photos = [DATA / "images" / n for n in ("astronaut.jpg", "chelsea.jpg", "coffee.jpg",
                                            "grace_hopper.jpg")]
    photos += [DATA / "decision" / n for n in ("review_coffee.png", "hold_chelsea.jpg",
                                               "hold_minor_drawn_face.jpg")]
    out = [Template(p.name, "photo", p.read_bytes(), None) for p in photos]
    face = Image.open(DATA / "images" / "astronaut.jpg").convert("RGB").resize((160, 160))
    scene = Image.open(DATA / "images" / "coffee.jpg").convert("RGB").resize((240, 160))
    frames = []
    for i in range(20):
        im = scene.copy()
        if i % 10 >= 5:
            im.paste(face.resize((96, 96)), (72, 32))
        frames.append(np.asarray(im))
    ims = [Image.fromarray(f) for f in frames[::4]]
    out += [
        Template("anim.gif", "animation",
                 _encode(ims[0], "GIF", save_all=True, append_images=ims[1:], duration=200), None),
        Template("anim.webp", "animation",
                 _encode(ims[0], "WEBP", save_all=True, append_images=ims[1:], duration=200,
                         quality=60), None),
        Template("anim.png", "animation",
                 _encode(ims[0], "PNG", save_all=True, append_images=ims[1:], duration=200), None),
    ]
    mp4, mkv = _clip("mp4", frames), _clip("matroska", frames)
    out += [Template("clip.mp4", "clip", mp4, None), Template("clip.mkv", "clip", mkv, None)]
    out += [Template(n, "hostile", (DATA / "hostile" / n).read_bytes(), code)
            for n, code in HOSTILE.items()]
    out.append(Template("cut.mp4", "hostile", mp4[: len(mp4) // 2], "corrupt"))
    return out


# One cycle of 16 items: 7 photos, 3 animations, 2 clips, 4 hostile files (the hostile kinds
# and the rest rotate through their templates as the cycle repeats).
CYCLE = ("photo", "animation", "photo", "hostile", "photo", "clip", "photo", "hostile",
         "photo", "animation", "photo", "hostile", "photo", "clip", "animation", "hostile")


def lay_out(folder: Path, n: int) -> list[tuple[str, Template]]:
    """``n`` items as paths in ``folder``, each a hard link (or a copy where links fail) to its
    template, named by its position: the report's path says which item it is."""
    pool = templates()
    by_kind = {k: [t for t in pool if t.kind == k] for k in set(CYCLE)}
    seen = dict.fromkeys(by_kind, 0)
    (folder / "t").mkdir()
    items = []
    for i in range(n):
        kind = CYCLE[i % len(CYCLE)]
        t = by_kind[kind][seen[kind] % len(by_kind[kind])]
        seen[kind] += 1
        src = folder / "t" / t.name
        if not src.exists():
            src.write_bytes(t.data)
        path = folder / f"{i:05d}-{t.name}"
        try:
            os.link(src, path)
        except OSError:
            path.write_bytes(t.data)
        items.append((str(path), t))
    return items


def rss_mb() -> float:
    """Resident memory of this process and every process below it (worker processes, when
    screening is isolated), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [os.getpid()]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += pages * os.sysconf("SC_PAGE_SIZE")
    return total / 2**20


@dataclass(frozen=True)
class Soak:
    """What a soak saw: RSS (MB) sampled every ``every`` items, and how it moved after warm-up."""

    items: int
    every: int
    warmup: int  # items before the first sample that counts
    samples: tuple[float, ...]  # RSS after 0, every, 2 * every, ... items

    @property
    def after_warmup(self) -> tuple[float, ...]:
        return self.samples[self.warmup // self.every :]

    @property
    def spread_mb(self) -> float:
        """max - min of RSS after warm-up."""
        return max(self.after_warmup) - min(self.after_warmup)

    @property
    def growth_mb(self) -> float:
        """The highest RSS after warm-up over the highest before it ended: peak growth."""
        return max(self.after_warmup) - max(self.samples[: self.warmup // self.every + 1])

    @property
    def slope_mb_per_1000(self) -> float:
        """Least-squares slope of RSS over the second half of the run, MB per 1,000 items."""
        half = self.samples[len(self.samples) // 2 :]
        x = np.arange(len(half)) * self.every
        return float(np.polyfit(x, half, 1)[0] * 1000) if len(half) > 1 else 0.0

    def summary(self) -> dict[str, float]:
        return {"items": self.items, "rss_start_mb": round(self.samples[0], 1),
                "rss_after_warmup_mb": round(self.after_warmup[0], 1),
                "rss_end_mb": round(self.samples[-1], 1), "rss_max_mb": round(max(self.samples), 1),
                "spread_after_warmup_mb": round(self.spread_mb, 1),
                "peak_growth_after_warmup_mb": round(self.growth_mb, 1),
                "slope_second_half_mb_per_1000": round(self.slope_mb_per_1000, 2)}


def run_soak(options: Mapping[str, Any], n: int, every: int, warmup: int) -> Soak:
    """Screen ``n`` mixed items with ``Screener(**options).screen_many`` and check every report
    against its item as it comes; RSS sampled every ``every`` items."""
    with tempfile.TemporaryDirectory(prefix="edge-screen-soak-") as tmp:
        items = lay_out(Path(tmp), n)
        samples = [rss_mb()]
        count = 0
        with Screener(**options) as screener:
            for count, report in enumerate(screener.screen_many(p for p, _ in items), 1):
                path, t = items[count - 1]
                assert report.path == path, f"report {count} is {report.path}, expected {path}"
                code = None if report.error is None else report.error.code
                assert code == t.error, (path, report.error)
                assert report.verdict == "hold" if t.error else report.media.frames_screened >= 1
                if count % every == 0:
                    samples.append(rss_mb())
        assert count == n, f"{count} reports for {n} items"
    return Soak(n, every, warmup, tuple(samples))


def mode_id(options: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in options.items()) or "default"


@pytest.mark.parametrize("options", SHORT_MODES, ids=mode_id)
def test_a_short_soak_gives_every_item_one_report_in_order(options: Mapping[str, Any]) -> None:
    """200 items (the benchmark runs 5,000): one report each, its own, in order; a loose memory
    bound only (RSS after 200 items says little about a leak, see docs/soak.md)."""
    soak = run_soak(options, n=200, every=25, warmup=50)
    print(soak.summary())
    assert soak.growth_mb < 50, soak.summary()  # measured: 5 MB
