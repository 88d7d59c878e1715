"""The evaluation's parts without models: statistics against hand-worked cases, labels and
corpus specs, the shard record a rerun trusts, and agreement on made-up rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow", reason="eval extra: pip install '.[test]'")

from edge_screen.policy import Policy  # noqa: E402
from firmware_tools.evaluate import corpus, labels, metrics, stats  # noqa: E402
from firmware_tools.evaluate.errors import EvaluationError  # noqa: E402
from firmware_tools.evaluate.screen import parse_variants, schema  # noqa: E402
from firmware_tools.evaluate.shards import RECORD, ShardStore  # noqa: E402


def test_roc_auc_matches_hand_worked_cases() -> None:
    pos = np.array([True, True, False, False])
    assert stats.roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), pos) == 1.0
    assert stats.roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), pos) == 0.0
    assert stats.roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), pos) == 0.5
    # pairs (pos, neg): (0.9>0.7) (0.9>0.3) (0.4<0.7) (0.4>0.3): 3 of 4
    assert stats.roc_auc(np.array([0.9, 0.4, 0.7, 0.3]), pos) == 0.75
    assert stats.roc_auc(np.array([0.9, 0.4]), np.array([True, True])) is None


def test_roc_curve_ends_at_the_corners_and_ties_move_together() -> None:
    curve = stats.roc_curve(np.array([0.9, 0.5, 0.5, 0.1]), np.array([True, True, False, False]))
    assert curve == {"fpr": [0.0, 0.0, 0.5, 1.0], "tpr": [0.0, 0.5, 1.0, 1.0]}


def test_precision_and_recall_use_the_policys_greater_or_equal() -> None:
    r = stats.at_threshold(np.array([0.2, 0.19, 0.8, 0.0]), np.array([True, True, False, False]),
                           0.2)
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (1, 1, 1, 1)
    assert r["precision"] == 0.5 and r["recall"] == 0.5


def test_calibration_of_a_perfect_and_a_wrong_forecaster() -> None:
    outcome = np.array([True, False, True, False])
    assert stats.calibration(outcome.astype(float), outcome)["ece"] == 0.0
    bad = stats.calibration(np.array([0.0, 1.0, 0.0, 1.0]), outcome)
    assert bad["ece"] == 1.0 and bad["brier"] == 1.0


def test_boxes_match_one_to_one_best_first() -> None:
    a = [[0, 0, 10, 10], [20, 20, 30, 30]]
    b = [[21, 21, 30, 30], [0, 0, 9, 10], [100, 100, 110, 110]]
    assert stats.match(a, b, 0.5) == [(0, 1), (1, 0)]
    assert stats.match(a, [[0, 0, 10, 10]] * 2, 0.5) == [(0, 0)]
    assert stats.match([], b, 0.5) == []


def test_labels_from_csv_words_scores_and_ages(tmp_path: Path) -> None:
    f = tmp_path / "labels.csv"
    f.write_text("key,sexual,graphic,ages\na.jpg,yes,0.2,7;34\nb.jpg,0,,40\nc.jpg,,,\n")
    got = labels.load(f)
    assert got["a.jpg"].content == {"sexual": True, "graphic": False, "minor": True}
    assert got["a.jpg"].ages == (7.0, 34.0)
    assert got["b.jpg"].content == {"sexual": False, "minor": False}
    assert got["c.jpg"].content == {}


@pytest.mark.parametrize("record", [{"sexual": 1}, {"key": "a", "sexual": 3},
                                    {"key": "a", "ages": [5], "boxes": [[0, 0, 1]]}])
def test_a_bad_label_record_is_named(tmp_path: Path, record: dict[str, object]) -> None:
    f = tmp_path / "labels.jsonl"
    f.write_text(json.dumps({"key": "ok"}) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(EvaluationError, match="record 2"):
        labels.load(f)


def test_corpus_specs_give_keys_and_resolved_uris(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.jpg").write_bytes(b"x")
    (tmp_path / "d" / "sub" / "a.jpg").write_bytes(b"x")
    c = corpus.load(tmp_path / "d")
    assert [it.key for it in c.items] == ["b.jpg", "sub/a.jpg"]
    assert c.items[1].uri == str((tmp_path / "d" / "sub" / "a.jpg").resolve())
    lst = tmp_path / "list.txt"
    lst.write_text("# photos\nd/b.jpg\ns3://bucket/x.jpg\n")
    assert [(it.key, it.uri) for it in corpus.load(lst).items] == [
        ("d/b.jpg", str((tmp_path / "d" / "b.jpg").resolve())),
        ("s3://bucket/x.jpg", "s3://bucket/x.jpg")]
    table = tmp_path / "items.csv"
    table.write_text("key,path\none,d/b.jpg\ntwo,d/sub/a.jpg\n")
    assert [it.key for it in corpus.load(table).items] == ["one", "two"]
    table.write_text("key,path\none,d/b.jpg\none,d/sub/a.jpg\n")
    with pytest.raises(EvaluationError, match="more than one item"):
        corpus.load(table)


def test_corpus_fingerprint_changes_with_order_and_shard_size(tmp_path: Path) -> None:
    a = corpus.Corpus((corpus.Item("a", "/a"), corpus.Item("b", "/b")), "x")
    b = corpus.Corpus((corpus.Item("b", "/b"), corpus.Item("a", "/a")), "x")
    assert a.fingerprint(1) != b.fingerprint(1) and a.fingerprint(1) != a.fingerprint(2)
    assert [len(s) for s in a.shards(1)] == [1, 1]


def _rows(keys: list[str], verdict: str = "allow", sexual: float = 0.1,
          faces: list[list[float]] | None = None, error: str | None = None) -> pa.Table:
    return pa.Table.from_pylist([
        {"key": k, "uri": f"/c/{k}", "shard": 0, "verdict": verdict, "reasons": [],
         "error": error, "signals": {"sexual": None if error else sexual, "minor": None},
         "faces": [{"x0": b[0], "y0": b[1], "x1": b[2], "y1": b[3], "score": 0.9, "age": 30.0,
                    "p_minor": 0.1, "t_ms": None} for b in (faces or [])],
         "faces_unaged": 0, "kind": "image", "frames": 1, "sha256": None, "ms": 1.0}
        for k in keys], schema=schema())


def test_shard_store_redoes_a_torn_record_line_and_a_changed_file(tmp_path: Path) -> None:
    pinned = {"corpus": "c1"}
    store = ShardStore(tmp_path, pinned)
    for shard in range(3):
        store.write(shard, _rows([f"{shard}-a", f"{shard}-b"]))
    assert store.completed() == {0: 2, 1: 2, 2: 2}
    record = tmp_path / RECORD
    record.write_text(record.read_text()[:-20])  # a driver killed mid-line: shard 2 is redone
    assert store.completed() == {0: 2, 1: 2}
    store.write(2, _rows(["2-a", "2-b"]))  # appended on a line of its own
    assert store.completed() == {0: 2, 1: 2, 2: 2}
    store.path(1).write_bytes(store.path(1).read_bytes()[:-1] + b"x")
    assert store.completed() == {0: 2, 2: 2}
    with pytest.raises(EvaluationError, match="corpus"):
        ShardStore(tmp_path, {"corpus": "c2"})


def test_agreement_counts_verdict_changes_signal_moves_and_lone_faces() -> None:
    keys = ["a", "b", "c"]
    base = metrics.SideResults.from_table(pa.concat_tables([
        _rows(["a"], "allow", 0.1, [[0, 0, 10, 10]]), _rows(["b"], "review", 0.3),
        _rows(["c"], error="corrupt", verdict="hold")]))
    cand = metrics.SideResults.from_table(pa.concat_tables([
        _rows(["a"], "review", 0.25, [[0, 0, 10, 10], [50, 50, 60, 60]]),
        _rows(["b"], "review", 0.3), _rows(["c"], error="corrupt", verdict="hold")]))
    a = metrics.agreement(cand, base)
    assert a["items"] == 3 and cand.keys == keys
    assert a["verdicts"]["confusion"]["allow"]["review"] == 1
    assert (a["verdicts"]["same"], a["verdicts"]["raised"], a["verdicts"]["lowered"]) == (2, 1, 0)
    assert a["signals"]["sexual"]["delta"]["n"] == 2
    assert a["signals"]["sexual"]["delta"]["max_abs"] == pytest.approx(0.15)
    assert (a["faces"]["matched"], a["faces"]["only_candidate"]) == (1, 1)
    assert [d["key"] for d in a["differences"]] == ["a"]
    assert cand.overview()["unscreenable"] == 1


def test_an_unscreenable_item_counts_as_flagged_against_labels() -> None:
    side = metrics.SideResults.from_table(pa.concat_tables([
        _rows(["a"], sexual=0.9), _rows(["b"], sexual=0.0),
        _rows(["c"], error="corrupt", verdict="hold")]))
    lab = {k: labels.Label(k, {"sexual": pos}) for k, pos in
           (("a", True), ("b", False), ("c", False))}
    s = metrics.accuracy(side, lab, Policy.default())["signals"]["sexual"]
    assert s["n"] == 3 and s["unscreenable"] == 1
    low = s["at_thresholds"][0]
    assert low["threshold"] == 0.2 and (low["tp"], low["fp"]) == (1, 1)


def test_policy_thresholds_list_every_rule_of_a_signal() -> None:
    t = metrics.policy_thresholds(Policy.default())
    assert [x["threshold"] for x in t["sexual"]] == [0.2, 0.8]
    assert [x["threshold"] for x in t["minor"]] == [0.5]


def test_variants_parse_and_refuse_a_bare_name() -> None:
    assert parse_variants(["open_nsfw=fp32,graphic=fp32", "face_detector=int8"]) == (
        ("face_detector", "int8"), ("graphic", "fp32"), ("open_nsfw", "fp32"))
    with pytest.raises(ValueError, match="MODEL=VARIANT"):
        parse_variants(["int8"])


def test_an_item_that_cannot_be_opened_gets_an_unscreenable_row() -> None:
    from firmware_tools.evaluate.screen import ScreenBatch, Side

    batch = pa.table({"key": ["a", "b"], "uri": ["nosuchscheme://bucket/a.jpg", "/nonexistent/b"],
                      "shard": pa.array([0, 0], pa.int32())})
    rows = ScreenBatch(Side())(batch).to_pylist()
    assert [(r["key"], r["verdict"], r["error"]) for r in rows] == [("a", "hold", "io"),
                                                                   ("b", "hold", "io")]
