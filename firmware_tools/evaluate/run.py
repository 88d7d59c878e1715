"""Screen one side over a corpus, shard by shard, on a local process pool or on Ray Data.

Both executors run the same ``ScreenBatch`` on the same shards and hand each finished shard to
the driver, which alone writes results (``ShardStore``). Only shards missing from the record
are screened, so a rerun after a killed worker or driver redoes only what was lost.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .corpus import Corpus, Item
from .errors import EvaluationError
from .progress import Progress
from .screen import ScreenBatch, Side
from .shards import ShardStore

if TYPE_CHECKING:
    import pyarrow as pa

Shard = tuple[int, tuple[Item, ...]]
OnShard = Callable[[int, "pa.Table"], None]


@dataclass(frozen=True)
class RunStats:
    """What one side's run did: shards reused from an earlier run and items screened now."""

    side: str
    run_dir: str
    shards: int
    shards_reused: int
    items: int
    items_screened: int
    seconds: float
    workers: int
    executor: str
    complete: bool  # False: stopped after --max-shards; rerun to finish

    @property
    def items_per_s(self) -> float:
        return self.items_screened / self.seconds if self.seconds > 0 else 0.0


class Executor(Protocol):
    name: str
    workers: int

    def run(self, side: Side, shards: Sequence[Shard], on_shard: OnShard) -> None: ...


def _batch(shard: int, items: tuple[Item, ...]) -> pa.Table:
    import pyarrow as pa

    return pa.table({"key": [it.key for it in items], "uri": [it.uri for it in items],
                     "shard": pa.array([shard] * len(items), pa.int32())})


_WORKER: ScreenBatch | None = None  # the pool process's own screener (one per process)


def _init(side: Side) -> None:
    global _WORKER
    _WORKER = ScreenBatch(side)


def _screen(batch: pa.Table) -> pa.Table:
    assert _WORKER is not None, "pool initializer did not run"
    return _WORKER(batch)


class LocalPool:
    """A process pool on this machine, one ``Screener`` (one thread) per process."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, side: Side, shards: Sequence[Shard], on_shard: OnShard) -> None:
        if not shards:
            return
        ctx = multiprocessing.get_context("spawn")  # no interpreter state copied into a fork
        pool = ProcessPoolExecutor(min(self.workers, len(shards)), mp_context=ctx,
                                   initializer=_init, initargs=(side,))
        try:
            futures = {pool.submit(_screen, _batch(i, items)): i for i, items in shards}
            for fut in as_completed(futures):
                on_shard(futures[fut], fut.result())
        except BrokenProcessPool as exc:
            raise EvaluationError("a worker process died (killed, or out of memory); the "
                                  "finished shards are kept: rerun the same command to screen "
                                  "the rest") from exc
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class RayData:
    """Ray Data over the missing shards: ``map_batches`` with ``ScreenBatch`` as a class UDF
    on an actor pool (one ``Screener`` per actor, one CPU each). ``address``: None starts a
    local instance of ``workers`` CPUs (unless one is running), else ``auto`` or ``ray://``."""

    name = "ray"

    def __init__(self, workers: int, address: str | None = None, batch_size: int = 16) -> None:
        self.workers, self.address, self.batch_size = workers, address, batch_size

    def run(self, side: Side, shards: Sequence[Shard], on_shard: OnShard) -> None:
        if not shards:
            return
        try:
            import ray
        except ImportError as exc:
            raise EvaluationError("--ray needs Ray: pip install 'edge-screen[eval]'") from exc
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, num_cpus=None if self.address else self.workers,
                     include_dashboard=False, configure_logging=False)
        try:
            self._run(side, shards, on_shard)
        except ray.exceptions.RayError as exc:  # an actor that cannot start, a lost node...
            raise EvaluationError(f"Ray: {exc}; the finished shards are kept: rerun the same "
                                  "command to screen the rest") from exc
        finally:
            if started:
                ray.shutdown()

    def _run(self, side: Side, shards: Sequence[Shard], on_shard: OnShard) -> None:
        import pyarrow as pa
        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False  # ours is on stderr
        expected = {i: len(items) for i, items in shards}
        items = [{"key": it.key, "uri": it.uri, "shard": i} for i, its in shards for it in its]
        # The workers import this package from where the driver does, wherever it is installed.
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        ds = ray.data.from_items(items, override_num_blocks=max(1, len(shards)))
        out = ds.map_batches(ScreenBatch, fn_constructor_kwargs={"side": side},
                             batch_format="pyarrow", batch_size=self.batch_size,
                             compute=ray.data.ActorPoolStrategy(size=self.workers),
                             num_cpus=1, runtime_env={"env_vars": {"PYTHONPATH": path}})
        pending: dict[int, list[pa.Table]] = {}
        batch: pa.Table
        for batch in out.iter_batches(batch_format="pyarrow", batch_size=None):
            for shard in sorted(set(batch.column("shard").to_pylist())):
                part = batch.filter(pa.compute.equal(batch.column("shard"), shard))
                got = pending.setdefault(shard, [])
                got.append(part)
                if sum(t.num_rows for t in got) == expected[shard]:
                    on_shard(shard, pa.concat_tables(pending.pop(shard)))
        if pending:
            raise EvaluationError(f"Ray returned shards {sorted(pending)} incomplete")


def screen_side(label: str, side: Side, pinned: dict[str, object], corpus: Corpus,
                run_dir: Path, shard_size: int, executor: Executor,
                max_shards: int | None = None, quiet: bool = False
                ) -> tuple[ShardStore, RunStats]:
    """Screen the shards of ``corpus`` that ``run_dir`` lacks; at most ``max_shards`` of them
    (then stop, as a killed driver would, and leave the rest to a rerun)."""
    store = ShardStore(run_dir, {**pinned, "corpus": corpus.fingerprint(shard_size),
                                 "shard_size": shard_size, "items": len(corpus)})
    all_shards = corpus.shards(shard_size)
    done = store.completed()
    missing = [(i, s) for i, s in enumerate(all_shards) if i not in done]
    todo = missing if max_shards is None else missing[:max_shards]
    progress = Progress(label, len(all_shards), len(corpus), len(done), sum(done.values()),
                        quiet=quiet)
    progress.show(final=True)
    t = time.monotonic()

    def on_shard(shard: int, table: pa.Table) -> None:
        store.write(shard, table)
        progress.shard_done(table.num_rows)

    executor.run(side, todo, on_shard)
    seconds = time.monotonic() - t
    progress.show(final=True)
    stats = RunStats(label, str(run_dir), len(all_shards), len(done), len(corpus),
                     progress.screened, seconds, executor.workers, executor.name,
                     len(todo) == len(missing))
    return store, stats
