"""Known-content matching: the PDQ hashes of the frames screened against a bundle's hash lists.

What is compared (docs/report.md#known-content):

- a still: every page screened (``hashes.pages``, page 0 alone for a one-picture still) in its
  eight orientations (the upright picture and its rotations and flips, ``hashes.still_hash``):
  a list built from a file's stored pixels holds a photo with an EXIF orientation turned, and a
  turned or mirrored copy is an old way round a matcher;
- a video or an animation: every screened frame, upright only (vPDQ's way), before vPDQ's
  de-duplication drops any. It matches when at least one frame matches and the matched frames
  are at least ``KnownMatchRule.video_share`` of the hashable ones (default 0: any one frame).

A hash matches an entry within ``MATCH_DISTANCE`` bits; a hash of quality under ``MIN_QUALITY``
is never compared (flat or tiny pictures hash alike whatever they show). Both are Meta's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .bundle import Bundle
from .errors import BundleError
from .hashes import FrameHash
from .hashindex import MAX_RADIUS, HashIndex

log = logging.getLogger("edge_screen")

MATCH_DISTANCE = MAX_RADIUS  # 31, Meta's PDQ match threshold
MIN_QUALITY = 50  # Meta's: hashes of quality 49 or less are not matched
MAX_MATCHES = 32  # reported per input, closest first; the reasons count them all


@dataclass(frozen=True)
class Match:
    """A screened picture within ``MATCH_DISTANCE`` of an entry of a hash list: a still's page
    (in an orientation) or a video's frame (its time)."""

    list: str
    label: str
    entry: int  # the entry's 0-based position in the list file
    distance: int
    page: int | None = None  # a still's
    transform: str = "original"  # a still's orientation that matched (``pdq.DIHEDRAL_NAMES``)
    timestamp_ms: float | None = None  # a video's or an animation's

    def to_dict(self) -> dict[str, Any]:
        return {
            "list": self.list,
            "label": self.label,
            "entry": self.entry,
            "distance": self.distance,
            "page": self.page,
            "transform": self.transform,
            "timestamp_ms": None if self.timestamp_ms is None else round(self.timestamp_ms),
        }


@dataclass(frozen=True)
class KnownResult:
    """The ``known_match`` signal (1.0 matched, 0.0 checked and not) and what matched."""

    signal: float
    matches: tuple[Match, ...]  # at most MAX_MATCHES, closest first
    reasons: tuple[str, ...]  # one per list matched, for ``KnownMatchRule.apply``


@dataclass(frozen=True)
class HashList:
    id: str
    label: str
    index: HashIndex


class KnownContent:
    """A bundle's hash lists, read, verified and indexed once per ``Screener``."""

    def __init__(self, lists: Sequence[HashList]) -> None:
        self.lists = tuple(lists)

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> KnownContent | None:
        """The bundle's lists, each checked against the manifest (``HashMismatch`` when one
        was altered); None when the bundle has none."""
        specs = bundle.manifest.hash_lists
        if not specs:
            return None
        lists = []
        for spec in specs:
            t = time.perf_counter()
            data = bundle.hash_list_bytes(spec)
            try:
                index = HashIndex.from_bytes(data)
            except ValueError as exc:
                raise BundleError(f"hash list {spec.id}: {exc}") from exc
            if len(index) != spec.count:  # the manifest's size says so too: never fewer
                raise BundleError(f"hash list {spec.id}: {len(index)} entries, manifest says "
                                  f"{spec.count}")
            lists.append(HashList(spec.id, spec.label, index))
            log.info("hash list %s (%s): %d entries indexed in %.0f ms", spec.id, spec.label,
                     len(index), (time.perf_counter() - t) * 1e3)
        return cls(lists)

    def check(self, frames: Sequence[FrameHash], kind: str, video_share: float) -> KnownResult:
        """Match the screened ``frames`` (``FrameHashes.frames``) of a clip of ``kind``."""
        tally = self.tally(still=kind == "image")
        for f in frames:
            tally.add(f)
        return tally.result(video_share)

    def tally(self, still: bool) -> KnownTally:
        """An empty running match of a still's pages or a video's (or live stream's) frames."""
        return KnownTally(self.lists, still)


class KnownTally:
    """Frames matched one at a time, as they are screened (a live stream's, a clip's): the
    share of hashable frames that matched, and the closest matches."""

    def __init__(self, lists: Sequence[HashList], still: bool) -> None:
        self.lists, self.still = tuple(lists), still
        self.frames = self.hashable = self.matched = 0
        self._found: list[Match] = []  # the closest, some of each list matched
        self._per_list = dict.fromkeys((hl.id for hl in self.lists), 0)  # frames matched

    def add(self, f: FrameHash) -> None:
        """One frame; a still's pages come in order (page i is the i-th added)."""
        page = self.frames
        self.frames += 1
        if f.pdq is None or f.quality < MIN_QUALITY:
            return
        self.hashable += 1
        variants = (("original", f.pdq), *f.turned) if self.still else (("original", f.pdq),)
        hits = [m for hl in self.lists if (m := _closest(hl, variants, page, f, self.still))]
        self.matched += bool(hits)
        for m in hits:
            self._per_list[m.list] += 1
        self._found += hits
        if len(self._found) > 4 * MAX_MATCHES:  # a long stream: each list's closest only
            self._found = [m for hl in self.lists for m in _closest_first(
                [m for m in self._found if m.list == hl.id])[:MAX_MATCHES]]

    def result(self, video_share: float) -> KnownResult:
        """``known_match`` so far: a still matches on any page; a video when the matched frames
        are at least ``video_share`` of the hashable ones."""
        found, still = self._found, self.still
        share = self.matched / self.hashable if self.hashable else 0.0
        hit = self.matched > 0 and (still or share >= video_share)
        reasons = tuple(_reason(found, lst, still, self._per_list[lst.id], self.hashable)
                        for lst in self.lists if hit and self._per_list[lst.id])
        return KnownResult(1.0 if hit else 0.0, tuple(_closest_first(found)[:MAX_MATCHES]),
                           reasons)


def _closest_first(found: Sequence[Match]) -> list[Match]:
    return sorted(found, key=lambda m: (m.distance, m.page or 0, m.timestamp_ms or 0.0))


def _closest(hl: HashList, variants: Sequence[tuple[str, Any]], page: int, f: FrameHash,
             still: bool) -> Match | None:
    """The closest entry of ``hl`` to any of the frame's ``variants`` (name, PdqHash)."""
    best: Match | None = None
    found = hl.index.query_many([h.to_bytes() for _, h in variants], MATCH_DISTANCE)
    for (name, _), (entries, distances) in zip(variants, found, strict=True):
        if len(entries) == 0:
            continue
        j = int(distances.argmin())
        if best is None or int(distances[j]) < best.distance:
            best = Match(hl.id, hl.label, int(entries[j]), int(distances[j]),
                         page if still else None, name,
                         None if still else f.timestamp_ms)
    return best


def _reason(found: Sequence[Match], hl: HashList, still: bool, matched: int, hashable: int
            ) -> str:
    mine = [m for m in found if m.list == hl.id]
    best = min(mine, key=lambda m: m.distance)
    if still:
        where = f"page {best.page}" + ("" if best.transform == "original"
                                       else f" {best.transform}")
    else:
        assert best.timestamp_ms is not None
        where = (f"{matched} of {hashable} hashable frames, closest at "
                 f"{best.timestamp_ms:.0f} ms")
    return f"{hl.label} (list {hl.id}, {where}, distance {best.distance})"
