"""Kept from the attack review of signed updates; each test asserts the safe behaviour.

Availability of the store for a NEW Screener.
1. An installed bundle whose signed `expires` passes (or a device clock that jumps forward: a Pi
   has no RTC) makes every new Screener(store=...) fail with ExpiredBundle: BundleStore.active()
   re-checks expiry, though docs say expiry is an install-time check ("devices refuse to install
   it after this"), and there is no fallback to `previous`. An attacker who can set the clock
   (NTP spoofing) turns screening off.
2. BundleStore.status() (called by active()) also opens the PREVIOUS slot's manifest. A Screener
   that reads state.json just before an install switches and prunes fails with StoreError even
   though its active bundle is intact."""
import json
from datetime import UTC, datetime, timedelta

from signed import make_bundle

from edge_screen import Screener, ScreenerOptions
from edge_screen.release import format_time
from edge_screen.store import BundleStore
from edge_screen.version import __version__


def _no_self_test(root, manifest):
    pass


def test_an_installed_bundle_that_expires_keeps_screening(tmp_path, keys, monkeypatch):
    soon = format_time(datetime.now(UTC) + timedelta(days=30))
    src = make_bundle(tmp_path / "b", keys[0], lambda m: m.__setitem__("expires", soon),
                      version="2027.1.1")
    store = BundleStore(tmp_path / "store")
    store.install(src, [keys[0].public], __version__, self_test=_no_self_test)
    # 31 days later (or the clock is pushed forward)
    import edge_screen.store as store_mod

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + timedelta(days=31)

    monkeypatch.setattr(store_mod, "datetime", Later)
    opts = ScreenerOptions(store=store.root, trusted_keys=(keys[0].public,), threads=1, workers=1)
    with Screener(opts) as s:  # hole: ExpiredBundle, no screener at all
        assert s.bundle.manifest.bundle_version == "2027.1.1"


def test_a_screener_starting_during_an_install_prune(tmp_path, keys):
    store = BundleStore(tmp_path / "store")
    for v in ("2026.1.1", "2026.1.2"):
        store.install(make_bundle(tmp_path / v, keys[0], version=v), [keys[0].public],
                      __version__, self_test=_no_self_test)
    before = json.loads((store.root / "state.json").read_text())  # a Screener read this...
    store.install(make_bundle(tmp_path / "n", keys[0], version="2026.1.3"), [keys[0].public],
                  __version__, self_test=_no_self_test)  # ...then the install switched and pruned

    class Racing(BundleStore):
        def _state(self):
            return before

    # the active slot of `before` still exists (it is now `previous`): it should load
    _path, manifest = Racing(store.root).active([keys[0].public], __version__)
    assert manifest.bundle_version == "2026.1.2"
