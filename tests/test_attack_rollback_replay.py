"""Kept from the attack review of signed updates; each test asserts the safe behaviour.

Attack: replay protection compares only with the ACTIVE bundle's version, not a high-water
mark. After an operator rolls back (bundle rollback) or force-installs an older bundle because the
newer one was bad, the attacker replays the bad newer signed bundle and it installs without
--force: exactly the "replay an older, weaker model" the issue forbids."""
import pytest
from signed import make_bundle

from edge_screen.errors import RollbackRefused
from edge_screen.store import BundleStore
from edge_screen.version import __version__


def _no_self_test(root, manifest):
    pass

V1, V2, V3 = "2026.12.2", "2026.12.3", "2026.12.10"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, keys):
    root = tmp_path_factory.mktemp("bundles")
    return {v: make_bundle(root / v, keys[0], version=v) for v in (V1, V2, V3)}


def test_replay_of_the_bundle_an_operator_rolled_back_from(tmp_path, keys, bundles):
    store = BundleStore(tmp_path / "store")
    store.install(bundles[V1], [keys[0].public], __version__, self_test=_no_self_test)
    store.install(bundles[V2], [keys[0].public], __version__, self_test=_no_self_test)
    store.rollback("V2 misses faces")  # operator: V2 is bad
    with pytest.raises(RollbackRefused):
        store.install(bundles[V2], [keys[0].public], __version__, self_test=_no_self_test)  # replay


def test_replay_after_a_forced_downgrade(tmp_path, keys, bundles):
    store = BundleStore(tmp_path / "store")
    store.install(bundles[V3], [keys[0].public], __version__, self_test=_no_self_test)
    store.install(bundles[V1], [keys[0].public], __version__, self_test=_no_self_test,
                  force_reason="incident 42: V2 and V3 are weak")
    for weak in (V2, V3):
        with pytest.raises(RollbackRefused):
            store.install(bundles[weak], [keys[0].public], __version__, self_test=_no_self_test)
