"""The fuzz harnesses (tests/fuzz/harnesses.py): every seed and every committed finding replayed
without a fuzzer, the findings as named regressions, and each harness run under atheris for a
short budget (docs/fuzzing.md has the long run)."""

from __future__ import annotations

import math
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from edge_screen import ManifestError, PolicyError, Screener
from edge_screen.manifest import manifest_from_bytes
from edge_screen.policy import Policy

FUZZ = Path(__file__).parent / "fuzz"
sys.path.insert(0, str(FUZZ))
import harnesses  # noqa: E402

# Pillow warns about what it meets in mutated files (corrupt EXIF, truncated reads): expected.
pytestmark = pytest.mark.filterwarnings("ignore:::PIL")

# Seconds of coverage-guided fuzzing per harness in the normal test run (plus ~5-10 s each to
# instrument the package and, for screen, load the models): about 75 s in all on 2 cores.
CI_SECONDS = {"screen": 12, "prepare": 12, "policy": 6, "manifest": 6, "report": 6}


def _inputs(harness: str) -> list[Path]:
    dirs = [FUZZ / "corpus" / harness, FUZZ / "findings" / harness]
    return sorted(p for d in dirs if d.is_dir() for p in d.iterdir() if p.is_file())


@pytest.mark.parametrize("harness", sorted(harnesses.HARNESSES))
def test_every_seed_and_finding_passes_its_harness(harness: str, request: pytest.FixtureRequest
                                                   ) -> None:
    if harness == "screen":  # the session's Screener, not a second set of interpreters
        screener: Screener = request.getfixturevalue("screener")
        harnesses._SCREENER = screener
    inputs = _inputs(harness)
    assert len(inputs) >= 3, f"tests/fuzz/corpus/{harness} lost its seeds"
    for path in inputs:
        harnesses.HARNESSES[harness](path.read_bytes())


def test_a_policy_listing_a_table_in_screen_without_is_a_policy_error() -> None:
    """Found while writing the policy harness: ``set()`` of ``[{}]`` raised TypeError."""
    text = (FUZZ / "findings" / "policy" / "screen_without_table.toml").read_text()
    with pytest.raises(PolicyError, match="screen_without"):
        Policy.from_toml(text)
    with pytest.raises(PolicyError, match="screen_without"):
        Policy.from_toml(text.replace("[{}]", '[["sexual"]]'))


def test_a_manifest_number_that_overflows_to_infinity_is_refused() -> None:
    """Found by the manifest harness: ``1e999`` (a self-test signal) parsed as ``inf``."""
    data = (FUZZ / "findings" / "manifest" / "self_test_signal_1e999.json").read_bytes()
    with pytest.raises(ManifestError, match="finite"):
        manifest_from_bytes(data)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_face_detector_threshold_that_is_not_a_finite_number_is_refused(token: str) -> None:
    """The same finding where it would fail open: ``scores >= NaN`` keeps no face, so no minor
    could ever be found; Python's JSON reads all four tokens."""
    data = (FUZZ / "findings" / "manifest" / "score_threshold_nan.json").read_bytes()
    assert b"NaN" in data
    with pytest.raises(ManifestError, match="finite"):
        manifest_from_bytes(data.replace(b"NaN", token.encode()))
    fine = manifest_from_bytes(data.replace(b"NaN", b"0.6"))
    assert math.isfinite(fine.models[0].output.score_threshold)  # type: ignore[union-attr]


def test_a_gif_frame_whose_mode_changes_when_loaded_is_screened_as_rgb(screener: Screener
                                                                        ) -> None:
    """Found by the prepare harness: Pillow gave frame 2 of this GIF as RGB until it was loaded,
    then RGBA; read before the load, four channels reached the models (an ``internal`` error)."""
    data = (FUZZ / "findings" / "prepare" / "gif_frame_rgba_after_load.gif").read_bytes()
    r = screener.screen(data)
    assert r.error is None, r.error
    assert (r.media.kind, r.media.format, r.media.frames_decoded) == ("animation", "GIF", 2)
    assert r.media.frames_screened >= 2


@pytest.mark.parametrize("harness", sorted(harnesses.HARNESSES))
def test_each_harness_finds_nothing_in_its_ci_budget(harness: str, tmp_path: Path) -> None:
    """atheris in a subprocess (libFuzzer exits the process on a finding): new inputs go to a
    temporary directory, the committed seeds and findings are read as they are."""
    pytest.importorskip("atheris", reason="test extra: pip install '.[test]'")
    new = tmp_path / "new"
    new.mkdir()
    dirs = [str(d) for d in (FUZZ / "corpus" / harness, FUZZ / "findings" / harness) if d.is_dir()]
    # libFuzzer checks its peak RSS, and a child forked from this pytest process starts with a
    # peak of the process's resident size, kept across exec (2.6 GB late in the full suite: an
    # out-of-memory finding before any input ran), so the harness's limit is raised by it.
    inherited = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    cmd = [sys.executable, str(FUZZ / "run.py"), harness, "-seed=1", "-print_final_stats=1",
           f"-max_total_time={CI_SECONDS[harness]}", f"-artifact_prefix={tmp_path}/",
           f"-rss_limit_mb={harnesses.RSS_LIMIT_MB[harness] + inherited}", str(new), *dirs]
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, errors="replace",
                         timeout=CI_SECONDS[harness] + 240)
    out = run.stderr + run.stdout
    findings = sorted(p.name for p in tmp_path.iterdir() if p.name.split("-")[0] in
                      ("crash", "timeout", "oom", "leak", "slow"))
    assert run.returncode == 0 and not findings, (
        f"{harness}: exit {run.returncode}, {findings}; replay with "
        f"python3 tests/fuzz/run.py {harness} <file>\n{out[-4000:]}")
    executed = [line for line in out.splitlines() if "number_of_executed_units" in line]
    assert executed and int(executed[0].split()[-1]) > 0, out[-2000:]
