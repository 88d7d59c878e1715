"""Virtualenvs apart from the main one, created from pinned requirements, used through
subprocesses.

onnx2tf pins TensorFlow 2.19 and numpy 1.26, which clash with the runtime's numpy 2, so the
conversion code runs in a separate interpreter and talks to this process through files only.
The tflite-runtime backend (older Pi OS / armv7) needs numpy<2 too: its venv is where the
screener's tests run on that backend.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .recipe import DATA_DIR, REPO_ROOT

REQUIREMENTS = DATA_DIR / "convert-requirements.txt"
ENV_VAR = "EDGE_SCREEN_FW_VENV"
TFLITE_REQUIREMENTS = DATA_DIR / "tflite-requirements.txt"
TFLITE_ENV_VAR = "EDGE_SCREEN_TFLITE_VENV"


class VenvMissing(RuntimeError):
    """The converter venv does not exist yet; ``edge-screen-fw setup`` creates it."""


def venv_dir() -> Path:
    default = Path.home() / ".cache" / "edge-screen-fw" / "convert-venv"
    return Path(os.environ.get(ENV_VAR, default))


def tflite_venv_dir() -> Path:
    default = Path.home() / ".cache" / "edge-screen-fw" / "tflite-venv"
    return Path(os.environ.get(TFLITE_ENV_VAR, default))


def venv_python(venv: Path | None = None) -> Path:
    return (venv or venv_dir()) / "bin" / "python"


def available(venv: Path | None = None) -> bool:
    return venv_python(venv).exists()


def setup(venv: Path | None = None, requirements: Path = REQUIREMENTS) -> Path:
    """Create (or bring up to date) a venv from a pinned requirements file: by default the
    converter's (about 2.6 GB)."""
    venv = venv or venv_dir()
    if not venv_python(venv).exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run([*pip, "-q", "-r", str(requirements)], check=True)
    return venv


def setup_optional(venv: Path, requirements: Path) -> Path:
    """``setup``, for a venv the project can do without (tflite-runtime has wheels for Python
    <= 3.11 only): on failure the half-made venv is removed and ``VenvMissing`` says why."""
    try:
        return setup(venv, requirements)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(venv, ignore_errors=True)
        raise VenvMissing(
            f"could not install {requirements.name} for Python {sys.version_info[0]}."
            f"{sys.version_info[1]} ({exc}); what needs it is skipped"
        ) from exc


def run_module(module: str, args: list[str], cwd: Path, log: Path) -> None:
    """Run ``python -m module args`` in the venv; its output goes to ``log``, shown on failure."""
    python = venv_python()
    if not python.exists():
        raise VenvMissing(f"no converter venv at {python.parent.parent}; run: edge-screen-fw setup")
    env = dict(os.environ)
    # onnx2tf calls the onnxsim executable by name; firmware_tools itself comes from this checkout.
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    with log.open("w") as out:
        rc = subprocess.run([str(python), "-m", module, *args], cwd=cwd, env=env,
                            stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{module} failed (exit {rc}); log {log}:\n{tail}")
