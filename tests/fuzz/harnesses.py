"""Fuzz targets: each takes any bytes and asserts what must hold for every input.

A target returns quietly for an input handled as documented and raises (an ``AssertionError``
or the escaped exception) for a finding. ``run.py`` drives them with atheris (coverage-guided);
``tests/test_fuzz.py`` replays the seed corpus and every committed finding through them without
atheris, so a regression needs no fuzzer to show.

- ``screen``: ``Screener.screen(bytes)`` on one shared Screener, the real entry: it never raises,
  a report that could not be screened carries a known error code (never ``internal``, a bug,
  nor ``io`` for bytes in memory) and is never ``allow``; an ``allow`` was screened; the report's
  JSON is strict and round-trips.
- ``prepare``: the front half only (source, probe, decode, opening a clip and reading a few of its
  frames), no models: ~100x the executions a second of ``screen``. Only ``MediaError`` escapes a
  clip's frames; what ``prepare`` keeps is a ``MediaError`` or a decoded picture.
- ``policy``: ``Policy.from_toml``: only ``PolicyError``; a policy that loads keeps every
  invariant (child safety holds, the unscreenable and NaN are never allowed, known content held).
- ``manifest``: ``manifest_from_bytes``: only ``ManifestError``/``UnsafePath``; a manifest that
  parses names plain files only and holds no non-finite number (a NaN threshold matches nothing).
- ``report``: a ``ScreeningReport`` built from the bytes: ``to_json`` is strict JSON equal to
  ``to_dict`` with the documented keys, and refuses (never writes) a non-finite number.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import struct
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

# Keys of the report, as tests/conftest.py's REPORT_KEYS (docs/report.md), plus sha256.
REPORT_KEYS = frozenset(
    {"schema", "verdict", "reasons", "signals", "faces", "faces_unaged", "hashes", "preview",
     "media", "models", "timing_ms", "error", "sha256"}
)
_SCREENER: Any = None


def _screener() -> Any:
    """One Screener for every input, as a host app keeps one (created on first use)."""
    global _SCREENER
    if _SCREENER is None:
        from edge_screen import Screener

        _SCREENER = Screener(threads=1, workers=1)
    return _SCREENER


def _strict_json(text: str) -> Any:
    def refuse(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token} in a report")

    return json.loads(text, parse_constant=refuse)


def check_report(r: Any) -> None:
    """What every report ``screen()`` returns must satisfy, whatever the input."""
    from edge_screen import ScreeningReport
    from edge_screen.report import ERROR_CODES

    assert isinstance(r, ScreeningReport), type(r)
    assert r.verdict in ("allow", "review", "hold"), r.verdict
    if r.error is not None:
        assert r.error.code in ERROR_CODES, r.error
        assert r.error.code not in ("internal", "io"), r.error  # a bug; bytes are in memory
        assert r.verdict != "allow", r
    if r.verdict == "allow":
        assert r.error is None and r.media.frames_screened >= 1, r
    d = _strict_json(r.to_json())
    assert set(d) == REPORT_KEYS, sorted(d)
    assert d["verdict"] == r.verdict and (d["error"] is None) == (r.error is None)


def screen(data: bytes) -> None:
    check_report(_screener().screen(data))


# --- prepare: the decoders without the models -----------------------------------------------

FRAMES_READ = 6  # a clip's frames read per input: enough to reach the seek and fill paths


def _prepare_options() -> Any:
    from edge_screen import SamplingOptions, ScreenerOptions

    return ScreenerOptions(threads=1, workers=1, sampling=SamplingOptions(max_frames=FRAMES_READ))


_OPTIONS: Any = None


def prepare(data: bytes) -> None:
    global _OPTIONS
    from edge_screen.errors import CorruptMedia, MediaError, UnsupportedMedia
    from edge_screen.prepare import prepare as prepare_input
    from edge_screen.probe import probe

    if _OPTIONS is None:
        _OPTIONS = _prepare_options()
    try:
        found = probe(data[:64])
        assert found.kind in ("image", "video"), found
    except (CorruptMedia, UnsupportedMedia):
        pass
    p = prepare_input(data, _OPTIONS)
    if p.error is not None:
        assert isinstance(p.error, MediaError), f"internal error: {p.error!r}"
        assert p.image is None and p.clip is None
        return
    if p.image is not None:
        _check_rgb(p.image.rgb)
        assert p.image.width > 0 and p.image.height > 0
        return
    assert p.clip is not None
    deadline = time.perf_counter() + _OPTIONS.sampling.time_budget_s
    try:
        with contextlib.closing(p.clip.frames(_OPTIONS.sampling, deadline)) as frames:
            for i, frame in enumerate(frames):
                _check_rgb(frame.rgb)
                assert math.isfinite(frame.timestamp_ms), frame.timestamp_ms
                if i + 1 >= FRAMES_READ:
                    break
    except MediaError:
        pass
    finally:
        p.clip.close()
    info = p.clip.info
    assert info.kind in ("video", "animation", "image"), info
    for value in (info.duration_s, info.fps):  # the report rounds them: None or finite
        assert value is None or math.isfinite(value), info


def _check_rgb(rgb: Any) -> None:
    import numpy as np

    assert isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8, rgb
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.shape[0] > 0 and rgb.shape[1] > 0, rgb.shape


# --- policy ----------------------------------------------------------------------------------


def policy(data: bytes) -> None:
    from edge_screen.errors import PolicyError
    from edge_screen.policy import (
        CHILD_CONTENT_LIMITS,
        CHILD_SAFETY_LIMITS,
        Decision,
        Policy,
    )

    try:
        p = Policy.from_toml(data.decode("utf-8", "replace"), "fuzz.toml")
    except PolicyError:
        return
    assert p.unscreenable in ("review", "hold"), p.unscreenable
    assert p.child_safety.verdict == "hold" and p.known_match.verdict == "hold"
    assert p.preview.strength >= 5 and p.preview.when in ("review", "hold")
    limits = {**CHILD_SAFETY_LIMITS, **CHILD_CONTENT_LIMITS}
    assert p.decide({k: 1.0 for k in limits}).verdict == "hold"
    assert p.decide(dict(CHILD_SAFETY_LIMITS)).verdict == "hold"
    for name, limit in CHILD_CONTENT_LIMITS.items():
        at_limit = {"minor": CHILD_SAFETY_LIMITS["minor"], name: limit}
        assert p.decide(at_limit).verdict == "hold", name
        assert p.decide({name: limit}, unaged_faces=1).verdict == "hold", name
    assert p.decide({"sexual": CHILD_SAFETY_LIMITS["sexual"]}, unaged_faces=1).verdict == "hold"
    for broken in (math.nan, math.inf, -math.inf):
        assert p.decide({"sexual": broken, "minor": 0.0}).verdict != "allow", broken
    assert p.unscreened("corrupt").verdict != "allow"
    assert p.known_match.apply(Decision("allow", ()), ("list",)).verdict == "hold"


# --- manifest --------------------------------------------------------------------------------


def manifest(data: bytes) -> None:
    from edge_screen.errors import ManifestError, UnsafePath, VariantNotShipped
    from edge_screen.manifest import manifest_from_bytes

    try:
        m = manifest_from_bytes(data, "fuzz.json")
    except (ManifestError, UnsafePath):
        return
    names = [e.file for e in m.files()]
    assert len(set(names)) == len(names), names
    for name in names:
        assert name and "/" not in name and "\\" not in name and not name.startswith("."), name
    for number in _numbers(m.to_dict()):
        assert math.isfinite(number), f"a non-finite number in a parsed manifest: {number}"
    for spec in m.models:
        for machine in ("x86_64", "aarch64", "armv7l", "default"):
            with contextlib.suppress(VariantNotShipped):
                assert spec.preferred_variant(machine) in spec.variants


def _numbers(value: Any) -> Iterator[float]:
    if isinstance(value, float):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _numbers(v)


# --- report ----------------------------------------------------------------------------------


class Draw:
    """Values taken from the fuzzer's bytes in order (zeros once they run out), so a mutation of
    the bytes is a mutation of the report built from them."""

    SPECIAL = (0.0, -0.0, 0.5, 1.0, 1e300, -1e300, 5e-324, math.nan, math.inf, -math.inf)

    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def take(self, n: int) -> bytes:
        chunk = self._data[self._at : self._at + n]
        self._at += n
        return chunk.ljust(n, b"\0")

    def int(self, lo: int, hi: int) -> int:
        return lo + int.from_bytes(self.take(4), "little") % (hi - lo + 1)

    def flag(self) -> bool:
        return self.take(1)[0] & 1 == 1

    def float(self) -> float:
        kind = self.take(1)[0] % 4
        if kind == 0:
            value = self.SPECIAL[self.int(0, len(self.SPECIAL) - 1)]
        elif kind == 1:
            value = struct.unpack("<d", self.take(8))[0]
        else:
            value = self.int(0, 100_000) / 1000
        return value

    def maybe(self, make: Callable[[], Any]) -> Any:
        return make() if self.flag() else None

    def text(self) -> str:
        """Any code points, lone surrogates included (what a path or a message may hold)."""
        return self.take(2 * self.int(0, 24)).decode("utf-16-le", "surrogatepass")

    def many(self, make: Callable[[], Any], most: int = 4) -> tuple[Any, ...]:
        return tuple(make() for _ in range(self.int(0, most)))


def build_report(d: Draw) -> Any:
    from edge_screen import (
        Evidence,
        Face,
        MediaInfo,
        PdqHash,
        PreviewFrame,
        PreviewInfo,
        ReportError,
        ScreeningReport,
    )
    from edge_screen.hashes import FrameHash, Hashes
    from edge_screen.report import ERROR_CODES

    verdicts = ("allow", "review", "hold")

    def pdq() -> PdqHash:
        return PdqHash(d.take(32).hex(), d.int(0, 100))

    def face() -> Face:
        return Face((d.float(), d.float(), d.float(), d.float()), d.float(),
                    d.maybe(d.float), d.maybe(d.float), d.maybe(d.float))

    def evidence() -> Evidence:
        return Evidence(d.float(), verdicts[d.int(0, 2)], {d.text(): d.maybe(d.float)})

    media = MediaInfo(d.text(), d.maybe(d.text), d.maybe(lambda: d.int(0, 1 << 20)),
                      d.maybe(lambda: d.int(0, 1 << 20)), d.int(0, 1000), d.maybe(d.float),
                      d.maybe(d.float), d.maybe(lambda: d.int(0, 1000)),
                      {d.text(): d.float() for _ in range(d.int(0, 2))}, d.many(evidence),
                      d.int(0, 8), d.int(0, 8), d.int(0, 16), d.flag())
    hashes = d.maybe(lambda: Hashes(d.maybe(pdq), d.maybe(lambda: d.int(0, 100)),
                                    d.maybe(lambda: d.many(lambda: d.maybe(pdq))),
                                    d.maybe(lambda: d.many(lambda: FrameHash(d.float(),
                                                                             d.maybe(pdq)))),
                                    None))
    frames = d.many(lambda: PreviewFrame(d.maybe(d.float), d.maybe(lambda: d.int(0, 16)),
                                         d.int(1, 512), d.int(1, 512), d.int(0, 20)))
    preview = d.maybe(lambda: PreviewInfo(d.flag(), d.text(), d.text(), d.float(),
                                          d.maybe(d.text), frames))
    return ScreeningReport(
        d.text(), verdicts[d.int(0, 2)], d.many(d.text),
        {d.text(): d.maybe(d.float) for _ in range(d.int(0, 6))}, d.many(face), media,
        {d.text(): d.text() for _ in range(d.int(0, 3))},
        {d.text(): d.float() for _ in range(d.int(0, 4))},
        d.maybe(lambda: d.take(32).hex()),
        d.maybe(lambda: ReportError(ERROR_CODES[d.int(0, len(ERROR_CODES) - 1)], d.text())),
        d.int(0, 50), hashes, preview,
    )


def _values(value: Any) -> Iterator[Any]:
    """Every value held in a report: its dataclasses' fields, mappings and tuples walked."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _values(getattr(value, f.name))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _values(k)
            yield from _values(v)
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _values(v)
    else:
        yield value


def report(data: bytes) -> None:
    r = build_report(Draw(data))
    nonfinite = any(isinstance(v, float) and not math.isfinite(v) for v in _values(r))
    try:
        text = r.to_json()
    except (ValueError, OverflowError):  # json's allow_nan=False; round() of an infinity
        assert nonfinite, "to_json failed on a report of finite numbers"
        return
    assert not nonfinite, "to_json wrote a report holding a non-finite number"
    out = _strict_json(text)
    assert out == json.loads(json.dumps(r.to_dict())), "to_json differs from to_dict"
    assert set(out) == REPORT_KEYS, sorted(out)
    assert (out["verdict"], out["reasons"]) == (r.verdict, list(r.reasons))
    assert list(out["signals"]) == list(r.signals)
    assert _strict_json(r.to_json(include_path=True))["path"] == r.path


HARNESSES: dict[str, Callable[[bytes], None]] = {
    "screen": screen,
    "prepare": prepare,
    "policy": policy,
    "manifest": manifest,
    "report": report,
}
# libFuzzer's per-input limit (-timeout): past it an input is a hang finding. screen() gives an
# item 60 s (SamplingOptions.time_budget_s); a seed screens in well under 2 s here.
TIMEOUT_S = {"screen": 30, "prepare": 20, "policy": 5, "manifest": 5, "report": 5}
# libFuzzer's RSS limit (-rss_limit_mb): the models and a decode at the pixel limits need more.
RSS_LIMIT_MB = {"screen": 4096, "prepare": 3072, "policy": 2048, "manifest": 2048, "report": 2048}
# What each harness imports, instrumented for coverage (Pillow's plug-ins parse headers in
# Python; FFmpeg, libjpeg and the others are native and not instrumented).
INSTRUMENT = {
    "screen": ("edge_screen", "PIL"),
    "prepare": ("edge_screen", "PIL"),
    "policy": ("edge_screen", "tomllib"),
    "manifest": ("edge_screen",),
    "report": ("edge_screen",),
}
