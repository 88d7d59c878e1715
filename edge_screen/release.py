"""Release fields of a bundle (``bundle_version``, ``created``, ``expires``, ``min_runtime``):
how they are written and compared. The device refuses a rollback, an expired bundle or one that
needs a newer runtime from these, so their order must be unambiguous: versions are dotted
non-negative integers compared as numbers (``2026.12.10`` > ``2026.12.9``), times are UTC
RFC 3339 with a ``Z`` (``2026-12-02T13:00:00Z``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

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
