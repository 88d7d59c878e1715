"""``edge-screen-fw hashlist``: build a bundle's hash list (``pdq256``) from PDQ hex lines or
from pictures, and list it in a bundle's manifest (docs/bundle-format.md#hash-lists).

Input lines are a 64-digit PDQ hex, optionally followed by a comma or blanks and the hash's
quality (python-threatexchange and HMA print ``hash,quality``); ``#`` starts a comment. A picture
is hashed upright (its EXIF orientation applied) with ``edge_screen.pdq``. Entries of quality
under 50 are left out (the runtime never matches such hashes), exact duplicates once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from edge_screen.errors import ManifestError
from edge_screen.known import MIN_QUALITY
from edge_screen.manifest import parse_manifest
from edge_screen.pdq import PdqHash, pdq_hash

_LINE = re.compile(r"([0-9a-fA-F]{64})(?:[\s,]+(\d{1,3}))?")
_PICTURES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic"}


def picture_hash(path: Path) -> PdqHash:
    """PDQ of a picture file as shown: EXIF orientation applied, RGB, full size."""
    with Image.open(path) as im:
        rgb = ImageOps.exif_transpose(im).convert("RGB")
    return pdq_hash(np.asarray(rgb))


def read_entries(paths: Iterable[Path]) -> tuple[list[PdqHash], int]:
    """The hashes in ``paths`` (hex-line text files or pictures) and how many were left out
    for their quality. A line that is neither a hash nor a comment is an error naming it."""
    out: list[PdqHash] = []
    low = 0
    for path in paths:
        if path.suffix.lower() in _PICTURES:
            hashes = [picture_hash(path)]
        else:
            hashes = []
            for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
                text = line.split("#", 1)[0].strip()
                if not text:
                    continue
                m = _LINE.fullmatch(text)
                if m is None:
                    raise ValueError(f"{path}:{n}: not a PDQ hex (64 digits) [, quality]")
                quality = int(m.group(2)) if m.group(2) else 100  # lists seldom say
                hashes.append(PdqHash.from_hex(m.group(1), min(quality, 100)))
        for h in hashes:
            if h.quality < MIN_QUALITY:
                low += 1
            else:
                out.append(h)
    return out, low


def build(hashes: Sequence[PdqHash], out: Path, list_id: str, label: str, source: str = "",
          description: str = "") -> dict[str, Any]:
    """Write ``<list_id>.pdq256`` into ``out`` (each distinct hash once, in input order) and
    return its manifest entry."""
    unique = list(dict.fromkeys(h.to_bytes() for h in hashes))
    if not unique:
        raise ValueError("no hash to list (a list is never empty)")
    data = b"".join(unique)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{list_id}.pdq256"
    (out / name).write_bytes(data)
    entry: dict[str, Any] = {
        "id": list_id, "file": name, "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data), "count": len(unique), "format": "pdq256", "label": label,
    }
    if source:
        entry["source"] = source
    if description:
        entry["description"] = description
    return entry


def add_to_bundle(bundle: Path, entry: dict[str, Any]) -> None:
    """List ``entry`` in the bundle's manifest (replacing a list of the same id); the file must
    already be in the bundle. The bundle must be signed again afterwards."""
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text("utf-8"))
    lists = [h for h in manifest.get("hash_lists") or [] if h.get("id") != entry["id"]]
    manifest["hash_lists"] = [*lists, entry]
    parse_manifest(manifest)  # the runtime's own schema: refuse what a device would refuse
    if not (bundle / entry["file"]).is_file():
        raise ManifestError(f"{bundle / entry['file']}: not in the bundle")
    path.write_text(json.dumps(manifest, indent=1) + "\n", "utf-8")


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="edge-screen-fw hashlist",
        description="Build a pdq256 hash list from PDQ hex lines or pictures; with --bundle, "
                    "write it into that bundle and list it in its manifest (sign it again).")
    p.add_argument("inputs", nargs="+", type=Path, help="text files of hex lines, or pictures")
    p.add_argument("--id", required=True, dest="list_id", help="the list's id in the manifest")
    p.add_argument("--label", required=True, help='what it holds, e.g. "known CSAM"')
    p.add_argument("--source", default="", help="who compiled the list, and when")
    p.add_argument("--out", type=Path, help="directory for the .pdq256 file")
    p.add_argument("--bundle", type=Path, help="bundle directory to add the list to")
    args = p.parse_args(argv)
    if (args.out is None) == (args.bundle is None):
        p.error("give exactly one of --out and --bundle")
    try:
        hashes, low = read_entries(args.inputs)
        entry = build(hashes, args.bundle or args.out, args.list_id, args.label, args.source)
        if args.bundle is not None:
            add_to_bundle(args.bundle, entry)
    except (OSError, ValueError) as exc:
        print(f"edge-screen-fw hashlist: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(entry, indent=1))
    print(f"{entry['count']} entries ({low} left out for quality < {MIN_QUALITY})",
          file=sys.stderr)
    return 0
