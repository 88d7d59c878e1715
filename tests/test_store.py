"""The device store: signed bundles are installed atomically, the last good one is kept, an older
or tampered bundle is refused while screening goes on with the active one, and a crash at any
step of an install leaves the old bundle active and the store usable."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from pathlib import Path
from typing import Any

import pytest
from signed import Key, make_bundle

from edge_screen import (
    HashMismatch,
    RollbackRefused,
    Screener,
    ScreenerOptions,
    SelfTestFailed,
    SignatureError,
    StoreBusy,
    StoreError,
)
from edge_screen.store import BundleStore, StoreLimits
from edge_screen.version import __version__

V1, V2, V3 = "2026.12.2", "2026.12.3", "2026.12.10"
IMAGES = Path(__file__).parent / "data" / "images"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory, keys: tuple[Key, Key]) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bundles")
    return {v: make_bundle(root / v, keys[0], version=v) for v in (V1, V2, V3)}


def screens(store: Path, key: Key) -> str:
    opts = ScreenerOptions(store=store, trusted_keys=(key.public,), threads=1, workers=1)
    with Screener(opts) as s:
        report = s.screen(IMAGES / "astronaut.jpg")
        assert report.verdict == "allow"
        return s.bundle.manifest.bundle_version


def test_install_update_rollback_and_status(
    tmp_path: Path, keys: tuple[Key, Key], bundles: dict[str, Path]
) -> None:
    store = BundleStore(tmp_path / "store")
    assert store.status().to_dict() == {"active": None, "previous": None, "highest": None}
    store.install(bundles[V1], [keys[0].public], __version__)
    store.install(bundles[V2], [keys[0].public], __version__)
    status = store.status().to_dict()
    assert status["active"]["bundle_version"] == V2
    assert status["previous"]["bundle_version"] == V1
    assert screens(store.root, keys[0]) == V2
    store.rollback("v2 misses faces on the new phones")
    assert store.status().active.bundle_version == V1  # type: ignore[union-attr]
    assert screens(store.root, keys[0]) == V1
    log = [json.loads(line) for line in (store.root / "log.jsonl").read_text().splitlines()]
    assert [e["action"] for e in log] == ["install", "install", "rollback"]
    assert log[-1]["reason"] == "v2 misses faces on the new phones"


def test_an_older_or_equal_bundle_is_refused_unless_forced_with_a_reason(
    tmp_path: Path, keys: tuple[Key, Key], bundles: dict[str, Path]
) -> None:
    store = BundleStore(tmp_path / "store")
    store.install(bundles[V3], [keys[0].public], __version__)  # 2026.12.10 > 2026.12.3
    for older in (V2, V3):  # a replay of an older signed bundle, and the same one again
        with pytest.raises(RollbackRefused, match=f"{older} is not newer than the installed"):
            store.install(bundles[older], [keys[0].public], __version__)
    assert store.status().active.bundle_version == V3  # type: ignore[union-attr]
    store.install(bundles[V1], [keys[0].public], __version__, force_reason="incident 42")
    assert store.status().active.bundle_version == V1  # type: ignore[union-attr]
    last = json.loads((store.root / "log.jsonl").read_text().splitlines()[-1])
    assert last["reason"] == "incident 42" and last["replaced"] == V3


def test_a_flipped_byte_in_any_file_of_an_update_is_refused_and_screening_goes_on(
    tmp_path: Path, keys: tuple[Key, Key], bundles: dict[str, Path]
) -> None:
    store = BundleStore(tmp_path / "store")
    store.install(bundles[V1], [keys[0].public], __version__)
    opts = ScreenerOptions(store=store.root, trusted_keys=(keys[0].public,), threads=1, workers=1)
    names = sorted(p.name for p in bundles[V2].iterdir())
    assert len(names) >= 12 and "model.sig" in names
    with Screener(opts) as running:
        for where in names:
            bad = tmp_path / f"bad-{where}"
            shutil.copytree(bundles[V2], bad)
            data = bytearray((bad / where).read_bytes())
            data[len(data) // 3] ^= 0x10
            (bad / where).write_bytes(bytes(data))
            with pytest.raises((HashMismatch, SignatureError)):
                store.install(bad, [keys[0].public], __version__)
            assert store.status().active.bundle_version == V1, where  # type: ignore[union-attr]
            assert running.screen(IMAGES / "astronaut.jpg").verdict == "allow"
            incoming = store.root / "incoming"
            assert not incoming.exists() or not any(incoming.iterdir()), where
    assert screens(store.root, keys[0]) == V1


def test_a_bundle_signed_by_an_untrusted_key_is_refused(
    tmp_path: Path, keys: tuple[Key, Key], bundles: dict[str, Path]
) -> None:
    store = BundleStore(tmp_path / "store")
    with pytest.raises(SignatureError):
        store.install(bundles[V1], [keys[1].public], __version__)
    assert store.status().active is None
    with pytest.raises(StoreError, match="no bundle installed"):
        Screener(ScreenerOptions(store=store.root, trusted_keys=(keys[0].public,)))


class Crash(BaseException):
    """A power cut: nothing after it runs, no cleanup either."""


@pytest.mark.parametrize("step", ["copied", "verified", "tested", "moved", "switched"])
def test_a_crash_between_install_steps_leaves_a_working_store(
    tmp_path: Path, keys: tuple[Key, Key], bundles: dict[str, Path], step: str
) -> None:
    class Crashing(BundleStore):
        def _step(self, name: str) -> None:
            if name == step:
                raise Crash(name)

    root = tmp_path / "store"
    BundleStore(root).install(bundles[V1], [keys[0].public], __version__)
    with pytest.raises(Crash):
        Crashing(root).install(bundles[V2], [keys[0].public], __version__)
    # After the switch the new bundle is active and complete; before it, the old one.
    want = V2 if step == "switched" else V1
    assert BundleStore(root).status().active.bundle_version == want  # type: ignore[union-attr]
    assert screens(root, keys[0]) == want
    BundleStore(root).install(bundles[V3], [keys[0].public], __version__)  # usable again
    assert screens(root, keys[0]) == V3


def test_a_half_written_state_file_is_ignored(
    tmp_path: Path, keys: tuple[Key, Key], bundles: dict[str, Path]
) -> None:
    store = BundleStore(tmp_path / "store")
    store.install(bundles[V1], [keys[0].public], __version__)
    (store.root / "state.json.new").write_text('{"schema": "edge-screen.st')  # power cut
    assert screens(store.root, keys[0]) == V1


def _hold_lock(root: str, ready: Any, done: Any) -> None:
    store = BundleStore(root)
    with store._locked():
        ready.set()
        done.wait(30)


def test_two_installs_at_once_one_fails_cleanly(
    tmp_path: Path, keys: tuple[Key, Key], bundles: dict[str, Path]
) -> None:
    root = tmp_path / "store"
    BundleStore(root).install(bundles[V1], [keys[0].public], __version__)
    ctx = multiprocessing.get_context("spawn")
    ready, done = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(root), ready, done))
    holder.start()
    try:
        assert ready.wait(30)
        busy = BundleStore(root, StoreLimits(lock_timeout_s=0.2))
        with pytest.raises(StoreBusy, match="another install or rollback is running"):
            busy.install(bundles[V2], [keys[0].public], __version__)
    finally:
        done.set()
        holder.join(30)
    assert BundleStore(root).status().active.bundle_version == V1  # type: ignore[union-attr]


def test_a_running_screener_keeps_its_bundle_through_updates(
    tmp_path: Path, keys: tuple[Key, Key], bundles: dict[str, Path]
) -> None:
    store = BundleStore(tmp_path / "store")
    store.install(bundles[V1], [keys[0].public], __version__)
    opts = ScreenerOptions(store=store.root, trusted_keys=(keys[0].public,), threads=1, workers=2)
    with Screener(opts) as running:
        store.install(bundles[V2], [keys[0].public], __version__)
        store.install(bundles[V3], [keys[0].public], __version__)  # V1's slot is deleted now
        assert running.bundle.manifest.bundle_version == V1
        reports = list(running.screen_many([IMAGES / "astronaut.jpg"] * 3))
        assert [r.verdict for r in reports] == ["allow"] * 3
    assert screens(store.root, keys[0]) == V3


def test_a_file_changed_in_the_active_slot_stops_the_next_screener(
    tmp_path: Path, keys: tuple[Key, Key], bundles: dict[str, Path]
) -> None:
    store = BundleStore(tmp_path / "store")
    installed = store.install(bundles[V1], [keys[0].public], __version__)
    with open(installed.path / "face_detector.fp32.tflite", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01")
    with pytest.raises(HashMismatch, match=r"face_detector\.fp32\.tflite"):
        Screener(ScreenerOptions(store=store.root, trusted_keys=(keys[0].public,)))


def _install_edited(tmp_path: Path, key: Key, edit: Any) -> Path:
    return make_bundle(tmp_path / "edited", key, edit, version="2027.1.1")


def test_a_signed_bundle_that_screens_wrongly_here_is_not_activated(
    tmp_path: Path, keys: tuple[Key, Key], bundles: dict[str, Path]
) -> None:
    """The model team signed it, every hash matches, but its open_nsfw is not the one its
    self-test was measured with: the self-test catches what the signature cannot."""
    import hashlib

    import numpy as np
    from tiny_tflite import tiny_classifier

    store = BundleStore(tmp_path / "store")
    store.install(bundles[V1], [keys[0].public], __version__)
    broken = tiny_classifier(224, np.zeros((2, 3)), np.zeros(2))  # always 0.5

    def swap(m: dict[str, Any]) -> None:
        spec = next(s for s in m["models"] if s["id"] == "open_nsfw")
        spec["input"] = {**spec["input"], "layout": "NHWC", "color": "RGB"}
        v = spec["variants"][0]
        v.update(size=len(broken), sha256=hashlib.sha256(broken).hexdigest())

    root = _install_edited(tmp_path, keys[0], swap)
    (root / "open_nsfw.int8.tflite").write_bytes(broken)
    from firmware_tools.pipeline.sign import sign_directory

    sign_directory(root, keys[0].private)
    with pytest.raises(SelfTestFailed, match="SELFTEST-"):
        store.install(root, [keys[0].public], __version__)
    assert store.status().active.bundle_version == V1  # type: ignore[union-attr]
    assert screens(store.root, keys[0]) == V1


def test_a_bundle_without_a_self_test_is_not_activated(
    tmp_path: Path, keys: tuple[Key, Key]
) -> None:
    def drop(m: dict[str, Any]) -> None:
        for case in m.pop("self_test")["cases"]:
            (tmp_path / "edited" / case["file"]).unlink()

    root = _install_edited(tmp_path, keys[0], drop)
    with pytest.raises(SelfTestFailed, match="carries no self-test"):
        BundleStore(tmp_path / "store").install(root, [keys[0].public], __version__)


def test_a_self_test_expectation_the_bundle_does_not_meet_is_refused(
    tmp_path: Path, keys: tuple[Key, Key]
) -> None:
    def expect_more(m: dict[str, Any]) -> None:
        for expected in m["self_test"]["cases"][2]["expected"].values():
            expected["signals"]["sexual"] = 0.9

    root = _install_edited(tmp_path, keys[0], expect_more)
    with pytest.raises(SelfTestFailed, match=r"sexual 0\.4\d+, expected 0\.9000"):
        BundleStore(tmp_path / "store").install(root, [keys[0].public], __version__)
