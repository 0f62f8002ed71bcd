"""Multi-process exposition from a SQLite file vs prometheus_client.generate_latest, in one run.

Run with ``python tools/bench/bench_sqlite_exposition.py`` (prometheus_client
installed, e.g. ``hatch run bench:python tools/bench/bench_sqlite_exposition.py``).

The file holds 10,000 counter series snapshotted 10 times (100,000 history
rows), written by one process, then by four live processes of 2,500 series
each.  ``encode_exposition`` reads only the latest point per series and process
(summed in SQL); the peer renders the same 10,000 series from memory.  The goal
is half the peer's time for a process reading the file; the writing process's
own view (``registry=``: its live values replace its stored rows) must not be
slower than the peer.  Prints the table of times, the ratio ours/peer and the
goal; exits 1 if a goal is missed.
"""

from __future__ import annotations

import multiprocessing
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from observabilipy.core.metrics import Registry
from observabilipy.sqlite.metrics import SQLiteMetricsStorage
from observabilipy.sqlite.multiprocess import encode_exposition

# Run as a script: make the repository root importable for the shared timing helpers.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.bench._common import Row, per_call_ns, report

SERIES = 10_000
SNAPSHOTS = 10
PROCESSES = 4


def labels(index: int) -> dict[str, str]:
    """The labels of series ``index``: as in bench_metrics' exposition benchmark."""
    return {"method": ("GET", "POST")[index % 2], "route": f"/items/{index}"}


def fill(storage: SQLiteMetricsStorage, registry: Registry, indexes: range) -> None:
    """Count the ``indexes`` series in ``registry``, snapshotting it into ``storage`` 10 times."""
    requests = registry.counter("requests", "Requests", labelnames=("method", "route"))
    children = [(requests.labels(**labels(i)), i) for i in indexes]
    for snapshot in range(1, SNAPSHOTS + 1):
        for child, index in children:
            child.inc(index)  # after the last snapshot, series i holds 10 * i
        storage.write_many_sync(registry.snapshot(timestamp=float(snapshot)))
    storage.flush(timeout=60)


def live_worker(path: str, indexes: range, ready: Event, stop: Event) -> None:
    """A worker process: store the ``indexes`` series, set ``ready``, live until ``stop``."""
    registry = Registry(max_series_per_family=SERIES)
    storage = SQLiteMetricsStorage(path, registry=registry)
    fill(storage, registry, indexes)
    ready.set()
    stop.wait()
    storage.close_sync()


@contextmanager
def live_workers(path: str) -> Iterator[None]:
    """Four live processes, each having stored 2,500 of the series."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    share = SERIES // PROCESSES
    workers: list[tuple[Any, Event]] = []
    for n in range(PROCESSES):
        ready = context.Event()
        indexes = range(n * share, (n + 1) * share)
        process = context.Process(target=live_worker, args=(path, indexes, ready, stop))
        process.start()
        workers.append((process, ready))
    try:
        for process, ready in workers:
            if not ready.wait(120):
                raise RuntimeError(f"worker {process.pid} did not store its series")
        yield
    finally:
        stop.set()
        for process, _ in workers:
            process.join(60)


def parsed(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def peer_registry() -> CollectorRegistry:
    peer = CollectorRegistry()
    requests = prometheus_client.Counter("requests", "Requests", ["method", "route"], registry=peer)
    for index in range(SERIES):
        requests.labels(**labels(index)).inc(SNAPSHOTS * index)
    return peer


def bench(
    operation: str,
    storage: SQLiteMetricsStorage,
    peer: CollectorRegistry,
    goal: float,
    registry: Registry | None = None,
) -> Row:
    """Time ``encode_exposition(storage, registry=registry)`` against the peer."""
    text = encode_exposition(storage, registry=registry)
    # Same series, same values: both texts must say the same thing.
    expected = prometheus_client.generate_latest(peer).decode()
    assert parsed(text) == parsed(expected), "the exposition differs from the peer's"
    return Row(
        operation,
        per_call_ns(lambda: encode_exposition(storage, registry=registry), 3),
        per_call_ns(lambda: prometheus_client.generate_latest(peer), 3),
        goal,
    )


@contextmanager
def opened(path: str, registry: Registry | None = None) -> Iterator[SQLiteMetricsStorage]:
    storage = SQLiteMetricsStorage(path, registry=registry)
    try:
        yield storage
    finally:
        storage.close_sync()


def main() -> int:
    """Build the files, time both expositions, print the table."""
    print(f"Python {sys.version.split()[0]}, prometheus_client {version('prometheus_client')}")
    # We write no `_created` series; neither should the peer.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    peer = peer_registry()
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        one = str(Path(directory) / "one.db")
        mine = Registry(max_series_per_family=SERIES)
        with opened(one, mine) as writer, opened(one) as fresh:
            fill(writer, mine, range(SERIES))
            history = f"{SERIES * SNAPSHOTS:,} history rows"
            rows.append(bench(f"{SERIES:,} series, 1 process, {history}", fresh, peer, 0.5))
            # The writing process itself: its registry's live values replace its rows.
            rows.append(bench(f"{SERIES:,} series, own registry= merged", writer, peer, 1.0, mine))
        four = str(Path(directory) / "four.db")
        with live_workers(four), opened(four) as fresh:
            share = f"{SERIES // PROCESSES:,}"
            rows.append(
                bench(f"{SERIES:,} series, {PROCESSES} live processes x {share}", fresh, peer, 0.5)
            )
    return 0 if report(rows, peer="generate_latest") else 1


if __name__ == "__main__":
    sys.exit(main())
