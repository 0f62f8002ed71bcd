"""Logging through ObservabilipyHandler vs stdlib logging to a do-nothing handler, in one run.

Run with ``python tools/bench/bench_logging.py [calls]`` (e.g.
``hatch run bench:python tools/bench/bench_logging.py``).  Each round times
``logger.info("msg %s", i)`` ``calls`` times:

(a) into a ``logging.Handler`` whose ``emit`` does nothing (the peer);
(b) into ObservabilipyHandler writing to InMemoryLogStorage, with a queue big
    enough that nothing is dropped; after timing, the handler is flushed and
    the stored count must equal the number logged.

The goal row is the caller-side cost: CPU time of the logging thread per call
(``time.thread_time``).  Wall time is printed too: it also contains the writer
thread's work, which shares the GIL with the caller while the benchmark runs.
Best of 5 rounds each; exits 1 if the goal is missed or a record is lost.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from pathlib import Path

from observabilipy.core.handler import ObservabilipyHandler
from observabilipy.core.storage import InMemoryLogStorage

# Run as a script: make the repository root importable for the shared timing helpers.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.bench._common import REPEATS, Row, report

CALLS = 200_000
GOAL = 1.5


class NullEmitHandler(logging.Handler):
    """The peer: everything stdlib logging does, then an emit that does nothing."""

    def emit(self, record: logging.LogRecord) -> None:
        """Do nothing."""


def fresh_logger(name: str, handler: logging.Handler) -> logging.Logger:
    """A logger of its own, INFO enabled, writing only to ``handler``."""
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    return logger


def time_calls(logger: logging.Logger, calls: int) -> tuple[float, float]:
    """Wall and caller-thread CPU nanoseconds per ``logger.info("msg %s", i)``."""
    info = logger.info
    gc.disable()
    try:
        wall = time.perf_counter_ns()
        cpu = time.thread_time_ns()
        for i in range(calls):
            info("msg %s", i)
        cpu = time.thread_time_ns() - cpu
        wall = time.perf_counter_ns() - wall
    finally:
        gc.enable()
    return wall / calls, cpu / calls


def main(calls: int) -> bool:
    """Run the rounds, print the table; True when the goal is met and nothing was lost."""
    peer_wall = peer_cpu = ours_wall = ours_cpu = float("inf")
    best_rate = 0.0
    complete = True
    for round_number in range(REPEATS):
        wall, cpu = time_calls(fresh_logger("bench.peer", NullEmitHandler()), calls)
        peer_wall, peer_cpu = min(peer_wall, wall), min(peer_cpu, cpu)

        storage = InMemoryLogStorage(max_entries=calls)
        handler = ObservabilipyHandler(storage, queue_size=calls)
        started = time.perf_counter()
        wall, cpu = time_calls(fresh_logger("bench.ours", handler), calls)
        flushed = handler.flush(timeout=120.0)
        rate = calls / (time.perf_counter() - started)
        ours_wall, ours_cpu = min(ours_wall, wall), min(ours_cpu, cpu)
        best_rate = max(best_rate, rate)
        count = storage.count_sync()
        if not flushed or count != calls or handler.dropped:
            print(
                f"round {round_number}: flushed={flushed} stored={count} of {calls}, "
                f"dropped={handler.dropped}"
            )
            complete = False
        handler.close()
        del storage, handler
        gc.collect()

    print(f"logger.info('msg %s', i), {calls:,} calls per round, best of {REPEATS} rounds\n")
    passed = report(
        [Row("caller CPU per call: ours / no-op emit", ours_cpu, peer_cpu, GOAL)],
        peer="no-op emit",
    )
    print(
        f"\nwall time per call (includes the writer thread's share of the GIL): "
        f"ours {ours_wall / 1e3:.2f} µs, no-op emit {peer_wall / 1e3:.2f} µs, "
        f"ratio {ours_wall / peer_wall:.2f}"
    )
    print(f"stored: {best_rate:,.0f} records/s into InMemoryLogStorage (logging until flushed)")
    print("every record stored" if complete else "RECORDS LOST")
    return passed and complete


if __name__ == "__main__":
    sys.exit(0 if main(int(sys.argv[1]) if len(sys.argv) > 1 else CALLS) else 1)
