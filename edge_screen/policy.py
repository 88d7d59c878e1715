"""Turn signals into ``allow | review | hold`` with human-readable reasons, from a TOML file."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

from .errors import PolicyError

Verdict = Literal["allow", "review", "hold"]
VERDICTS: tuple[Verdict, ...] = ("allow", "review", "hold")


@dataclass(frozen=True)
class Rule:
    verdict: Verdict
    when: Mapping[str, float]
    reason: str

    def matches(self, signals: Mapping[str, float | None]) -> bool:
        return all((v := signals.get(k)) is not None and v >= t for k, t in self.when.items())


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...]


def _verdict(value: Any, where: str) -> Verdict:
    if value not in VERDICTS:
        raise PolicyError(f"{where}: {value!r} is not one of {', '.join(VERDICTS)}")
    return cast(Verdict, value)


def _threshold(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise PolicyError(f"{where}: expected a number between 0 and 1, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    child_safety: Rule
    unscreenable: Verdict

    @classmethod
    def default(cls) -> Policy:
        text = (resources.files("edge_screen") / "default_policy.toml").read_text("utf-8")
        return cls.from_toml(text, "default_policy.toml")

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        try:
            text = Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"cannot read policy {path}: {exc}") from exc
        return cls.from_toml(text, str(path))

    @classmethod
    def from_toml(cls, text: str, where: str = "policy") -> Policy:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{where}: not valid TOML ({exc})") from exc
        rules = []
        for i, r in enumerate(data.get("rules", [])):
            at = f"{where}: rules[{i}]"
            when = r.get("when")
            if not isinstance(when, dict) or not when:
                raise PolicyError(f"{at}.when: expected a table of signal = threshold")
            rules.append(
                Rule(
                    _verdict(r.get("verdict"), f"{at}.verdict"),
                    {str(k): _threshold(v, f"{at}.when.{k}") for k, v in when.items()},
                    str(r.get("reason") or ", ".join(f"{k} >= {v}" for k, v in when.items())),
                )
            )
        cs = data.get("child_safety")
        if not isinstance(cs, dict):
            raise PolicyError(f"{where}: a [child_safety] table is required")
        verdict = _verdict(cs.get("verdict", "hold"), f"{where}: child_safety.verdict")
        if verdict == "allow":
            raise PolicyError(f"{where}: child_safety.verdict cannot be 'allow'")
        child = Rule(
            verdict,
            {
                "minor": _threshold(cs.get("minor"), f"{where}: child_safety.minor"),
                "sexual": _threshold(cs.get("sexual"), f"{where}: child_safety.sexual"),
            },
            str(cs.get("reason", "likely minor together with a sexual-content signal")),
        )
        unscreenable = _verdict(data.get("unscreenable", "hold"), f"{where}: unscreenable")
        return cls(tuple(rules), child, unscreenable)

    def decide(self, signals: Mapping[str, float | None]) -> Decision:
        """The most severe matching verdict and the reasons of every matching rule."""
        matched = [r for r in (self.child_safety, *self.rules) if r.matches(signals)]
        if not matched:
            return Decision("allow", ())
        worst = max(matched, key=lambda r: VERDICTS.index(r.verdict))
        reasons = tuple(
            f"{r.reason} ({', '.join(f'{k} {signals[k]:.2f} >= {t:g}' for k, t in r.when.items())})"
            for r in matched
        )
        return Decision(worst.verdict, reasons)

    def unscreened(self, code: str) -> Decision:
        return Decision(self.unscreenable, (f"could not be screened: {code}",))
