"""The self-test a device runs before a bundle becomes active: it screens the pictures the bundle
carries for this purpose and compares verdict, face count and signals with what the build
machine measured for this CPU architecture's variants (``manifest.self_test``), within the
manifest's tolerances. It catches what a signature cannot: a bundle that verifies but screens
wrongly here (a kernel that computes other numbers, a variant broken in conversion)."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .bundle import Bundle
from .errors import SelfTestFailed
from .manifest import Manifest


def run_self_test(root: Path, manifest: Manifest, machine: str | None = None) -> None:
    """Raise ``SelfTestFailed`` naming the picture and the signal that is off."""
    from .screener import Screener, ScreenerOptions

    test = manifest.self_test
    if test is None:
        raise SelfTestFailed(f"bundle {manifest.bundle_version} carries no self-test; a device "
                             "activates only bundles it can check")
    machine = (machine or platform.machine()).lower()
    opts = ScreenerOptions(bundle=root, threads=1, workers=1)
    with Screener(opts) as screener:
        if screener.bundle.manifest != manifest:
            raise SelfTestFailed(f"{root}: the manifest changed since it was verified")
        for case in test.cases:
            want = case.expected.get(machine) or case.expected.get("default")
            if want is None:
                raise SelfTestFailed(f"{case.file}: no expected result for {machine}")
            data = Bundle(root, manifest).read_verified(case.file, case.size, case.sha256)
            report = screener.screen(data)
            problems = _compare(report.verdict, len(report.faces), report.signals, want,
                                test.tolerance)
            if report.error is not None:
                problems.insert(0, f"error {report.error.code}: {report.error.message}")
            if problems:
                raise SelfTestFailed(f"self-test {case.file} on {machine}: {'; '.join(problems)}")


def _compare(verdict: str, faces: int, signals: Mapping[str, float | None], want: Any,
             tolerance: Mapping[str, float]) -> list[str]:
    out = []
    if verdict != want["verdict"]:
        out.append(f"verdict {verdict}, expected {want['verdict']}")
    if faces != want["faces"]:
        out.append(f"{faces} faces, expected {want['faces']}")
    for name, expected in want["signals"].items():
        got = signals.get(name)
        if expected is None or got is None:
            if got is not expected:
                out.append(f"{name} {got}, expected {expected}")
        elif abs(got - expected) > tolerance.get(name, 0.0):
            out.append(f"{name} {got:.4f}, expected {expected:.4f} "
                       f"(tolerance {tolerance.get(name, 0.0)})")
    return out
