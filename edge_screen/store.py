"""A device's bundle store: signed bundles installed atomically, the last good one kept.

Layout of ``STORE/``::

    state.json      {"schema": ..., "active": SLOT, "previous": SLOT | null}
    slots/SLOT/     complete, verified bundles (SLOT = "<bundle_version>-<random>")
    incoming/       copies being installed; whatever is left there after a crash is deleted
    log.jsonl       one line per install, forced install and rollback, with the reason
    .lock           held (flock) by the one install or rollback running

An install copies the bundle into ``incoming/``, verifies the copy (signature, every file, release
fields: ``trust.verify_bundle``), loads it (``self_test``), moves it into ``slots/`` and only then
replaces ``state.json`` (write a new file, fsync, rename, fsync the directory). A power cut at any
point leaves ``state.json`` naming the old or the new bundle, each complete.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import BundleError, SignatureError, StoreBusy, StoreError, UnsafePath
from .manifest import Manifest
from .oms import SIGNATURE_FILE
from .release import format_time
from .selftest import run_self_test
from .trust import MANIFEST_FILE, Expectations, FileDigest, verify_bundle

STATE_SCHEMA = "edge-screen.store/1"


@dataclass(frozen=True)
class StoreLimits:
    """Hard limits on what an install reads, checked before reading it."""

    max_files: int = 64
    max_file_bytes: int = 256 << 20
    max_total_bytes: int = 512 << 20
    lock_timeout_s: float = 30.0


@dataclass(frozen=True)
class Installed:
    slot: str
    bundle_version: str
    path: Path


@dataclass(frozen=True)
class StoreStatus:
    active: Installed | None
    previous: Installed | None

    def to_dict(self) -> dict[str, Any]:
        def one(i: Installed | None) -> dict[str, str] | None:
            return None if i is None else {"bundle_version": i.bundle_version, "slot": i.slot}

        return {"active": one(self.active), "previous": one(self.previous)}


def list_directory(root: Path, limits: StoreLimits) -> dict[str, int]:
    """Name and size of every entry of a flat bundle directory, checked against the limits
    before anything is read. Symlinks, subdirectories and device files are refused."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise BundleError(f"{root}: cannot list ({exc.strerror or exc})") from exc
    if len(entries) > limits.max_files:
        raise BundleError(f"{root}: more than {limits.max_files} files")
    sizes: dict[str, int] = {}
    for entry in entries:
        info = entry.stat(follow_symlinks=False)
        if not stat.S_ISREG(info.st_mode):
            kind = "a symlink" if stat.S_ISLNK(info.st_mode) else "not a plain file"
            raise UnsafePath(f"bundle entry {entry.name}: {kind}")
        sizes[entry.name] = info.st_size
        if info.st_size > limits.max_file_bytes or sum(sizes.values()) > limits.max_total_bytes:
            raise BundleError(f"bundle entry {entry.name}: past the store's size limits")
    return sizes


def read_directory(root: Path, limits: StoreLimits) -> dict[str, FileDigest]:
    """Size and sha256 of every file of a flat bundle directory, the signature excluded."""
    return {name: FileDigest(size, _sha256(root / name, size))
            for name, size in list_directory(root, limits).items() if name != SIGNATURE_FILE}


def verify_directory(root: Path, trusted: Sequence[bytes], expect: Expectations,
                     limits: StoreLimits | None = None) -> Manifest:
    """``trust.verify_bundle`` on a directory: read within limits, then verify."""
    limits = limits or StoreLimits()
    present = read_directory(root, limits)
    try:
        signature = (root / SIGNATURE_FILE).read_bytes()
        manifest = (root / MANIFEST_FILE).read_bytes()
    except FileNotFoundError as exc:
        what = "unsigned bundle" if SIGNATURE_FILE in str(exc) else "no manifest"
        raise SignatureError(f"{root}: {what} ({Path(exc.filename).name} is missing)") from exc
    return verify_bundle(signature, manifest, present, trusted, expect)


class BundleStore:
    """The store at ``root`` (created on first install)."""

    def __init__(self, root: str | Path, limits: StoreLimits | None = None) -> None:
        self.root = Path(root)
        self.limits = limits or StoreLimits()

    # --- reading --------------------------------------------------------------------------

    def status(self) -> StoreStatus:
        state = self._state()
        return StoreStatus(self._installed(state.get("active")),
                           self._installed(state.get("previous")))

    def active(self, trusted: Sequence[bytes], runtime_version: str) -> tuple[Path, Manifest]:
        """The active bundle's directory, verified again (signature and every file), for a
        Screener to load."""
        current = self.status().active
        if current is None:
            raise StoreError(f"{self.root}: no bundle installed")
        expect = Expectations(runtime_version, datetime.now(UTC))
        return current.path, verify_directory(current.path, trusted, expect, self.limits)

    # --- changing -------------------------------------------------------------------------

    def install(self, source: str | Path, trusted: Sequence[bytes], runtime_version: str, *,
                force_reason: str | None = None,
                self_test: Callable[[Path, Manifest], None] | None = run_self_test,
                now: datetime | None = None) -> Installed:
        """Verify ``source`` as a copy inside the store, screen its self-test pictures with it,
        and make it the active bundle; the one active before becomes the previous (the last
        known good). ``self_test=None`` skips the self-test (tests of the store only)."""
        with self._locked():
            state = self._state()
            before = self._installed(state.get("active"))
            expect = Expectations(runtime_version, now or datetime.now(UTC),
                                  before.bundle_version if before else None,
                                  allow_older=bool(force_reason))
            incoming = self._copy(Path(source))
            try:
                self._step("copied")
                manifest = verify_directory(incoming, trusted, expect, self.limits)
                self._step("verified")
                if self_test is not None:
                    self_test(incoming, manifest)
                self._step("tested")
            except Exception:
                shutil.rmtree(incoming, ignore_errors=True)  # refused: leave nothing behind
                raise
            slot = f"{manifest.bundle_version}-{secrets.token_hex(4)}"
            (self.root / "slots").mkdir(exist_ok=True)
            os.rename(incoming, self.root / "slots" / slot)
            _fsync_dir(self.root / "slots")
            self._step("moved")
            previous = before.slot if before else None
            self._write_state({"schema": STATE_SCHEMA, "active": slot, "previous": previous})
            self._step("switched")
            self._log("install", manifest.bundle_version, before, force_reason)
            self._prune({slot, previous})
            return Installed(slot, manifest.bundle_version, self.root / "slots" / slot)

    def rollback(self, reason: str = "") -> Installed:
        """Make the previous bundle active again (after its files are checked once more)."""
        with self._locked():
            state = self._state()
            active, previous = (self._installed(state.get(k)) for k in ("active", "previous"))
            if previous is None:
                raise StoreError(f"{self.root}: no previous bundle to roll back to")
            list_directory(previous.path, self.limits)  # still plain files within limits
            self._write_state({"schema": STATE_SCHEMA, "active": previous.slot,
                               "previous": active.slot if active else None})
            self._log("rollback", previous.bundle_version, active, reason or None)
            return previous

    # --- internals ------------------------------------------------------------------------

    def _step(self, name: str) -> None:
        """A point between two install steps; tests replace it to simulate a crash there."""

    def _state(self) -> dict[str, Any]:
        path = self.root / "state.json"
        try:
            data = json.loads(path.read_bytes()[: 1 << 16])
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}: unreadable ({exc})") from exc
        if not isinstance(data, dict) or data.get("schema") != STATE_SCHEMA:
            raise StoreError(f"{path}: not an edge-screen store state")
        return data

    def _installed(self, slot: Any) -> Installed | None:
        if slot is None:
            return None
        if not isinstance(slot, str) or "/" in slot or slot.startswith("."):
            raise StoreError(f"{self.root}/state.json: bad slot {slot!r}")
        path = self.root / "slots" / slot
        try:
            version = json.loads((path / MANIFEST_FILE).read_bytes()[: 1 << 20])["bundle_version"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{path}: not a complete bundle ({exc})") from exc
        return Installed(slot, str(version), path)

    def _copy(self, source: Path) -> Path:
        """A copy of ``source`` in ``incoming/``: what is verified, tested and then used is this
        copy, which nobody else writes."""
        sizes = list_directory(source, self.limits)
        incoming = self.root / "incoming"
        shutil.rmtree(incoming, ignore_errors=True)  # left over from a crash
        target = incoming / secrets.token_hex(4)
        target.mkdir(parents=True)
        for name, size in sizes.items():
            with open(source / name, "rb") as src, open(target / name, "xb") as dst:
                copied = 0
                while copied <= size and (chunk := src.read(1 << 20)):
                    dst.write(chunk)
                    copied += len(chunk)
                if copied != size:  # grew or shrank since it was listed
                    raise BundleError(f"bundle entry {name}: changed while being copied")
                dst.flush()
                os.fsync(dst.fileno())
        _fsync_dir(target)
        return target

    def _write_state(self, state: dict[str, Any]) -> None:
        tmp = self.root / "state.json.new"
        with open(tmp, "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / "state.json")
        _fsync_dir(self.root)

    def _log(self, action: str, version: str, before: Installed | None,
             reason: str | None) -> None:
        line = {"time": format_time(datetime.now(UTC)), "action": action,
                "bundle_version": version,
                "replaced": before.bundle_version if before else None, "reason": reason}
        with open(self.root / "log.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")

    def _prune(self, keep: set[str | None]) -> None:
        for old in (self.root / "slots").iterdir():
            if old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(self.root / "incoming", ignore_errors=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            deadline = time.monotonic() + self.limits.lock_timeout_s
            while True:
                try:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise StoreBusy(
                            f"{self.root}: another install or rollback is running") from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _sha256(path: Path, size: int) -> str:
    """The sha256 of the file's first ``size`` + 1 bytes: a file that grew since it was listed
    no longer matches any signed digest."""
    digest = hashlib.sha256()
    left = size + 1
    with open(path, "rb") as f:
        while left > 0 and (chunk := f.read(min(left, 1 << 20))):
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
