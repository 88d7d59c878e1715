"""Signed copies of the shipped bundle for the signing and store tests (keys made per run:
no private key is ever committed)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_screen.bundle import default_bundle_dir
from firmware_tools.pipeline import sign as fw_sign


@dataclass(frozen=True)
class Key:
    private: bytes
    public: bytes


def make_keys(root: Path) -> tuple[Key, Key]:
    """Two key pairs ("old", "new": a rotation)."""
    out = []
    for name in ("old", "new"):
        priv, pub = fw_sign.keygen(root / name)
        assert priv.stat().st_mode & 0o077 == 0  # the private key is its owner's only
        out.append(Key(priv.read_bytes(), pub.read_bytes()))
    return out[0], out[1]


def make_bundle(root: Path, key: Key, edit: Callable[[dict[str, Any]], None] | None = None,
                version: str | None = None) -> Path:
    """A signed copy of the shipped bundle, its manifest edited first (then re-signed)."""
    shutil.copytree(default_bundle_dir(), root)
    if edit is not None or version is not None:
        manifest = json.loads((root / "manifest.json").read_text())
        if version is not None:
            manifest["bundle_version"] = version
        if edit is not None:
            edit(manifest)
        (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    fw_sign.sign_directory(root, key.private, parse=False)  # a device must cope with anything
    return root
