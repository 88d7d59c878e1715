"""Known-content matching: a bundle's hash list holds the screened picture, its re-encoded, turned
or filmed copy; the report says so and the verdict is hold; a tampered list stops the Screener.

Harmless pictures only: the "known content" here is tests/data/images (astronaut, rocket)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import IMAGES, encode
from PIL import Image
from test_video import clip

from edge_screen import Screener
from edge_screen.bundle import default_bundle_dir
from edge_screen.errors import BundleError, HashMismatch, PolicyError
from edge_screen.known import MIN_QUALITY
from edge_screen.policy import KNOWN_MATCH_MAX_SHARE, KnownMatchRule, Policy
from firmware_tools.pipeline import hashlist

LABEL = "test known content"
FLAT = np.full((300, 300, 3), 128, np.uint8)  # PDQ quality 0: hashes like any flat picture


def _photo(name: str) -> Image.Image:
    with Image.open(IMAGES / name) as im:
        return im.convert("RGB")


def make_listed_bundle(root: Path, extra: bytes = b"") -> Path:
    """The shipped bundle with one hash list: astronaut and rocket (each hashed from its file,
    as a model team would), the flat picture's hash (``extra``) and 2,000 random entries."""
    shutil.copytree(default_bundle_dir(), root)
    hashes, low = hashlist.read_entries([IMAGES / "astronaut.jpg", IMAGES / "rocket.jpg"])
    assert low == 0 and len(hashes) == 2
    entry = hashlist.build(hashes, root, "test-list", LABEL, source="tests")
    filler = np.random.default_rng(15).integers(0, 256, 2000 * 32, dtype=np.uint8).tobytes()
    data = (root / entry["file"]).read_bytes() + extra + filler
    (root / entry["file"]).write_bytes(data)
    entry.update(size=len(data), count=len(data) // 32, sha256=hashlib.sha256(data).hexdigest())
    hashlist.add_to_bundle(root, entry)
    return root


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Screener]:
    from edge_screen.hashes import frame_hash

    flat = frame_hash(FLAT)
    assert flat is not None and flat.quality < MIN_QUALITY
    root = make_listed_bundle(tmp_path_factory.mktemp("listed") / "b", flat.to_bytes())
    with Screener(bundle=root, threads=2) as s:
        yield s


def _known_reason(reasons: tuple[str, ...]) -> str:
    hits = [r for r in reasons if LABEL in r]
    assert len(hits) == 1, reasons
    return hits[0]


def test_a_listed_photo_is_held_with_a_reason_naming_the_label(listed: Screener) -> None:
    r = listed.screen(IMAGES / "astronaut.jpg")
    assert r.verdict == "hold" and r.signals["known_match"] == 1.0
    reason = _known_reason(r.reasons)
    assert reason.startswith("matches a known-content hash list: test known content")
    assert "list test-list" in reason and "page 0" in reason
    d = r.to_dict()["hashes"]["matches"]
    assert d and d[0]["list"] == "test-list" and d[0]["label"] == LABEL
    assert d[0]["entry"] == 0 and d[0]["page"] == 0 and d[0]["transform"] == "original"
    assert d[0]["distance"] <= 10 and d[0]["timestamp_ms"] is None
    assert "match" in r.timing_ms


def test_its_reencoded_copy_is_held(listed: Screener) -> None:
    r = listed.screen(encode(_photo("astronaut.jpg"), "JPEG", quality=80))
    assert r.verdict == "hold" and r.signals["known_match"] == 1.0
    _known_reason(r.reasons)


def test_a_turned_or_mirrored_copy_is_held_through_the_dihedral_hashes(
    listed: Screener,
) -> None:
    for op in (Image.Transpose.ROTATE_90, Image.Transpose.FLIP_LEFT_RIGHT):
        r = listed.screen(encode(_photo("rocket.jpg").transpose(op), "PNG"))
        assert r.verdict == "hold" and r.signals["known_match"] == 1.0, r.reasons
        assert r.hashes is not None and r.hashes.matches
        assert r.hashes.matches[0].entry == 1 and r.hashes.matches[0].transform != "original"


def test_an_unrelated_photo_is_checked_and_not_matched(listed: Screener) -> None:
    for name in ("coffee.jpg", "chelsea.jpg", "grace_hopper.jpg"):
        r = listed.screen(IMAGES / name)
        assert r.signals["known_match"] == 0.0 and not any(LABEL in x for x in r.reasons)
        assert r.to_dict()["hashes"]["matches"] == []


def test_a_low_quality_hash_never_matches_even_when_listed(listed: Screener) -> None:
    r = listed.screen(FLAT)  # its own hash is in the list, at distance 0
    assert r.hashes is not None and r.hashes.pdq_quality is not None
    assert r.hashes.pdq_quality < MIN_QUALITY
    assert r.signals["known_match"] == 0.0 and r.hashes.matches == ()
    assert r.verdict == "allow"


def test_without_a_list_known_match_is_null(screener: Screener) -> None:
    r = screener.screen(IMAGES / "astronaut.jpg")
    assert r.signals["known_match"] is None
    assert r.to_dict()["hashes"]["matches"] is None and "match" not in r.timing_ms
    bad = screener.screen(b"junk")
    assert bad.signals["known_match"] is None and bad.hashes is None


def _video(listed_seconds: int, other_seconds: int) -> bytes:
    """Rocket (listed) frames then coffee (not listed) frames, 640x480, a keyframe a second."""
    size = (640, 480)
    rocket = np.asarray(_photo("rocket.jpg").resize(size))
    coffee = np.asarray(_photo("coffee.jpg").resize(size))
    frames = [rocket] * (10 * listed_seconds) + [coffee] * (10 * other_seconds)
    return clip(frames, gop=10)


def test_a_video_of_a_listed_pictures_frames_is_held(listed: Screener) -> None:
    r = listed.screen(_video(1, 3))  # one keyframe of four shows it: one frame is enough
    assert r.ok and r.media.kind == "video", r.error
    assert r.verdict == "hold" and r.signals["known_match"] == 1.0
    reason = _known_reason(r.reasons)
    assert "hashable frames" in reason
    assert r.hashes is not None and r.hashes.matches
    m = r.hashes.matches[0]
    assert m.entry == 1 and m.timestamp_ms is not None and m.timestamp_ms < 1000
    assert m.page is None


def test_a_policy_share_of_frames_is_applied_to_videos(tmp_path: Path) -> None:
    text = _default_policy_text()
    policy = Policy.from_toml(text.replace("video_share = 0.0", "video_share = 0.5"))
    assert policy.known_match.video_share == 0.5
    root = make_listed_bundle(tmp_path / "b")
    with Screener(bundle=root, policy=policy, threads=2) as s:
        few = s.screen(_video(1, 4))
        many = s.screen(_video(3, 2))
    assert few.ok and many.ok
    assert few.signals["known_match"] == 0.0 and not any(LABEL in x for x in few.reasons)
    assert few.hashes is not None and few.hashes.matches, "the matches are still reported"
    assert many.signals["known_match"] == 1.0 and many.verdict == "hold"


def test_a_live_stream_of_a_listed_picture_is_held_from_that_frame_on(listed: Screener) -> None:
    """The attack: show the listed picture to the camera between harmless frames. A live
    stream is matched frame by frame as a video is; once held, it stays held."""
    size = (640, 480)
    coffee = np.asarray(_photo("coffee.jpg").resize(size))
    rocket = np.asarray(_photo("rocket.jpg").resize(size))
    with listed.stream("cam") as cam:
        first = cam.screen_frame(coffee, 0)
        assert first.signals["known_match"] == 0.0 and first.verdict != "hold"
        assert first.hashes is not None and first.hashes.matches == ()
        shown = cam.screen_frame(rocket, 100)
        after = cam.screen_frame(coffee, 200)
    for r in (shown, after):
        assert r.verdict == "hold" and r.signals["known_match"] == 1.0
        assert "1 of" in _known_reason(r.reasons) and "match" in r.timing_ms
        assert r.hashes is not None and r.hashes.matches
        assert r.hashes.matches[0].entry == 1 and r.hashes.matches[0].timestamp_ms == 100


def test_a_live_stream_without_a_list_has_a_null_known_match(screener: Screener) -> None:
    with screener.stream() as cam:
        r = cam.screen_frame(np.asarray(_photo("rocket.jpg").resize((320, 240))), 0)
    assert "known_match" in r.signals and r.signals["known_match"] is None
    assert r.hashes is not None and r.hashes.matches is None and "match" not in r.timing_ms


def test_a_long_stream_keeps_its_closest_matches_and_counts_every_one(listed: Screener) -> None:
    rocket = np.asarray(_photo("rocket.jpg").resize((320, 240)))
    with listed.stream() as cam:
        for i in range(140):  # past the tally's 4 x 32 matches kept
            r = cam.screen_frame(rocket, i * 40)
    assert r.hashes is not None and 0 < len(r.hashes.matches or ()) <= 32
    assert "140 of 140 hashable frames" in _known_reason(r.reasons)


def _default_policy_text() -> str:
    from importlib import resources

    return (resources.files("edge_screen") / "default_policy.toml").read_text("utf-8")


@pytest.mark.parametrize("how", ["flip", "truncate", "remove"])
def test_a_tampered_list_stops_the_screener(tmp_path: Path, how: str) -> None:
    root = make_listed_bundle(tmp_path / "b")
    path = root / "test-list.pdq256"
    data = bytearray(path.read_bytes())
    if how == "flip":
        data[5] ^= 1
        path.write_bytes(bytes(data))
    elif how == "truncate":
        path.write_bytes(bytes(data[:32]))
    else:
        path.unlink()
    with pytest.raises(HashMismatch if how != "remove" else BundleError) as exc:  # never no list
        Screener(bundle=root)
    assert "test-list.pdq256" in str(exc.value)


def test_a_list_whose_size_is_not_its_count_is_refused(tmp_path: Path) -> None:
    root = make_listed_bundle(tmp_path / "b")
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["hash_lists"][0]["count"] += 1
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="hash_lists"):  # a ManifestError
        Screener(bundle=root)


def test_a_signed_bundle_covers_its_list(tmp_path: Path, keys: Any) -> None:
    from firmware_tools.pipeline import sign as fw_sign

    old, _ = keys
    root = make_listed_bundle(tmp_path / "b")
    fw_sign.sign_directory(root, old.private)
    with Screener(bundle=root, trusted_keys=[old.public]) as s:
        assert s.known is not None and len(s.known.lists[0].index) == 2002
    path = root / "test-list.pdq256"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x80
    path.write_bytes(bytes(data))
    with pytest.raises(HashMismatch, match=r"test-list\.pdq256"):
        Screener(bundle=root, trusted_keys=[old.public])


@pytest.mark.parametrize("verdict", ["allow", "review"])
def test_a_policy_cannot_make_a_known_match_less_than_hold(verdict: str) -> None:
    text = _default_policy_text().replace(
        '[known_match]\nverdict = "hold"', f'[known_match]\nverdict = "{verdict}"')
    assert f'verdict = "{verdict}"' in text
    with pytest.raises(PolicyError, match=r"default_policy.toml:\d+: known_match.verdict"):
        Policy.from_toml(text, "default_policy.toml")
    with pytest.raises(PolicyError):
        KnownMatchRule(verdict)  # type: ignore[arg-type]


@pytest.mark.parametrize("share", [KNOWN_MATCH_MAX_SHARE + 0.01, 1.0, -0.1, "nan"])
def test_a_policy_cannot_raise_the_video_share_past_its_limit(share: object) -> None:
    text = _default_policy_text().replace("video_share = 0.0", f"video_share = {share}")
    with pytest.raises(PolicyError, match="video_share"):
        Policy.from_toml(text)


def test_unknown_known_match_keys_are_refused_and_a_missing_table_is_the_default() -> None:
    text = _default_policy_text()
    with pytest.raises(PolicyError, match="unknown key 'distance'"):
        Policy.from_toml(text.replace("video_share = 0.0", "distance = 40"))
    start = text.index("[known_match]")
    without = text[:start] + text[text.index("# Yahoo"):]
    assert Policy.from_toml(without).known_match == KnownMatchRule()


def test_the_hashlist_command_reads_hex_lines_and_drops_low_quality(tmp_path: Path) -> None:
    good = "f" * 32 + "0" * 32
    src = tmp_path / "list.txt"
    src.write_text(f"# comment\n{good.upper()},90\n{good} 90\n{'1' * 64},30\n\n")
    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        rc = hashlist.main([str(src), "--id", "hex", "--label", "L", "--out", str(tmp_path)])
    assert rc == 0
    entry = json.loads(out.getvalue())
    assert entry["count"] == 1 and (tmp_path / "hex.pdq256").read_bytes() == bytes.fromhex(good)
    src.write_text("not a hash\n")
    assert hashlist.main([str(src), "--id", "x", "--label", "L", "--out", str(tmp_path)]) == 1
