"""SQLite storage: logs and metrics in one file, written and read sync and async.

Shows the id cursor a poller uses to read only what is new (never skipping or
repeating an entry, even when timestamps are equal) and retention trimming the
file.  The file (``sqlite-example.db`` unless a path is given) stays afterwards.

    python examples/sqlite_storage.py [path]

Needs ``pip install observabilipy-sqlite``.
"""

from __future__ import annotations

import asyncio
import sys

from observabilipy.core import (
    MetricSample,
    RetentionPolicy,
    apply_log_retention_sync,
    error,
    info,
    warning,
)
from observabilipy.sqlite import SQLiteDatabase, SQLiteLogStorage, SQLiteMetricsStorage


def poll(logs: SQLiteLogStorage, after: int | None) -> int | None:
    """Print the entries newer than ``after``; return the cursor for the next poll."""
    for entry in logs.read_sync(after=after):
        print(f"  #{entry.id} {entry.level:<7} {entry.message} {entry.attributes}")
        after = entry.id
    return after


async def write_async(logs: SQLiteLogStorage, metrics: SQLiteMetricsStorage) -> None:
    """What an asyncio service does: await writes and reads without blocking its loop."""
    await logs.write_many([info("order placed", order=42), warning("stock low", sku="A-7")])
    await metrics.write(MetricSample(name="queue_depth", timestamp=2.0, value=3, kind="gauge"))
    errors = [entry.message async for entry in logs.read(min_level="warning")]
    print(f"async read, warnings and worse: {errors}")


def main(path: str) -> None:
    """Write, poll with the id cursor, apply retention, count what stays."""
    database = SQLiteDatabase(path)  # one file, one writer thread, shared by both storages
    logs, metrics = SQLiteLogStorage(database), SQLiteMetricsStorage(database)
    logs.clear_sync()  # a fresh start when the example runs again on the same file
    metrics.clear_sync()

    logs.write_sync(info("service started", version="2.0.0"))
    metrics.write_sync(MetricSample(name="queue_depth", timestamp=1.0, value=7, kind="gauge"))
    print("first poll:")
    cursor = poll(logs, after=None)

    asyncio.run(write_async(logs, metrics))
    logs.write_sync(error("payment failed", order=42), durable=True)  # waits for the commit
    print(f"second poll (after id {cursor}), only the new entries:")
    cursor = poll(logs, after=cursor)

    samples = [(s.name, s.value) for s in metrics.read_sync(name="queue_depth")]
    print(f"metric history: {samples}")

    removed = apply_log_retention_sync(logs, RetentionPolicy(max_count=2))
    print(f"retention kept the newest 2 log entries, removed {removed}")
    print(f"in {path}: {logs.count_sync()} log entries, {metrics.count_sync()} metric samples")
    database.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sqlite-example.db")
