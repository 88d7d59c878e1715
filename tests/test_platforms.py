"""The same answers on the device's platform: the smoke set (``smoke.py``: every model of the
default bundle on real pictures and a generated video) run on an emulated Raspberry Pi OS
userland (``edge-screen-fw emulate``) and on the tflite-runtime backend gives this machine's
verdicts, with scores, boxes and ages within ``smoke.TOLERANCE``.

Measured on 2026-12-02 (``pytest -s`` prints the largest differences): aarch64 LiteRT on
cortex-a72 against this machine, with the aarch64 variants, scores 0.004, boxes 0.8 px, ages
0.7 y; with x86_64's, 0.004, 0.1 px, 0.01 y (most of it the video: PyAV's YUV->RGB conversion
differs by up to 2 levels between x86 and ARM); tflite-runtime against LiteRT on x86_64, scores
0.027 (open_nsfw int8), boxes 0, ages 0; armv7l (tflite-runtime, Debian numpy 1.24 and Pillow 9.4)
against this machine's LiteRT, 0.035, 2.6 px, 0.65 y; aarch64 tflite-runtime, 0.040, 1.7 px,
0.56 y.
Run with each variant set: the one aarch64 prefers (int8 detector) and x86_64's (fp32), so a
kernel difference is not mistaken for a variant difference.

armv7l (Pi OS 32-bit: Debian's numpy 1.24 and Pillow 9.4, tflite-runtime from PyPI) is slow
to build and run, so it runs when asked: ``EDGE_SCREEN_ARMV7=1 python3 -m pytest -q
tests/test_platforms.py -k armv7l``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import smoke
from conftest import DATA

from firmware_tools.device import emulate
from firmware_tools.pipeline.venv import tflite_venv_dir, venv_python

HERE = Path(__file__).resolve().parent
SMOKE = HERE / "smoke.py"
NEEDS = "qemu-user-static and mmdebstrap (python3 -m firmware_tools setup installs them)"


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from edge_screen.bench.clip import ClipSpec, make_clip

    clip = tmp_path_factory.mktemp("clip") / "clip.mp4"
    make_clip(clip, ClipSpec(seconds=2, fps=2, width=640, height=360))  # 2 keyframes
    return [*smoke.inputs(DATA), clip]


def _host(items: list[Path], variants: str) -> dict[str, Any]:
    return smoke.reports(items, variants)


def _emulated(arch: str, items: list[Path], variants: str, tmp: Path,
              alternative: bool = False) -> dict[str, Any]:
    if any(shutil.which(t) is None for t in (emulate.TARGETS[arch].qemu, "mmdebstrap")):
        pytest.skip(f"no {NEEDS}")
    out = tmp / f"{arch}-{variants}.json"
    run = emulate.run(arch, ["python3", str(SMOKE), "--variants", variants, "--out", str(out),
                             *map(str, items)], alternative=alternative, capture_output=True,
                      text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    # LiteRT falls back to other kernels, quietly, when it cannot read the CPU's description.
    assert "Error in cpuinfo" not in run.stderr, run.stderr[-3000:]
    return dict(json.loads(out.read_text()))


@pytest.mark.parametrize("variants", ["aarch64", "x86_64"])
def test_aarch64_gives_this_machines_answers(
    items: list[Path], variants: str, tmp_path: Path
) -> None:
    ours = _emulated("aarch64", items, variants, tmp_path)
    host = _host(items, variants)
    print(f"aarch64 vs host, {variants} variants: largest {smoke.largest(ours, host)}")
    assert smoke.differences(ours, host, smoke.TOLERANCE) == []
    assert {name: r["verdict"] for name, r in ours.items()} == {
        "astronaut.jpg": "allow", "grace_hopper.jpg": "allow",
        "hold_minor_drawn_face.jpg": "hold", "review_noise.jpg": "review", "clip.mp4": "allow"}


def test_aarch64_on_tflite_runtime_gives_this_machines_answers(
    items: list[Path], tmp_path: Path
) -> None:
    """The alternative backend on the 64-bit Pi (its own site: tflite-runtime needs numpy<2)."""
    ours = _emulated("aarch64", items, "aarch64", tmp_path, alternative=True)
    host = _host(items, "aarch64")
    print(f"aarch64 tflite-runtime vs host LiteRT: largest {smoke.largest(ours, host)}")
    assert smoke.differences(ours, host, smoke.TFLITE_TOLERANCE) == []


@pytest.mark.skipif(not os.environ.get("EDGE_SCREEN_ARMV7"), reason="EDGE_SCREEN_ARMV7=1 runs it")
def test_armv7l_gives_this_machines_answers(items: list[Path], tmp_path: Path) -> None:
    ours = _emulated("armv7l", items, "armv7l", tmp_path)
    host = _host(items, "armv7l")
    print(f"armv7l vs host: largest {smoke.largest(ours, host)}")
    assert smoke.differences(ours, host, smoke.TFLITE_TOLERANCE) == []  # tflite-runtime there


def test_the_tflite_runtime_backend_gives_litert_answers(items: list[Path], tmp_path: Path) -> None:
    """The alternative backend (older Pi OS, armv7), in its own numpy<2 venv made by
    ``python3 -m firmware_tools setup``, with edge_screen from this checkout."""
    python = venv_python(tflite_venv_dir())
    if not python.exists():
        pytest.skip("no tflite-runtime venv: run python3 -m firmware_tools setup")
    out = tmp_path / "tflite.json"
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    code = "import edge_screen.backends as b; print(b.get_backend().name)"
    picked = subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True)
    assert picked.stdout.strip() == "tflite-runtime", picked.stderr[-2000:]
    run = subprocess.run([str(python), str(SMOKE), "--out", str(out), *map(str, items)],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    ours, host = json.loads(out.read_text()), _host(items, "native")
    print(f"tflite-runtime vs litert: largest {smoke.largest(ours, host)}")
    assert smoke.differences(ours, host, smoke.TFLITE_TOLERANCE) == []


def test_a_wheelhouse_installs_offline_on_the_device_userland(tmp_path: Path) -> None:
    if any(shutil.which(t) is None for t in ("qemu-aarch64-static", "mmdebstrap")):
        pytest.skip(f"no {NEEDS}")
    from firmware_tools.device.wheelhouse import wheelhouse

    house = tmp_path / "wheels"
    wheelhouse("aarch64", house)
    target = tmp_path / "site"
    t = emulate.TARGETS["aarch64"]
    tags = [arg for p in t.platforms for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links",
                    str(house), "--only-binary=:all:", "--implementation", "cp",
                    "--python-version", emulate.PYTHON, *tags, "--target", str(target),
                    "edge-screen"], check=True)
    photo = DATA / "images" / "astronaut.jpg"
    run = emulate.run("aarch64", ["edge-screen", "scan", "--json", str(photo)],
                      pythonpath=[target], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout)["verdict"] == "allow"
