"""Kept from the attack review of signed updates; each test asserts the safe behaviour.

Interop: the envelope's key hint is not signed. Ours ignores it; model_signing refuses a hint
that is not the key's ("Key mismatch"). Anyone can rewrite it (no key needed): the device accepts
a bundle that the security team's standard-tool audit rejects."""
import json
from datetime import UTC, datetime

import pytest
from signed import make_bundle

from edge_screen.errors import SignatureError
from edge_screen.files import verify_directory
from edge_screen.trust import Expectations
from edge_screen.version import __version__


def _theirs(root, pub, tmp):
    ms = pytest.importorskip("model_signing")
    k = tmp / "t.pub.pem"
    k.write_bytes(pub)
    hashing = ms.hashing.Config().set_ignored_paths(paths=["model.sig"], ignore_git_paths=True)
    try:
        (ms.verifying.Config().use_elliptic_key_verifier(public_key=k)
         .set_hashing_config(hashing).verify(root, root / "model.sig"))
    except Exception:
        return False
    return True


def test_ours_and_theirs_agree_on_a_rewritten_key_hint(tmp_path, keys):
    root = make_bundle(tmp_path / "b", keys[0])
    doc = json.loads((root / "model.sig").read_bytes())
    doc["verificationMaterial"]["publicKey"]["hint"] = "00" * 32
    (root / "model.sig").write_text(json.dumps(doc))
    try:
        verify_directory(root, [keys[0].public], Expectations(__version__, datetime.now(UTC)))
        ours = True
    except SignatureError:
        ours = False
    assert ours == _theirs(root, keys[0].public, tmp_path)
