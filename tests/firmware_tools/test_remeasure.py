"""``python -m firmware_tools.bundle --remeasure`` measures exactly the files that ship."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_tools.bundle import BundleError, adopt
from firmware_tools.fetch import sha256_file
from firmware_tools.recipe import DEFAULT_OUT, Work


def _linked_bundle(root: Path) -> Path:
    out = root / "bundle"
    out.mkdir()
    for f in DEFAULT_OUT.iterdir():
        (out / f.name).symlink_to(f)
    return out


def test_adopt_copies_the_shipped_variants_into_the_work_directory(tmp_path: Path) -> None:
    work = Work(tmp_path / "work")
    adopt(work, _linked_bundle(tmp_path))
    for name in ("face_detector.int8.tflite", "age_estimator.fp16.tflite",
                 "face_landmarks.fp32.npz"):
        assert sha256_file(work.variants / name) == sha256_file(DEFAULT_OUT / name)


def test_adopt_refuses_a_variant_file_the_manifest_does_not_vouch_for(tmp_path: Path) -> None:
    out = _linked_bundle(tmp_path)
    bad = out / "face_detector.fp32.tflite"
    data = bytearray(bad.read_bytes())
    data[-1] ^= 1
    bad.unlink()
    bad.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"face_detector\.fp32\.tflite"):
        adopt(Work(tmp_path / "work"), out)
