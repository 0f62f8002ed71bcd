"""Timing helpers shared by the benchmarks in tools/bench.

Each benchmark times our operation and a peer library's in the same run and
reports the ratio, so figures compare across machines.
"""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

REPEATS = 5


def per_call_ns(fn: Callable[[], object], n: int) -> float:
    """Nanoseconds per call of ``fn``: the best of 5 runs of ``n`` calls each.

    The garbage collector is paused while timing (as ``timeit`` does).  The
    loop's own cost is included, equally for every operation compared.
    """
    best = float("inf")
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(REPEATS):
            start = time.perf_counter_ns()
            for _ in itertools.repeat(None, n):
                fn()
            best = min(best, (time.perf_counter_ns() - start) / n)
    finally:
        if was_enabled:
            gc.enable()
    return best


class Row(NamedTuple):
    """One comparison: our time, the peer's, and the largest ratio (ours/peer) that passes."""

    operation: str
    ours_ns: float
    peer_ns: float
    goal: float

    @property
    def ratio(self) -> float:
        """ours / peer: below 1 means we are faster."""
        return self.ours_ns / self.peer_ns

    @property
    def passed(self) -> bool:
        """Whether the ratio meets the goal."""
        return self.ratio <= self.goal


def _duration(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def report(rows: Sequence[Row], *, peer: str = "peer") -> bool:
    """Print the rows as a table; return True when every goal is met."""
    width = max(len("operation"), *(len(row.operation) for row in rows))
    peer_width = max(10, len(peer))
    print(
        f"{'operation':<{width}}  {'ours':>10}  {peer:>{peer_width}}  {'ratio':>6}  {'goal':>6}  result"
    )
    for row in rows:
        print(
            f"{row.operation:<{width}}  {_duration(row.ours_ns):>10}  "
            f"{_duration(row.peer_ns):>{peer_width}}  {row.ratio:>6.2f}  "
            f"{'<=' + format(row.goal, 'g'):>6}  {'pass' if row.passed else 'FAIL'}"
        )
    return all(row.passed for row in rows)
