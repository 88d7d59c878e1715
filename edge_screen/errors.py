"""The error hierarchy: one base, named leaves, builtin second parents where they fit.

Callers can catch ``EdgeScreenError`` for everything of ours, or the builtin (``ValueError``,
``OSError``) they already handle. Every media error carries the report's error ``code``.
"""

from __future__ import annotations


class EdgeScreenError(Exception):
    """Base of every error edge-screen raises on purpose."""

    code = "internal"


class NotMedia(EdgeScreenError, TypeError):
    """``screen()`` was given something it cannot take (None, a number, a text-mode file): the
    call is wrong, not the media, so it is raised rather than reported."""


class MediaError(EdgeScreenError):
    """The input could not be screened; ``code`` goes into the report."""

    code = "media"


class UnsupportedMedia(MediaError, ValueError):
    """No decoder accepts these bytes (sniffed from magic bytes, never the extension)."""

    code = "unsupported"


class CorruptMedia(MediaError, ValueError):
    """The format was recognised but the data is damaged, truncated or empty."""

    code = "corrupt"


class MediaTooLarge(MediaError, ValueError):
    """The header declares more bytes or pixels than the configured limits allow."""

    code = "too_large"


class MediaIOError(MediaError, OSError):
    """The input could not be read (missing file, permission, a failing stream)."""

    code = "io"


class ScreeningTimeout(MediaError, TimeoutError):
    """Screening one item took longer than its time budget."""

    code = "timeout"


class WorkerCrashed(MediaError, ChildProcessError):
    """The worker process screening the item died (a signal, an abort, an exit) before it
    answered (``ScreenerOptions(isolation="process")``): the host process goes on."""

    code = "crashed"


class BundleError(EdgeScreenError):
    """A model bundle is missing, malformed or does not match its manifest."""

    code = "bundle"


class ManifestError(BundleError, ValueError):
    """``manifest.json`` does not follow the bundle schema."""


class VariantNotShipped(BundleError, ValueError):
    """The variant asked for was built but left out of this bundle (a device bundle carries only
    the variants some platform prefers); the message says how to build the full set."""


class HashMismatch(BundleError):
    """A bundle file's size or sha256 differs from the manifest or its signature, or a file is
    missing or unlisted: refuse to load it. ``problems`` names every such file."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class SignatureError(BundleError):
    """The bundle's signature is missing, malformed, or made by no trusted key."""


class UnsafePath(BundleError):
    """A bundle names or holds a path that could leave its directory (``..``, absolute, a
    symlink, a device file)."""


class RollbackRefused(BundleError):
    """The bundle is not newer than the one installed: an older, validly signed bundle must not
    replace a newer one unless an operator forces it with a reason."""


class ExpiredBundle(BundleError):
    """The bundle's signed expiry time has passed."""


class IncompatibleRuntime(BundleError):
    """The bundle needs a newer edge-screen than the one installed."""


class SelfTestFailed(BundleError):
    """A verified bundle screened its own test pictures differently from the build machine:
    it is not activated."""


class StoreError(BundleError):
    """A bundle store is empty, damaged, or has no previous bundle to roll back to."""


class StoreBusy(StoreError):
    """Another install or rollback holds the store's lock."""


class BackendUnavailable(EdgeScreenError, ImportError):
    """The requested TFLite runtime is not installed on this device."""

    code = "backend"


class ModelError(EdgeScreenError, RuntimeError):
    """The interpreter rejected a model or failed while running it."""

    code = "model"


class PolicyError(EdgeScreenError, ValueError):
    """A policy file is malformed or names an unknown signal or verdict."""

    code = "policy"
