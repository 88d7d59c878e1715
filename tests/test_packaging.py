"""The wheel an embedding engineer installs carries everything that runs offline: the default
bundle (every file its manifest lists), the typing marker, and the bench's source photos."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    pytest.importorskip("hatchling", reason="test extra: pip install '.[test]'")
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*cmd, "-w", str(out), str(ROOT)], check=True, capture_output=True)
    (built,) = out.glob("edge_screen-*.whl")
    return zipfile.ZipFile(built)


def test_wheel_carries_the_default_bundle_whole(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    manifest = json.loads(wheel.read("edge_screen/models/default/manifest.json"))
    files = [v["file"] for m in manifest["models"] for v in m["variants"]]
    assert files and all(f"edge_screen/models/default/{f}" in names for f in files)
    assert "edge_screen/models/default/MODEL_CARD.md" in names
    assert "edge_screen/py.typed" in names


def test_wheel_carries_the_bench_photos_with_their_licences(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    photos = {p.name for p in (ROOT / "tests" / "data" / "images").glob("*.jpg")}
    assert photos and {f"edge_screen/bench_images/{p}" for p in photos} <= names
    assert "edge_screen/bench_images/README.md" in names
