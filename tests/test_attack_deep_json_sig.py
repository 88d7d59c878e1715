"""Kept from the attack review of signed updates; each test asserts the safe behaviour.

Attack: model.sig is a deeply nested JSON document (no key needed). oms._json catches only
UnicodeDecodeError/ValueError; json.loads raises RecursionError -> untyped crash of
`bundle verify`, `bundle install`, Screener(bundle=DIR, trusted_keys=...)."""
from datetime import UTC, datetime

import pytest
from signed import make_bundle

from edge_screen import bundle_cli
from edge_screen.errors import EdgeScreenError
from edge_screen.store import BundleStore, verify_directory
from edge_screen.trust import Expectations
from edge_screen.version import __version__


def _evil(tmp_path, keys):
    root = make_bundle(tmp_path / "b", keys[0])
    (root / "model.sig").write_bytes(b"[" * 200_000 + b"]" * 200_000)  # < 1 MiB
    return root


def test_verify_directory_deep_json(tmp_path, keys):
    root = _evil(tmp_path, keys)
    with pytest.raises(EdgeScreenError):
        verify_directory(root, [keys[0].public], Expectations(__version__, datetime.now(UTC)))


def test_store_install_deep_json(tmp_path, keys):
    root = _evil(tmp_path, keys)
    with pytest.raises(EdgeScreenError):
        BundleStore(tmp_path / "store").install(root, [keys[0].public], __version__)


def test_cli_verify_deep_json_exits_1(tmp_path, keys):
    root = _evil(tmp_path, keys)
    pub = tmp_path / "k.pub.pem"
    pub.write_bytes(keys[0].public)
    assert bundle_cli.main(["verify", str(root), "--trust", str(pub)]) == 1
