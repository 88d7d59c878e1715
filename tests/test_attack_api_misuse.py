"""Kept from the attack review of signed updates; each test asserts the safe behaviour.

Integrator-side misuse."""
import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ed25519
from signed import make_bundle

from edge_screen import Screener, ScreenerOptions
from edge_screen.bundle import default_bundle_dir, open_bundle
from edge_screen.errors import EdgeScreenError, SignatureError
from edge_screen.store import BundleStore
from edge_screen.version import __version__


def _no_self_test(root, manifest):
    pass


def _pub(k):
    return k.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)


def test_store_is_never_silently_ignored_when_keys_are_empty(tmp_path):
    """open_bundle(bundle=None, store=S, trusted_keys=()) returns the wheel's bundle and
    ignores the store: the device screens with the shipped (older) models, not the update."""
    with pytest.raises((EdgeScreenError, ValueError)):
        open_bundle(None, tmp_path / "store", ())


def test_keys_list_emptied_after_options_does_not_drop_the_store(tmp_path, keys):
    """ScreenerOptions keeps the caller's list (frozen dataclass, mutable field): emptying it
    after the check makes Screener(store=...) load the wheel bundle instead of refusing."""
    store = BundleStore(tmp_path / "store")
    store.install(make_bundle(tmp_path / "b", keys[0], version="2027.1.1"), [keys[0].public],
                  __version__, self_test=_no_self_test)
    ks = [keys[0].public]
    opts = ScreenerOptions(store=store.root, trusted_keys=ks, threads=1, workers=1)
    ks.clear()
    try:
        s = Screener(opts)
    except (EdgeScreenError, ValueError):
        return
    with s:
        assert s.bundle.root != default_bundle_dir(), "store ignored: wheel bundle loaded"


def test_a_bad_key_in_the_trusted_set_is_refused_whatever_its_position(tmp_path, keys):
    """[bad, good] is SignatureError but [good, bad] installs: a broken rotation key (Ed25519,
    wrong curve) goes unnoticed until the good key is dropped."""
    src = make_bundle(tmp_path / "b", keys[0])
    ed = _pub(ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(SignatureError):
        BundleStore(tmp_path / "s1").install(src, [ed, keys[0].public], __version__,
                                             self_test=_no_self_test)
    with pytest.raises(SignatureError):
        BundleStore(tmp_path / "s2").install(src, [keys[0].public, ed], __version__,
                                             self_test=_no_self_test)


def test_a_pem_file_with_two_keys_trusts_both_or_is_refused(tmp_path, keys):
    """A rotation file holding old+new keys: only the first PEM block is loaded, the second is
    dropped silently."""
    src = make_bundle(tmp_path / "b", keys[0])
    both = keys[1].public + keys[0].public
    try:
        BundleStore(tmp_path / "s").install(src, [both], __version__, self_test=_no_self_test)
    except SignatureError as exc:
        assert "not made by any trusted key" not in str(exc), \
            "second key of the PEM file silently ignored"


def test_a_bytes_path_is_a_path(tmp_path, keys):
    src = make_bundle(tmp_path / "b", keys[0])
    done = BundleStore(tmp_path / "s").install(str(src).encode(), [keys[0].public], __version__,
                                               self_test=_no_self_test)
    assert done.path.is_dir()
