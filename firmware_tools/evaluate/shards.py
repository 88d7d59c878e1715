"""Results on disk: one Parquet file per shard and an append-only record of finished shards.

A shard counts as done only once its file is complete and renamed into place *and* its line
(index, rows, sha256) is in ``completed.jsonl``. A driver killed between the two, a torn last
line, or a file that no longer matches its line leaves that shard to be screened again; nothing
else is redone. ``run.json`` pins what the shards depend on (the side and the corpus), so a
directory is never resumed with another bundle or corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import EvaluationError
from .screen import schema

if TYPE_CHECKING:
    import pyarrow as pa

RECORD = "completed.jsonl"


class ShardStore:
    """The shards of one side's run over one corpus, in ``root``."""

    def __init__(self, root: Path, pinned: Mapping[str, Any]) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        meta = root / "run.json"
        if meta.exists():
            old = json.loads(meta.read_text("utf-8"))
            if old != dict(pinned):
                changed = sorted(k for k in {*old, *pinned} if old.get(k) != pinned.get(k))
                raise EvaluationError(f"{root} holds a run with other {', '.join(changed)}: "
                                      "give another --out (or --runs)")
        else:
            _write_atomic(meta, json.dumps(dict(pinned), indent=1, sort_keys=True).encode())

    def path(self, shard: int) -> Path:
        return self.root / f"shard-{shard:06d}.parquet"

    def completed(self) -> dict[int, int]:
        """Finished shards (index -> rows) whose file still matches its record line."""
        done: dict[int, int] = {}
        try:
            lines = (self.root / RECORD).read_text("utf-8").splitlines()
        except FileNotFoundError:
            return done
        for line in lines:
            try:
                entry = json.loads(line)
                shard, rows, sha = int(entry["shard"]), int(entry["rows"]), str(entry["sha256"])
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a killed driver: that shard is simply redone
            p = self.path(shard)
            if p.is_file() and _sha256(p) == sha:
                done[shard] = rows
        return done

    def write(self, shard: int, table: pa.Table) -> None:
        """Write the shard's file, then record it (both flushed to disk first)."""
        import pyarrow.parquet as pq

        p = self.path(shard)
        tmp = p.with_suffix(".part")
        pq.write_table(table.cast(schema()), tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, p)
        line = json.dumps({"shard": shard, "rows": table.num_rows, "sha256": _sha256(p)})
        record = self.root / RECORD
        torn = record.exists() and record.stat().st_size > 0 and not _ends_in_newline(record)
        with open(record, "a", encoding="utf-8") as f:
            f.write(("\n" if torn else "") + line + "\n")  # never glued to a torn line
            f.flush()
            os.fsync(f.fileno())

    def read(self, shards: list[int]) -> pa.Table:
        """Every row of ``shards``, in shard order."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        return pa.concat_tables([pq.read_table(self.path(s), schema=schema()) for s in shards])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _ends_in_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)
