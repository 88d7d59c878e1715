"""Our signer and verifier against the standard OpenSSF tool (``model_signing`` 1.1): it accepts
what we sign, we accept what it signs, and both refuse the same tampering (ours is stricter only
where the standard tool skips files under .git paths). A committed vector made by the standard
tool keeps verifying, and mutated manifests and signatures only ever give named errors."""

from __future__ import annotations

import contextlib
import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from signed import Key, make_bundle

from edge_screen import BundleError
from edge_screen.files import verify_directory
from edge_screen.oms import SIGNATURE_FILE
from edge_screen.trust import Expectations
from edge_screen.version import __version__

VECTORS = Path(__file__).parent / "data" / "signed"


def expect() -> Expectations:
    from datetime import UTC, datetime

    return Expectations(__version__, datetime.now(UTC))


def _model_signing() -> Any:
    return pytest.importorskip("model_signing", reason="test extra: pip install '.[test]'")


def _theirs_verify(root: Path, public_pem: bytes, tmp: Path) -> bool:
    ms = _model_signing()
    key = tmp / "theirs.pub.pem"
    key.write_bytes(public_pem)
    hashing = ms.hashing.Config().set_ignored_paths(paths=[SIGNATURE_FILE], ignore_git_paths=True)
    try:
        (ms.verifying.Config().use_elliptic_key_verifier(public_key=key)
         .set_hashing_config(hashing).verify(root, root / SIGNATURE_FILE))
    except Exception:  # ValueError, or a bare InvalidSignature for a bad signature
        return False
    return True


def _theirs_sign(root: Path, private_pem: bytes, tmp: Path) -> None:
    ms = _model_signing()
    key = tmp / "theirs.key.pem"
    key.write_bytes(private_pem)
    hashing = ms.hashing.Config().set_ignored_paths(paths=[SIGNATURE_FILE], ignore_git_paths=True)
    (ms.signing.Config().use_elliptic_key_signer(private_key=key)
     .set_hashing_config(hashing).sign(root, root / SIGNATURE_FILE))


def _ours_verify(root: Path, public_pem: bytes) -> bool:
    try:
        verify_directory(root, [public_pem], expect())
    except BundleError:
        return False
    return True


def _tamper(root: Path, how: str) -> None:
    if how == "model":
        p = root / "open_nsfw.int8.tflite"
        data = bytearray(p.read_bytes())
        data[12345] ^= 1
        p.write_bytes(bytes(data))
    elif how == "manifest":
        p = root / "manifest.json"
        p.write_text(p.read_text().replace('"2026', '"2027', 1))
    elif how == "extra":
        (root / "extra.bin").write_bytes(b"x")
    elif how == "missing":
        (root / "NOTICE-age_estimator.md").unlink()
    elif how == "signature":
        p = root / SIGNATURE_FILE
        doc = json.loads(p.read_text())
        sig = doc["dsseEnvelope"]["signatures"][0]["sig"]
        doc["dsseEnvelope"]["signatures"][0]["sig"] = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
        p.write_text(json.dumps(doc))


@pytest.mark.parametrize("signer", ["ours", "theirs"])
@pytest.mark.parametrize("how", ["none", "model", "manifest", "extra", "missing", "signature"])
def test_both_verifiers_agree_on_valid_and_tampered_bundles(
    tmp_path: Path, keys: tuple[Key, Key], signer: str, how: str
) -> None:
    key = keys[0]
    if signer == "ours":
        root = make_bundle(tmp_path / "b", key)
    else:
        root = make_bundle(tmp_path / "b", key)
        (root / SIGNATURE_FILE).unlink()
        _theirs_sign(root, key.private, tmp_path)
    _tamper(root, how)
    ours, theirs = _ours_verify(root, key.public), _theirs_verify(root, key.public, tmp_path)
    assert ours == theirs == (how == "none"), (ours, theirs)
    assert not _ours_verify(root, keys[1].public)  # the other key: refused by ours ...
    assert not _theirs_verify(root, keys[1].public, tmp_path)  # ... and by theirs


def test_ours_is_stricter_only_about_files_under_git_paths(
    tmp_path: Path, keys: tuple[Key, Key]
) -> None:
    root = make_bundle(tmp_path / "b", keys[0])
    (root / ".git").mkdir()
    (root / ".git" / "payload.tflite").write_bytes(b"hidden from the standard tool")
    assert _theirs_verify(root, keys[0].public, tmp_path)
    assert not _ours_verify(root, keys[0].public)


def test_the_committed_vector_made_by_the_standard_tool_still_verifies(tmp_path: Path) -> None:
    """``tests/data/signed/v1``: a tiny bundle signed by model_signing 1.1.1 (see its README)."""
    root = tmp_path / "v1"
    shutil.copytree(VECTORS / "v1" / "bundle", root)
    public = (VECTORS / "v1" / "signing.pub.pem").read_bytes()
    manifest = verify_directory(root, [public], expect())
    assert manifest.bundle_version == "2026.12.1"
    (root / "tiny.tflite").write_bytes((root / "tiny.tflite").read_bytes() + b"\0")
    with pytest.raises(BundleError, match=r"tiny\.tflite: altered"):
        verify_directory(root, [public], expect())


@pytest.mark.parametrize("seed", range(8))
def test_mutated_signatures_and_manifests_give_only_named_errors(
    tmp_path: Path, keys: tuple[Key, Key], seed: int
) -> None:
    rng = random.Random(seed)
    base = make_bundle(tmp_path / "base", keys[0])
    for i in range(25):
        root = tmp_path / f"m{i}"
        shutil.copytree(base, root)
        target = root / rng.choice([SIGNATURE_FILE, "manifest.json"])
        data = bytearray(target.read_bytes())
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            pos = rng.randrange(len(data))
            if op < 0.5:
                data[pos] = rng.randrange(256)
            elif op < 0.75:
                del data[pos: pos + rng.randint(1, 64)]
            else:
                data[pos:pos] = rng.randbytes(rng.randint(1, 16))
        target.write_bytes(bytes(data))
        if rng.random() < 0.5 and target.name == "manifest.json":  # re-signed: the parser's turn
            from firmware_tools.pipeline.sign import sign_directory

            sign_directory(root, keys[0].private, parse=False)
        with contextlib.suppress(BundleError):  # anything else escapes and fails the test
            verify_directory(root, [keys[0].public], expect())
        shutil.rmtree(root)
