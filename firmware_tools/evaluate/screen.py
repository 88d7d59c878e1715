"""One side of a comparison (a bundle, its variants, a policy) and the batch screener.

``ScreenBatch`` is the unit of work for both executors: the local process pool calls it on a
shard, Ray Data calls it as a class-based ``map_batches`` UDF (one instance, so one
``Screener``, per actor). It takes and returns ``pyarrow`` tables; every item gives exactly one
row, an unscreenable one included (``error`` set, the policy's unscreenable verdict).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_screen import (
    EdgeScreenError,
    MediaInfo,
    ReportError,
    Screener,
    ScreenerOptions,
    ScreeningReport,
)
from edge_screen.version import __version__

from .corpus import opened

if TYPE_CHECKING:
    import pyarrow as pa

# What an item that could not even be opened shows of itself.
UNOPENED = MediaInfo("unknown", None, None, None, 0)


@dataclass(frozen=True)
class Side:
    """What screens one side: a bundle directory (None: the shipped one), model id -> variant
    overrides, and a policy file (None: the default policy). Picklable, for the workers."""

    bundle: str | None = None
    variants: tuple[tuple[str, str], ...] = ()
    policy: str | None = None

    def options(self) -> ScreenerOptions:
        # One thread, one item at a time: the executors parallelise across items (workers).
        return ScreenerOptions(bundle=self.bundle, variants=dict(self.variants),
                               policy=self.policy, threads=1, workers=1)

    def describe(self, screener: Screener) -> dict[str, Any]:
        """What the side's results depend on; its hash names the side's run directory, so a
        rerun (or a later comparison with the same baseline) reuses the finished shards."""
        root = Path(screener.bundle.root)
        policy = Path(self.policy).read_bytes() if self.policy else b"default"
        return {
            "bundle": str(root),
            "bundle_version": screener.bundle.manifest.bundle_version,
            "manifest_sha256": hashlib.sha256((root / "manifest.json").read_bytes()).hexdigest(),
            "models": dict(screener.models),
            "variants": dict(self.variants),
            "policy": self.policy or "default",
            "policy_sha256": hashlib.sha256(policy).hexdigest(),
            "edge_screen": __version__,
        }


def run_key(description: Mapping[str, Any]) -> str:
    """A short stable name for a side's results (see ``Side.describe``)."""
    what = {k: v for k, v in description.items() if k not in ("bundle", "variants", "policy")}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def parse_variants(items: list[str] | tuple[str, ...] | None) -> tuple[tuple[str, str], ...]:
    """``["face_detector=int8", "open_nsfw=fp32,graphic=fp32"]`` -> sorted pairs."""
    pairs: dict[str, str] = {}
    for text in items or ():
        for part in filter(None, (p.strip() for p in text.split(","))):
            model, sep, variant = part.partition("=")
            if not sep or not model or not variant:
                raise ValueError(f"--variants takes MODEL=VARIANT, got {part!r}")
            pairs[model] = variant
    return tuple(sorted(pairs.items()))


def schema() -> pa.Schema:
    """One row per item and side: the report's numbers, no pixels."""
    import pyarrow as pa

    face = pa.struct([("x0", pa.float64()), ("y0", pa.float64()), ("x1", pa.float64()),
                      ("y1", pa.float64()), ("score", pa.float64()), ("age", pa.float64()),
                      ("p_minor", pa.float64()), ("t_ms", pa.float64())])
    return pa.schema([
        ("key", pa.string()), ("uri", pa.string()), ("shard", pa.int32()),
        ("verdict", pa.string()), ("reasons", pa.list_(pa.string())),
        ("error", pa.string()),  # the report's error code; null when screened
        ("signals", pa.map_(pa.string(), pa.float64())),
        ("faces", pa.list_(face)), ("faces_unaged", pa.int32()),
        ("kind", pa.string()), ("frames", pa.int32()), ("sha256", pa.string()),
        ("ms", pa.float64()),  # wall time of this item on its worker
    ])


def row(report: ScreeningReport, key: str, uri: str, shard: int, ms: float) -> dict[str, Any]:
    return {
        "key": key, "uri": uri, "shard": shard,
        "verdict": report.verdict, "reasons": list(report.reasons),
        "error": None if report.error is None else report.error.code,
        "signals": dict(report.signals),
        "faces": [{"x0": f.box[0], "y0": f.box[1], "x1": f.box[2], "y1": f.box[3],
                   "score": f.score, "age": f.age, "p_minor": f.p_minor, "t_ms": f.timestamp_ms}
                  for f in report.faces],
        "faces_unaged": report.faces_unaged, "kind": report.media.kind,
        "frames": report.media.frames_screened, "sha256": report.sha256, "ms": ms,
    }


class ScreenBatch:
    """Screens a batch (``key``, ``uri``, ``shard`` columns) with one side's ``Screener``."""

    def __init__(self, side: Side) -> None:
        self.side = side
        self.screener = Screener(side.options())

    def screen(self, key: str, uri: str, shard: int) -> dict[str, Any]:
        t = time.perf_counter()
        try:
            with opened(uri) as media:
                report = self.screener.screen(media)
        except (OSError, ValueError, EdgeScreenError) as exc:  # a URI that cannot be opened
            d = self.screener.policy.unscreened("io")
            report = ScreeningReport(
                uri, d.verdict, d.reasons, signals={}, faces=(), media=UNOPENED, models={},
                timing_ms={}, error=ReportError("io", f"{type(exc).__name__}: {exc}"))
        return row(report, key, uri, shard, (time.perf_counter() - t) * 1e3)

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        cols = batch.to_pydict()
        rows = [self.screen(k, u, int(s))
                for k, u, s in zip(cols["key"], cols["uri"], cols["shard"], strict=True)]
        return pa.Table.from_pylist(rows, schema=schema())

