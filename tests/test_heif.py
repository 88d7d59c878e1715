"""HEIC/HEIF needs the optional pillow-heif extra; without it the answer is a clear 'unsupported'."""

from __future__ import annotations

import sys

import pytest

from edge_screen import Screener

HEIC_HEAD = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64


def test_heic_without_the_extra_is_unsupported_with_the_install_hint(
    screener: Screener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # as if the extra were not installed
    r = screener.screen(HEIC_HEAD)
    assert r.error is not None and r.error.code == "unsupported"
    assert "edge-screen[heif]" in r.error.message
    assert r.verdict == "hold"


def test_heic_with_the_extra_decodes_a_real_file(screener: Screener) -> None:
    pillow_heif = pytest.importorskip("pillow_heif", reason="optional extra: pip install '.[heif]'")
    from conftest import encode, portrait
    from PIL import Image

    pillow_heif.register_heif_opener()
    r = screener.screen(encode(Image.fromarray(portrait()), "HEIF", quality=90))
    assert r.ok and r.media.format == "HEIF" and len(r.faces) >= 1
