"""The corpus: which items to screen, named by a stable key, cut into fixed shards.

A corpus SPEC is a directory (every regular file below it, sorted), a list file (one path or
URI a line; ``#`` comments), or a Parquet/CSV table with a ``path`` or ``uri`` column and an
optional ``key`` column. Relative paths are read against the list's or table's own directory.
URIs (``s3://``, ``gs://``, ``file://``...) are opened through ``pyarrow.fs`` on the worker that
screens them. The item order, and so every shard, is the spec's: a rerun over the same spec
finds the same shards, which is what lets it skip the finished ones (``fingerprint``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .errors import EvaluationError

if TYPE_CHECKING:
    import pyarrow as pa

TABLES = (".parquet", ".pq", ".csv")


@dataclass(frozen=True)
class Item:
    """One input: ``key`` names it in results and labels, ``uri`` is where a worker reads it."""

    key: str
    uri: str


@dataclass(frozen=True)
class Corpus:
    items: tuple[Item, ...]
    spec: str

    def __len__(self) -> int:
        return len(self.items)

    def shards(self, size: int) -> list[tuple[Item, ...]]:
        """The items cut in order into shards of ``size`` (the last may be shorter)."""
        return [self.items[i : i + size] for i in range(0, len(self.items), size)]

    def fingerprint(self, shard_size: int) -> str:
        """What every shard's content depends on: the keys, URIs, order and shard size."""
        h = hashlib.sha256(f"shard_size={shard_size}\n".encode())
        for it in self.items:
            h.update(f"{it.key}\t{it.uri}\n".encode())
        return h.hexdigest()


def is_uri(text: str) -> bool:
    return "://" in text


def load(spec: str | os.PathLike[str]) -> Corpus:
    """The corpus ``spec`` names (see the module docstring); raises ``EvaluationError``."""
    text = os.fspath(spec)
    path = Path(text)
    if path.is_dir():
        items = [Item(p.relative_to(path).as_posix(), str(p.resolve()))
                 for p in sorted(path.rglob("*")) if p.is_file() and not p.is_symlink()]
    elif path.is_file() and path.suffix.lower() in TABLES:
        items = _table(path)
    elif path.is_file():
        items = _list(path)
    else:
        raise EvaluationError(f"corpus {text}: no such directory, list file or table")
    if not items:
        raise EvaluationError(f"corpus {text}: holds no items")
    keys = [it.key for it in items]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise EvaluationError(f"corpus {text}: key {dup!r} names more than one item")
    return Corpus(tuple(items), text)


def _resolve(entry: str, base: Path) -> str:
    if is_uri(entry):
        return entry
    p = Path(entry)
    return str((p if p.is_absolute() else base / p).resolve())


def _list(path: Path) -> list[Item]:
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"corpus {path}: cannot read the list: {exc}") from exc
    entries = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return [Item(e, _resolve(e, path.parent)) for e in entries]


def _table(path: Path) -> list[Item]:
    table = read_table(path, "corpus")
    cols = table.column_names
    column = "path" if "path" in cols else "uri" if "uri" in cols else None
    if column is None:
        raise EvaluationError(f"corpus {path}: a table needs a 'path' or 'uri' column, has {cols}")
    entries = [str(v) for v in table.column(column).to_pylist()]
    keys = ([str(k) for k in table.column("key").to_pylist()] if "key" in cols else entries)
    return [Item(k, _resolve(e, path.parent)) for k, e in zip(keys, entries, strict=True)]


def read_table(path: Path, what: str) -> pa.Table:
    """A Parquet or CSV file as a ``pyarrow.Table`` (labels and corpora share this)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() == ".csv":
            return pcsv.read_csv(path)
        return pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise EvaluationError(f"{what} {path}: cannot read the table: {exc}") from exc


@contextmanager
def opened(uri: str) -> Iterator[str | BinaryIO]:
    """What ``Screener.screen`` takes for ``uri``: a local path as it is (videos stream from
    it), a remote URI as a seekable file opened through ``pyarrow.fs``."""
    if not is_uri(uri) or uri.startswith("file://"):
        yield uri.removeprefix("file://")
        return
    import pyarrow.fs as pafs

    fs, inner = pafs.FileSystem.from_uri(uri)
    with fs.open_input_file(inner) as f:
        yield f
