"""Kept from the attack review of signed updates; each test asserts the safe behaviour.

The signature and the manifest are read no further than their limits: a 64 MiB model.sig
(sparse) is refused after at most the limit and one chunk, not read whole first."""
import os
from datetime import UTC, datetime

import pytest
from signed import make_bundle

import edge_screen.files as files
from edge_screen.errors import BundleError
from edge_screen.files import verify_directory
from edge_screen.oms import MAX_SIGNATURE_BYTES
from edge_screen.trust import Expectations
from edge_screen.version import __version__


def test_oversized_signature_is_not_read_whole(tmp_path, keys, monkeypatch):
    root = make_bundle(tmp_path / "b", keys[0])
    with open(root / "model.sig", "r+b") as f:
        f.truncate(64 << 20)  # sparse: cheap on disk
    got = []
    real = os.read

    def spy(fd, n):
        data = real(fd, n)
        got.append(len(data))
        return data

    monkeypatch.setattr(files.os, "read", spy)
    monkeypatch.setattr(files, "sha256_plain", lambda path, listed: "0" * 64)  # only the sig
    with pytest.raises(BundleError, match=r"model\.sig: larger than"):
        verify_directory(root, [keys[0].public], Expectations(__version__, datetime.now(UTC)))
    assert sum(got) <= MAX_SIGNATURE_BYTES + files.CHUNK
