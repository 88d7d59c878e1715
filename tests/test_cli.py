"""``edge-screen scan`` as a shell user sees it: JSON lines, the table, exit statuses."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA, IMAGES, REPORT_KEYS

from edge_screen.cli import main


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of mixed photos and broken files, with a nested folder."""
    root = tmp_path_factory.mktemp("mixed")
    shutil.copy(IMAGES / "astronaut.jpg", root / "b_astronaut.jpg")
    shutil.copy(IMAGES / "coffee.jpg", root / "a_coffee.jpg")
    (root / "nested").mkdir()
    shutil.copy(DATA / "hostile" / "truncated.jpg", root / "nested" / "c_truncated.jpg")
    shutil.copy(DATA / "hostile" / "text_named.jpg", root / "nested" / "d_text.jpg")
    shutil.copy(DATA / "hostile" / "bomb_40000x40000.png", root / "nested" / "e_bomb.png")
    return root


def test_scan_json_prints_one_line_per_file_in_sorted_order(
    mixed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["scan", "--json", str(mixed)])
    lines = capsys.readouterr().out.splitlines()
    reports = [json.loads(line) for line in lines]
    assert [Path(r["path"]).name for r in reports] == [
        "a_coffee.jpg",
        "b_astronaut.jpg",
        "c_truncated.jpg",
        "d_text.jpg",
        "e_bomb.png",
    ]
    assert all(set(r) >= REPORT_KEYS for r in reports)
    assert [r["error"]["code"] if r["error"] else None for r in reports] == [
        None,
        None,
        "corrupt",
        "unsupported",
        "too_large",
    ]
    assert len(reports[1]["faces"]) == 1
    assert status == 1, "some inputs could not be screened"


def test_scan_with_one_worker_prints_the_same_reports(
    mixed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["scan", "--json", "--workers", "2", str(mixed)])
    two = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    main(["scan", "--json", "--workers", "1", str(mixed)])
    one = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in one] == [r["path"] for r in two]
    for a, b in zip(one, two, strict=True):
        assert a["verdict"] == b["verdict"] and len(a["faces"]) == len(b["faces"])
        for k, v in a["signals"].items():
            assert v is None or b["signals"][k] == pytest.approx(v, abs=1e-3), k


def test_scan_exit_zero_when_every_input_screened(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(IMAGES / "astronaut.jpg"), str(IMAGES / "coffee.jpg")]) == 0
    out = capsys.readouterr().out
    assert "astronaut.jpg" in out and "allow" in out


def test_fail_on_review_exits_three_when_a_verdict_reaches_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strict = tmp_path / "strict.toml"
    strict.write_text(
        '[child_safety]\nminor = 0.5\nsexual = 0.2\n[[rules]]\nverdict = "review"\nwhen = { sexual = 0.0 }\n'
    )
    assert (
        main(["scan", "--policy", str(strict), "--fail-on", "review", str(IMAGES / "coffee.jpg")])
        == 3
    )
    assert (
        main(["scan", "--policy", str(strict), "--fail-on", "hold", str(IMAGES / "coffee.jpg")])
        == 0
    )


def test_usage_errors_exit_two(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["scan"])
    assert exc.value.code == 2
    assert main(["scan", "--threads", "0", str(IMAGES / "coffee.jpg")]) == 2
    assert main(["scan", "--workers", "0", str(IMAGES / "coffee.jpg")]) == 2
    assert main(["scan", "--bundle", str(tmp_path), str(IMAGES / "coffee.jpg")]) == 2


def test_console_script_runs_in_a_subprocess() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_screen.cli",
            "scan",
            "--json",
            str(IMAGES / "grace_hopper.jpg"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["verdict"] == "allow" and len(report["faces"]) == 1


def test_scan_table_shows_length_and_frames_of_an_animation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    frames = [
        Image.open(IMAGES / "astronaut.jpg").convert("RGB").point(lambda v, i=i: v // (i + 1))
        for i in range(3)
    ]
    gif = tmp_path / "clip.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=500, loop=0)
    assert main(["scan", str(gif)]) == 0
    row = capsys.readouterr().out.strip()
    assert "animation 1.5s frames=3/3" in row and "faces=" in row, row
