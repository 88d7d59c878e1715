"""The child-safety decision-range file is what ``studies.decision_child`` makes: its drawn face
of no one, with a perturbation too small to see.

Moved here from ``tests/test_decision_range.py`` (which checks what the screener makes of the
files) so the runtime's tests import nothing from the studies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from firmware_tools.studies.decision_child import TARGET, drawn_face
from firmware_tools.studies.decision_make import IMAGES

DECISION = Path(__file__).parents[1] / "data" / "decision"


def test_the_child_safety_file_is_the_drawn_face_with_an_invisible_perturbation() -> None:
    (name,) = [p.name for p in DECISION.iterdir()
               if p.name.startswith("hold_minor_") and p.suffix in (".png", ".jpg")]
    assert name == f"{TARGET.name}.jpg"
    drawn = drawn_face(Image.open(IMAGES / f"{TARGET.start}.jpg"), TARGET.size[0])
    diff = np.abs(
        np.asarray(Image.open(DECISION / name).convert("RGB"), np.int16)
        - np.asarray(drawn, np.int16)
    )
    assert diff.mean() < 3.0 and diff.max() <= 24, (diff.mean(), diff.max())  # 1.7 and 15
