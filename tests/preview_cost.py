"""What reviewer previews cost: bytes per preview, time per photo, memory for a video.

    python3 -m tests.preview_cost          # the numbers in docs/report.md#previews

Run from the repository root. Photos: the decision-range pictures (tests/data/decision) and a
generated 12 MP phone photo (tests/pdq_fidelity.py's) under a policy that sends everything to
review; a video: a generated 10 s 1080p clip, keyframe every 0.5 s, every frame reviewed (so
no early stop: 20 frames screened), with previews off and on, each in its own process for its
peak RSS.
"""

from __future__ import annotations

import io
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from edge_screen import Policy, Screener, ScreenerOptions
from edge_screen.preview import PreviewKeeper

ROOT = Path(__file__).resolve().parent.parent
DECISION = ROOT / "tests" / "data" / "decision"
REVIEW_ALL = (
    '[child_safety]\nminor = 0.5\nsexual = 0.2\n[[rules]]\nverdict = "review"\n'
    "when = { graphic = 0.0 }\n"
)


def photos() -> None:
    with Screener(ScreenerOptions(threads=2, previews=True)) as s:
        s.screen_with_preview(DECISION / "hold_rocket.png")  # the encoder's first call
        for f in sorted(DECISION.glob("*.*g")):
            r = s.screen_with_preview(f)
            for p in r.previews:
                im = Image.open(io.BytesIO(p.data))
                jpeg = io.BytesIO()
                im.convert("RGB").save(jpeg, "JPEG", quality=70, optimize=True)
                print(f"{f.name:28} {r.report.verdict:6} {p.width}x{p.height} "
                      f"{p.format} {len(p.data)} B (JPEG q70: {len(jpeg.getvalue())} B) "
                      f"faces masked {p.faces_masked}")
    sys.path.insert(0, str(ROOT / "tests"))
    from pdq_fidelity import pictures

    name, data = next(pictures(1, 12.0))
    policy = Policy.from_toml(REVIEW_ALL)
    with Screener(ScreenerOptions(threads=2, previews=True, policy=policy)) as s:
        plain, made, total = [], [], []
        for _ in range(7):
            t = time.perf_counter()
            s.screen(data)
            plain.append((time.perf_counter() - t) * 1e3)
            t = time.perf_counter()
            r = s.screen_with_preview(data)
            total.append((time.perf_counter() - t) * 1e3)
            made.append(r.report.timing_ms["preview"])
        p = r.previews[0]
        print(f"12 MP photo ({name}): screen() {statistics.median(plain):.0f} ms, "
              f"screen_with_preview() {statistics.median(total):.0f} ms, of which the preview "
              f"{statistics.median(made):.1f} ms (median of 7); {p.width}x{p.height} "
              f"{len(p.data)} B")


def video_child(path: str, previews: bool) -> None:
    """Screens the clip in this process; prints the peak RSS and the keeper's peak pixels."""
    peak = [0]
    offer = PreviewKeeper.offer

    def counted(self: PreviewKeeper, *args: object, **kw: object) -> None:
        offer(self, *args, **kw)  # type: ignore[arg-type]
        peak[0] = max(peak[0], self.nbytes)

    PreviewKeeper.offer = counted  # type: ignore[method-assign]
    policy = Policy.from_toml(REVIEW_ALL)
    with Screener(ScreenerOptions(threads=2, previews=previews, policy=policy)) as s:
        if previews:
            r = s.screen_with_preview(path)
            report, n, size = r.report, len(r.previews), sum(len(p.data) for p in r.previews)
        else:
            report, n, size = s.screen(path), 0, 0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"previews": previews, "verdict": report.verdict,
                      "frames": report.media.frames_screened, "rss_mb": round(rss, 1),
                      "keeper_peak_bytes": peak[0], "made": n, "bytes": size,
                      "preview_ms": round(report.timing_ms.get("preview", 0.0), 1),
                      "total_ms": round(report.timing_ms["total"])}))


def video() -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    import av
    from test_video import _encode

    base = np.asarray(Image.open(ROOT / "tests/data/images/coffee.jpg").convert("RGB")
                      .resize((1920, 1080)))
    frames = [np.roll(base, 16 * i, axis=1) for i in range(100)]
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "clip.mp4")
        _encode(path, frames, 1920, 1080, "mp4", codec, 5, None, (False, False), {})
        for on in (False, True):
            out = subprocess.run(
                [sys.executable, "-m", "tests.preview_cost", "--video-child", path, str(on)],
                cwd=ROOT, capture_output=True, text=True, check=True,
            )
            print(out.stdout.strip())


def main(argv: list[str]) -> int:
    if argv[:1] == ["--video-child"]:
        video_child(argv[1], argv[2] == "True")
        return 0
    photos()
    video()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
