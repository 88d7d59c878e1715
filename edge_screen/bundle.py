"""Find a model bundle on disk, read its manifest, and hand out verified model bytes.

Every file is checked against the manifest's size and sha256 on the very bytes the interpreter
will get, so a file swapped between check and load cannot slip through.
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from .errors import BundleError, HashMismatch, ManifestError
from .files import OverLimit, read_plain
from .manifest import (
    MAX_MANIFEST_BYTES,
    HashListSpec,
    Manifest,
    ModelSpec,
    Variant,
    manifest_from_bytes,
)


def default_bundle_dir() -> Path:
    """The bundle shipped with the package: inside an installed wheel, or in a checkout."""
    installed = Path(str(resources.files("edge_screen"))) / "models" / "default"
    if (installed / "manifest.json").is_file():
        return installed
    checkout = Path(__file__).resolve().parent.parent / "models" / "default"
    if (checkout / "manifest.json").is_file():
        return checkout
    raise BundleError(
        f"no default model bundle found (looked in {installed} and {checkout}); "
        "reinstall edge-screen or pass bundle=DIR"
    )


@dataclass(frozen=True)
class Bundle:
    """A bundle directory and its parsed manifest."""

    root: Path
    manifest: Manifest

    @classmethod
    def open(cls, root: str | Path | None = None) -> Bundle:
        path = Path(root) if root is not None else default_bundle_dir()
        manifest_path = path / "manifest.json"
        try:  # read no further than the limit
            raw = read_plain(manifest_path, MAX_MANIFEST_BYTES)
        except OverLimit as exc:
            raise ManifestError(f"{manifest_path}: larger than {MAX_MANIFEST_BYTES} bytes") \
                from exc
        return cls(path, manifest_from_bytes(raw, str(manifest_path)))

    def read_verified(self, file: str, size: int, sha256: str) -> bytes:
        """The file's bytes, after checking them against the manifest."""
        try:  # no link followed, no FIFO opened, never more than the manifest's size read
            data = read_plain(self.root / file, size)
        except OverLimit as exc:
            raise HashMismatch(f"bundle file {file}: larger than the manifest's {size} bytes") \
                from exc
        if len(data) != size:
            raise HashMismatch(f"bundle file {file}: {len(data)} bytes, manifest says {size}")
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise HashMismatch(f"bundle file {file}: sha256 {digest} does not match the manifest")
        return data

    def verify_all(self) -> None:
        """Check every file the manifest lists; raises on the first mismatch."""
        for entry in self.manifest.files():
            self.read_verified(entry.file, entry.size, entry.sha256)

    def select(self, spec: ModelSpec, variant: str | None = None) -> Variant:
        """The requested variant, or the one the manifest prefers on this CPU architecture."""
        return spec.variant(variant) if variant else spec.preferred_variant(platform.machine())

    def model_bytes(self, variant: Variant) -> bytes:
        return self.read_verified(variant.file, variant.size, variant.sha256)

    def hash_list_bytes(self, spec: HashListSpec) -> bytes:
        """A hash list's bytes, checked as a model's are: a tampered list is ``HashMismatch``,
        never an empty or partial list."""
        return self.read_verified(spec.file, spec.size, spec.sha256)


def open_bundle(bundle: str | Path | None, store: str | Path | None,
                trusted_keys: Sequence[str | Path | bytes]) -> Bundle:
    """The bundle a Screener loads: a store's active bundle or a directory, verified against
    the trusted keys when there are any (then only its signed manifest is believed), else the
    directory or the shipped bundle, whose files are checked against its manifest on load."""
    if store is not None and not trusted_keys:
        raise BundleError("a store holds signed bundles: give trusted keys to load one")
    if not trusted_keys:
        return Bundle.open(bundle)
    from .files import load_keys, verify_directory
    from .store import BundleStore
    from .trust import Expectations
    from .version import __version__

    keys = load_keys(trusted_keys)
    if store is not None:
        root, manifest = BundleStore(store).active(keys, __version__)
        return Bundle(root, manifest)
    root = Path(bundle) if bundle is not None else default_bundle_dir()
    expect = Expectations(__version__, datetime.now(UTC))
    return Bundle(root, verify_directory(root, keys, expect))
