"""A device's bundle store: signed bundles installed atomically, the last good one kept.

Layout of ``STORE/``::

    state.json      {"schema": ..., "active": SLOT, "previous": SLOT | null, "highest": VERSION}
    slots/SLOT/     complete, verified bundles (SLOT = "<bundle_version>-<random>")
    incoming/       copies being installed; whatever is left there after a crash is deleted
    log.jsonl       one line per install, forced install and rollback, with the reason
    .lock           flock: exclusive for an install or rollback, shared while a Screener checks

``highest`` is the newest version ever installed: a rollback makes an older bundle active but
does not lower it, so the bundle rolled back from (or anything not newer) cannot be replayed
without a forced install and its logged reason.

An install copies the bundle into ``incoming/``, verifies the copy (signature, every file, release
fields: ``trust.verify_bundle``), loads it (``self_test``), moves it into ``slots/`` and only then
replaces ``state.json`` (write a new file, fsync, rename, fsync the directory). A power cut at any
point leaves ``state.json`` naming the old or the new bundle, each complete.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import BundleError, StoreBusy, StoreError
from .files import (
    ReadLimits,
    copy_plain,
    list_directory,
    load_keys,
    read_plain,
    verify_directory,
)
from .manifest import MAX_MANIFEST_BYTES, Manifest
from .release import format_time, version_key
from .selftest import run_self_test
from .trust import MANIFEST_FILE, Expectations

KeySource = str | os.PathLike[str] | bytes  # PEM bytes, or a file holding them

STATE_SCHEMA = "edge-screen.store/1"


@dataclass(frozen=True)
class StoreLimits(ReadLimits):
    """What an install reads (``ReadLimits``), and how long it waits for another to finish."""

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
    highest: str | None = None  # the newest version ever installed (the rollback floor)

    def to_dict(self) -> dict[str, Any]:
        def one(i: Installed | None) -> dict[str, str] | None:
            return None if i is None else {"bundle_version": i.bundle_version, "slot": i.slot}

        return {"active": one(self.active), "previous": one(self.previous),
                "highest": self.highest}


class BundleStore:
    """The store at ``root`` (created on first install)."""

    def __init__(self, root: str | Path, limits: StoreLimits | None = None) -> None:
        self.root = Path(root)
        self.limits = limits or StoreLimits()

    # --- reading --------------------------------------------------------------------------

    def status(self) -> StoreStatus:
        state = self._state()
        return StoreStatus(self._installed(state.get("active")),
                           self._installed(state.get("previous")), state.get("highest"))

    def active(self, trusted: Sequence[KeySource], runtime_version: str
               ) -> tuple[Path, Manifest]:
        """The active bundle's directory, verified again (signature and every file), for a
        Screener to load. Expiry is an install-time check: a bundle that expires after it was
        installed keeps screening (a clock moved forward must not switch screening off)."""
        keys = load_keys(trusted)
        with self._locked(shared=True):  # no install prunes the slot while it is checked
            current = self._installed(self._state().get("active"))
            if current is None:
                raise StoreError(f"{self.root}: no bundle installed")
            expect = Expectations(runtime_version, None)
            return current.path, verify_directory(current.path, keys, expect, self.limits)

    # --- changing -------------------------------------------------------------------------

    def install(self, source: str | os.PathLike[str], trusted: Sequence[KeySource],
                runtime_version: str, *, force_reason: str | None = None,
                self_test: Callable[[Path, Manifest], None] = run_self_test,
                now: datetime | None = None) -> Installed:
        """Verify ``source`` as a copy inside the store, screen its self-test pictures with it,
        and make it the active bundle; the one active before becomes the previous (the last
        known good). A version not newer than every one installed before (a replay, or one
        rolled back from) needs ``force_reason``."""
        if force_reason is not None and not force_reason.strip():
            raise StoreError("a forced install needs a reason, written to the store's log")
        keys = load_keys(trusted)
        with self._locked():
            state = self._state()
            before = self._installed(state.get("active"))
            floor = _newest(state.get("highest"), before.bundle_version if before else None)
            expect = Expectations(runtime_version, now or datetime.now(UTC), floor,
                                  allow_older=force_reason is not None)
            incoming = self._copy(Path(os.fsdecode(source)))
            try:
                self._step("copied")
                manifest = verify_directory(incoming, keys, expect, self.limits)
                self._step("verified")
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
            self._write_state({"schema": STATE_SCHEMA, "active": slot, "previous": previous,
                               "highest": _newest(floor, manifest.bundle_version)})
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
                               "previous": active.slot if active else None,
                               "highest": state.get("highest")})
            self._log("rollback", previous.bundle_version, active, reason or None)
            return previous

    # --- internals ------------------------------------------------------------------------

    def _step(self, name: str) -> None:
        """A point between two install steps; tests replace it to simulate a crash there."""

    def _state(self) -> dict[str, Any]:
        path = self.root / "state.json"
        if not os.path.lexists(path):
            return {}
        try:
            data = json.loads(read_plain(path, 1 << 16))
        except (BundleError, ValueError, RecursionError) as exc:
            raise StoreError(f"{path}: unreadable ({exc})") from exc
        if not isinstance(data, dict) or data.get("schema") != STATE_SCHEMA:
            raise StoreError(f"{path}: not an edge-screen store state")
        highest = data.get("highest")
        if highest is not None and not isinstance(highest, str):
            raise StoreError(f"{path}: bad highest version {highest!r}")
        return data

    def _installed(self, slot: Any) -> Installed | None:
        if slot is None:
            return None
        if not isinstance(slot, str) or "/" in slot or slot.startswith("."):
            raise StoreError(f"{self.root}/state.json: bad slot {slot!r}")
        path = self.root / "slots" / slot
        try:
            data = json.loads(read_plain(path / MANIFEST_FILE, MAX_MANIFEST_BYTES))
            version = data["bundle_version"]
        except (BundleError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise StoreError(f"{path}: not a complete bundle ({exc})") from exc
        return Installed(slot, str(version), path)

    def _copy(self, source: Path) -> Path:
        """A copy of ``source`` in ``incoming/``: what is verified, tested and then used is this
        copy, which nobody else writes."""
        listed = list_directory(source, self.limits)
        incoming = self.root / "incoming"
        shutil.rmtree(incoming, ignore_errors=True)  # left over from a crash
        target = incoming / secrets.token_hex(4)
        target.mkdir(parents=True)
        try:
            for name, info in listed.items():
                copy_plain(source / name, target / name, info)
            _fsync_dir(target)
        except Exception:
            shutil.rmtree(incoming, ignore_errors=True)
            raise
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
    def _locked(self, shared: bool = False) -> Iterator[None]:
        """The store's lock: exclusive for a change, shared for a Screener reading it."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            lock = open(self.root / ".lock", "a")  # noqa: SIM115  (closed below)
        except OSError as exc:
            raise StoreError(f"{self.root}: {exc.strerror or exc}") from exc
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        with lock:
            deadline = time.monotonic() + self.limits.lock_timeout_s
            while True:
                try:
                    fcntl.flock(lock.fileno(), mode | fcntl.LOCK_NB)
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


def _newest(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return a if version_key(a) >= version_key(b) else b


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
