import pytest

from edge_screen import Policy, PolicyError


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.default()


@pytest.mark.parametrize(
    ("signals", "verdict"),
    [
        ({"sexual": 0.05, "minor": None, "violence": None}, "allow"),
        ({"sexual": 0.2, "minor": None, "violence": None}, "review"),
        ({"sexual": 0.79, "minor": 0.1, "violence": None}, "review"),
        ({"sexual": 0.8, "minor": None, "violence": None}, "hold"),
        ({"sexual": 0.05, "minor": 0.9, "violence": None}, "allow"),
        ({"sexual": 0.25, "minor": 0.6, "violence": None}, "hold"),
        ({"sexual": None, "minor": None, "violence": 0.7}, "review"),
    ],
)
def test_default_policy_verdicts(policy: Policy, signals: dict, verdict: str) -> None:
    assert policy.decide(signals).verdict == verdict


def test_minor_alone_is_allowed_but_labelled(policy: Policy) -> None:
    d = policy.decide({"sexual": 0.01, "minor": 0.8, "violence": None})
    assert d.verdict == "allow"
    assert any("minor" in r for r in d.reasons)


def test_child_safety_reason_is_given_for_minor_with_sexual_signal(policy: Policy) -> None:
    d = policy.decide({"sexual": 0.3, "minor": 0.7})
    assert d.verdict == "hold"
    assert any("likely minor together" in r for r in d.reasons)


def test_null_signal_never_matches(policy: Policy) -> None:
    assert policy.decide({"sexual": None, "minor": None}).verdict == "allow"


def test_unscreenable_defaults_to_hold_and_is_configurable(policy: Policy) -> None:
    assert policy.unscreened("corrupt").verdict == "hold"
    relaxed = Policy.from_toml(
        'unscreenable = "review"\n[child_safety]\nminor = 0.5\nsexual = 0.2\n'
    )
    assert relaxed.unscreened("corrupt").verdict == "review"


def test_policy_cannot_allow_minor_with_sexual_signal() -> None:
    with pytest.raises(PolicyError, match="cannot be 'allow'"):
        Policy.from_toml('[child_safety]\nminor = 0.5\nsexual = 0.2\nverdict = "allow"\n')


@pytest.mark.parametrize(
    "text",
    [
        "not = [valid",
        "[[rules]]\nverdict = 'hold'\nwhen = { sexual = 0.8 }\n",  # no child_safety table
        "[child_safety]\nminor = 0.5\nsexual = 2\n",
        "[child_safety]\nminor = 0.5\nsexual = 0.2\n[[rules]]\nverdict = 'block'\nwhen = {a = 1}\n",
        "[child_safety]\nminor = 0.5\nsexual = 0.2\n[[rules]]\nverdict = 'hold'\n",
    ],
)
def test_malformed_policy_is_a_policy_error(text: str) -> None:
    with pytest.raises(PolicyError):
        Policy.from_toml(text)


def test_policy_file_from_disk(tmp_path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[child_safety]\nminor = 0.4\nsexual = 0.1\n[[rules]]\nverdict = "hold"\nwhen = { sexual = 0.5 }\n'
    )
    p = Policy.load(path)
    assert p.decide({"sexual": 0.5}).verdict == "hold"
    assert p.decide({"sexual": 0.15, "minor": 0.45}).verdict == "hold"
    with pytest.raises(PolicyError):
        Policy.load(tmp_path / "missing.toml")


# --- invariants in code (issue 9, finding 2 and 4) -------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "match"),
    [
        ("[child_safety]\nminor = 1.0\nsexual = 1.0\n", 2, "loosens the child-safety rule"),
        ("[child_safety]\nminor = 0.5\nsexual = 0.21\n", 3, "loosens the child-safety rule"),
        ('unscreenable = "allow"\n[child_safety]\nminor = 0.5\nsexual = 0.2\n', 1, "never allowed"),
        ('[child_safety]\nminor = 0.5\nsexual = 0.2\nverdict = "review"\n', 4, "only tighten"),
        ('[child_safety]\nminor = 0.5\nsexual = 0.2\nverdict = "allow"\n', 4, "cannot be 'allow'"),
        (
            "[child_safety]\nminor = 0.5\nsexual = 0.2\nscreen_without = ['violence']\n",
            4,
            "screen_without",
        ),
        (
            "[child_safety]\nminor = 0.5\nsexual = 0.2\n[[rules]]\nverdict = 'hold'\nwhen = {a = 1}\n"
            "[[rules]]\nverdict = 'block'\nwhen = {a = 1}\n",
            8,
            "'block' is not one of",
        ),
    ],
)
def test_a_policy_that_loosens_child_safety_is_refused_naming_the_line(
    text: str, line: int, match: str
) -> None:
    """Finding 2: `[child_safety] minor = 1.0, sexual = 1.0` and `unscreenable = "allow"` were
    accepted and switched the rule off."""
    with pytest.raises(PolicyError, match=match) as err:
        Policy.from_toml(text, "strict.toml")
    assert f"strict.toml:{line}:" in str(err.value)


def test_the_shipped_policy_sits_exactly_at_the_limits_the_code_enforces(policy: Policy) -> None:
    from edge_screen.policy import CHILD_SAFETY_LIMITS

    assert dict(policy.child_safety.when) == dict(CHILD_SAFETY_LIMITS)
    assert policy.child_safety.verdict == "hold" and policy.unscreenable == "hold"


def test_a_tighter_child_safety_rule_is_accepted() -> None:
    p = Policy.from_toml("[child_safety]\nminor = 0.3\nsexual = 0.05\n")
    assert p.decide({"sexual": 0.06, "minor": 0.31}).verdict == "hold"


@pytest.mark.parametrize(
    "typo",
    ["[child-safety]\nminor = 0.5\n", "[child_safety]\nminor = 0.5\nsexual = 0.2\nsexaul = 0.9\n"],
)
def test_unknown_keys_are_refused_not_ignored(typo: str) -> None:
    with pytest.raises(PolicyError, match="unknown key"):
        Policy.from_toml(typo)


def test_a_policy_built_in_code_obeys_the_same_invariants(policy: Policy) -> None:
    from dataclasses import replace

    from edge_screen.policy import Rule

    with pytest.raises(PolicyError):
        replace(policy, unscreenable="allow")
    with pytest.raises(PolicyError):
        replace(policy, child_safety=Rule("hold", {"minor": 1.0, "sexual": 1.0}, "off"))
    with pytest.raises(PolicyError):
        replace(policy, child_safety=Rule("allow", {"minor": 0.5, "sexual": 0.2}, "off"))
    with pytest.raises(PolicyError):
        replace(policy, child_safety=Rule("hold", {"minor": float("nan"), "sexual": 0.2}, "x"))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_signal_raises_the_verdict(policy: Policy, bad: float) -> None:
    """Finding 4: a NaN sexual score with a minor at 0.9 was `allow`."""
    d = policy.decide({"sexual": bad, "minor": 0.9, "violence": None})
    assert d.verdict == "hold"
    assert any("not a number" in r for r in d.reasons)


def test_unscreened_after_screened_frames_keeps_the_worse_verdict(policy: Policy) -> None:
    found = policy.decide({"sexual": 0.9, "minor": 0.1})
    review_policy = Policy.from_toml(
        'unscreenable = "review"\n[child_safety]\nminor = 0.5\nsexual = 0.2\n'
    )
    d = review_policy.unscreened("corrupt", review_policy.decide({"sexual": 0.3, "minor": 0.7}))
    assert d.verdict == "hold" and d.reasons[-1] == "could not be screened: corrupt"
    assert policy.unscreened("timeout", found).reasons[0].startswith("sexual content likely")


def test_rules_on_signals_no_model_produces_are_reported(policy: Policy) -> None:
    assert policy.unused({"sexual", "minor"}) == ("possible violent or gory content",)
    assert policy.requires({"minor"}) == ("sexual",)
    lenient = Policy.from_toml(
        "[child_safety]\nminor = 0.5\nsexual = 0.2\nscreen_without = ['sexual']\n"
    )
    assert lenient.requires({"minor"}) == ()


def test_a_face_too_small_to_age_counts_as_a_possible_minor_with_sexual_content(
    policy: Policy,
) -> None:
    """Fail closed: an unaged face says nothing about a minor, so it must not read as 'none'."""
    signals = {"sexual": 0.25, "minor": 0.1, "violence": None}
    assert policy.decide(signals).verdict == "review"
    d = policy.decide(signals, unaged_faces=1)
    assert d.verdict == "hold" and any("too small or unsure to age" in r for r in d.reasons)
    assert policy.decide({"sexual": 0.1, "minor": None}, unaged_faces=3).verdict == "allow"
