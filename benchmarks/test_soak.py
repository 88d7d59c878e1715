"""The 5,000-item soak (issue 16): ``screen_many`` over photos, animations, clips and hostile
files in one process, once per mode of ``tests/test_soak.py``'s ``MODES``. Timed once (a soak
is one long round); the RSS samples and their summary go into the JSON's ``extra_info``.

    python3 -m pytest benchmarks/test_soak.py -q -s --benchmark-json=soak.json

``EDGE_SCREEN_SOAK_ITEMS`` changes the count (default 5000). Numbers: docs/soak.md.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

# tests/test_soak.py holds the items, the checks and the sampler, shared with the short run in
# the test suite; loaded under another name (both files are test_soak to pytest).
_spec = importlib.util.spec_from_file_location(
    "edge_screen_soak", Path(__file__).parent.parent / "tests" / "test_soak.py")
assert _spec is not None and _spec.loader is not None
soak = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = soak  # its dataclasses look their module up
_spec.loader.exec_module(soak)

ITEMS = int(os.environ.get("EDGE_SCREEN_SOAK_ITEMS", "5000"))
EVERY = 50  # items between RSS samples
WARMUP = 500  # items before memory must be flat: every template seen ~30 times
# What "flat" means here (docs/soak.md): after warm-up, RSS moves within this band and its
# second-half trend stays under this many MB per 1,000 items (1 KB an item). Measured on a
# 2-core x86_64: spread 3.5 / 1.9 MB, slope 0.05 / 0.07 MB (default / workers=1).
SPREAD_MB = 16
SLOPE_MB_PER_1000 = 1.0


@pytest.mark.filterwarnings("ignore:::PIL")
@pytest.mark.parametrize("options", soak.MODES, ids=soak.mode_id)
def test_soak(benchmark: Any, options: Mapping[str, Any]) -> None:
    seen: list[Any] = []
    warmup = min(WARMUP, ITEMS // 2)  # a shorter run (EDGE_SCREEN_SOAK_ITEMS) warms up less
    benchmark.pedantic(lambda: seen.append(soak.run_soak(options, ITEMS, EVERY, warmup)),
                       rounds=1, iterations=1)
    result = seen[0]
    summary = result.summary()
    print(soak.mode_id(options), summary)
    benchmark.extra_info.update(summary, options=dict(options), every=EVERY, warmup=warmup,
                                rss_samples_mb=[round(s, 1) for s in result.samples])
    assert result.spread_mb <= SPREAD_MB, summary
    assert result.slope_mb_per_1000 <= SLOPE_MB_PER_1000, summary
