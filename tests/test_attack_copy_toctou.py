"""Kept from the attack review of signed updates; each test asserts the safe behaviour.

Attack on BundleStore._copy: the source directory is listed (plain files only), then each file
is opened by name, following symlinks, without O_NOFOLLOW/O_NONBLOCK or an fstat check. The
attacker who owns the source directory swaps an entry between listing and copying:
  * a FIFO            -> open() blocks forever while the store lock is held (hang; every later
                          install fails StoreBusy)
  * the file deleted  -> FileNotFoundError escapes (not an EdgeScreenError; the CLI tracebacks)
  * a symlink to a file outside -> read and copied into the store (refused later by hash, but
                          the read follows the link)
The race is made deterministic by wrapping list_directory."""
import os
import threading

import pytest
from signed import make_bundle

import edge_screen.store as store_mod
from edge_screen import bundle_cli
from edge_screen.errors import EdgeScreenError
from edge_screen.store import BundleStore
from edge_screen.version import __version__


def _no_self_test(root, manifest):
    pass

VICTIM = "MODEL_CARD.md"


def _swap_after_listing(monkeypatch, source, action):
    real = store_mod.list_directory

    def listing(root, limits):
        out = real(root, limits)
        if os.path.samefile(root, source):
            action(root / VICTIM)
        return out

    monkeypatch.setattr(store_mod, "list_directory", listing)


def test_deleted_after_listing_gives_a_named_error(tmp_path, keys, monkeypatch):
    src = make_bundle(tmp_path / "b", keys[0])
    _swap_after_listing(monkeypatch, src, lambda p: p.unlink())
    with pytest.raises(EdgeScreenError):
        BundleStore(tmp_path / "store").install(src, [keys[0].public], __version__, self_test=_no_self_test)


def test_cli_install_deleted_after_listing_exits_1(tmp_path, keys, monkeypatch):
    src = make_bundle(tmp_path / "b", keys[0])
    pub = tmp_path / "k.pub.pem"
    pub.write_bytes(keys[0].public)
    _swap_after_listing(monkeypatch, src, lambda p: p.unlink())
    assert bundle_cli.main(["install", str(src), "--store", str(tmp_path / "s"),
                            "--trust", str(pub)]) == 1


def test_fifo_after_listing_does_not_hang(tmp_path, keys, monkeypatch):
    src = make_bundle(tmp_path / "b", keys[0])

    def to_fifo(p):
        p.unlink()
        os.mkfifo(p)

    _swap_after_listing(monkeypatch, src, to_fifo)
    result = {}

    def run():
        try:
            BundleStore(tmp_path / "store").install(src, [keys[0].public], __version__,
                                                     self_test=_no_self_test)
            result["ok"] = True
        except BaseException as exc:
            result["exc"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(10)
    hung = t.is_alive()
    if hung:  # unblock the reader so the process can exit
        fd = os.open(src / VICTIM, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        t.join(10)
    assert not hung, "install hung on a FIFO swapped in after listing (store lock held)"
    assert isinstance(result.get("exc"), EdgeScreenError), result


def test_symlink_after_listing_is_not_followed(tmp_path, keys, monkeypatch):
    src = make_bundle(tmp_path / "b", keys[0])
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"S" * (src / VICTIM).stat().st_size)
    opened = []
    real_open = open

    def to_link(p):
        p.unlink()
        p.symlink_to(secret)

    _swap_after_listing(monkeypatch, src, to_link)

    def spy(file, *a, **k):
        if str(file) == str(src / VICTIM) and os.path.islink(file):
            opened.append(file)
        return real_open(file, *a, **k)

    monkeypatch.setattr("builtins.open", spy)
    with pytest.raises(EdgeScreenError):
        BundleStore(tmp_path / "store").install(src, [keys[0].public], __version__, self_test=_no_self_test)
    assert not opened, "the copy followed a symlink out of the bundle directory"
