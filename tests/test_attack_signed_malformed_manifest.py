"""Kept from the attack review of signed updates; each test asserts the safe behaviour.

Careless model team (or `sign_directory`, which checks nothing): a manifest that passes the
signature but has wrongly typed fields makes parse_manifest / the self-test raise builtin
AttributeError/ValueError/TypeError instead of ManifestError (the CLI then tracebacks: it catches
only EdgeScreenError). The same parser runs unsigned on Screener(bundle=DIR) without keys."""
import pytest
from signed import make_bundle

from edge_screen import bundle_cli
from edge_screen.errors import EdgeScreenError
from edge_screen.store import BundleStore
from edge_screen.version import __version__


def _set(path, value):
    def edit(m):
        d = m
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return edit


CASES = {
    "preferred_is_a_list": _set(["models", 0, "preferred"], ["fp32"]),
    "fidelity_value_is_text": _set(["models", 0, "variants", 0, "fidelity"], {"auc": "high"}),
    "score_clip_is_text": _set(["models", 0, "output", "score_clip"], "x"),
    "variant_is_a_number": _set(["models", 0, "variants"], [1]),
    "notices_item_is_a_number": _set(["notices"], [1]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_signed_malformed_manifest_gives_a_named_error(tmp_path, keys, name):
    src = make_bundle(tmp_path / "b", keys[0], CASES[name], version="2027.1.1")
    pub = tmp_path / "k.pub.pem"
    pub.write_bytes(keys[0].public)
    assert bundle_cli.main(["verify", str(src), "--trust", str(pub)]) == 1


def test_self_test_with_malformed_signals_gives_a_named_error(tmp_path, keys):
    def edit(m):
        for case in m["self_test"]["cases"]:
            for want in case["expected"].values():
                want["signals"] = ["sexual"]  # parse_self_test does not check its type
    src = make_bundle(tmp_path / "b", keys[0], edit, version="2027.1.1")
    with pytest.raises(EdgeScreenError):
        BundleStore(tmp_path / "store").install(src, [keys[0].public], __version__)
