"""``edge-screen-fw evaluate`` end to end on a corpus made here: generated photos, videos, a
corrupt file and a non-media file; two sides that differ (the shipped bundle with BlazeFace's
fp32 and int8 variants); labels made for the test. Local pool and a local Ray instance (2 CPUs,
started here) must give the same numbers and report; a rerun after a killed worker or a stopped
driver screens only what was lost."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="eval extra: pip install '.[test]'")
pytest.importorskip("matplotlib", reason="eval extra: pip install '.[test]'")

from firmware_tools.evaluate import (  # noqa: E402
    EvaluationError,
    EvaluationOptions,
    LocalPool,
    RayData,
    Side,
    evaluate,
)
from firmware_tools.evaluate import cli as eval_cli  # noqa: E402
from firmware_tools.evaluate.generate import generate, video  # noqa: E402
from firmware_tools.evaluate.run import OnShard, Shard  # noqa: E402
from firmware_tools.pipeline import face_scenes  # noqa: E402

ITEMS = 26  # generate()'s mix: faces, scenes, synthetic inputs, a video, a corrupt JPEG
SHARD = 4
CANDIDATE = Side(variants=(("face_detector", "int8"),))
BASELINE = Side(variants=(("face_detector", "fp32"),))
AGES = (9.0, 15.0, 21.0, 40.0)  # made up, one per face item in turn: every band gets faces


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("eval")
    _, items = generate(root, ITEMS)
    video(items / "900-video.mp4", face_scenes.build("heldout", (240, 320), 1, 9)[0])
    (items / "901-not-media.bin").write_bytes(b"\x00" * 100)
    records = [json.loads(line) for line in (root / "labels.jsonl").read_text().splitlines()]
    faces = sorted(p.name for p in items.iterdir() if "-faces." in p.name)
    records += [{"key": k, "ages": [AGES[i % len(AGES)]]} for i, k in enumerate(faces)]
    # The corrupt item labelled positive: unscreenable, it must count as flagged.
    records.append({"key": next(p.name for p in items.iterdir() if "corrupt" in p.name),
                    "sexual": 1})
    labels = root / "labels-test.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in records))
    return items, labels


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 * 1024,
             configure_logging=False)
    yield
    ray.shutdown()


def _options(data: tuple[Path, Path], out: Path, **kw: Any) -> EvaluationOptions:
    items, labels = data
    return EvaluationOptions(CANDIDATE, str(items), out, **{
        "baseline": BASELINE, "labels": str(labels), "shard_size": SHARD, "quiet": True, **kw})


@pytest.fixture(scope="module")
def local(data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local")
    assert evaluate(_options(data, out), LocalPool(2)).complete
    return out


def test_local_and_ray_give_the_same_numbers_and_report(
        data: tuple[Path, Path], local: Path, local_ray: None, tmp_path: Path) -> None:
    result = evaluate(_options(data, tmp_path), RayData(2))
    assert {r.executor for r in result.runs} == {"ray"}
    for name in ("metrics.json", "report.md", "report.png"):
        assert (tmp_path / name).read_bytes() == (local / name).read_bytes(), name


def test_metrics_cover_every_item_both_sides_and_the_labels(local: Path) -> None:
    m = json.loads((local / "metrics.json").read_text())
    n = ITEMS + 2
    assert m["corpus"]["items"] == n
    assert sum(sum(row.values()) for row in m["agreement"]["verdicts"]["confusion"].values()) == n
    assert m["sides"]["candidate"]["models"]["face_detector"].endswith("/int8")
    assert m["sides"]["baseline"]["models"]["face_detector"].endswith("/fp32")
    assert m["agreement"]["faces"]["matched"] > 10
    assert m["agreement"]["signals"]["minor"]["delta"]["n"] > 10
    for side in ("candidate", "baseline"):
        acc = m["accuracy"][side]
        assert acc["signals"]["graphic"]["roc_auc"] is not None
        assert all(b["n"] + b["missed"] > 0 for b in acc["age_by_band"].values())
        assert acc["p_minor_calibration"]["n"] > 0
    assert "Items that differ most" in (local / "report.md").read_text() or \
        not m["agreement"]["differences"]


def test_a_corrupt_item_counts_as_unscreenable_not_dropped(local: Path) -> None:
    m = json.loads((local / "metrics.json").read_text())
    for side in ("candidate", "baseline"):
        ov = m["overview"][side]
        assert ov["items"] == ITEMS + 2
        assert ov["unscreenable"] == 2 and set(ov["errors"]) <= {"corrupt", "unsupported"}
        sexual = m["accuracy"][side]["signals"]["sexual"]
        assert sexual["unscreenable"] == 1
        assert all(t["fn"] == 0 or t["tp"] >= 1 for t in sexual["at_thresholds"])
        assert sexual["at_thresholds"][-1]["tp"] >= 1  # flagged even at sexual >= 0.8


class KillOneWorker(LocalPool):
    """The real pool, with one of its processes SIGKILLed once the first shard is in."""

    def run(self, side: Side, shards: Sequence[Shard], on_shard: OnShard) -> None:
        killed: list[int] = []

        def first_then_kill(shard: int, table: Any) -> None:
            on_shard(shard, table)
            if not killed:
                victim = multiprocessing.active_children()[0]
                os.kill(victim.pid or 0, signal.SIGKILL)
                killed.append(victim.pid or 0)

        super().run(side, shards, first_then_kill)


def test_a_rerun_after_a_killed_worker_screens_only_the_lost_shards(
        data: tuple[Path, Path], tmp_path: Path) -> None:
    opts = _options(data, tmp_path, baseline=None, labels=None)
    with pytest.raises(EvaluationError, match="worker process died"):
        evaluate(opts, KillOneWorker(2))
    run_dir = next((tmp_path / "runs").iterdir())
    kept = [json.loads(line)["rows"] for line in (run_dir / "completed.jsonl").read_text()
            .splitlines()]
    assert 1 <= len(kept) < 7
    rerun = evaluate(opts, LocalPool(2))
    (stats,) = rerun.runs
    assert stats.shards_reused == len(kept)
    assert stats.items_screened == ITEMS + 2 - sum(kept)
    assert rerun.metrics is not None and rerun.metrics["overview"]["candidate"]["items"] == 28


def test_ray_resumes_after_a_stopped_driver(
        data: tuple[Path, Path], local_ray: None, tmp_path: Path) -> None:
    opts = _options(data, tmp_path, baseline=None, labels=None, max_shards=2)
    first = evaluate(opts, RayData(2))
    assert not first.complete and first.runs[0].items_screened == 2 * SHARD
    assert not (tmp_path / "metrics.json").exists()
    again = evaluate(_options(data, tmp_path, baseline=None, labels=None), RayData(2))
    (stats,) = again.runs
    assert again.complete and stats.shards_reused == 2
    assert stats.items_screened == ITEMS + 2 - 2 * SHARD


def test_the_command_refuses_another_corpus_in_the_same_out(
        data: tuple[Path, Path], local: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.jpg").write_bytes(b"not a jpeg")
    code = eval_cli.main(["--candidate", "default", "--variants", "face_detector=int8",
                          "--corpus", str(other), "--out", str(local), "--quiet"])
    assert code == 1 and "another --out" in capsys.readouterr().err
