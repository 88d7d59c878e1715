"""Kept from the attack review of signed updates; each test asserts the safe behaviour.

Attack on the paths that verify the attacker's directory in place (`edge-screen bundle verify`,
Screener(bundle=DIR, trusted_keys=...)): entries are listed as plain files, then re-opened by
name, following symlinks and blocking on FIFOs. A swap after listing, or after verification and
before Bundle.read_verified, hangs the caller (FIFO) or makes it read without bound (symlink to
/dev/zero: Path.read_bytes has no size limit)."""
import contextlib
import os
import threading
from datetime import UTC, datetime

import pytest
from signed import make_bundle

import edge_screen.files as store_mod
from edge_screen import Screener, ScreenerOptions
from edge_screen.errors import EdgeScreenError
from edge_screen.trust import Expectations
from edge_screen.version import __version__


def _run_with_timeout(fn, unblock, seconds=15):
    result = {}

    def run():
        try:
            fn()
            result["ok"] = True
        except BaseException as exc:
            result["exc"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    hung = t.is_alive()
    if hung:
        unblock()
        t.join(10)
    return hung, result


def _fifo_unblock(path):
    def go():
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    return go


def test_verify_fifo_swapped_after_listing(tmp_path, keys, monkeypatch):
    src = make_bundle(tmp_path / "b", keys[0])
    victim = src / "MODEL_CARD.md"
    real = store_mod.list_directory

    def listing(root, limits):
        out = real(root, limits)
        victim.unlink()
        os.mkfifo(victim)
        return out

    monkeypatch.setattr(store_mod, "list_directory", listing)
    hung, result = _run_with_timeout(
        lambda: store_mod.verify_directory(src, [keys[0].public],
                                           Expectations(__version__, datetime.now(UTC))),
        _fifo_unblock(victim))
    assert not hung, "verify hung on a FIFO swapped in after listing"
    assert isinstance(result.get("exc"), EdgeScreenError), result


def test_screener_model_swapped_for_fifo_after_verification(tmp_path, keys, monkeypatch):
    src = make_bundle(tmp_path / "b", keys[0])
    real = store_mod.verify_directory
    # the file the Screener will read first: the face detector's preferred variant
    import json
    import platform
    m = json.loads((src / "manifest.json").read_text())
    spec = m["models"][0]
    name = spec["preferred"].get(platform.machine().lower()) or spec["preferred"]["default"]
    victim = src / next(v["file"] for v in spec["variants"] if v["name"] == name)

    def verified(root, trusted, expect, limits=None):
        out = real(root, trusted, expect, limits)
        victim.unlink()
        os.mkfifo(victim)
        return out

    monkeypatch.setattr(store_mod, "verify_directory", verified)
    opts = ScreenerOptions(bundle=src, trusted_keys=(keys[0].public,), threads=1, workers=1)
    hung, result = _run_with_timeout(lambda: Screener(opts).close(), _fifo_unblock(victim))
    assert not hung, "Screener hung reading a model swapped for a FIFO after verification"
    assert isinstance(result.get("exc"), EdgeScreenError), result


def test_verify_file_deleted_after_listing_is_named(tmp_path, keys, monkeypatch):
    """Also what a Screener hits when an install prunes the slot it is verifying."""
    src = make_bundle(tmp_path / "b", keys[0])
    real = store_mod.list_directory

    def listing(root, limits):
        out = real(root, limits)
        (src / "MODEL_CARD.md").unlink()
        return out

    monkeypatch.setattr(store_mod, "list_directory", listing)
    with pytest.raises(EdgeScreenError):
        store_mod.verify_directory(src, [keys[0].public],
                                   Expectations(__version__, datetime.now(UTC)))
