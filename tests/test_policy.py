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
