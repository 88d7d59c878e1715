"""``edge-screen-fw emulate --arch aarch64|armv7l -- COMMAND...``: run edge-screen on a Raspberry
Pi OS-like userland under qemu user-mode emulation.

The userland is Debian bookworm for the target (``mmdebstrap --variant=extract``: packages
unpacked, nothing run, so no emulation while building) plus the PyPI wheels a device would
install, put in place from the host (``pip install --target --platform``). It is built once and
cached, keyed by everything it is made from. The project is installed from the working tree as
a wheel on every run. Commands then run under ``qemu-<arch>-static`` with ``QEMU_LD_PREFIX``
pointing at the userland: host files stay reachable at their own paths, no root, no binfmt. A
Pi-like ``/proc/cpuinfo`` in the userland shadows the host's (LiteRT crashes in
``allocate_tensors`` when it reads an x86 one). Emulation cannot time anything: it proves that
the package installs from the same constraints and gives the same answers on the device's
userland. A command can not start other ARM programs (no binfmt): run Python in-process.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..pipeline.recipe import REPO_ROOT

CACHE_ENV = "EDGE_SCREEN_EMULATE_CACHE"
SUITE = "bookworm"
PYTHON = "3.11"
BUILD_VERSION = 2  # raise when the way a userland is made changes


class EmulationUnavailable(RuntimeError):
    """The host lacks a tool emulation needs (qemu-user-static, mmdebstrap)."""


@dataclass(frozen=True)
class Target:
    """One device platform: what Raspberry Pi OS would have, from Debian and PyPI."""

    arch: str  # platform.machine() on the device
    debian: str  # Debian's name for it
    qemu: str
    cpu: str  # QEMU_CPU: the Pi 4's core
    triplet: str
    debian_packages: tuple[str, ...]
    wheels: tuple[str, ...]  # from PyPI, resolved for the target
    resolve: bool  # let pip resolve the wheels' dependencies (no: some come from Debian)
    platforms: tuple[str, ...]  # wheel tags the target accepts (pip infers no lower ones)
    features: str
    cpu_architecture: int
    model_name: str
    # The alternative runtime in a site of its own (tflite-runtime needs numpy<2), by name.
    alternative: tuple[str, ...] = ()


def _manylinux(arch: str, glibc: Sequence[int]) -> tuple[str, ...]:
    return ("manylinux2014_" + arch, *(f"manylinux_2_{n}_{arch}" for n in glibc))


TARGETS = {
    # Pi OS 64-bit: everything from PyPI, LiteRT as on the host.
    "aarch64": Target(
        "aarch64", "arm64", "qemu-aarch64-static", "cortex-a72", "aarch64-linux-gnu",
        ("python3", "libstdc++6", "dash", "coreutils"),
        ("numpy>=1.23", "pillow>=10.1", "av>=12", "ai-edge-litert>=1.2", "cryptography>=41"),
        True, _manylinux("aarch64", range(17, 37)), "fp asimd evtstrm crc32 cpuid", 8, "",
        ("tflite-runtime>=2.14", "numpy<2", "pillow>=10.1", "av>=12"),
    ),
    # Pi OS 32-bit: PyPI has no armv7 numpy or Pillow wheels (piwheels does, but only PyPI and
    # Debian are reachable here): those two come from Debian, PyAV and tflite-runtime from PyPI.
    "armv7l": Target(
        "armv7l", "armhf", "qemu-arm-static", "cortex-a15", "arm-linux-gnueabihf",
        ("python3", "python3-numpy", "python3-pil", "libstdc++6", "dash", "coreutils"),
        ("av>=12", "tflite-runtime>=2.14"),
        False, ("linux_armv7l", *_manylinux("armv7l", range(17, 37))),
        "half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32",
        7, "ARMv7 Processor rev 3 (v7l)",
    ),
}


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "edge-screen-fw" / "emulate"))


def _key(target: Target) -> str:
    spec = json.dumps({"target": asdict(target), "suite": SUITE, "python": PYTHON,
                       "build": BUILD_VERSION}, sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


HOST_PACKAGES = ("qemu-user-static", "mmdebstrap", "arch-test")


def install_host_tools() -> str:
    """Install the Debian packages emulation needs, where this is a Debian-like host and we may
    (root, apt-get present); say what happened either way."""
    missing = [p for p, tool in zip(HOST_PACKAGES, ("qemu-aarch64-static", "mmdebstrap",
                                                    "arch-test"), strict=True)
               if shutil.which(tool) is None]
    if not missing:
        return "emulation tools present"
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return f"emulation tools missing ({', '.join(missing)}): install them as root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return f"installed {', '.join(missing)}"


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise EmulationUnavailable(
            f"{tool} is not installed: apt-get install qemu-user-static mmdebstrap arch-test")
    return path


def _cpuinfo(t: Target) -> str:
    model = f"model name\t: {t.model_name}\n" if t.model_name else ""
    cores = "".join(
        f"processor\t: {i}\n{model}BogoMIPS\t: 108.00\nFeatures\t: {t.features}\n"
        f"CPU implementer\t: 0x41\nCPU architecture: {t.cpu_architecture}\nCPU variant\t: 0x0\n"
        "CPU part\t: 0xd08\nCPU revision\t: 3\n\n"
        for i in range(4)
    )
    return cores + ("Hardware\t: BCM2835\nRevision\t: c03111\nSerial\t\t: 10000000deadbeef\n"
                    "Model\t\t: Raspberry Pi 4 Model B Rev 1.1\n")


def _pip_target(t: Target, dest: Path, requirements: Sequence[str], deps: bool) -> None:
    tags = [arg for p in t.platforms for arg in ("--platform", p)]
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
           "--root-user-action=ignore",
           "--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON, *tags,
           "--target", str(dest), *([] if deps else ["--no-deps"]), *requirements]
    subprocess.run(cmd, check=True)


def userland(arch: str) -> Path:
    """The cached userland for ``arch``, built first if it is not there yet."""
    t = TARGETS[arch]
    root = cache_root() / f"{arch}-{_key(t)}"
    if (root / "ready").exists():
        return root / "rootfs"
    _need(t.qemu)
    mmdebstrap = _need("mmdebstrap")
    cache_root().mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{arch}-", dir=cache_root()))
    try:
        rootfs = work / "rootfs"
        subprocess.run([mmdebstrap, "--quiet", "--variant=extract", f"--architectures={t.debian}",
                        "--include=" + ",".join(t.debian_packages), SUITE, str(rootfs)],
                       check=True)
        # What the packages' maintainer scripts would have made: Debian numpy's BLAS links.
        libs = rootfs / "usr" / "lib" / t.triplet
        for link in ("blas/libblas.so.3", "lapack/liblapack.so.3"):
            if (libs / link).exists():
                (libs / link.split("/")[1]).symlink_to(link)
        _pip_target(t, rootfs / "opt" / "site", t.wheels, t.resolve)
        if t.alternative:
            _pip_target(t, rootfs / "opt" / "site-tflite", t.alternative, True)
        (rootfs / "proc").mkdir(exist_ok=True)
        (rootfs / "proc" / "cpuinfo").write_text(_cpuinfo(t))
        (work / "ready").write_text(json.dumps(asdict(t)))
        shutil.rmtree(root, ignore_errors=True)
        os.rename(work, root)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return root / "rootfs"


def install_project(arch: str, rootfs: Path) -> Path:
    """The working tree as a wheel (no dependencies: the userland has them), installed into a
    fresh directory of the userland; returns it."""
    dest = rootfs / "opt" / "project"
    shutil.rmtree(dest, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                        "--no-build-isolation", "--disable-pip-version-check", "-w", tmp,
                        str(REPO_ROOT)], check=True, stdout=subprocess.DEVNULL)
        (wheel,) = Path(tmp).glob("edge_screen-*.whl")
        _pip_target(TARGETS[arch], dest, [str(wheel)], deps=False)
    return dest


def command_line(rootfs: Path, command: Sequence[str]) -> list[str]:
    """``edge-screen ...`` and ``python3 ...`` as the emulated interpreter runs them."""
    python = str(rootfs / "usr" / "bin" / f"python{PYTHON}")
    head, rest = command[0], list(command[1:])
    if head == "edge-screen":
        return [python, "-m", "edge_screen", *rest]
    if head in ("python", "python3", f"python{PYTHON}"):
        return [python, *rest]
    raise ValueError(f"emulate runs edge-screen or python3 commands, not {head!r}")


def run(arch: str, command: Sequence[str], pythonpath: Sequence[Path] | None = None,
        alternative: bool = False, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run ``command`` on ``arch``'s userland under qemu, with the working tree installed (or
    with ``pythonpath`` instead: e.g. what was installed from a wheelhouse); ``alternative``:
    with the target's alternative runtime (tflite-runtime on aarch64) instead of LiteRT."""
    if arch not in TARGETS:
        raise ValueError(f"--arch must be one of {', '.join(TARGETS)}")
    t = TARGETS[arch]
    if alternative and not t.alternative:
        raise ValueError(f"{arch} has one runtime only")
    rootfs = userland(arch)
    paths = pythonpath if pythonpath is not None else [install_project(arch, rootfs)]
    site = rootfs / "opt" / ("site-tflite" if alternative else "site")
    # QEMU_CPU: qemu's default ("max", with SVE) gives LiteRT's int8 kernels wrong numbers.
    environ = {**os.environ, "QEMU_LD_PREFIX": str(rootfs), "QEMU_CPU": t.cpu,
               "PYTHONPATH": ":".join(map(str, [*paths, site])),
               "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [_need(t.qemu), *command_line(rootfs, command)]
    return subprocess.run(cmd, env=environ, **kwargs)


def main(argv: Sequence[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="edge-screen-fw emulate", description=__doc__.splitlines()[0])
    p.add_argument("--arch", required=True, choices=sorted(TARGETS))
    p.add_argument("--tflite-runtime", action="store_true",
                   help="aarch64: with tflite-runtime (numpy<2) instead of ai-edge-litert")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- edge-screen ... | python3 ...")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("give a command after --, e.g. -- edge-screen scan --json photo.jpg")
    try:
        return run(args.arch, command, alternative=args.tflite_runtime).returncode
    except (EmulationUnavailable, ValueError, subprocess.CalledProcessError) as exc:
        print(f"edge-screen-fw emulate: error: {exc}", file=sys.stderr)
        return 1
