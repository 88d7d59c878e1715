"""The documented update flow, command by command (docs/updates.md): a model team makes keys,
signs and verifies a bundle; a device installs, updates, rolls back and screens from its store;
every refusal exits 1 with one line that names the file or the check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge_screen import cli as device
from edge_screen.bundle import default_bundle_dir
from firmware_tools import cli as team

IMAGES = Path(__file__).parent / "data" / "images"


def _bundle(root: Path, version: str) -> Path:
    shutil.copytree(default_bundle_dir(), root)
    (root / "model.sig").unlink(missing_ok=True)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["bundle_version"] = version
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


def _run(main: object, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)  # type: ignore[operator]
    out, err = capsys.readouterr()
    return code, out, err


def test_the_update_flow_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys, store = tmp_path / "keys", str(tmp_path / "store")
    assert _run(team.main, ["keygen", "--out", str(keys)], capsys)[0] == 0
    private = str(keys / "edge-screen-signing.key.pem")
    public = str(keys / "edge-screen-signing.pub.pem")
    v1, v2 = _bundle(tmp_path / "v1", "2027.1.1"), _bundle(tmp_path / "v2", "2027.1.2")
    for b in (v1, v2):
        assert _run(team.main, ["sign", str(b), "--key", private], capsys)[0] == 0
    code, out, _ = _run(team.main, ["verify", str(v1), "--trust", public], capsys)
    assert code == 0 and "bundle 2027.1.1" in out
    code, out, _ = _run(device.main, ["bundle", "verify", str(v1), "--trust", public], capsys)
    assert code == 0 and out.startswith("verified:")
    for b in (v1, v2):
        code, out, err = _run(device.main, ["bundle", "install", str(b), "--store", store,
                                            "--trust", public], capsys)
        assert code == 0, err
    code, out, _ = _run(device.main, ["bundle", "status", "--store", store, "--json"], capsys)
    status = json.loads(out)
    assert status["active"]["bundle_version"] == "2027.1.2"
    assert status["previous"]["bundle_version"] == "2027.1.1"
    code, out, err = _run(device.main, ["scan", "--json", "--store", store, "--trust", public,
                                        str(IMAGES / "astronaut.jpg")], capsys)
    assert code == 0 and json.loads(out)["verdict"] == "allow", err
    assert _run(device.main, ["bundle", "rollback", "--store", store], capsys)[0] == 0
    code, out, _ = _run(device.main, ["bundle", "status", "--store", store], capsys)
    assert out.splitlines() == ["active: 2027.1.1", "previous: 2027.1.2"]

    # Refusals: one line each, exit 1, naming the check; the active bundle stays.
    code, _, err = _run(device.main, ["bundle", "install", str(v1), "--store", store,
                                      "--trust", public], capsys)
    assert code == 1 and "not newer than the installed" in err and err.count("\n") == 1
    (v2 / "open_nsfw.int8.tflite").write_bytes(b"tampered")
    code, _, err = _run(device.main, ["bundle", "install", str(v2), "--store", store,
                                      "--trust", public, "--force", "--reason", "test"], capsys)
    assert code == 1 and "open_nsfw.int8.tflite: altered" in err and err.count("\n") == 1
    code, _, err = _run(team.main, ["verify", str(v2), "--trust", public], capsys)
    assert code == 1 and "open_nsfw.int8.tflite: altered" in err
    code, _, err = _run(device.main, ["bundle", "install", str(v1), "--store", store,
                                      "--trust", public, "--force"], capsys)
    assert code == 2 and "--force needs --reason" in err
    code, out, _ = _run(device.main, ["bundle", "status", "--store", store], capsys)
    assert out.splitlines()[0] == "active: 2027.1.1"


def test_scan_with_a_store_needs_a_key_and_an_unsigned_bundle_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(device.main, ["scan", "--store", str(tmp_path), "x.jpg"], capsys)
    assert code == 2 and "trusted_keys" in err
    team.main(["keygen", "--out", str(tmp_path / "k")])
    unsigned = _bundle(tmp_path / "b", "2027.1.1")
    code, _, err = _run(device.main, ["scan", "--bundle", str(unsigned), "--trust",
                                      str(tmp_path / "k" / "edge-screen-signing.pub.pem"),
                                      str(IMAGES / "astronaut.jpg")], capsys)
    assert code == 2 and "unsigned bundle" in err
