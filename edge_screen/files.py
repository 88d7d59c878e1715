"""Reading a bundle's files without trusting its directory: links are not followed, FIFOs and
devices are not opened for reading (a FIFO would block forever), a file must still be the one
that was listed (same device, inode and size), no more bytes are read than a limit, and every
OS error is a typed ``BundleError``. Whoever controls a bundle directory can swap its entries
at any moment; these reads make each swap a refusal, not a hang, a crash or a followed link."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import BundleError, SignatureError, UnsafePath
from .manifest import MAX_MANIFEST_BYTES, Manifest
from .oms import MAX_SIGNATURE_BYTES, SIGNATURE_FILE
from .trust import MANIFEST_FILE, Expectations, FileDigest, verify_bundle


class OverLimit(BundleError):
    """A file kept going past the number of bytes it may have (callers say what that means:
    past a size limit, or not the size a manifest lists)."""


_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
CHUNK = 1 << 20


@contextmanager
def open_plain(path: Path, listed: os.stat_result | None = None) -> Iterator[int]:
    """A read-only descriptor of the regular file at ``path`` (and, when ``listed`` is given,
    the very file that was listed)."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(f"bundle entry {path.name}: a symlink") from exc
        raise BundleError(f"bundle entry {path.name}: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePath(f"bundle entry {path.name}: not a plain file")
        if listed is not None and (info.st_dev, info.st_ino, info.st_size) != (
                listed.st_dev, listed.st_ino, listed.st_size):
            raise BundleError(f"bundle entry {path.name}: changed while being read")
        yield fd
    finally:
        os.close(fd)


def chunks(fd: int, limit: int, name: str) -> Iterator[bytes]:
    """The file's bytes, refusing it once more than ``limit`` have come."""
    total = 0
    while True:
        try:
            chunk = os.read(fd, CHUNK)
        except OSError as exc:
            raise BundleError(f"bundle entry {name}: {exc.strerror or exc}") from exc
        if not chunk:
            return
        total += len(chunk)
        if total > limit:
            raise OverLimit(f"bundle entry {name}: larger than {limit} bytes")
        yield chunk


def read_plain(path: Path, limit: int, listed: os.stat_result | None = None) -> bytes:
    with open_plain(path, listed) as fd:
        return b"".join(chunks(fd, limit, path.name))


def sha256_plain(path: Path, listed: os.stat_result) -> str:
    """The sha256 of the listed file, read no further than its listed size."""
    digest = hashlib.sha256()
    with open_plain(path, listed) as fd:
        for chunk in chunks(fd, listed.st_size, path.name):
            digest.update(chunk)
    return digest.hexdigest()


def copy_plain(src: Path, dst: Path, listed: os.stat_result) -> None:
    """Copy the listed file to a new file ``dst`` (never an existing one), synced to disk."""
    with open_plain(src, listed) as fd:
        try:
            out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise BundleError(f"cannot write {dst}: {exc.strerror or exc}") from exc
        try:
            copied = 0
            for chunk in chunks(fd, listed.st_size, src.name):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view):]
                copied += len(chunk)
            if copied != listed.st_size:
                raise BundleError(f"bundle entry {src.name}: changed while being copied")
            os.fsync(out)
        finally:
            os.close(out)


@dataclass(frozen=True)
class ReadLimits:
    """Hard limits on what is read of a bundle directory, checked before reading it."""

    max_files: int = 64
    max_file_bytes: int = 256 << 20
    max_total_bytes: int = 512 << 20


def list_directory(root: Path, limits: ReadLimits) -> dict[str, os.stat_result]:
    """Every entry of a flat bundle directory, checked against the limits before anything is
    read. Symlinks, subdirectories and device files are refused."""
    try:
        with os.scandir(root) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise BundleError(f"{root}: cannot list ({exc.strerror or exc})") from exc
    if len(entries) > limits.max_files:
        raise BundleError(f"{root}: more than {limits.max_files} files")
    listed: dict[str, os.stat_result] = {}
    total = 0
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError as exc:
            raise BundleError(f"bundle entry {entry.name}: {exc.strerror or exc}") from exc
        if not stat.S_ISREG(info.st_mode):
            kind = "a symlink" if stat.S_ISLNK(info.st_mode) else "not a plain file"
            raise UnsafePath(f"bundle entry {entry.name}: {kind}")
        total += info.st_size
        if info.st_size > limits.max_file_bytes or total > limits.max_total_bytes:
            raise BundleError(f"bundle entry {entry.name}: past the size limits")
        listed[entry.name] = info
    return listed


def read_directory(root: Path, limits: ReadLimits) -> dict[str, FileDigest]:
    """Size and sha256 of every file of a flat bundle directory, the signature excluded."""
    return {name: FileDigest(info.st_size, sha256_plain(root / name, info))
            for name, info in list_directory(root, limits).items() if name != SIGNATURE_FILE}


def verify_directory(root: Path, trusted: Sequence[bytes], expect: Expectations,
                     limits: ReadLimits | None = None) -> Manifest:
    """``trust.verify_bundle`` on a directory: list it within limits, hash every file, read
    the signature and the manifest within their own limits, then verify."""
    limits = limits or ReadLimits()
    listed = list_directory(root, limits)
    for name in (SIGNATURE_FILE, MANIFEST_FILE):
        if name not in listed:
            what = "unsigned bundle" if name == SIGNATURE_FILE else "no manifest"
            raise SignatureError(f"{root}: {what} ({name} is missing)")
    present = {name: FileDigest(info.st_size, sha256_plain(root / name, info))
               for name, info in listed.items() if name != SIGNATURE_FILE}
    signature = read_plain(root / SIGNATURE_FILE, MAX_SIGNATURE_BYTES, listed[SIGNATURE_FILE])
    manifest = read_plain(root / MANIFEST_FILE, MAX_MANIFEST_BYTES, listed[MANIFEST_FILE])
    return verify_bundle(signature, manifest, present, trusted, expect)


def load_keys(keys: Sequence[str | os.PathLike[str] | bytes]) -> list[bytes]:
    """Trusted public keys as PEM bytes: ``bytes`` are PEM, anything else a file holding one."""
    out = []
    for key in keys:
        if isinstance(key, bytes):
            out.append(key)
            continue
        try:
            out.append(read_plain(Path(key), 1 << 16))
        except UnsafePath:
            raise
        except BundleError as exc:
            raise SignatureError(f"trusted key {key}: {exc}") from exc
    return out
