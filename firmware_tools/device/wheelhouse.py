"""``edge-screen-fw wheelhouse --arch aarch64|armv7l --out DIR``: every wheel a Pi needs, for an
install without network: ``pip install --no-index --find-links DIR edge-screen``.

The wheels are the ones ``emulate`` puts in its userland (the same target definitions), for
CPython 3.11 as on Raspberry Pi OS bookworm, plus edge-screen itself built from the working
tree. On armv7l numpy and Pillow are not on PyPI for this platform: install Debian's first
(``apt install python3-numpy python3-pil``) and make the venv with ``--system-site-packages``;
the wheelhouse has the rest.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ..pipeline.recipe import REPO_ROOT
from .emulate import PYTHON, TARGETS


def wheelhouse(arch: str, out: Path) -> list[Path]:
    """Download the target's wheels into ``out`` and build edge-screen's; returns them all."""
    t = TARGETS[arch]
    out.mkdir(parents=True, exist_ok=True)
    tags = [arg for p in t.platforms for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                    "--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON,
                    *tags, *([] if t.resolve else ["--no-deps"]), "-d", str(out), *t.wheels],
                   check=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "--disable-pip-version-check", "-w", str(out),
                    str(REPO_ROOT)], check=True, stdout=subprocess.DEVNULL)
    return sorted(out.glob("*.whl"))


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="edge-screen-fw wheelhouse",
                                description=__doc__.splitlines()[0])
    p.add_argument("--arch", required=True, choices=sorted(TARGETS))
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    try:
        wheels = wheelhouse(args.arch, args.out)
    except subprocess.CalledProcessError as exc:
        print(f"edge-screen-fw wheelhouse: error: {exc}", file=sys.stderr)
        return 1
    print(f"wheelhouse: {len(wheels)} wheels in {args.out} for {args.arch}; on the device: "
          f"pip install --no-index --find-links {args.out} edge-screen")
    return 0
