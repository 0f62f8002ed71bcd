"""The runtime's store-and-forward loop vs a bare loop reading the same storage in batches.

Run with ``hatch run bench:python tools/bench/bench_export.py``.

Both hand a do-nothing exporter a backlog of log entries, batch by batch, read with
``after=<last id>, limit=<batch>`` from the same storage.  Ours is
``EmbeddedRuntime.export_now()``: it also saves the exporter's cursor after every batch
(a committed write in SQLite), counts items in the registry, and measures the backlog
and lag at the end.  The peer is the least a hand-written exporter loop must do (no
cursor saved, nothing counted).  The ratio is the price of store-and-forward's
bookkeeping; goal: at most 1.25x the bare loop.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import AsyncIterable
from pathlib import Path

from observabilipy.core import EmbeddedRuntime, LogEntry, LogStoragePort, Registry, Signal
from observabilipy.core.storage import InMemoryLogStorage
from observabilipy.sqlite import SQLiteLogStorage

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.bench._common import Row, per_call_ns, report

BACKLOG = 100_000
BATCH = 1_000


class NullExporter:
    """Takes every entry it is given and sends nothing."""

    name = "null"
    signals: frozenset[Signal] = frozenset({"logs"})

    async def export_logs(self, entries: AsyncIterable[LogEntry]) -> None:
        async for _ in entries:
            pass

    async def export_metrics(self, samples: AsyncIterable[object]) -> None:
        pass

    async def close(self) -> None:
        pass


async def _items(batch: list[LogEntry]) -> AsyncIterable[LogEntry]:
    for entry in batch:
        yield entry


def ours(storage: LogStoragePort) -> None:
    """Export the whole backlog with a new runtime, its exporter's cursor set back to 0."""
    storage.save_cursor_sync(NullExporter.name, 0)
    runtime = EmbeddedRuntime(
        log_storage=storage,
        exporters=[NullExporter()],
        registry=Registry(),
        export_batch_size=BATCH,
    )
    exported = runtime.export_now()["null"]["logs"]
    runtime.stop()
    assert exported == BACKLOG, exported


def peer(storage: LogStoragePort) -> None:
    """The same batches through a bare loop: read, hand over, remember the last id."""

    async def run() -> int:
        exporter, cursor, sent = NullExporter(), None, 0
        while batch := [entry async for entry in storage.read(after=cursor, limit=BATCH)]:
            await exporter.export_logs(_items(batch))
            cursor, sent = batch[-1].id, sent + len(batch)
        return sent

    assert asyncio.run(run()) == BACKLOG


def main() -> int:
    entries = [
        LogEntry(timestamp=1.7e9 + n, level="info", message=f"request {n}", attributes={"n": n})
        for n in range(BACKLOG)
    ]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        storages: list[tuple[str, LogStoragePort]] = [
            ("in-memory", InMemoryLogStorage()),
            ("SQLite file", SQLiteLogStorage(Path(folder) / "obs.db", registry=Registry())),
        ]
        for label, storage in storages:
            storage.write_many_sync(entries)
            rows.append(
                Row(
                    f"export {BACKLOG:,} logs from {label}, batches of {BATCH:,}",
                    per_call_ns(lambda s=storage: ours(s), 1),  # type: ignore[misc]
                    per_call_ns(lambda s=storage: peer(s), 1),  # type: ignore[misc]
                    goal=1.25,
                )
            )
            storage.close_sync()
    return 0 if report(rows, peer="bare loop") else 1


if __name__ == "__main__":
    raise SystemExit(main())
