"""Signals over the frames of a video, an animation or a live stream, folded into one verdict.

Every signal is the worst (highest) over the frames, with the time of the frame it came from:
one explicit frame is enough to hold an upload, and a likely minor anywhere together with sexual
content anywhere in the same video meets the child-safety rule. Because every signal can only
grow, a ``hold`` verdict cannot change with more frames: ``settled`` tells the caller to stop.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import replace

from .errors import ModelError
from .policy import VERDICTS, Decision, Policy
from .report import CORE_SIGNALS, Evidence, Face
from .signals import Signals


class Aggregator:
    """The running worst case over frames, and the running ``Decision`` of the policy."""

    def __init__(self, policy: Policy, top_k: int = 5) -> None:
        self.policy = policy
        self.top_k = top_k
        self.frames = 0
        self.unaged = 0  # most faces one frame had that could not be aged (possible minors)
        self.scores: dict[str, float | None] = dict.fromkeys(CORE_SIGNALS)
        self.worst_ms: dict[str, float] = {}
        self.timing_ms: dict[str, float] = {}
        self.decision = Decision("allow", ())
        self._evidence: list[tuple[tuple[float, ...], int, Evidence]] = []
        self._faces: tuple[Face, ...] = ()
        self._faces_rank = (-1.0, 0)

    @property
    def settled(self) -> bool:
        """True once the verdict is the most severe one: more frames cannot change it."""
        return self.decision.verdict == VERDICTS[-1]

    def add(self, timestamp_ms: float, sig: Signals) -> Decision:
        """Fold one frame's signals in; return the verdict over all frames so far.

        A non-finite signal, or one outside 0..1, is a ``ModelError`` and is not folded in: NaN
        compares false with everything, so it would stick as the worst value and hide every
        later frame's.
        """
        broken = [k for k, v in sig.scores.items() if v is not None and not math.isfinite(v)]
        if broken:
            raise ModelError(f"non-finite signal {', '.join(broken)} at {timestamp_ms:.0f} ms")
        # Every signal is a probability: a raw logit (a bundle with the wrong activation) could
        # sit below every threshold and pass as "nothing found".
        odd = [k for k, v in sig.scores.items() if v is not None and not -1e-4 <= v <= 1 + 1e-4]
        if odd:
            raise ModelError(f"signal {', '.join(odd)} is not a probability (outside 0..1)")
        self.frames += 1
        self.unaged = max(self.unaged, sig.unaged)
        for name, value in sig.scores.items():
            prev = self.scores.get(name)
            if value is not None and (prev is None or value > prev):
                self.scores[name] = value
                self.worst_ms[name] = timestamp_ms
            elif name not in self.scores:
                self.scores[name] = None
        for stage, ms in sig.timing_ms.items():
            self.timing_ms[stage] = self.timing_ms.get(stage, 0.0) + ms
        self._keep_evidence(timestamp_ms, sig.scores, sig.unaged)
        self._keep_faces(timestamp_ms, sig.faces)
        self.decision = self.policy.decide(self.scores, self.unaged)
        return self.decision

    def _keep_evidence(
        self, timestamp_ms: float, scores: Mapping[str, float | None], unaged: int
    ) -> None:
        verdict = self.policy.decide(scores, unaged).verdict
        content = [v for k, v in scores.items() if k != "minor" and v is not None]
        rank = (VERDICTS.index(verdict), max(content, default=0.0), scores.get("minor") or 0.0)
        item = (rank, -self.frames, Evidence(timestamp_ms, verdict, dict(scores)))
        if len(self._evidence) < self.top_k:
            heapq.heappush(self._evidence, item)
        elif self.top_k > 0:
            heapq.heappushpop(self._evidence, item)

    def _keep_faces(self, timestamp_ms: float, faces: tuple[Face, ...]) -> None:
        """Keep the faces of the frame with the likeliest minor, else of the frame with most."""
        if not faces:
            return
        rank = (max((f.p_minor or 0.0 for f in faces), default=0.0), len(faces))
        if rank > self._faces_rank:
            self._faces_rank = rank
            self._faces = tuple(replace(f, timestamp_ms=timestamp_ms) for f in faces)

    @property
    def faces(self) -> tuple[Face, ...]:
        return self._faces

    @property
    def evidence(self) -> tuple[Evidence, ...]:
        """The top-k frames, most severe first (ties: the earlier frame first)."""
        return tuple(e for _, _, e in sorted(self._evidence, reverse=True))
