"""Worker processes for tests/sqlite/test_multiprocess.py, run as ``python _workers.py <role> ...``.

Each role is one OS process sharing a SQLite file with others, as a gunicorn or
uvicorn worker would:

- ``count <db> <plan json> [standby]``: record the plan's counter increments and
  histogram observations with the runtime snapshotting every 0.05 s, then stop
  (the runtime's last snapshot) and print ``done <pid>``; with ``standby``, wait
  for a line on stdin first (a replacement worker, ready to take over at once);
- ``gauge <db> <value>``: set one gauge of each multiprocess mode to ``value``,
  store one snapshot, print ``ready <pid>`` and stay alive until stdin closes;
- ``expose <db> [openmetrics]``: a fresh process that never recorded anything
  prints the file's exposition.
"""

from __future__ import annotations

import json
import os
import sys
import time

from observabilipy.core.metrics import Counter, Histogram, Registry
from observabilipy.core.runtime import EmbeddedRuntime
from observabilipy.sqlite.metrics import SQLiteMetricsStorage
from observabilipy.sqlite.multiprocess import encode_exposition

#: The histogram's bounds, shared with the test that checks the totals.
BUCKETS = (0.5, 1.0, 2.5)
#: Observed values cycle through these (multiples of 0.25: every sum is exact in binary).
OBSERVED = (0.25, 0.75, 2.0, 4.0)
#: Gauge families, one per multiprocess mode.
GAUGE_MODES = ("sum", "max", "min", "latest", "all")


def metrics(registry: Registry) -> tuple[Counter, Histogram]:
    """The counter and histogram every counting worker records into."""
    jobs = registry.counter("jobs", "Jobs done", labelnames=("queue",))
    latency = registry.histogram(
        "job_seconds", "Job duration", labelnames=("queue",), buckets=BUCKETS
    )
    return jobs, latency


def count(path: str, plan: dict[str, dict[str, int]]) -> None:
    """Record ``plan``: {queue: {"jobs": increments, "observed": observations}}.

    The observations of each queue cycle through :data:`OBSERVED` from its start.
    """
    registry = Registry()
    jobs, latency = metrics(registry)
    storage = SQLiteMetricsStorage(path, registry=registry)
    runtime = EmbeddedRuntime(metrics_storage=storage, registry=registry, snapshot_interval=0.05)
    runtime.start()
    step = 0
    for queue, n in plan.items():
        child, timer = jobs.labels(queue=queue), latency.labels(queue=queue)
        for index in range(n["jobs"] + n["observed"]):
            if index < n["jobs"]:
                child.inc()
            else:
                timer.observe(OBSERVED[(index - n["jobs"]) % len(OBSERVED)])
            step += 1
            if step % 2 == 0:
                time.sleep(0.01)  # spread the work over several snapshots
    runtime.stop()  # takes the last snapshot
    storage.close_sync()
    print(f"done {os.getpid()}", flush=True)


def gauge(path: str, value: float) -> None:
    """Set one gauge per mode, store it, and stay alive until stdin closes."""
    registry = Registry()
    for mode in GAUGE_MODES:
        registry.gauge(f"{mode}_mode", f"A {mode} gauge", multiprocess_mode=mode).set(value)
    storage = SQLiteMetricsStorage(path, registry=registry)
    storage.write_many_sync(registry.snapshot())
    storage.database.flush()
    print(f"ready {os.getpid()}", flush=True)
    sys.stdin.read()
    storage.close_sync()


def expose(path: str, openmetrics: bool) -> None:
    """Print the exposition of the file as a process that recorded nothing sees it."""
    storage = SQLiteMetricsStorage(path)
    sys.stdout.write(encode_exposition(storage, openmetrics=openmetrics))
    storage.close_sync()


if __name__ == "__main__":
    role, db, *rest = sys.argv[1:]
    if role == "count":
        if rest[1:] == ["standby"]:
            sys.stdin.readline()
        count(db, json.loads(rest[0]))
    elif role == "gauge":
        gauge(db, float(rest[0]))
    elif role == "expose":
        expose(db, rest == ["openmetrics"])
    else:
        sys.exit(f"unknown role {role!r}")
