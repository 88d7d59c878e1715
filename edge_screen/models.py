"""The model set: the bundle's chosen variants, read and verified once, from which any number of
interpreter sets are made (one per worker; interpreters are not thread-safe).

It also holds the bundle to the policy: a bundle that cannot produce a signal the child-safety
rule needs is refused unless the policy says, explicitly, that it screens without it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from .backends import get_backend
from .bundle import open_bundle
from .errors import BundleError
from .infer import Model
from .landmarks import ShapePredictor
from .manifest import CenterFaceOutput, ClassifierOutput, FaceDetectorOutput, ModelSpec, Variant
from .options import ScreenerOptions
from .policy import Policy
from .signals import Landmarker, SignalExtractor

log = logging.getLogger("edge_screen")


@dataclass
class Worker:
    """One set of interpreters and the lock that serialises their use."""

    extractor: SignalExtractor
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelSet:
    """The chosen variant of every bundle model, with the bytes every interpreter set shares."""

    def __init__(self, opts: ScreenerOptions, policy: Policy) -> None:
        self.options = opts
        self.bundle = open_bundle(opts.bundle, opts.store, opts.trusted_keys)
        self._backend = get_backend(opts.backend)
        self.versions: dict[str, str] = {}  # model id -> "<version>/<variant>", for reports
        # Model bytes and the landmark cascade are read-only: every worker's interpreters share
        # them (each interpreter still has its own arena and packed weights, ~30 MB a set).
        self._chosen: list[tuple[ModelSpec, Variant, bytes]] = []
        self._dense: list[Model] | None = None  # made once, shared: see _shared_dense
        self._dense_lock = threading.Lock()
        self._landmarker: Landmarker | None = None
        unknown = set(opts.variants) - {spec.id for spec in self.bundle.manifest.models}
        if unknown:
            raise BundleError(f"variants named for models the bundle has not: {sorted(unknown)}")
        for spec in self.bundle.manifest.models:
            variant = self.bundle.select(spec, opts.variants.get(spec.id))
            self.versions[spec.id] = f"{spec.version}/{variant.name}"
            content = self.bundle.model_bytes(variant)
            if spec.task == "face_landmarks":
                self._landmarker = Landmarker(spec, ShapePredictor.from_npz(content))
            else:
                self._chosen.append((spec, variant, content))
        for spec, _, _ in self._chosen:
            a = spec.input.alignment if spec.input else None
            if a is not None and a.source == "landmarks" and self._landmarker is None:
                raise BundleError(f"{spec.id} aligns faces by landmarks; the bundle has none")
        self._check_face_threshold(opts.face_threshold)
        self._check_face_strategy(opts.faces)
        self.signals = self._signals()
        missing = policy.requires(self.signals)
        if missing:
            raise BundleError(
                f"the bundle at {self.bundle.root} cannot produce {', '.join(missing)}, which the "
                "child-safety rule needs; use a bundle that does, or a policy that says "
                f"explicitly that it screens without them: screen_without = {list(missing)}"
            )
        self.unused_rules = policy.unused(self.signals)
        for reason in self.unused_rules:
            log.warning("policy rule %r can never match: no model of the bundle feeds it", reason)

    def _check_face_threshold(self, threshold: float | None) -> None:
        """A detector threshold above the manifest's finds fewer faces, so fewer minors: an
        option may lower it (more faces, more ages), never raise it."""
        if threshold is None:
            return
        for spec, _, _ in self._chosen:
            out = spec.output
            if isinstance(out, FaceDetectorOutput) and threshold > out.score_threshold:
                raise ValueError(
                    f"face_threshold {threshold:g} is above {spec.id}'s detector threshold: "
                    "it would miss faces (and minors); it may only be lowered"
                )

    def _check_face_strategy(self, strategy: str) -> None:
        """A strategy the bundle cannot run is an error, not a quiet fallback; and a second
        detector's faces need the landmark cascade (its keypoints are not the SSD's)."""
        dense = [s for s, _, _ in self._chosen if isinstance(s.output, CenterFaceOutput)]
        if strategy == "centerface" and not dense:
            raise BundleError("faces='centerface': the bundle has no CenterFace model")
        for spec, _, _ in self._chosen:
            a = spec.input.alignment if spec.input else None
            if dense and a is not None and a.source == "detector":
                raise BundleError(f"{spec.id} aligns faces by the detector's keypoints, which a "
                                  "CenterFace detector does not share; use a landmark model")

    def _signals(self) -> frozenset[str]:
        """The signals this model set can produce."""
        tasks = {spec.task for spec, _, _ in self._chosen}
        found = {"minor"} if {"face_detection", "age_estimation"} <= tasks else set()
        for spec, _, _ in self._chosen:
            if isinstance(spec.output, ClassifierOutput):
                found.add(spec.output.signal)
        return frozenset(found)

    def worker(self, threads: int) -> Worker:
        """A fresh set of interpreters for the chosen variants, with its own lock."""
        opts = self.options
        strategy = None if opts.faces == "auto" else opts.faces
        models = [
            Model(spec, v, content, self._backend, threads)
            for spec, v, content in self._chosen
            if not isinstance(spec.output, CenterFaceOutput)
        ]
        if strategy != "tiles":  # tiles never run CenterFace: no interpreter for it
            models += self._shared_dense()
        extractor = SignalExtractor(
            models, self._landmarker, opts.max_faces, opts.face_threshold, opts.min_face,
            strategy=strategy, dense_lock=self._dense_lock,
        )
        return Worker(extractor)

    def _shared_dense(self) -> list[Model]:
        """The CenterFace interpreter every worker shares, under ``_dense_lock``: its arena is
        ~130 MB at 1024x768 (int8 with a float stem), one per worker would triple that; its
        pass is a small share of a photo's time, so workers seldom wait for it. It runs with
        all the screener's threads, since the lock lets one pass run at a time."""
        with self._dense_lock:
            if self._dense is None:
                self._dense = [
                    Model(spec, v, content, self._backend, self.options.threads)
                    for spec, v, content in self._chosen
                    if isinstance(spec.output, CenterFaceOutput)
                ]
            return self._dense
