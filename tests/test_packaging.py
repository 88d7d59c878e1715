"""The wheel an embedding engineer installs carries everything that runs offline and no more: the
device bundle (every file its manifest lists, which are only the variants some platform prefers),
the typing marker and the bench's source photos, under the size goal, with device dependencies
only; installed on its own, it screens a photo and a video."""

from __future__ import annotations

import json
import os
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


# bytes: issue 10's goal (25 MB) for the face and nudity models, plus the two graphic-content
# models of issue 14 as fp16 (12.0 + 5.2 MB; their int8 fails fidelity on the synthetic
# decision-range inputs, see the model card): 36.9 MB measured. A smaller int8 brings it back.
WHEEL_GOAL = 38_000_000
DEVICE_DEPS = {"numpy", "pillow", "av", "ai-edge-litert", "tflite-runtime"}  # the last on armv7l


def test_wheel_carries_only_the_variants_some_platform_prefers(wheel: zipfile.ZipFile) -> None:
    manifest = json.loads(wheel.read("edge_screen/models/default/manifest.json"))
    models = {n for n in wheel.namelist() if n.endswith((".tflite", ".npz"))}
    models = {n for n in models if n.startswith("edge_screen/models/")}
    shipped = {f"edge_screen/models/default/{v['file']}" for m in manifest["models"]
               for v in m["variants"]}
    assert models == shipped
    for m in manifest["models"]:
        assert {v["name"] for v in m["variants"]} == set(m["preferred"].values()), m["id"]


def test_wheel_is_under_the_size_goal_and_pulls_only_device_dependencies(
    wheel: zipfile.ZipFile,
) -> None:
    assert wheel.filename is not None
    assert Path(wheel.filename).stat().st_size < WHEEL_GOAL
    meta = wheel.read(next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")))
    required = [
        line.split(":", 1)[1].strip()
        for line in meta.decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]
    device = {r.split(";")[0].split(">")[0].split("=")[0].strip().lower() for r in required
              if "extra ==" not in r}
    assert device == DEVICE_DEPS


def test_installed_wheel_screens_a_photo_and_a_video_from_its_own_venv(
    wheel: zipfile.ZipFile, tmp_path: Path
) -> None:
    """The wheel alone, not this checkout: a venv that sees the machine's numpy, Pillow, PyAV and
    LiteRT (no network here) but imports edge_screen from its own site-packages."""
    from edge_screen.bench.clip import ClipSpec, make_clip

    assert wheel.filename is not None
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of this checkout
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel.filename]
    subprocess.run(pip, check=True, capture_output=True)
    clip = tmp_path / "clip.mp4"
    make_clip(clip, ClipSpec(seconds=2, fps=2, width=640, height=360))
    photo = ROOT / "tests" / "data" / "images" / "astronaut.jpg"
    where = subprocess.run([str(py), "-c", "import edge_screen; print(edge_screen.__file__)"],
                           cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    assert where.stdout.startswith(str(venv)), where.stdout
    run = subprocess.run([str(venv / "bin" / "edge-screen"), "scan", "--json", str(photo),
                          str(clip)], cwd=tmp_path, env=env, capture_output=True, text=True)
    reports = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert [r["error"] for r in reports] == [None, None], run.stderr[-2000:]
    assert reports[0]["verdict"] == "allow" and len(reports[0]["faces"]) == 1
    assert reports[1]["media"]["kind"] == "video"
