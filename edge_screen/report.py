"""The screening report (``edge-screen.report/1``): what travels with an upload. Never pixels."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .hashes import Hashes
from .policy import Verdict

REPORT_SCHEMA = "edge-screen.report/1"
# Signals every report carries, null when not measured (no model for it, or no face to age).
CORE_SIGNALS = ("sexual", "minor", "violence")
# The known-content signal, in every report: 1.0 when a screened picture matched one of the
# bundle's hash lists, 0.0 when checked without a match, null when the bundle has no list.
KNOWN_MATCH = "known_match"
ERROR_CODES = ("corrupt", "unsupported", "too_large", "io", "timeout", "model", "internal",
               "crashed")


@dataclass(frozen=True)
class Face:
    """One detected face, in pixels of the upright original image."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    age: float | None
    p_minor: float | None
    timestamp_ms: float | None = None  # the frame it was found in (videos and animations)


@dataclass(frozen=True)
class Evidence:
    """A frame that weighs most on a video's verdict, for a human reviewer to jump to."""

    timestamp_ms: float
    verdict: str  # what this frame alone would get
    scores: Mapping[str, float | None]


@dataclass(frozen=True)
class MediaInfo:
    """The input as read; the fields after ``frames_screened`` say how a video was sampled."""

    kind: str  # "image", "video", "animation", "stream", or "unknown" when it could not be read
    format: str | None
    width: int | None
    height: int | None
    frames_screened: int
    duration_s: float | None = None
    fps: float | None = None
    frames_decoded: int | None = None
    worst_ms: Mapping[str, float] = field(default_factory=dict)  # signal -> time of its maximum
    evidence: tuple[Evidence, ...] = ()  # top-k frames, most severe first
    # Every picture the input shows is screened: its video streams (cover pictures included),
    # or its pages (an EXIF thumbnail included, as the last page).
    streams: int = 1
    covers: int = 0
    pages: int = 1
    thumbnail: bool = False


@dataclass(frozen=True)
class ReportError:
    code: str
    message: str


@dataclass(frozen=True)
class PreviewFrame:
    """One reviewer preview made: which frame it shows and what was blocked out on it."""

    timestamp_ms: float | None  # a video's or animation's frame; None for a still
    page: int | None  # the page of a still of several pictures; None otherwise
    width: int
    height: int
    faces_masked: int


@dataclass(frozen=True)
class PreviewInfo:
    """Which reviewer-preview rules fired (``edge_screen.preview``): never the pixels, which the
    caller gets beside the report (``Screener.screen_with_preview``)."""

    made: bool
    reason: str  # why previews were made, or why not
    mode: str
    strength: float
    format: str | None = None  # "webp" or "jpeg"; None when none was made
    frames: tuple[PreviewFrame, ...] = ()

    @property
    def faces_masked(self) -> int:
        return sum(f.faces_masked for f in self.frames)


@dataclass(frozen=True)
class ScreeningReport:
    """The verdict on one input, its signals and enough provenance to audit it later."""

    path: str
    verdict: Verdict
    reasons: tuple[str, ...]
    signals: Mapping[str, float | None]
    faces: tuple[Face, ...]
    media: MediaInfo
    models: Mapping[str, str]
    timing_ms: Mapping[str, float]
    sha256: str | None = None
    error: ReportError | None = None
    # Faces found but too small or unsure to age (most in one frame): P(minor) unknown for them.
    faces_unaged: int = 0
    # PDQ / vPDQ of the frames screened (``hashes``); None when no frame was screened.
    hashes: Hashes | None = None
    # Reviewer previews: None unless they were asked for (``screen_with_preview``).
    preview: PreviewInfo | None = None
    schema: str = field(default=REPORT_SCHEMA)

    @property
    def ok(self) -> bool:
        """True when the input was screened (whatever the verdict)."""
        return self.error is None

    def to_dict(self, include_path: bool = False) -> dict[str, Any]:
        """The report as JSON-ready data. The local path names the device's files, so it is
        left out unless asked for (the CLI asks); upload metadata should not carry it."""
        r3 = _round
        return {
            "schema": self.schema,
            **({"path": self.path} if include_path else {}),
            "sha256": self.sha256,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "signals": {k: r3(v) for k, v in self.signals.items()},
            "faces_unaged": self.faces_unaged,
            "faces": [
                {
                    "box": [round(c, 1) for c in f.box],
                    "score": r3(f.score),
                    "age": r3(f.age, 1),
                    "p_minor": r3(f.p_minor),
                    **({} if f.timestamp_ms is None else {"timestamp_ms": round(f.timestamp_ms)}),
                }
                for f in self.faces
            ],
            "media": {
                "kind": self.media.kind,
                "format": self.media.format,
                "width": self.media.width,
                "height": self.media.height,
                "frames_screened": self.media.frames_screened,
                "duration_s": r3(self.media.duration_s, 3),
                "fps": r3(self.media.fps, 3),
                "frames_decoded": self.media.frames_decoded,
                "streams": self.media.streams,
                "covers": self.media.covers,
                "pages": self.media.pages,
                "thumbnail": self.media.thumbnail,
                "worst_ms": {k: round(v) for k, v in self.media.worst_ms.items()},
                "evidence": [
                    {
                        "timestamp_ms": round(e.timestamp_ms),
                        "verdict": e.verdict,
                        "signals": {k: r3(v) for k, v in e.scores.items()},
                    }
                    for e in self.media.evidence
                ],
            },
            "hashes": None if self.hashes is None else self.hashes.to_dict(),
            "preview": None if self.preview is None else _preview_dict(self.preview),
            "models": dict(self.models),
            "timing_ms": {k: round(v, 2) for k, v in self.timing_ms.items()},
            "error": None
            if self.error is None
            else {"code": self.error.code, "message": self.error.message},
        }

    def to_json(self, include_path: bool = False) -> str:
        """Compact JSON (``edge-screen.report/1``), the path only with ``include_path``."""
        data = self.to_dict(include_path)
        return json.dumps(data, separators=(",", ":"), allow_nan=False)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _preview_dict(p: PreviewInfo) -> dict[str, Any]:
    return {
        "made": p.made,
        "reason": p.reason,
        "mode": p.mode,
        "strength": p.strength,
        "format": p.format,
        "faces_masked": p.faces_masked,
        "frames": [
            {
                "timestamp_ms": None if f.timestamp_ms is None else round(f.timestamp_ms),
                "page": f.page,
                "width": f.width,
                "height": f.height,
                "faces_masked": f.faces_masked,
            }
            for f in p.frames
        ],
    }
