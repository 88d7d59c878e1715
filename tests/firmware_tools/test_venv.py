"""An optional venv that cannot be made (tflite-runtime has no wheel for newer Pythons) is
removed and reported, so setup goes on and the tests that need it skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_tools.pipeline import venv


def test_optional_venv_that_cannot_install_is_removed_and_reported(tmp_path: Path) -> None:
    reqs = tmp_path / "reqs.txt"
    reqs.write_text("./no-such-local-package-dir\n")  # fails offline too, without an index
    target = tmp_path / "venv"
    with pytest.raises(venv.VenvMissing, match=r"reqs.txt .*skipped"):
        venv.setup_optional(target, reqs)
    assert not target.exists()
    assert not venv.available(target)
