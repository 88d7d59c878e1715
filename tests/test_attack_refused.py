"""Kept from the attack review of signed updates; each test asserts the safe behaviour.

Attacks that were refused (these pass)."""
import json
import os
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from signed import make_bundle

import edge_screen.files as store_mod
from edge_screen import Screener, ScreenerOptions
from edge_screen.errors import (
    HashMismatch,
    RollbackRefused,
    SignatureError,
    UnsafePath,
)
from edge_screen.store import BundleStore, verify_directory
from edge_screen.trust import Expectations
from edge_screen.version import __version__


def _no_self_test(root, manifest):
    pass


def _x():
    return Expectations(__version__, datetime.now(UTC))


def _pub(k):
    return k.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("key", ["ed25519", "secp256k1", "empty", "private"])
def test_bad_trusted_keys(tmp_path, keys, key):
    src = make_bundle(tmp_path / "b", keys[0])
    pem = {"ed25519": lambda: _pub(ed25519.Ed25519PrivateKey.generate()),
           "secp256k1": lambda: _pub(ec.generate_private_key(ec.SECP256K1())),
           "empty": lambda: b"", "private": lambda: keys[0].private}[key]()
    with pytest.raises(SignatureError):
        verify_directory(src, [pem], _x())


def test_str_trusted_keys_is_a_type_error():
    with pytest.raises(TypeError):
        ScreenerOptions(store="/nonexistent", trusted_keys="key.pem")
    with pytest.raises(ValueError):
        ScreenerOptions(store="/nonexistent")


def test_symlink_and_extra_files(tmp_path, keys):
    src = make_bundle(tmp_path / "b", keys[0])
    (src / "evil").symlink_to("/etc/passwd")
    with pytest.raises(UnsafePath):
        verify_directory(src, [keys[0].public], _x())
    os.unlink(src / "evil")
    (src / ".gitignore").write_text("x")  # model_signing would ignore it
    with pytest.raises(HashMismatch):
        verify_directory(src, [keys[0].public], _x())


def test_manifest_swapped_after_verification_in_screener(tmp_path, keys, monkeypatch):
    """Screener(bundle=DIR, keys): manifest re-read? No: the verified Manifest is used, and model
    bytes are checked against it on read."""
    src = make_bundle(tmp_path / "b", keys[0])
    real = store_mod.verify_directory
    m = json.loads((src / "manifest.json").read_text())

    def verified(root, trusted, expect, limits=None):
        out = real(root, trusted, expect, limits)
        for v in m["models"][0]["variants"]:
            (src / v["file"]).write_bytes(b"evil")
        return out

    monkeypatch.setattr(store_mod, "verify_directory", verified)
    with pytest.raises(HashMismatch):
        Screener(ScreenerOptions(bundle=src, trusted_keys=(keys[0].public,)))


def test_equal_version_replay_and_untrusted_key(tmp_path, keys):
    src = make_bundle(tmp_path / "b", keys[0], version="2027.1.1")
    st = BundleStore(tmp_path / "s")
    st.install(src, [keys[0].public], __version__, self_test=_no_self_test)
    with pytest.raises(RollbackRefused):
        st.install(src, [keys[0].public], __version__, self_test=_no_self_test)
    other = make_bundle(tmp_path / "o", keys[1], version="2027.1.2")
    with pytest.raises(SignatureError):
        st.install(other, [keys[0].public], __version__, self_test=_no_self_test)


def test_statement_signature_tamper(tmp_path, keys):
    src = make_bundle(tmp_path / "b", keys[0])
    doc = json.loads((src / "model.sig").read_bytes())
    doc["dsseEnvelope"]["signatures"].append(doc["dsseEnvelope"]["signatures"][0])
    (src / "model.sig").write_text(json.dumps(doc))
    with pytest.raises(SignatureError):
        verify_directory(src, [keys[0].public], _x())
