"""Export cursors in a SQLite file: schema version 2, surviving restarts, read-only version 1."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterable, Callable
from pathlib import Path

import pytest

from observabilipy.core import LogEntry, MetricSample, Registry, Signal, info
from observabilipy.core.runtime import EmbeddedRuntime
from observabilipy.core.testing import sample
from observabilipy.sqlite import (
    SCHEMA_VERSION,
    SQLiteDatabase,
    SQLiteLogStorage,
    SQLiteMetricsStorage,
    SQLiteStorageError,
)
from observabilipy.sqlite import schema as schema_module

Connect = Callable[[Path], sqlite3.Connection]


def _version(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM observabilipy_meta WHERE key = 'schema_version'")
    return str(row.fetchone()[0])


def _version_1_file(path: Path, monkeypatch: pytest.MonkeyPatch, entries: int) -> None:
    """A file as the release before export cursors wrote it, holding ``entries`` logs."""
    with monkeypatch.context() as patch:
        patch.setattr(schema_module, "MIGRATIONS", schema_module.MIGRATIONS[:1])
        storage = SQLiteLogStorage(path, registry=Registry())
        storage.write_many_sync([info(f"old {n}") for n in range(entries)])
        storage.close_sync()


def test_cursors_survive_closing_and_reopening_per_storage(db_path: Path) -> None:
    with SQLiteDatabase(db_path, registry=Registry()) as database:
        logs = SQLiteLogStorage(database)
        metrics = SQLiteMetricsStorage(database, registry=Registry())
        logs.save_cursor_sync("otlp", 12)
        asyncio.run(metrics.save_cursor("otlp", 7))
        assert logs.load_cursor_sync("otlp") == 12  # one table, a row per storage
        assert metrics.load_cursor_sync("otlp") == 7
    logs = SQLiteLogStorage(db_path, registry=Registry())
    metrics = SQLiteMetricsStorage(db_path, registry=Registry())
    try:
        assert asyncio.run(logs.load_cursor("otlp")) == 12
        assert metrics.load_cursor_sync("otlp") == 7
        assert logs.load_cursor_sync("loki") is None
    finally:
        logs.close_sync()
        metrics.close_sync()


def test_count_after_is_the_backlog_past_a_cursor(db_path: Path) -> None:
    logs = SQLiteLogStorage(db_path, registry=Registry())
    metrics = SQLiteMetricsStorage(db_path, registry=Registry())
    try:
        logs.write_many_sync([info(str(n)) for n in range(10)])
        metrics.write_many_sync([sample("up", float(n), n, "gauge") for n in range(4)])
        assert (logs.count_after_sync(None), logs.count_after_sync(7)) == (10, 3)
        assert asyncio.run(logs.count_after(10)) == 0
        assert (metrics.count_after_sync(1), asyncio.run(metrics.count_after(None))) == (3, 4)
    finally:
        logs.close_sync()
        metrics.close_sync()


def test_a_version_1_file_migrates_keeping_its_entries(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, raw_connection: Connect
) -> None:
    _version_1_file(db_path, monkeypatch, entries=3)
    assert _version(raw_connection(db_path)) == "1"
    storage = SQLiteLogStorage(db_path, registry=Registry())
    try:
        assert _version(raw_connection(db_path)) == str(SCHEMA_VERSION) == "2"
        assert [e.message for e in storage.read_sync()] == ["old 0", "old 1", "old 2"]
        assert storage.load_cursor_sync("otlp") is None
        storage.save_cursor_sync("otlp", 2)
        assert storage.load_cursor_sync("otlp") == 2
    finally:
        storage.close_sync()


def test_read_only_opens_a_version_1_file_without_cursors(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, raw_connection: Connect
) -> None:
    _version_1_file(db_path, monkeypatch, entries=2)
    storage = SQLiteLogStorage(db_path, read_only=True, registry=Registry())
    try:
        assert [e.message for e in storage.read_sync()] == ["old 0", "old 1"]
        assert storage.load_cursor_sync("otlp") is None
        assert asyncio.run(storage.load_cursor("otlp")) is None
        assert storage.count_after_sync(1) == 1
        storage.save_cursor_sync("otlp", 1)  # a write: dropped and counted, never raised
        assert storage.dropped == 1
        assert storage.load_cursor_sync("otlp") is None
    finally:
        storage.close_sync()
    assert _version(raw_connection(db_path)) == "1"  # a reader never upgrades


def test_read_only_reads_the_cursors_of_a_current_file(db_path: Path) -> None:
    writer = SQLiteLogStorage(db_path, registry=Registry())
    writer.save_cursor_sync("otlp", 5)
    assert writer.flush()  # committed: other connections see it
    reader = SQLiteLogStorage(db_path, read_only=True, registry=Registry())
    try:
        assert reader.load_cursor_sync("otlp") == 5
        assert asyncio.run(reader.load_cursor("otlp")) == 5
    finally:
        reader.close_sync()
        writer.close_sync()


@pytest.mark.parametrize("read_only", [False, True])
def test_a_newer_file_is_still_refused(
    db_path: Path, raw_connection: Connect, read_only: bool
) -> None:
    SQLiteDatabase(db_path, registry=Registry()).close()
    raw_connection(db_path).execute(
        "UPDATE observabilipy_meta SET value = ? WHERE key = 'schema_version'",
        (str(SCHEMA_VERSION + 1),),
    )
    with pytest.raises(SQLiteStorageError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
        SQLiteDatabase(db_path, read_only=read_only, registry=Registry())


def test_read_only_refuses_an_older_file_that_reads_need_upgraded(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    SQLiteDatabase(db_path, registry=Registry()).close()
    needed = schema_module.Migration(SCHEMA_VERSION + 1, "a column reads use", lambda c, p: None)
    monkeypatch.setattr(schema_module, "MIGRATIONS", [*schema_module.MIGRATIONS, needed])
    with pytest.raises(SQLiteStorageError, match="open it once without read_only"):
        SQLiteDatabase(db_path, read_only=True, registry=Registry())


class Collector:
    """An in-test exporter keeping the messages it is given."""

    name = "collector"
    signals: frozenset[Signal] = frozenset({"logs"})

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def export_logs(self, entries: AsyncIterable[LogEntry]) -> None:
        self.messages += [entry.message async for entry in entries]

    async def export_metrics(self, samples: AsyncIterable[MetricSample]) -> None:
        raise AssertionError("sends no metrics")

    async def close(self) -> None:
        pass


def test_a_runtime_on_a_reopened_file_resumes_from_the_saved_cursor(db_path: Path) -> None:
    storage = SQLiteLogStorage(db_path, registry=Registry())
    storage.write_many_sync([info(f"first {n}") for n in range(3)])
    first = Collector()
    runtime = EmbeddedRuntime(log_storage=storage, exporters=[first], registry=Registry())
    assert runtime.export_now() == {"collector": {"logs": 3}}
    assert runtime.stop()
    storage.close_sync()

    storage = SQLiteLogStorage(db_path, registry=Registry())
    storage.write_sync(info("second"))
    again = Collector()
    runtime = EmbeddedRuntime(log_storage=storage, exporters=[again], registry=Registry())
    try:
        assert runtime.export_now() == {"collector": {"logs": 1}}
        assert again.messages == ["second"]
    finally:
        runtime.stop()
        storage.close_sync()
