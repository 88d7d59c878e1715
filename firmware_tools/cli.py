"""``edge-screen-fw``: the model team's tooling, one subcommand per step or study.

Pipeline steps share a work directory (``--work``); ``build-default`` runs them all in a fresh
one and writes ``models/default/``. Failures exit non-zero with the step's message.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path

from edge_screen.errors import EdgeScreenError

from .pipeline import venv
from .pipeline.recipe import DEFAULT_OUT, SYNTHETIC_FILE, Work


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
    from .device.emulate import install_host_tools

    try:  # qemu-user-static and mmdebstrap, for the emulated Pi tests (tests/test_platforms.py)
        print(f"setup: {install_host_tools()}")
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"setup: emulation tools: {exc}", file=sys.stderr)


def cmd_fetch(args: argparse.Namespace) -> None:
    from .pipeline.fetch import fetch

    fetch(_work(args))


def cmd_convert(args: argparse.Namespace) -> None:
    from .pipeline.convert import convert

    convert(_work(args), only=args.model or ())


def cmd_validate(args: argparse.Namespace) -> None:
    from .pipeline.validate import validate

    validate(_work(args), latency=args.latency, runs=args.runs)


def cmd_bundle(args: argparse.Namespace) -> None:
    from .pipeline.bundle import bundle

    bundle(_work(args), Path(args.out), all_variants=args.all_variants,
           expires_days=args.expires_days)


def cmd_keygen(args: argparse.Namespace) -> None:
    from .pipeline.sign import keygen

    private, public = keygen(Path(args.out))
    print(f"keygen: private key {private} (keep it off devices and out of git), "
          f"public key {public}")


def cmd_sign(args: argparse.Namespace) -> None:
    from .pipeline.sign import sign

    path = sign(Path(args.bundle), Path(args.key).read_bytes())
    print(f"sign: {path}")


def cmd_verify(args: argparse.Namespace) -> None:
    from .pipeline.sign import verify

    m = verify(Path(args.bundle), [Path(k).read_bytes() for k in args.trust])
    print(f"verify: {args.bundle}: bundle {m.bundle_version}, {len(m.files())} files, "
          "signature and every file match")


def cmd_synth(args: argparse.Namespace) -> None:
    from .studies.synth import synth

    synth(_work(args), Path(args.out) if args.out else None, args.count, args.model)


def cmd_build_default(args: argparse.Namespace) -> None:
    from .pipeline.bundle import bundle
    from .pipeline.convert import convert
    from .pipeline.fetch import fetch
    from .pipeline.validate import validate

    with tempfile.TemporaryDirectory(prefix="edge-screen-fw-") as tmp:
        work = Work(Path(args.work) if args.work else Path(tmp))
        print(f"build-default: work directory {work.root}", flush=True)
        fetch(work)
        convert(work)
        validate(work, latency=True, runs=args.runs)
        bundle(work, Path(args.out), all_variants=args.all_variants,
               expires_days=args.expires_days)


ALL_VARIANTS = ("write every variant the recipe builds, not only those some platform prefers "
                "(the device bundle); load it with --bundle DIR")

EXPIRES = "devices refuse to install the bundle this many days after it is built"
# ``edge-screen-fw study NAME ARGS...`` = ``python -m firmware_tools.studies.<module> ARGS...``.
STUDIES = {
    "face-recall": ("face_recall", "face recall by face size: one pass, short-range, tiles"),
    "age-floor": ("age_floor", "the smallest face worth an age, and age across photo sizes"),
    "age-sensitivity": ("age_sensitivity", "how far the age moves with a pixel of chip shift"),
    "calibrate-alignment": ("calibrate_alignment",
                            "fit the detector-to-landmark box map (data/age_alignment.json)"),
}
# Every subcommand, in the group --help lists it under (the layout of firmware_tools/).
GROUPS: dict[str, dict[str, str]] = {
    "setup": {
        "setup": "make the converter and tflite-runtime venvs (pinned)",
    },
    "pipeline steps (firmware_tools.pipeline; firmware_tools.jobs run in the converter venv)": {
        "fetch": "download the locked source wheels and check their sha256",
        "convert": "convert sources to TFLite variants (in the converter venv)",
        "validate": "measure every variant against its float original",
        "bundle": "write the bundle (manifest, variants, notices, model card)",
        "build-default": "fetch, convert, validate and bundle",
        "remeasure": "re-validate the shipped variants against their float originals and "
        "rewrite the manifest's fidelity, preferences and model card",
    },
    "evaluation (firmware_tools.evaluate; pip install '.[eval]')": {
        "evaluate": "a candidate bundle against a baseline on a corpus, locally or on Ray: "
        "agreement, accuracy against labels, a report",
        "eval-corpus": "generate a corpus of photos, videos and corrupt files to evaluate on",
    },
    "signing (OpenSSF model-signing; devices install with edge-screen bundle install)": {
        "keygen": "make an EC P-256 signing key pair (PEM)",
        "sign": "sign a bundle in place, after checking its files and validation numbers",
        "verify": "check a bundle's signature and every file, as a device does",
        "hashlist": "build a PDQ hash list of known content from hex lines or pictures; "
        "--bundle lists it in that bundle's manifest (sign it again)",
    },
    "devices (firmware_tools.device)": {
        "emulate": "run edge-screen or python3 on an emulated Pi userland (--arch aarch64|armv7l)",
        "wheelhouse": "every wheel an offline Pi needs, for pip install --no-index --find-links",
    },
    "studies and test data (firmware_tools.studies)": {
        "synth": "regenerate a classifier's synthetic high-score inputs (open_nsfw, graphic, "
        "nsfwjs)",
        "decision": "make or measure the decision-range test photos",
        "study": "run a study (python -m firmware_tools.studies.<module>): "
        + ", ".join(STUDIES),
    },
}
DESCRIPTION = ("The model team's tooling: rebuild the default model bundle from pinned public\n"
               "packages; the studies and test data behind its choices.")
HELP = {name: text for group in GROUPS.values() for name, text in group.items()}
# Commands with their own options, handed over as they are (see each one's --help).
DELEGATED = ("remeasure", "decision", "study", "emulate", "wheelhouse", "hashlist", "evaluate",
             "eval-corpus")


def _epilog() -> str:
    """The commands by group, each help wrapped under its own column."""
    width = max(map(len, HELP)) + 4
    lines = []
    for title, commands in GROUPS.items():
        lines += ["", f"{title}:"]
        for name, text in commands.items():
            lines += textwrap.wrap(f"  {name:<{width - 2}}{text}", 95, break_on_hyphens=False,
                                   subsequent_indent=" " * width)
    return "\n".join(lines[1:])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-screen-fw", usage="%(prog)s [-h] COMMAND [ARGS...]",
                                description=DESCRIPTION,
                                epilog=_epilog(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    # No per-command help here: the epilog lists the commands by group instead.
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           help=argparse.SUPPRESS)

    def step(name: str, func: object, work: bool = True) -> argparse.ArgumentParser:
        s = sub.add_parser(name, description=HELP[name])
        s.set_defaults(func=func)
        if work:
            s.add_argument("--work", required=True, help="work directory shared by the steps")
        return s

    s = step("setup", cmd_setup, work=False)
    s.add_argument("--venv", help=f"where (default: ${venv.ENV_VAR} or ~/.cache/edge-screen-fw)")
    step("fetch", cmd_fetch)
    s = step("convert", cmd_convert)
    s.add_argument("--model", action="append", help="only this model id (repeatable)")
    s = step("validate", cmd_validate)
    s.add_argument("--latency", action="store_true", help="also measure latency per variant")
    s.add_argument("--runs", type=int, default=30, help="timed invokes per variant")
    s = step("bundle", cmd_bundle)
    s.add_argument("--out", default=str(DEFAULT_OUT))
    s.add_argument("--all-variants", action="store_true", help=ALL_VARIANTS)
    s.add_argument("--expires-days", type=int, help=EXPIRES)
    s = step("keygen", cmd_keygen, work=False)
    s.add_argument("--out", required=True, help="directory for the two PEM files")
    s = step("sign", cmd_sign, work=False)
    s.add_argument("bundle", metavar="BUNDLE_DIR")
    s.add_argument("--key", required=True, metavar="PRIVATE_KEY")
    s = step("verify", cmd_verify, work=False)
    s.add_argument("bundle", metavar="BUNDLE_DIR")
    s.add_argument("--trust", action="append", required=True, metavar="PUBLIC_KEY",
                   help="a trusted public key (repeatable)")
    s = step("synth", cmd_synth)
    s.add_argument("--model", default="open_nsfw",
                   help="the classifier (open_nsfw, graphic, nsfwjs; needs convert --model first)")
    s.add_argument("--out", help=f"default: the recipe's validation.synthetic file "
                   f"({SYNTHETIC_FILE.name} for open_nsfw)")
    s.add_argument("--count", type=int, help="start images (default: the recipe's, 24)")
    for name in DELEGATED:
        s = sub.add_parser(name, description=HELP[name], add_help=False)
        s.add_argument("rest", nargs=argparse.REMAINDER)
    s = step("build-default", cmd_build_default, work=False)
    s.add_argument("--work", help="keep intermediate files here (default: a temp directory)")
    s.add_argument("--out", default=str(DEFAULT_OUT))
    s.add_argument("--runs", type=int, default=30)
    s.add_argument("--all-variants", action="store_true", help=ALL_VARIANTS)
    s.add_argument("--expires-days", type=int, help=EXPIRES)
    return p


def study(argv: list[str]) -> int:
    """``study NAME ARGS...``: the study module's own ``main(ARGS)``."""
    if argv[:1] in ([], ["-h"], ["--help"]):
        width = max(map(len, STUDIES)) + 2
        print("usage: edge-screen-fw study NAME [ARGS...]  (NAME --help: its own options)\n",
              "studies:", *(f"  {n:<{width}}{text}" for n, (_, text) in STUDIES.items()),
              sep="\n")
        return 0 if argv else 2
    if argv[0] not in STUDIES:
        print(f"edge-screen-fw study: error: unknown study {argv[0]!r} (one of: "
              f"{', '.join(STUDIES)})", file=sys.stderr)
        return 2
    module = importlib.import_module(f"{__package__}.studies.{STUDIES[argv[0]][0]}")
    return int(module.main(argv[1:]))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["remeasure"]:
        from .pipeline.bundle import main as remeasure

        return remeasure(["--remeasure", *argv[1:]])
    if argv[:1] == ["decision"]:
        from .studies.decision import main as decision

        decision(argv[1:])
        return 0
    if argv[:1] == ["study"]:
        return study(argv[1:])
    if argv[:1] == ["hashlist"]:
        from .pipeline.hashlist import main as hashlist

        return hashlist(argv[1:])
    if argv[:1] == ["evaluate"]:
        from .evaluate.cli import main as evaluate

        return evaluate(argv[1:])
    if argv[:1] == ["eval-corpus"]:
        from .evaluate.generate import main as eval_corpus

        return eval_corpus(argv[1:])
    if argv[:1] == ["emulate"]:
        from .device.emulate import main as emulate

        return emulate(argv[1:])
    if argv[:1] == ["wheelhouse"]:
        from .device.wheelhouse import main as wheelhouse

        return wheelhouse(argv[1:])
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except (RuntimeError, OSError, KeyError, EdgeScreenError) as exc:
        print(f"edge-screen-fw {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
