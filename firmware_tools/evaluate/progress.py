"""Progress on the terminal for long runs: shards, items, rate and time left, on stderr.

On a terminal one line is rewritten in place at most a few times a second; in a log (not a
tty) a line is printed every ``log_every_s`` seconds and at the end, so a week-long job's log
stays readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts one side's shards and items as they finish; ``quiet`` prints nothing."""

    def __init__(self, label: str, shards: int, items: int, reused_shards: int = 0,
                 reused_items: int = 0, stream: TextIO | None = None, quiet: bool = False,
                 log_every_s: float = 10.0) -> None:
        self.label, self.shards, self.items = label, shards, items
        self.done_shards, self.done_items = reused_shards, reused_items
        self.screened = 0  # items screened in this run (the reused ones are not)
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.every = 0.25 if self.tty else log_every_s
        self.start = time.monotonic()
        self.last = -1e9

    def rate(self) -> float:
        """Items screened per second in this run."""
        elapsed = time.monotonic() - self.start
        return self.screened / elapsed if elapsed > 0 else 0.0

    def shard_done(self, rows: int) -> None:
        self.done_shards += 1
        self.done_items += rows
        self.screened += rows
        self.show()

    def line(self) -> str:
        rate = self.rate()
        left = (self.items - self.done_items) / rate if rate > 0 else float("nan")
        eta = time.strftime("%H:%M:%S", time.gmtime(left)) if left == left else "--:--:--"
        return (f"evaluate {self.label}: {self.done_shards}/{self.shards} shards, "
                f"{self.done_items}/{self.items} items, {rate:.1f} items/s, {eta} left")

    def show(self, final: bool = False) -> None:
        now = time.monotonic()
        if self.quiet or not (final or now - self.last >= self.every):
            return
        self.last = now
        end = "\n" if final or not self.tty else ""
        print(("\r" if self.tty else "") + self.line(), end=end, file=self.stream, flush=True)
