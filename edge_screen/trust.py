"""Is this bundle one we may load? The verification core, without I/O (python-tuf keeps its
``trusted_metadata_set`` the same way): the signature's bytes, the manifest's bytes, what the
caller found in the directory and the trusted keys go in; a verified ``Manifest`` or a named
error comes out. Reading files, limits on what is read, and the atomic install live in
``store.py``.

Order matters: nothing in the manifest is believed before the signature over it is checked, and
every file is compared with what was signed before any model is loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .errors import (
    ExpiredBundle,
    HashMismatch,
    IncompatibleRuntime,
    RollbackRefused,
    SignatureError,
)
from .manifest import Manifest, manifest_from_bytes
from .oms import open_signature
from .release import parse_time, version_key

MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class FileDigest:
    size: int
    sha256: str


@dataclass(frozen=True)
class Expectations:
    """What the device requires of a bundle besides a valid signature."""

    runtime_version: str  # edge_screen.__version__
    now: datetime | None  # aware, UTC; None: no expiry check (a bundle already installed)
    installed_version: str | None = None  # the active bundle's, for the rollback check
    allow_older: bool = False  # an operator's forced rollback (the store logs the reason)


def verify_bundle(
    signature: bytes,
    manifest: bytes,
    present: Mapping[str, FileDigest],
    trusted: Sequence[bytes],
    expect: Expectations,
) -> Manifest:
    """The bundle's manifest, once the signature, every file and the release fields pass.

    ``present`` is every regular file of the directory except the signature itself, with its
    size and sha256, as the caller read it; ``manifest`` is the bytes of ``manifest.json`` the
    caller will parse (they must be the signed bytes)."""
    signed = open_signature(signature, trusted).digests
    problems = _differences(signed, {n: d.sha256 for n, d in present.items()})
    if problems:
        raise HashMismatch(f"bundle files do not match the signature: {'; '.join(problems)}",
                           tuple(problems))
    if MANIFEST_FILE not in signed:
        raise SignatureError(f"the signature does not cover {MANIFEST_FILE}")
    if hashlib.sha256(manifest).hexdigest() != signed[MANIFEST_FILE]:
        raise HashMismatch(f"{MANIFEST_FILE}: not the bytes that were signed")
    parsed = manifest_from_bytes(manifest, MANIFEST_FILE)
    listed = {e.file: FileDigest(e.size, e.sha256) for e in parsed.files()}
    files = {n: d for n, d in present.items() if n != MANIFEST_FILE}
    problems = _differences({n: f"{d.size}:{d.sha256}" for n, d in listed.items()},
                            {n: f"{d.size}:{d.sha256}" for n, d in files.items()})
    if problems:
        raise HashMismatch(f"bundle files do not match {MANIFEST_FILE}: {'; '.join(problems)}",
                           tuple(problems))
    _check_release(parsed, expect)
    return parsed


def _differences(expected: Mapping[str, str], found: Mapping[str, str]) -> list[str]:
    """Every missing, unlisted and altered file, by name."""
    out = []
    for name in sorted(set(expected) | set(found)):
        if name not in found:
            out.append(f"{name}: missing")
        elif name not in expected:
            out.append(f"{name}: not listed")
        elif found[name] != expected[name]:
            out.append(f"{name}: altered")
    return out


def _check_release(m: Manifest, expect: Expectations) -> None:
    if version_key(m.min_runtime) > version_key(expect.runtime_version):
        raise IncompatibleRuntime(
            f"bundle {m.bundle_version} needs edge-screen >= {m.min_runtime}, "
            f"this is {expect.runtime_version}")
    if m.expires is not None and expect.now is not None and parse_time(m.expires) <= expect.now:
        raise ExpiredBundle(f"bundle {m.bundle_version} expired at {m.expires}")
    installed = expect.installed_version
    if installed is not None and not expect.allow_older and \
            version_key(m.bundle_version) <= version_key(installed):
        raise RollbackRefused(
            f"bundle {m.bundle_version} is not newer than the installed {installed}; "
            "an older or equal version is installed only when forced with a reason")
