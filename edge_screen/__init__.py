"""edge-screen: on-device pre-screening of photos and videos with small quantized TFLite models.

from edge_screen import Screener
with Screener() as s:
    report = s.screen("photo.jpg")
    print(report.verdict, report.signals)
"""

import logging

from .bundle import Bundle
from .decode import ImageLimits
from .errors import (
    BackendUnavailable,
    BundleError,
    CorruptMedia,
    EdgeScreenError,
    ExpiredBundle,
    HashMismatch,
    IncompatibleRuntime,
    ManifestError,
    MediaError,
    MediaIOError,
    MediaTooLarge,
    ModelError,
    NotMedia,
    PolicyError,
    RollbackRefused,
    ScreeningTimeout,
    SelfTestFailed,
    SignatureError,
    StoreBusy,
    StoreError,
    UnsafePath,
    UnsupportedMedia,
    VariantNotShipped,
    WorkerCrashed,
)
from .frames import SamplingOptions, VideoLimits
from .pdq import PdqHash, pdq_hash, pdq_hash_dihedral
from .policy import Decision, Policy, PreviewPolicy
from .preview import Preview, ReportWithPreviews
from .report import (
    REPORT_SCHEMA,
    Evidence,
    Face,
    MediaInfo,
    PreviewFrame,
    PreviewInfo,
    ReportError,
    ScreeningReport,
)
from .screener import Screener, ScreenerOptions
from .stream import LiveStream
from .version import __version__

# A library leaves logging to its host: without this, Python's last-resort handler would print
# our warnings (an internal error, a policy rule no model feeds) on the host's stderr.
logging.getLogger("edge_screen").addHandler(logging.NullHandler())

__all__ = [
    "REPORT_SCHEMA",
    "BackendUnavailable",
    "Bundle",
    "BundleError",
    "CorruptMedia",
    "Decision",
    "EdgeScreenError",
    "Evidence",
    "ExpiredBundle",
    "Face",
    "HashMismatch",
    "ImageLimits",
    "IncompatibleRuntime",
    "LiveStream",
    "ManifestError",
    "MediaError",
    "MediaIOError",
    "MediaInfo",
    "MediaTooLarge",
    "ModelError",
    "NotMedia",
    "PdqHash",
    "Policy",
    "PolicyError",
    "Preview",
    "PreviewFrame",
    "PreviewInfo",
    "PreviewPolicy",
    "ReportError",
    "ReportWithPreviews",
    "RollbackRefused",
    "SamplingOptions",
    "Screener",
    "ScreenerOptions",
    "ScreeningReport",
    "ScreeningTimeout",
    "SelfTestFailed",
    "SignatureError",
    "StoreBusy",
    "StoreError",
    "UnsafePath",
    "UnsupportedMedia",
    "VariantNotShipped",
    "VideoLimits",
    "WorkerCrashed",
    "__version__",
    "pdq_hash",
    "pdq_hash_dihedral",
]
