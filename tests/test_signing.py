"""Signed bundles: a bundle is loaded from a store or with trusted keys only when its OpenSSF
model-signing signature was made by a trusted key and every file is the one that was signed;
each refusal is a named error that names the file or the check."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from signed import Key, make_bundle

from edge_screen import (
    ExpiredBundle,
    HashMismatch,
    IncompatibleRuntime,
    ManifestError,
    Screener,
    ScreenerOptions,
    SignatureError,
    UnsafePath,
)
from edge_screen.bundle import default_bundle_dir
from edge_screen.files import verify_directory
from edge_screen.oms import SIGNATURE_FILE
from edge_screen.trust import Expectations
from edge_screen.version import __version__
from firmware_tools.pipeline import sign as fw_sign

IMAGES = Path(__file__).parent / "data" / "images"


def expect(**kw: Any) -> Expectations:
    return Expectations(kw.pop("runtime", __version__), kw.pop("now", datetime.now(UTC)), **kw)


def test_a_signed_bundle_verifies_and_screens(tmp_path: Path, keys: tuple[Key, Key]) -> None:
    root = make_bundle(tmp_path / "b", keys[0])
    manifest = verify_directory(root, [keys[0].public], expect())
    assert manifest.card is not None and manifest.card.file == "MODEL_CARD.md"
    opts = ScreenerOptions(bundle=root, trusted_keys=(keys[0].public,), threads=1, workers=1)
    with Screener(opts) as s:
        assert s.screen(IMAGES / "astronaut.jpg").verdict == "allow"


@pytest.mark.parametrize("name", sorted(p.name for p in default_bundle_dir().iterdir()))
def test_a_flipped_byte_in_any_file_is_refused_naming_it(
    tmp_path: Path, keys: tuple[Key, Key], name: str
) -> None:
    root = make_bundle(tmp_path / "b", keys[0])
    path = root / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(HashMismatch, match=f"{name}: altered") as caught:
        verify_directory(root, [keys[0].public], expect())
    assert caught.value.problems == (f"{name}: altered",)
    with pytest.raises(HashMismatch):
        Screener(ScreenerOptions(bundle=root, trusted_keys=(keys[0].public,)))


@pytest.mark.parametrize("offset", [0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_a_flipped_byte_in_the_signature_is_refused(
    tmp_path: Path, keys: tuple[Key, Key], offset: float
) -> None:
    root = make_bundle(tmp_path / "b", keys[0])
    sig = root / SIGNATURE_FILE
    data = bytearray(sig.read_bytes())
    data[int(len(data) * offset)] ^= 0x04
    sig.write_bytes(bytes(data))
    with pytest.raises((SignatureError, UnsafePath)):
        verify_directory(root, [keys[0].public], expect())


def test_only_trusted_keys_and_every_trusted_key(tmp_path: Path, keys: tuple[Key, Key]) -> None:
    old, new = keys
    root = make_bundle(tmp_path / "b", new)
    with pytest.raises(SignatureError, match="not made by any trusted key"):
        verify_directory(root, [old.public], expect())
    verify_directory(root, [old.public, new.public], expect())  # rotation: old and new trusted
    with pytest.raises(SignatureError, match="no trusted public key"):
        verify_directory(root, [], expect())


def test_missing_extra_and_unsigned_files_are_each_named(
    tmp_path: Path, keys: tuple[Key, Key]
) -> None:
    root = make_bundle(tmp_path / "b", keys[0])
    (root / "NOTICE-open_nsfw.txt").unlink()
    (root / "extra.tflite").write_bytes(b"not signed")
    (root / ".hidden").write_bytes(b"not signed either")
    with pytest.raises(HashMismatch) as caught:
        verify_directory(root, [keys[0].public], expect())
    assert caught.value.problems == (
        ".hidden: not listed", "NOTICE-open_nsfw.txt: missing", "extra.tflite: not listed")
    unsigned = tmp_path / "unsigned"
    shutil.copytree(default_bundle_dir(), unsigned)
    with pytest.raises(SignatureError, match="unsigned bundle"):
        verify_directory(unsigned, [keys[0].public], expect())


def test_links_directories_and_escaping_names_are_unsafe(
    tmp_path: Path, keys: tuple[Key, Key]
) -> None:
    root = make_bundle(tmp_path / "b", keys[0])
    (root / "link.tflite").symlink_to(root / "manifest.json")
    with pytest.raises(UnsafePath, match=r"link\.tflite: a symlink"):
        verify_directory(root, [keys[0].public], expect())
    (root / "link.tflite").unlink()
    (root / ".git").mkdir()  # model_signing would skip it; a device takes plain files only
    with pytest.raises(UnsafePath, match=r"\.git: not a plain file"):
        verify_directory(root, [keys[0].public], expect())

    def escape(m: dict[str, Any]) -> None:
        m["notices"][0]["file"] = "../../etc/passwd"

    with pytest.raises(UnsafePath):
        verify_directory(make_bundle(tmp_path / "c", keys[0], escape), [keys[0].public], expect())


def test_expired_and_too_new_bundles_are_refused(tmp_path: Path, keys: tuple[Key, Key]) -> None:
    def expires(m: dict[str, Any]) -> None:
        m["expires"] = "2026-01-01T00:00:00Z"

    root = make_bundle(tmp_path / "old", keys[0], expires)
    with pytest.raises(ExpiredBundle, match="expired at 2026-01-01T00:00:00Z"):
        verify_directory(root, [keys[0].public], expect())
    verify_directory(root, [keys[0].public], expect(now=datetime(2025, 12, 1, tzinfo=UTC)))

    def needs(m: dict[str, Any]) -> None:
        m["min_runtime"] = "99.0"

    root = make_bundle(tmp_path / "new", keys[0], needs)
    with pytest.raises(IncompatibleRuntime, match=r"needs edge-screen >= 99\.0"):
        verify_directory(root, [keys[0].public], expect())


def test_a_manifest_that_lists_a_file_with_another_size_is_refused(
    tmp_path: Path, keys: tuple[Key, Key]
) -> None:
    def lie(m: dict[str, Any]) -> None:
        m["notices"][0]["size"] += 1

    root = make_bundle(tmp_path / "b", keys[0], lie)
    with pytest.raises(HashMismatch, match=r"do not match manifest\.json"):
        verify_directory(root, [keys[0].public], expect())


def test_keys_are_a_list_not_a_string(tmp_path: Path, keys: tuple[Key, Key]) -> None:
    with pytest.raises(TypeError, match="trusted_keys"):
        ScreenerOptions(trusted_keys="key.pem")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="give trusted_keys"):
        ScreenerOptions(store=tmp_path)
    with pytest.raises(ValueError, match="not both"):
        ScreenerOptions(store=tmp_path, bundle=tmp_path, trusted_keys=(keys[0].public,))


def test_the_sign_command_refuses_a_bundle_without_passing_numbers(
    tmp_path: Path, keys: tuple[Key, Key]
) -> None:
    root = tmp_path / "b"
    shutil.copytree(default_bundle_dir(), root)
    manifest = json.loads((root / "manifest.json").read_text())
    by_id = {m["id"]: m for m in manifest["models"]}
    by_id["open_nsfw"]["variants"][0]["fidelity"]["max_abs_dp"] = 0.5
    by_id["age_estimator"]["variants"][0]["fidelity"] = {}
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="no validation numbers") as caught:
        fw_sign.sign(root, keys[0].private)
    assert "fails max_abs_dp" in str(caught.value)
    assert not (root / SIGNATURE_FILE).exists()
    shutil.rmtree(root)
    shutil.copytree(default_bundle_dir(), root)
    fw_sign.sign(root, keys[0].private)
    assert os.path.getsize(root / SIGNATURE_FILE) > 0


def test_a_manifest_the_runtime_cannot_parse_is_not_signed(
    tmp_path: Path, keys: tuple[Key, Key]
) -> None:
    root = tmp_path / "b"
    shutil.copytree(default_bundle_dir(), root)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["models"][0]["preferred"] = ["fp32"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="malformed"):
        fw_sign.sign_directory(root, keys[0].private)
    assert not (root / SIGNATURE_FILE).exists()


def test_a_truncated_copy_is_refused_naming_the_file(tmp_path: Path, keys: tuple[Key, Key]) -> None:
    root = make_bundle(tmp_path / "b", keys[0])
    model = root / "open_nsfw.int8.tflite"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])  # an interrupted copy
    with pytest.raises(HashMismatch, match=r"open_nsfw\.int8\.tflite: altered"):
        verify_directory(root, [keys[0].public], expect())
