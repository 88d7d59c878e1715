"""Where a report was measured: device, OS, load, versions and commit, so two reports can be
judged comparable (or not) before their numbers are."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import __version__


def read_text(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip("\x00\n ") or None
    except OSError:
        return None


def _git() -> dict[str, Any] | None:
    """The checkout's commit, only when this package really lives in that checkout."""
    root = Path(__file__).resolve().parents[2]  # the directory holding edge_screen/

    def git(*a: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *a], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != root:
            return None
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def load_average() -> list[float] | None:
    """How busy the machine was: a noisy neighbour shows here before it shows in the numbers."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def device_info() -> dict[str, Any]:
    """Enough about the device and software to know whether two reports are comparable."""
    cpuinfo = read_text("/proc/cpuinfo") or ""
    fields = dict(
        (k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in cpuinfo.splitlines())
    )
    os_release = dict(
        ln.split("=", 1) for ln in (read_text("/etc/os-release") or "").splitlines() if "=" in ln
    )
    temp = read_text("/sys/class/thermal/thermal_zone0/temp")
    dists = ("ai-edge-litert", "tflite-runtime", "numpy", "pillow", "onnxruntime")
    return {
        "cpu": fields.get("model name") or fields.get("Model") or fields.get("Hardware")
        or platform.processor() or platform.machine(),
        "device_model": read_text("/proc/device-tree/model"),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "governor": read_text("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "temperature_c": int(temp) / 1000 if temp and temp.lstrip("-").isdigit() else None,
        "load_average": load_average(),
        "os": os_release.get("PRETTY_NAME", "").strip('"') or platform.platform(),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "versions": {d: _version(d) for d in dists} | {"edge-screen": __version__},
        "git": _git(),
    }
