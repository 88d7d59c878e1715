"""``edge-screen scan``: screen files and folders from the shell, as a table or JSON lines.

``edge-screen bench`` runs the device benchmark (``edge_screen.bench``); ``edge-screen bundle``
verifies, installs and rolls back signed bundles (``edge_screen.bundle_cli``).

Exit status: 0 every input screened; 1 some input could not be screened (its line is still
printed); 2 usage error; 3 with ``--fail-on`` when any verdict reaches that level.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from .errors import EdgeScreenError
from .face_stage import STRATEGIES
from .options import ISOLATION
from .policy import VERDICTS
from .preview import ReportWithPreviews
from .report import ScreeningReport
from .screener import Screener, ScreenerOptions


def _walk(paths: Sequence[str]) -> Iterator[str]:
    """Files as given; directories recursively, in sorted order, without following links."""
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    yield os.path.join(root, name)
        else:
            yield p


def _row(r: ScreeningReport) -> str:
    if r.error is not None:
        detail = f"error {r.error.code}: {r.error.message}"
    else:
        s = r.signals
        parts = [f"{k}={'-' if v is None else f'{v:.2f}'}" for k, v in s.items()]
        ages = ",".join(f"{f.age:.0f}" for f in r.faces if f.age is not None)
        parts.append(f"faces={len(r.faces)}" + (f" ages={ages}" if ages else ""))
        m = r.media
        if m.kind in ("video", "animation", "stream"):
            length = "" if m.duration_s is None else f"{m.duration_s:.1f}s "
            parts.append(f"{m.kind} {length}frames={m.frames_screened}/{m.frames_decoded}")
            worst = m.worst_ms.get("sexual")
            if worst is not None:
                parts.append(f"worst@{worst / 1e3:.1f}s")
        detail = " ".join(parts)
    return f"{r.verdict:<6}  {r.path}  {detail}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-screen", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("bench", help="device benchmark report (edge-screen bench --help)")
    sub.add_parser("bundle", help="signed bundles: verify, install, rollback, status")
    scan = sub.add_parser("scan", help="screen photos and videos (files or folders)")
    scan.add_argument("paths", nargs="+", metavar="PATH")
    scan.add_argument("--json", action="store_true", help="one JSON report per input per line")
    scan.add_argument("--bundle", metavar="DIR", help="model bundle (default: the shipped one)")
    scan.add_argument("--store", metavar="STORE", help="the active bundle of a device store")
    scan.add_argument("--trust", action="append", default=[], metavar="PUBLIC_KEY",
                      help="the bundle must be signed by this key (repeatable; needed by --store)")
    scan.add_argument("--policy", metavar="FILE", help="policy TOML (default: the shipped one)")
    scan.add_argument("--threads", type=int, metavar="N", help="interpreter threads per model")
    scan.add_argument("--workers", type=int, metavar="N", help="inputs screened at once")
    scan.add_argument("--backend", default="auto", choices=["auto", "litert", "tflite-runtime"])
    scan.add_argument("--faces", default="auto", choices=["auto", *STRATEGIES],
                      help="how faces are found (default: the bundle's best; docs/performance.md)")
    scan.add_argument("--isolation", default="none", choices=list(ISOLATION),
                      help="process: screen each input in a worker process, so a crash or "
                      "hang costs that input's report only (README#isolation)")
    scan.add_argument("--fail-on", choices=VERDICTS[1:], help="exit 3 if any verdict reaches this")
    scan.add_argument("--preview", metavar="DIR",
                      help="write reviewer previews (pixelated, minors' faces blocked out) of "
                      "inputs reaching the policy's [preview] when into DIR")
    return parser


def _write_previews(out: Path, item: ReportWithPreviews, used: set[str]) -> None:
    """Each preview as ``<item name>[.<ms>ms|.p<page>].preview.<ext>`` in ``out``; a name
    already written by this scan (two inputs of one name in different folders) gets ``~2``,
    ``~3``... after the item's name, so no preview overwrites another."""
    name = Path(item.report.path).name or "input"
    for n in range(1, len(used) + 2):
        stem = name if n == 1 else f"{name}~{n}"
        files = [stem + p.suffix for p in item.previews]
        if not used.intersection(files):
            break
    for p, file in zip(item.previews, files, strict=True):
        (out / file).write_bytes(p.data)
        used.add(file)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        # The device benchmark has its own options; imported lazily to keep scan's start-up.
        from .bench import run

        return run(argv[1:])
    if argv[:1] == ["bundle"]:
        from .bundle_cli import main as bundle_main

        return bundle_main(argv[1:])
    args = _parser().parse_args(argv)
    # The shell user reads verdicts, not Pillow's remarks on a hostile file (corrupt EXIF, a
    # huge header): those are in the report's error. The library itself leaves filters alone.
    warnings.filterwarnings("ignore", module=r"PIL\.")
    kwargs: dict[str, object] = {
        "bundle": args.bundle,
        "store": args.store,
        "trusted_keys": tuple(args.trust),
        "policy": args.policy,
        "backend": args.backend,
        "faces": args.faces,
        "previews": args.preview is not None,
        "isolation": args.isolation,
    }
    for name in ("threads", "workers"):
        value = getattr(args, name)
        if value is not None:
            if value < 1:
                print(f"edge-screen: --{name} must be at least 1", file=sys.stderr)
                return 2
            kwargs[name] = value
    try:
        screener = Screener(ScreenerOptions(**kwargs))  # type: ignore[arg-type]
    except (EdgeScreenError, ValueError, TypeError) as exc:
        print(f"edge-screen: {exc}", file=sys.stderr)
        return 2
    for reason in screener.unused_rules:
        print(f"edge-screen: note: no model feeds the policy rule {reason!r}", file=sys.stderr)
    files = list(_walk(args.paths))
    out = Path(args.preview) if args.preview is not None else None
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"edge-screen: --preview {out}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    progress = sys.stderr.isatty()
    failed = flagged = False
    used: set[str] = set()
    with screener:
        results: Iterator[ScreeningReport | ReportWithPreviews] = (
            screener.screen_many(files) if out is None
            else screener.screen_many_with_previews(files)
        )
        for i, result in enumerate(results, 1):
            if isinstance(result, ReportWithPreviews):
                assert out is not None
                _write_previews(out, result, used)
                report = result.report
            else:
                report = result
            if progress:
                print(
                    f"\r[{i}/{len(files)}] {Path(report.path).name[:50]:<50}",
                    end="",
                    file=sys.stderr,
                )
            line = report.to_json(include_path=True) if args.json else _row(report)
            if progress:
                print("\r\033[K", end="", file=sys.stderr)
            print(line, flush=True)
            failed |= not report.ok
            if args.fail_on and VERDICTS.index(report.verdict) >= VERDICTS.index(args.fail_on):
                flagged = True
    if failed:
        return 1
    return 3 if flagged else 0


if __name__ == "__main__":
    raise SystemExit(main())
