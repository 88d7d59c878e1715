"""The frame pipeline every input runs through: frames -> signals -> aggregate -> policy -> report.

A photo is a clip of one frame, a video or an animation a clip of its sampled frames; both take
the same path, so a rule about failures, worst scores or evidence is written once. A failure
after some frames were screened keeps what they showed: the verdict is the worse of theirs and
the unscreenable one, with the error attached.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import replace

from .aggregate import Aggregator
from .errors import CorruptMedia, EdgeScreenError, MediaError, ModelError
from .faces import TileScan
from .frames import Clip, ClipInfo, Frame, SamplingOptions, check_deadline
from .hashes import FrameHashes, hashed
from .known import KnownContent
from .models import Worker
from .policy import Policy
from .prepare import Prepared, StillClip
from .preview import Preview, PreviewKeeper
from .report import CORE_SIGNALS, KNOWN_MATCH, Face, MediaInfo, ReportError, ScreeningReport

log = logging.getLogger("edge_screen")


@contextmanager
def _ahead(frames: Iterator[Frame], decode_ms: list[float]) -> Iterator[Iterator[Frame]]:
    """Frame N+1 decodes on a worker thread while the models run on frame N (both release the
    GIL); the time spent decoding is added to ``decode_ms[0]``."""

    def pull() -> Frame | None:
        t = time.perf_counter()
        frame = next(frames, None)
        decode_ms[0] += (time.perf_counter() - t) * 1e3
        return frame

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-screen-frames")
    pending = pool.submit(pull)

    def gen() -> Iterator[Frame]:
        nonlocal pending
        while (frame := pending.result()) is not None:
            pending = pool.submit(pull)
            yield frame

    try:
        yield gen()
    finally:
        wait([pending])  # the generator may be running on the worker: let it finish first
        pool.shutdown()


class Pipeline:
    """Runs prepared inputs through a worker's interpreters and the policy."""

    def __init__(self, policy: Policy, sampling: SamplingOptions, models: Mapping[str, str],
                 known: KnownContent | None = None, hashing: bool = True):
        self.policy = policy
        self.hashing = hashing  # False: no PDQ (``ScreenerOptions.hashes``), so no hash list
        self.sampling = sampling
        self.models = dict(models)
        self.known = known  # the bundle's hash lists, if it has any

    def run(self, p: Prepared, worker: Worker, start: float) -> ScreeningReport:
        """The report for one prepared input; ``start`` is when its screening began."""
        return self._run(p, worker, start, None)

    def run_with_previews(
        self, p: Prepared, worker: Worker, start: float
    ) -> tuple[ScreeningReport, tuple[Preview, ...]]:
        """The report and the reviewer previews (``preview``) of one prepared input; the
        report's ``preview`` says which were made and why."""
        keeper = PreviewKeeper(self.policy.preview, self.policy.child_safety.when["minor"])
        report = self._run(p, worker, start, keeper)
        t = time.perf_counter()
        info, previews = keeper.finish(report.verdict, report.error is None)
        ms = keeper.ms + (time.perf_counter() - t) * 1e3
        timing = {**report.timing_ms, "preview": ms}
        timing["total"] += ms - keeper.ms  # the keeper's time while screening is in it already
        return replace(report, preview=info, timing_ms=timing), previews

    def _run(
        self, p: Prepared, worker: Worker, start: float, keeper: PreviewKeeper | None
    ) -> ScreeningReport:
        timing = {"decode": p.decode_ms - p.hash_ms, "hash": p.hash_ms}
        if p.error is not None or (p.image is None and p.clip is None):
            return self.unscreened(p, p.error or EdgeScreenError("nothing was prepared"),
                                   start, timing)
        clip: Clip = (p.clip if p.clip is not None
                      else StillClip(p.image, p.pdq, p.turned))  # type: ignore[arg-type]
        # Previews need at least one evidence frame, whatever top_k the report lists.
        agg = Aggregator(self.policy, max(self.sampling.top_k, keeper is not None))
        hashes = FrameHashes() if self.hashing else None
        error: ReportError | None = None
        try:
            # The budget covers prepare's own time (hashing, decoding) but not the time a
            # prepared item waited for the models (screen_many prepares the next one ahead).
            deadline = start + self.sampling.time_budget_s - p.decode_ms / 1e3
            self._screen(clip, agg, hashes, worker, deadline, timing, keeper)
        except (MediaError, ModelError) as exc:
            error = ReportError(exc.code, str(exc))
        except Exception as exc:  # a bug must not take the caller down: report it, log it
            log.exception("internal error while screening %s", p.name)
            error = ReportError("internal", f"{type(exc).__name__}: {exc}")
        finally:
            clip.close()
        return self._report(p, clip, agg, hashes, timing, start, error)

    def _screen(
        self,
        clip: Clip,
        agg: Aggregator,
        hashes: FrameHashes | None,
        worker: Worker,
        deadline: float,
        timing: dict[str, float],
        keeper: PreviewKeeper | None = None,
    ) -> None:
        """Screen the clip's sampled frames into ``agg``, their PDQ into ``hashes``; stop early
        once the verdict cannot change. Raises the clip's or the models' typed errors. Each
        picture of the input (video stream, page) has its own small-face tile scan, as its
        frames follow each other. Frames are hashed as they are read (ahead of inference for
        videos and animations). With a preview ``keeper``, the evidence frames' pixels are
        kept at preview size as they enter the evidence."""
        sampling = self.sampling
        scans: defaultdict[int, TileScan] = defaultdict(lambda: TileScan(sampling.tiles_per_frame))
        decode_ms, hash_ms = [0.0], [0.0]
        frames = clip.frames(sampling, deadline)
        still = clip.info.kind == "image"
        source = frames if hashes is None else hashed(frames, hash_ms, still=still)
        reader = _inline(source) if still else _ahead(source, decode_ms)
        try:
            with reader as source:
                for frame in source:
                    info = clip.info
                    w, h = frame.width or info.width, frame.height or info.height
                    with worker.lock:
                        sig = worker.extractor.extract(
                            frame.rgb, w, h, scans[frame.part], detail=frame.detail
                        )
                    agg.add(frame.timestamp_ms, sig)
                    if hashes is not None:
                        hashes.add(frame)
                    if keeper is not None:
                        self._keep(keeper, clip.info, frame, w, h, sig.faces, agg)
                    if sampling.early_stop and agg.settled:
                        break
                    check_deadline(deadline)
        finally:
            frames.close()
            # overlapped with inference (videos, animations): not in the total
            timing["decode"] += decode_ms[0] - hash_ms[0]
            timing["hash"] += hash_ms[0]
        if agg.frames == 0:
            raise CorruptMedia(f"no frame of the {clip.info.format} could be decoded")

    @staticmethod
    def _keep(
        keeper: PreviewKeeper,
        info: ClipInfo,
        frame: Frame,
        w: int,
        h: int,
        faces: tuple[Face, ...],
        agg: Aggregator,
    ) -> None:
        still = info.kind == "image"
        page = frame.part if still and info.pages > 1 else None
        when = None if still else frame.timestamp_ms
        keeper.offer(frame.rgb, w, h, faces, agg.evidence, when, page)

    def unscreened(
        self, p: Prepared, why: EdgeScreenError, start: float,
        timing: dict[str, float] | None = None,
    ) -> ScreeningReport:
        """The report of an item no frame of which was screened: the policy's unscreenable
        verdict for ``why``'s code (also for an item an isolated worker never answered)."""
        timing = {"decode": 0.0, "hash": 0.0} if timing is None else timing
        return self._report(p, None, None, None, timing, start, ReportError(why.code, str(why)))

    def _report(
        self,
        p: Prepared,
        clip: Clip | None,
        agg: Aggregator | None,
        hashes: FrameHashes | None,
        timing: dict[str, float],
        start: float,
        error: ReportError | None,
    ) -> ScreeningReport:
        """What the frames screened showed (if any), and the error that stopped them (if any)."""
        timing["total"] = p.decode_ms + (time.perf_counter() - start) * 1e3
        if error is not None and p.name and p.name in error.message:
            # The report travels with the upload: no local path, also not inside a message
            # (FFmpeg and the OS name the file in theirs).
            error = ReportError(error.code, error.message.replace(p.name, "<input>"))
        if agg is None or clip is None or agg.frames == 0:
            assert error is not None
            d = self.policy.unscreened(error.code)
            media = MediaInfo("unknown", None, None, None, 0, streams=0, pages=0)
            signals = dict.fromkeys((*CORE_SIGNALS, KNOWN_MATCH))
            return ScreeningReport(
                p.name,
                d.verdict,
                d.reasons,
                signals,
                (),
                media,
                self.models,
                timing,
                p.sha256,
                error,
            )
        timing.update(agg.timing_ms)
        d = agg.decision if error is None else self.policy.unscreened(error.code, agg.decision)
        info = clip.info
        several = info.kind != "image"
        media = MediaInfo(
            info.kind,
            info.format,
            info.width,
            info.height,
            agg.frames,
            info.duration_s,
            info.fps,
            clip.frames_decoded,
            dict(agg.worst_ms) if several else {},
            agg.evidence[: self.sampling.top_k] if several else (),
            info.streams,
            info.covers,
            info.pages,
            info.thumbnail,
        )
        scores = dict(agg.scores)
        known = None
        if self.known is not None and hashes is not None:
            t = time.perf_counter()
            known = self.known.check(hashes.frames, info.kind, self.policy.known_match.video_share)
            d = self.policy.known_match.apply(d, known.reasons)
            timing["match"] = (time.perf_counter() - t) * 1e3
        scores[KNOWN_MATCH] = None if known is None else known.signal
        matches = None if known is None else known.matches
        faces = agg.faces if several else tuple(replace(f, timestamp_ms=None) for f in agg.faces)
        return ScreeningReport(
            p.name,
            d.verdict,
            d.reasons,
            scores,
            faces,
            media,
            self.models,
            timing,
            p.sha256,
            error,
            agg.unaged,
            None if hashes is None else hashes.result(info.kind, matches),
        )


@contextmanager
def _inline(frames: Iterator[Frame]) -> Iterator[Iterator[Frame]]:
    """A photo's one frame is already decoded: no thread to read it ahead."""
    yield frames
