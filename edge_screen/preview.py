"""Reviewer previews (issue 15): a small, pixelated or blurred picture of an item the screen sent
to a person, so the reviewer sees a safe preview before choosing to open the original.

Made from the pixels already screened, never a second decode: a photo's working image, the
screened frames of a video or animation. While an item is screened, ``PreviewKeeper`` keeps a
preview-size copy (at most ``PreviewPolicy.size`` px on the long side) of each frame that is
among the aggregate's evidence (``SamplingOptions.top_k`` frames, most severe first), dropping a
frame's copy as soon as it falls out: memory is bounded by ``top_k`` small pictures (5 x 192 KB
at most), whatever the length of the video. Once the verdict is known the kept frames are
filtered (``PreviewPolicy.mode`` at ``strength``, never under the policy's floor), faces judged
likely or possible minors are blocked out on top with an opaque box grown by ``FACE_MARGIN``
(whatever the policy says), and each is encoded (WebP, JPEG where Pillow has no WebP).

No preview for ``allow`` (or under ``PreviewPolicy.when``), none for an item that could not be
screened (nothing trustworthy to show: its pixels may be partial or none); the report's
``preview`` says which rules fired, never the pixels (``report.PreviewInfo``).
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter, features

from .policy import VERDICTS, PreviewPolicy, Verdict
from .report import Evidence, Face, PreviewFrame, PreviewInfo, ScreeningReport

__all__ = ["Preview", "PreviewKeeper", "ReportWithPreviews", "make_preview"]

# A detector's box is tight around the face: grown by this fraction of its width and height on
# every side before it is blocked out (hair, ears, a chin the box cut), and at least MIN_MASK px.
FACE_MARGIN = 0.25
MIN_MASK = 4
MASK_COLOUR = (128, 128, 128)
# WebP at quality 70: 0.5-4 KB for a 256 px preview against 1.3-9 KB as JPEG at the same
# quality (python3 -m tests.preview_cost); JPEG only where this Pillow was built without libwebp.
FORMAT = "webp" if features.check("webp") else "jpeg"
QUALITY = 70


@dataclass(frozen=True)
class Preview:
    """One reviewer preview: an encoded picture (``format``), of the frame at ``timestamp_ms``
    (videos, animations) or ``page`` (stills of several pictures); both None for a photo."""

    data: bytes = field(repr=False)
    format: str
    width: int
    height: int
    timestamp_ms: float | None
    page: int | None
    faces_masked: int

    @property
    def suffix(self) -> str:
        """A file-name part naming the frame: "", ".1500ms" or ".p2", then the extension."""
        where = "" if self.timestamp_ms is None else f".{round(self.timestamp_ms)}ms"
        where += "" if self.page is None else f".p{self.page}"
        return f"{where}.preview.{self.format}"


@dataclass(frozen=True)
class ReportWithPreviews:
    """A report and the previews made for its reviewer. The report alone travels with the
    upload (``report.to_json()`` carries no pixels); the previews go to the review queue."""

    report: ScreeningReport
    previews: tuple[Preview, ...]


def masked_faces(faces: Sequence[Face], minor: float, every_face: bool) -> list[Face]:
    """Faces to block out: likely minors (``p_minor >= minor``, the child-safety threshold)
    and faces not aged (too small or unsure: a minor cannot be ruled out); every face with
    ``every_face``."""
    return [f for f in faces if every_face or f.p_minor is None or f.p_minor >= minor]


def mask_box(
    box: tuple[float, float, float, float], scale: float, width: int, height: int
) -> tuple[int, int, int, int]:
    """A face box (original px) in preview px (``scale`` preview px per original px), grown by
    ``FACE_MARGIN`` and ``MIN_MASK``, rounded outward, clipped to the picture."""
    x0, y0, x1, y1 = (c * scale for c in box)
    gx = max(FACE_MARGIN * (x1 - x0), MIN_MASK / 2)
    gy = max(FACE_MARGIN * (y1 - y0), MIN_MASK / 2)
    return (
        max(0, math.floor(x0 - gx)),
        max(0, math.floor(y0 - gy)),
        min(width, math.ceil(x1 + gx)),
        min(height, math.ceil(y1 + gy)),
    )


def downscale(rgb: NDArray[np.uint8], size: int) -> Image.Image:
    """``rgb`` with its long side at most ``size`` px (area average; never enlarged)."""
    im = Image.fromarray(rgb)
    h, w = rgb.shape[:2]
    scale = min(1.0, size / max(w, h))
    if scale < 1.0:
        im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)
    return im


def obscure(im: Image.Image, policy: PreviewPolicy) -> Image.Image:
    """The whole picture pixelated or blurred: detail under ``strength`` % of the long side is
    gone (see ``policy.PREVIEW_MIN_STRENGTH``)."""
    w, h = im.size
    block = policy.strength / 100 * max(w, h)
    if policy.mode == "blur":
        return im.filter(ImageFilter.GaussianBlur(block))
    # floor, not round: a block is never smaller than asked
    cells = (max(1, math.floor(w / block)), max(1, math.floor(h / block)))
    return im.resize(cells, Image.Resampling.BOX).resize((w, h), Image.Resampling.NEAREST)


def make_preview(
    small: Image.Image, boxes: Sequence[tuple[int, int, int, int]], policy: PreviewPolicy
) -> bytes:
    """The encoded preview: ``small`` obscured, then ``boxes`` (preview px) blocked out."""
    out = obscure(small, policy)
    draw = ImageDraw.Draw(out)
    for x0, y0, x1, y1 in boxes:
        if x1 > x0 and y1 > y0:
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=MASK_COLOUR)
    buf = io.BytesIO()
    if FORMAT == "webp":
        out.save(buf, "WEBP", quality=QUALITY, method=4)
    else:
        out.save(buf, "JPEG", quality=QUALITY, optimize=True)
    return buf.getvalue()


@dataclass
class _Kept:
    evidence: Evidence
    small: Image.Image  # preview size, not yet obscured
    boxes: list[tuple[int, int, int, int]]
    timestamp_ms: float | None
    page: int | None


class PreviewKeeper:
    """The preview-size pixels of the frames that are the aggregate's evidence so far, and the
    boxes to block out on each; one per item screened with previews."""

    def __init__(self, policy: PreviewPolicy, minor: float) -> None:
        self.policy = policy
        self.minor = minor  # the child-safety threshold on P(minor)
        self._kept: list[_Kept] = []
        self.ms = 0.0  # time spent keeping and making previews

    @property
    def nbytes(self) -> int:
        """Pixels held now (a measure of the keeper's memory)."""
        return sum(k.small.width * k.small.height * 3 for k in self._kept)

    def offer(
        self,
        rgb: NDArray[np.uint8],
        width: int,
        height: int,
        faces: Sequence[Face],
        evidence: Sequence[Evidence],
        timestamp_ms: float | None,
        page: int | None,
    ) -> None:
        """After the aggregate took this frame: keep it if it entered ``evidence`` (the one
        entry not kept yet), drop what fell out. ``width``/``height``: the upright original's
        size, which face boxes are in."""
        t = time.perf_counter()
        kept = [k for k in self._kept if any(k.evidence is e for e in evidence)]
        new = [e for e in evidence if not any(k.evidence is e for k in kept)]
        if new:
            small = downscale(rgb, self.policy.size)
            scale = small.width / max(1, width)
            every = self.policy.faces == "all"
            boxes = [
                mask_box(f.box, scale, small.width, small.height)
                for f in masked_faces(faces, self.minor, every)
            ]
            kept.append(_Kept(new[0], small, boxes, timestamp_ms, page))
        order = {id(e): i for i, e in enumerate(evidence)}
        self._kept = sorted(kept, key=lambda k: order[id(k.evidence)])  # most severe first
        self.ms += (time.perf_counter() - t) * 1e3

    def finish(self, verdict: Verdict, screened: bool) -> tuple[PreviewInfo, tuple[Preview, ...]]:
        """The previews for the item's final ``verdict``, most severe frame first, and what the
        report says of them; the kept pixels are released."""
        p = self.policy
        kept, self._kept = self._kept, []

        def none(reason: str) -> tuple[PreviewInfo, tuple[Preview, ...]]:
            return PreviewInfo(False, reason, p.mode, p.strength), ()

        if not screened:
            return none("unscreenable: nothing trustworthy to show")
        if VERDICTS.index(verdict) < VERDICTS.index(p.when):
            return none(f"verdict {verdict} is under preview.when {p.when}")
        previews = tuple(
            Preview(make_preview(k.small, k.boxes, p), FORMAT, k.small.width, k.small.height,
                    k.timestamp_ms, k.page, len(k.boxes))
            for k in kept
        )
        frames = tuple(
            PreviewFrame(v.timestamp_ms, v.page, v.width, v.height, v.faces_masked)
            for v in previews
        )
        reason = f"verdict {verdict} reaches preview.when {p.when}"
        return PreviewInfo(bool(previews), reason, p.mode, p.strength, FORMAT, frames), previews
