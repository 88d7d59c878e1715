"""What a run measures and with which screener: the command line, the sampling plan, and the
options the cold-start child is given so it screens exactly as the parent does."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

from ..face_stage import STRATEGIES
from ..screener import ScreenerOptions

# The first line of the package docstring: ``--help``'s description.
SUMMARY = (
    "``edge-screen bench``: a device report QA can compare across devices, versions and bundles."
)


@dataclass(frozen=True)
class Plan:
    """How much to measure; --quick trades samples for a run under a minute."""

    images: int = 5
    megapixels: float = 12.0
    reps: int = 40  # samples per stage (fewer when ``budget_s`` runs out)
    budget_s: float = 4.0
    rounds: int = 8  # passes over the image set, end to end
    peer_rounds: int = 2
    rss_images: int = 200
    cold_runs: int = 3
    video_seconds: int = 60  # the generated 1080p clip (a keyframe a second)
    video_rounds: int = 3


QUICK = Plan(images=3, reps=12, budget_s=1.0, rounds=4, peer_rounds=1, rss_images=20, cold_runs=1,
             video_seconds=5, video_rounds=1)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-screen bench", description=SUMMARY)
    p.add_argument("--quick", action="store_true", help="fewer samples: under a minute")
    p.add_argument("--json", metavar="FILE", help="write the full report as JSON")
    p.add_argument("--compare", metavar="BASELINE", help="flag regressions against a --json file")
    p.add_argument("--threshold", type=float, default=0.1,
                   help="smallest relative change --compare reports (default 0.1)")
    p.add_argument("--bundle", metavar="DIR", help="model bundle (default: the shipped one)")
    p.add_argument("--backend", default="auto", choices=["auto", "litert", "tflite-runtime"])
    p.add_argument("--threads", type=int, metavar="N", help="interpreter threads per model")
    p.add_argument("--workers", type=int, metavar="N",
                   help="photos screen_many screens at once (default: min(2, cores))")
    p.add_argument("--variant", action="append", default=[], metavar="MODEL=VARIANT",
                   help="use this variant of a model (repeatable)")
    p.add_argument("--images", type=int, metavar="N", help="generated photos (default 5, quick 3)")
    p.add_argument("--megapixels", type=float, metavar="MP", help="their size (default 12)")
    p.add_argument("--no-peers", action="store_true", help="skip the reference pipelines")
    p.add_argument("--no-video", action="store_true", help="skip the video clip")
    p.add_argument("--min-face", type=float, metavar="F",
                   help="smallest face looked for, fraction of the short side (default "
                        f"{ScreenerOptions.min_face}; 0: one detector pass, no tiles)")
    p.add_argument("--faces", choices=["auto", *STRATEGIES], default="auto",
                   help="face strategy of the main measurement (default: the bundle's best); "
                        "every strategy the bundle has is also measured side by side")
    p.add_argument("--no-strategies", action="store_true",
                   help="skip the side-by-side face strategy measurement")
    p.add_argument("--no-hashlist", action="store_true",
                   help="skip hashing off against a 1M-entry hash list, side by side")
    p.add_argument("--no-isolation", action="store_true",
                   help="skip the in-process against worker-process (isolation) measurement")
    p.add_argument("--child-dir", help=argparse.SUPPRESS)
    p.add_argument("--child-count", type=int, default=0, help=argparse.SUPPRESS)
    return p


def screener_options(args: argparse.Namespace) -> ScreenerOptions:
    variants = dict(v.split("=", 1) for v in args.variant)
    opts = ScreenerOptions(bundle=args.bundle, backend=args.backend, variants=variants,
                           faces=args.faces)
    opts = replace(opts, min_face=args.min_face) if args.min_face is not None else opts
    opts = replace(opts, workers=args.workers) if args.workers is not None else opts
    return replace(opts, threads=args.threads) if args.threads is not None else opts


def forward_args(args: argparse.Namespace) -> list[str]:
    """The options that shape the screener, for the cold-start child process."""
    out = ["--backend", args.backend, *(f"--variant={v}" for v in args.variant)]
    out += ["--faces", args.faces]
    out += ["--bundle", args.bundle] if args.bundle else []
    out += ["--min-face", str(args.min_face)] if args.min_face is not None else []
    out += ["--workers", str(args.workers)] if args.workers is not None else []
    return out + (["--threads", str(args.threads)] if args.threads is not None else [])
