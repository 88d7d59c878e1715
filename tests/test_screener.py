"""End to end on the shipped default bundle: real models, real images, hostile inputs."""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, IMAGES, REPORT_KEYS, encode, portrait
from PIL import Image

from edge_screen import (
    REPORT_SCHEMA,
    BundleError,
    EdgeScreenError,
    HashMismatch,
    Screener,
    ScreeningReport,
)
from edge_screen.bundle import default_bundle_dir


def iou(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_default_bundle_loads_every_task(screener: Screener) -> None:
    assert set(screener.models) == {"face_detector", "centerface", "face_landmarks",
                                    "age_estimator", "open_nsfw", "graphic", "nsfwjs"}


def test_astronaut_portrait_is_one_adult_face_and_allowed(screener: Screener) -> None:
    r = screener.screen(IMAGES / "astronaut.jpg")
    assert r.ok and r.verdict == "allow"
    assert len(r.faces) == 1
    face = r.faces[0]
    assert iou(face.box, (172, 66, 278, 172)) > 0.7
    assert face.age is not None and 22 <= face.age <= 50
    assert face.p_minor is not None and face.p_minor < 0.3
    assert r.signals["sexual"] is not None and r.signals["sexual"] < 0.2
    assert r.signals["violence"] is None, "the default bundle has no violence model"
    assert r.signals["minor"] == face.p_minor


def test_elderly_face_gets_an_old_age(screener: Screener) -> None:
    r = screener.screen(IMAGES / "grace_hopper.jpg")
    assert len(r.faces) == 1 and r.faces[0].age is not None and r.faces[0].age > 55


@pytest.mark.parametrize("name", ["coffee.jpg", "rocket.jpg"])
def test_images_without_people_have_no_faces_and_no_minor_signal(
    screener: Screener, name: str
) -> None:
    r = screener.screen(IMAGES / name)
    assert r.ok and r.faces == () and r.signals["minor"] is None
    assert r.signals["sexual"] is not None and r.signals["sexual"] < 0.2


def test_bytes_file_object_and_path_give_the_same_signals(screener: Screener) -> None:
    path = IMAGES / "astronaut.jpg"
    by_path = screener.screen(path)
    by_bytes = screener.screen(path.read_bytes())
    with open(path, "rb") as fh:
        by_file = screener.screen(fh)
    assert by_path.signals == by_bytes.signals == by_file.signals
    assert by_path.sha256 == by_bytes.sha256 == by_file.sha256


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotated_portrait_finds_the_same_face_as_upright(
    screener: Screener, orientation: int
) -> None:
    upright = Image.fromarray(portrait())
    ref = screener.screen(encode(upright, "JPEG", quality=95))
    # Store the pixels the way a phone would (sensor orientation) with the tag that undoes it.
    inverse = {
        3: Image.Transpose.ROTATE_180,
        6: Image.Transpose.ROTATE_90,
        8: Image.Transpose.ROTATE_270,
    }
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = upright.transpose(inverse[orientation])
    rotated = screener.screen(encode(stored, "JPEG", quality=95, exif=exif))
    assert (rotated.media.width, rotated.media.height) == (600, 800)
    assert len(ref.faces) == len(rotated.faces) >= 1
    assert iou(ref.faces[0].box, rotated.faces[0].box) > 0.8
    assert abs((ref.faces[0].age or 0) - (rotated.faces[0].age or 0)) < 3


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK"])
def test_face_is_found_in_every_image_mode(screener: Screener, mode: str) -> None:
    im = Image.fromarray(portrait()).convert(mode)
    r = screener.screen(encode(im, "TIFF" if mode == "CMYK" else "PNG"))
    assert r.ok and len(r.faces) >= 1


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("empty.jpg", "corrupt"),
        ("truncated.jpg", "corrupt"),
        ("text_named.jpg", "unsupported"),
        ("wrong_magic.png", "unsupported"),
        ("bomb_40000x40000.png", "too_large"),
    ],
)
def test_hostile_input_gets_its_error_code_and_hold(
    screener: Screener, name: str, code: str
) -> None:
    r = screener.screen(DATA / "hostile" / name)
    assert r.error is not None and r.error.code == code
    assert r.verdict == "hold" and r.faces == ()


def test_missing_file_is_an_io_error(screener: Screener, tmp_path: Path) -> None:
    r = screener.screen(tmp_path / "nope.jpg")
    assert r.error is not None and r.error.code == "io"


def test_format_comes_from_bytes_not_the_name(screener: Screener) -> None:
    r = screener.screen(DATA / "hostile" / "jpeg_named.png")
    assert r.ok and r.media.format == "JPEG"


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_screen_many_keeps_order_and_goes_on_after_bad_files(workers: int) -> None:
    items: list[Path | bytes] = [
        IMAGES / "astronaut.jpg",
        DATA / "hostile" / "truncated.jpg",
        IMAGES / "coffee.jpg",
        b"junk",
        IMAGES / "grace_hopper.jpg",
    ]
    with Screener(threads=2, workers=workers) as s:
        reports = list(s.screen_many(items))
        single = [s.screen(i) for i in items]
    assert [r.path for r in reports] == [r.path for r in single]
    assert [r.path for r in reports][:4] == [str(items[0]), str(items[1]), str(items[2]), "<bytes>"]
    assert [r.ok for r in reports] == [True, False, True, False, True]
    for many, one in zip(reports, single, strict=True):  # other interpreters, same answers
        assert many.verdict == one.verdict and len(many.faces) == len(one.faces)
        for k, v in one.signals.items():
            assert v is None or many.signals[k] == pytest.approx(v, abs=1e-3), k


def test_report_json_has_the_documented_keys_and_no_pixels(screener: Screener) -> None:
    r = screener.screen(IMAGES / "astronaut.jpg")
    d = json.loads(r.to_json())
    assert d["schema"] == REPORT_SCHEMA
    assert set(d) >= REPORT_KEYS
    assert set(d["signals"]) >= {"sexual", "minor", "violence"}
    assert set(d["faces"][0]) == {"box", "score", "age", "p_minor"}
    assert set(d["media"]) >= {"kind", "width", "height", "frames_screened"}
    assert len(r.to_json()) < 4096, "a report carries numbers, never pixels"
    assert isinstance(r, ScreeningReport)


def test_large_phone_photo_is_screened_at_working_size(screener: Screener) -> None:
    big = Image.fromarray(portrait()).resize((3000, 4000), Image.Resampling.BICUBIC)
    r = screener.screen(encode(big, "JPEG", quality=90))
    assert r.ok and (r.media.width, r.media.height) == (3000, 4000)
    assert len(r.faces) >= 1
    x0, y0, x1, y1 = r.faces[0].box
    assert 800 < x0 < x1 < 2700 and 500 < y0 < y1 < 2400  # boxes are in original pixels


def _copy_bundle(tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(default_bundle_dir(), dst)
    return dst


def test_a_flipped_byte_in_a_model_refuses_to_load(tmp_path: Path) -> None:
    bundle = _copy_bundle(tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    victim = bundle / manifest["models"][0]["variants"][0]["file"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    for m in manifest["models"]:
        m["preferred"] = {"default": m["variants"][0]["name"]}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(HashMismatch, match=victim.name):
        Screener(bundle=bundle)


def test_a_missing_model_file_names_the_file(tmp_path: Path) -> None:
    bundle = _copy_bundle(tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    spec = manifest["models"][1]
    chosen = spec["preferred"].get("x86_64") or spec["preferred"]["default"]
    name = next(v["file"] for v in spec["variants"] if v["name"] == chosen)
    (bundle / name).unlink()
    with pytest.raises(BundleError, match=name):
        Screener(bundle=bundle, variants={spec["id"]: chosen})


def test_a_garbled_manifest_is_a_bundle_error(tmp_path: Path) -> None:
    bundle = _copy_bundle(tmp_path)
    (bundle / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError):
        Screener(bundle=bundle)


def test_every_variant_in_the_bundle_runs(screener: Screener) -> None:
    """Each variant shipped must load and give a sane answer on the same photo."""
    manifest = screener.bundle.manifest
    photo = (IMAGES / "astronaut.jpg").read_bytes()
    for spec in manifest.models:
        for v in spec.variants:
            with Screener(threads=1, variants={spec.id: v.name}) as s:
                r = s.screen(photo)
            assert r.ok, (spec.id, v.name, r.error)
            assert len(r.faces) == 1, (spec.id, v.name)
            assert r.signals["sexual"] is not None and r.signals["sexual"] < 0.2


def test_stream_that_fails_to_read_is_an_io_error(screener: Screener) -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            raise OSError("device unplugged")

    r = screener.screen(Broken())
    assert r.error is not None and r.error.code == "io"


def test_screening_is_deterministic(screener: Screener) -> None:
    a = screener.screen(IMAGES / "grace_hopper.jpg")
    b = screener.screen(IMAGES / "grace_hopper.jpg")
    assert a.signals == b.signals
    assert np.allclose([f.box for f in a.faces], [f.box for f in b.faces])


def test_a_closed_screener_refuses_to_screen() -> None:
    s = Screener(threads=1, workers=2)
    s.close()
    with pytest.raises(EdgeScreenError, match="closed"):
        s.screen(IMAGES / "coffee.jpg")
    with pytest.raises(EdgeScreenError, match="closed"):
        next(s.screen_many([IMAGES / "coffee.jpg"] * 3))
    assert s._pool == [], "no worker interpreters loaded for a closed Screener"
    with pytest.raises(EdgeScreenError, match="closed"):
        s.stream()


def test_closing_while_a_frame_waits_never_lets_it_through_unscreened() -> None:
    """A frame that passed the closed-check and waits for the interpreters while close() runs
    is either screened by the models or refused, never an empty 'allow' from released
    interpreters (close() used to swap them without the lock)."""
    s = Screener(threads=1)
    live = s.stream()
    frame = np.asarray(Image.open(IMAGES / "astronaut.jpg").convert("RGB"))
    result: list[object] = []

    def feed() -> None:
        try:
            result.append(live.screen_frame(frame, 0.0))
        except EdgeScreenError:
            result.append("refused")

    s._lock.acquire()  # the interpreters are busy: the frame will wait for them
    feeder = threading.Thread(target=feed)
    closer = threading.Thread(target=s.close)
    feeder.start()
    time.sleep(0.2)
    closer.start()
    time.sleep(0.2)
    s._lock.release()
    feeder.join()
    closer.join()
    (r,) = result
    assert r == "refused" or (r.faces and r.signals["sexual"] is not None), r  # type: ignore[attr-defined]


@pytest.mark.parametrize("workers", [1, 2])
def test_stopping_screen_many_early_leaves_the_rest_unscreened(workers: int) -> None:
    with Screener(threads=2, workers=workers) as s:
        items = iter([IMAGES / "coffee.jpg"] * 50)
        first = next(s.screen_many(items))
        assert first.ok
    assert len(list(items)) >= 40, "the rest was not screened behind the caller's back"


def test_screen_many_of_one_input_loads_no_worker_interpreters() -> None:
    with Screener(threads=2, workers=2) as s:
        (r,) = list(s.screen_many([IMAGES / "astronaut.jpg"]))
        assert r.ok and s._pool == []
        assert list(s.screen_many([])) == []
        assert len(list(s.screen_many([IMAGES / "coffee.jpg"] * 3))) == 3 and len(s._pool) == 2


def test_one_screener_shared_by_threads_gives_each_the_same_answers() -> None:
    """The documented promise: a Screener is safe to share (its own interpreters behind a lock,
    screen_many's workers behind theirs), and sharing changes no answer."""
    from concurrent.futures import ThreadPoolExecutor

    items = [IMAGES / n for n in ("astronaut.jpg", "coffee.jpg", "grace_hopper.jpg")]
    with Screener(threads=2, workers=2) as s:
        alone = {str(i): s.screen(i) for i in items}
        with ThreadPoolExecutor(4) as pool:
            singles = [pool.submit(s.screen, i) for i in items * 3]
            streams = [pool.submit(lambda: list(s.screen_many(items * 2))) for _ in range(2)]
            got = [f.result() for f in singles] + [r for f in streams for r in f.result()]
    assert len(got) == 9 + 12
    for r in got:
        want = alone[r.path]
        assert r.verdict == want.verdict and len(r.faces) == len(want.faces), r.path
        for k, v in want.signals.items():
            assert v is None or r.signals[k] == pytest.approx(v, abs=1e-3), (r.path, k)
