"""Release fields of a bundle (``bundle_version``, ``created``, ``expires``, ``min_runtime``):
how they are written and compared. The device refuses a rollback, an expired bundle or one that
needs a newer runtime from these, so their order must be unambiguous: versions are dotted
non-negative integers compared as numbers (``2026.12.10`` > ``2026.12.9``), times are UTC
RFC 3339 with a ``Z`` (``2026-12-02T13:00:00Z``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import ManifestError

_VERSION = re.compile(r"^(0|[1-9][0-9]{0,8})(\.(0|[0-9]{1,9}))*$")
_TIME = "%Y-%m-%dT%H:%M:%SZ"


def version_key(text: str, where: str = "version") -> tuple[int, ...]:
    """``"2026.12.02"`` -> ``(2026, 12, 2)``; anything else is a ``ManifestError``."""
    if not isinstance(text, str) or not _VERSION.match(text):
        raise ManifestError(f"{where}: {text!r} is not a dotted version of integers")
    parts = [int(p) for p in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:  # 1.0 == 1.0.0
        parts.pop()
    return tuple(parts)


def parse_time(text: str, where: str = "time") -> datetime:
    """A UTC time written as ``YYYY-MM-DDTHH:MM:SSZ``."""
    try:
        return datetime.strptime(text, _TIME).replace(tzinfo=UTC)
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"{where}: {text!r} is not a UTC time like 2026-12-02T13:00:00Z") \
            from exc


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime(_TIME)


@dataclass(frozen=True)
class SelfTestCase:
    """A picture shipped in the bundle and what screening it must give on each machine."""

    file: str
    sha256: str
    size: int
    expected: Mapping[str, Mapping[str, Any]]  # machine -> {"verdict", "faces", "signals"}


@dataclass(frozen=True)
class SelfTest:
    """Run before a bundle becomes active: a bundle that verifies but screens wrongly on this
    device (a kernel that computes other numbers, a broken variant) is never activated."""

    cases: tuple[SelfTestCase, ...]
    tolerance: Mapping[str, float]  # signal name -> largest allowed |difference|


def parse_self_test(d: Any, where: str = "self_test") -> SelfTest:
    if not isinstance(d, dict) or not isinstance(d.get("cases"), list) or not d["cases"]:
        raise ManifestError(f"{where}: expected {{'cases': [...], 'tolerance': {{...}}}}")
    tolerance = d.get("tolerance")
    if not isinstance(tolerance, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1
        for v in tolerance.values()
    ):
        raise ManifestError(f"{where}.tolerance: signal -> a number in [0, 1)")
    cases = []
    for i, c in enumerate(d["cases"]):
        w = f"{where}.cases[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("expected"), dict):
            raise ManifestError(f"{w}: expected file, sha256, size and expected")
        for machine, e in c["expected"].items():
            ok = (isinstance(e, dict) and isinstance(e.get("verdict"), str)
                  and isinstance(e.get("faces"), int) and isinstance(e.get("signals"), dict)
                  and all(v is None or (isinstance(v, int | float) and not isinstance(v, bool))
                          for v in e["signals"].values()))
            if not ok:
                raise ManifestError(f"{w}.expected.{machine}: needs a verdict, a face count "
                                    "and signals (name -> number or null)")
        file, sha, size = c.get("file"), c.get("sha256"), c.get("size")
        if not (isinstance(file, str) and isinstance(sha, str) and isinstance(size, int)):
            raise ManifestError(f"{w}: expected file, sha256, size and expected")
        cases.append(SelfTestCase(file, sha, size, dict(c["expected"])))
    return SelfTest(tuple(cases), {str(k): float(v) for k, v in tolerance.items()})
