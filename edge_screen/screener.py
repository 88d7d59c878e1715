"""``Screener``: the public entry point that runs source -> decode -> signals -> policy -> report.

MediaPipe-style: ``ScreenerOptions`` + ``Screener.create_from_options`` (or ``Screener()``), usable
as a context manager. One ``Screener`` serialises its own inference with a lock, so sharing it
between threads is safe; for parallel screening give each thread its own ``Screener``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from .backends import get_backend
from .bundle import Bundle
from .decode import DecodedImage, ImageLimits, decode_image
from .errors import BundleError, EdgeScreenError, MediaError, ModelError, UnsupportedMedia
from .infer import Model
from .landmarks import ShapePredictor
from .policy import Policy
from .probe import probe
from .report import CORE_SIGNALS, MediaInfo, ReportError, ScreeningReport
from .signals import Landmarker, SignalExtractor
from .source import MediaInput, describe, read_source

log = logging.getLogger("edge_screen")


@dataclass(frozen=True)
class ScreenerOptions:
    """Everything a ``Screener`` can be told; the defaults suit a phone or a Pi."""

    bundle: str | Path | None = None  # None: the bundle shipped in the package
    policy: str | Path | Policy | None = None  # None: the default policy
    backend: str = "auto"  # "litert", "tflite-runtime" or "auto"
    threads: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))
    variants: Mapping[str, str] = field(default_factory=dict)  # model id -> variant name
    max_bytes: int = 64 * 1024 * 1024
    image_limits: ImageLimits = field(default_factory=ImageLimits)
    working_min_side: int = 512  # decode no larger than this short side (faces need detail)
    max_faces: int = 8  # faces age-estimated per frame, most confident first
    face_threshold: float | None = None  # None: the manifest's threshold


@dataclass(frozen=True)
class _Prepared:
    name: str
    sha256: str | None
    image: DecodedImage | None
    error: MediaError | None
    decode_ms: float


class Screener:
    """Screens photos on the device and returns a ``ScreeningReport`` per input."""

    def __init__(self, options: ScreenerOptions | None = None, **kwargs: object) -> None:
        opts = options or ScreenerOptions(**kwargs)  # type: ignore[arg-type]
        self.options = opts
        self.bundle = Bundle.open(opts.bundle)
        p = opts.policy
        self.policy = p if isinstance(p, Policy) else Policy.load(p) if p else Policy.default()
        backend = get_backend(opts.backend)
        models, landmarker, chosen = [], None, {}
        for spec in self.bundle.manifest.models:
            variant = self.bundle.select(spec, opts.variants.get(spec.id))
            chosen[spec.id] = f"{spec.version}/{variant.name}"
            content = self.bundle.model_bytes(variant)
            if spec.task == "face_landmarks":
                landmarker = Landmarker(spec, ShapePredictor.from_npz(content))
            else:
                models.append(Model(spec, variant, content, backend, opts.threads))
        for m in models:
            a = m.input.alignment
            if a is not None and a.source == "landmarks" and landmarker is None:
                raise BundleError(f"{m.spec.id} aligns faces by landmarks; the bundle has none")
        self.models = chosen
        self._extractor = SignalExtractor(models, landmarker, opts.max_faces, opts.face_threshold)
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def create_from_options(cls, options: ScreenerOptions) -> Screener:
        return cls(options)

    def __enter__(self) -> Screener:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the interpreters; screening afterwards raises ``EdgeScreenError``."""
        self._closed = True
        self._extractor = SignalExtractor([])

    def screen(self, media: MediaInput) -> ScreeningReport:
        """Screen one photo (path, bytes or binary file). Never raises for bad media."""
        return self._finish(self._prepare(media), time.perf_counter())

    def screen_many(self, items: Iterable[MediaInput]) -> Iterator[ScreeningReport]:
        """Screen many inputs in order, decoding the next while the models run on this one."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-screen-decode") as pool:
            it = iter(items)
            pending: Future[_Prepared] | None = None
            first = next(it, None)
            if first is not None:
                pending = pool.submit(self._prepare, first)
            while pending is not None:
                start = time.perf_counter()
                prepared = pending.result()
                nxt = next(it, None)
                pending = pool.submit(self._prepare, nxt) if nxt is not None else None
                yield self._finish(prepared, start)

    # --- stages --------------------------------------------------------------------------

    def _prepare(self, media: MediaInput) -> _Prepared:
        """Read, sniff and decode: the half that can run ahead of inference."""
        t = time.perf_counter()
        name, sha = describe(media), None
        try:
            src = read_source(media, self.options.max_bytes)
            sha = src.sha256
            found = probe(src.data[:64])
            if found.kind != "image":
                raise UnsupportedMedia(f"{found.format} video: this version screens photos only")
            img = decode_image(
                src.data, found, self.options.image_limits, self.options.working_min_side
            )
            return _Prepared(name, sha, img, None, (time.perf_counter() - t) * 1e3)
        except MediaError as exc:
            return _Prepared(name, sha, None, exc, (time.perf_counter() - t) * 1e3)

    def _finish(self, p: _Prepared, start: float) -> ScreeningReport:
        if self._closed:
            raise EdgeScreenError("this Screener is closed; create a new one")
        timing = {"decode": p.decode_ms}
        if p.image is None:
            assert p.error is not None
            return self._failed(p, p.error.code, str(p.error), timing, start)
        img = p.image
        try:
            with self._lock:
                sig = self._extractor.extract(img.rgb, img.width, img.height)
        except ModelError as exc:
            return self._failed(p, exc.code, str(exc), timing, start)
        except Exception as exc:  # a bug must not take the caller down: report it, log it
            log.exception("internal error while screening %s", p.name)
            return self._failed(p, "internal", f"{type(exc).__name__}: {exc}", timing, start)
        decision = self.policy.decide(sig.scores)
        timing.update(sig.timing_ms)
        timing["total"] = p.decode_ms + (time.perf_counter() - start) * 1e3
        media = MediaInfo("image", img.format, img.width, img.height, 1)
        return ScreeningReport(
            p.name,
            decision.verdict,
            decision.reasons,
            sig.scores,
            sig.faces,
            media,
            self.models,
            timing,
            p.sha256,
        )

    def _failed(
        self, p: _Prepared, code: str, message: str, timing: dict[str, float], start: float
    ) -> ScreeningReport:
        decision = self.policy.unscreened(code)
        timing["total"] = p.decode_ms + (time.perf_counter() - start) * 1e3
        return ScreeningReport(
            p.name,
            decision.verdict,
            decision.reasons,
            dict.fromkeys(CORE_SIGNALS),
            (),
            MediaInfo("unknown", None, None, None, 0),
            self.models,
            timing,
            p.sha256,
            ReportError(code, message),
        )
