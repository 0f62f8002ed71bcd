"""SQLiteDatabase and the two storages beyond the contract: schema, writer, indexes, NDJSON."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import sqlite3
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from observabilipy.core import LogEntry, MetricSample, Registry, info
from observabilipy.core.encoding import encode_logs_ndjson, encode_metrics_ndjson
from observabilipy.core.errors import ConfigurationError, ObservabilityError
from observabilipy.core.exposition import encode_metrics
from observabilipy.core.testing import log, sample
from observabilipy.sqlite import (
    SCHEMA_VERSION,
    SQLiteDatabase,
    SQLiteLogStorage,
    SQLiteMetricsStorage,
    SQLiteStorageError,
)
from observabilipy.sqlite import schema as schema_module
from observabilipy.sqlite.schema import Migration

Connect = Callable[[Path], sqlite3.Connection]


@pytest.fixture
def database(db_path: Path) -> Iterator[SQLiteDatabase]:
    db = SQLiteDatabase(db_path, registry=Registry())
    yield db
    db.close()


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


# --- schema and migrations ------------------------------------------------------------------------


def test_a_new_file_gets_the_schema_in_wal_mode(
    database: SQLiteDatabase, db_path: Path, raw_connection: Connect
) -> None:
    conn = raw_connection(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert {
        "observabilipy_meta",
        "logs",
        "metric_families",
        "metric_samples",
        "metric_latest",
        "metric_processes",
    } <= _tables(conn)
    assert conn.execute(
        "SELECT value FROM observabilipy_meta WHERE key='schema_version'"
    ).fetchone() == (str(SCHEMA_VERSION),)


def test_data_survives_reopening(db_path: Path) -> None:
    storage = SQLiteLogStorage(db_path, registry=Registry())
    storage.write_sync(info("kept", n=1))
    storage.close_sync()
    again = SQLiteLogStorage(db_path, registry=Registry())
    assert [(e.id, e.message, e.attributes) for e in again.read_sync()] == [(1, "kept", {"n": 1})]
    again.write_sync(info("next"))
    assert [e.id for e in again.read_sync()] == [1, 2]
    again.close_sync()


def test_a_newer_schema_is_refused_naming_the_file_and_both_versions(
    db_path: Path, raw_connection: Connect
) -> None:
    SQLiteDatabase(db_path, registry=Registry()).close()
    raw_connection(db_path).execute("UPDATE observabilipy_meta SET value = '42'")
    with pytest.raises(SQLiteStorageError) as caught:
        SQLiteDatabase(db_path)
    message = str(caught.value)
    assert str(db_path) in message
    assert "42" in message
    assert f"the {SCHEMA_VERSION} this" in message
    assert caught.value.path == str(db_path)


def test_an_older_file_is_upgraded_by_the_migrations_it_lacks(
    db_path: Path, raw_connection: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = SQLiteLogStorage(db_path, registry=Registry())
    storage.write_sync(info("before the upgrade"))
    storage.close_sync()

    def add_notes(conn: sqlite3.Connection, path: str) -> None:
        conn.execute("CREATE TABLE notes (text TEXT)")
        conn.execute("INSERT INTO notes VALUES ('upgraded')")

    upgraded = [
        *schema_module.MIGRATIONS,
        Migration(schema_module.SCHEMA_VERSION + 1, "notes", add_notes),
    ]
    monkeypatch.setattr(schema_module, "MIGRATIONS", upgraded)
    storage = SQLiteLogStorage(db_path, registry=Registry())
    assert [e.message for e in storage.read_sync()] == ["before the upgrade"]
    storage.close_sync()
    conn = raw_connection(db_path)
    assert conn.execute("SELECT value FROM observabilipy_meta").fetchone() == (
        str(schema_module.SCHEMA_VERSION + 1),
    )
    assert conn.execute("SELECT text FROM notes").fetchall() == [("upgraded",)]
    # Opening again runs nothing twice.
    SQLiteDatabase(db_path, registry=Registry()).close()
    assert conn.execute("SELECT count(*) FROM notes").fetchone() == (1,)


def test_a_failing_migration_leaves_the_file_as_it_was(
    db_path: Path, raw_connection: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    SQLiteDatabase(db_path, registry=Registry()).close()

    def broken(conn: sqlite3.Connection, path: str) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("migration bug")

    monkeypatch.setattr(
        schema_module,
        "MIGRATIONS",
        [*schema_module.MIGRATIONS, Migration(schema_module.SCHEMA_VERSION + 1, "bad", broken)],
    )
    with pytest.raises(RuntimeError, match="migration bug"):
        SQLiteDatabase(db_path, registry=Registry())
    conn = raw_connection(db_path)
    assert "half_done" not in _tables(conn)
    assert conn.execute("SELECT value FROM observabilipy_meta").fetchone() == (
        str(schema_module.SCHEMA_VERSION),
    )


def test_an_observabilipy_1x_file_is_adopted(db_path: Path, raw_connection: Connect) -> None:
    # The 1.x layout: a logs table with the same columns, its own index names, levels as written.
    conn = raw_connection(db_path)
    conn.execute(
        "CREATE TABLE logs (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp REAL NOT NULL, "
        "level TEXT NOT NULL, message TEXT NOT NULL, attributes TEXT NOT NULL DEFAULT '{}')"
    )
    conn.execute("CREATE INDEX idx_logs_timestamp ON logs(timestamp)")
    conn.execute("CREATE INDEX idx_logs_level_timestamp ON logs(level, timestamp)")
    conn.execute(
        "CREATE TABLE metrics (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
        "timestamp REAL NOT NULL, value REAL NOT NULL, labels TEXT NOT NULL DEFAULT '{}')"
    )
    conn.executemany(
        "INSERT INTO logs (timestamp, level, message, attributes) VALUES (?, ?, ?, ?)",
        [(1.0, "WARN", "old warn", '{"a": 1}'), (2.0, "info", "old info", "{}")],
    )
    storage = SQLiteLogStorage(db_path, registry=Registry())
    storage.write_sync(info("new"))
    stored = [(e.id, e.level, e.message, dict(e.attributes)) for e in storage.read_sync()]
    assert stored[:2] == [(1, "WARNING", "old warn", {"a": 1}), (2, "INFO", "old info", {})]
    assert stored[2][0] == 3
    assert [e.message for e in storage.read_sync(level="warn")] == ["old warn"]
    storage.close_sync()
    indexes = {
        name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")
    }
    assert "idx_logs_level_timestamp" not in indexes
    assert "metrics" in _tables(conn)  # 1.x deltas cannot become cumulative: left alone


@pytest.mark.parametrize(
    "create",
    [
        "CREATE TABLE metric_samples (x)",
        "CREATE TABLE logs (id INTEGER PRIMARY KEY, text TEXT)",
    ],
)
def test_a_database_observabilipy_did_not_create_is_left_untouched(
    db_path: Path, raw_connection: Connect, create: str
) -> None:
    raw_connection(db_path).execute(create)
    with pytest.raises(SQLiteStorageError, match="did not create") as caught:
        SQLiteDatabase(db_path)
    assert str(db_path) in str(caught.value)
    assert "observabilipy_meta" not in _tables(raw_connection(db_path))


def test_another_application_s_tables_may_share_the_file(
    db_path: Path, raw_connection: Connect
) -> None:
    raw_connection(db_path).execute("CREATE TABLE users (name TEXT)")
    storage = SQLiteLogStorage(db_path, registry=Registry())
    storage.write_sync(info("hi"))
    assert storage.count_sync() == 1
    storage.close_sync()


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"queue_size": 0}, "queue_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"flush_interval": 0}, "flush_interval"),
        ({"flush_interval": math.inf}, "flush_interval"),
        ({"busy_timeout": -1}, "busy_timeout"),
        ({"busy_timeout": True}, "busy_timeout"),
    ],
)
def test_bad_options_name_the_option(db_path: Path, options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError, match=field):
        SQLiteDatabase(db_path, **options)
    assert not db_path.exists()


def test_options_with_an_open_database_are_refused(database: SQLiteDatabase) -> None:
    with pytest.raises(ConfigurationError, match="queue_size"):
        SQLiteLogStorage(database, queue_size=10)
    with pytest.raises(ConfigurationError, match="batch_size"):
        SQLiteMetricsStorage(database, batch_size=10)


def test_memory_cannot_be_read_only() -> None:
    with pytest.raises(ConfigurationError, match="read_only"):
        SQLiteDatabase(":memory:", read_only=True)


# --- the writer -----------------------------------------------------------------------------------


def test_writes_are_committed_by_flush_and_seen_by_other_connections(
    database: SQLiteDatabase, db_path: Path, raw_connection: Connect
) -> None:
    storage = SQLiteLogStorage(database)
    for n in range(2_500):
        storage.write_sync(info("m", n=n))
    assert database.flush()
    assert raw_connection(db_path).execute("SELECT count(*) FROM logs").fetchone() == (2_500,)


def test_a_durable_write_is_committed_when_it_returns(
    db_path: Path, raw_connection: Connect
) -> None:
    # A long flush interval: without durable=True the row would wait for it.
    storage = SQLiteLogStorage(db_path, flush_interval=60.0, registry=Registry())
    other = raw_connection(db_path)
    storage.write_sync(info("sync"), durable=True)
    assert other.execute("SELECT message FROM logs").fetchall() == [("sync",)]

    async def durable_async() -> None:
        await storage.write(info("async"), durable=True)
        await storage.write_many([info("many")], durable=True)

    asyncio.run(durable_async())
    assert other.execute("SELECT count(*) FROM logs").fetchone() == (3,)
    metrics = SQLiteMetricsStorage(storage.database, registry=Registry())
    metrics.write_sync(sample("up", 1.0, 1, "gauge"), durable=True)
    assert other.execute("SELECT count(*) FROM metric_samples").fetchone() == (1,)
    storage.close_sync()


def test_writes_are_batched_into_few_transactions(db_path: Path, raw_connection: Connect) -> None:
    storage = SQLiteLogStorage(db_path, batch_size=1_000, flush_interval=60.0, registry=Registry())
    commits: list[str] = []
    storage.database.submit(lambda conn: conn.set_trace_callback(commits.append))
    storage.flush()
    commits.clear()
    storage.write_many_sync(info("m") for _ in range(5_000))
    storage.flush()
    assert sum(1 for sql in commits if sql == "COMMIT") <= 6
    storage.close_sync()


def test_the_writer_queue_is_bounded_and_drops_what_does_not_fit(
    db_path: Path,
    raw_connection: Connect,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("observabilipy.sqlite.database._ROOM_WAIT", 0.05)
    registry = Registry()
    storage = SQLiteLogStorage(db_path, queue_size=10, busy_timeout=5.0, registry=registry)
    blocker = raw_connection(db_path)
    blocker.execute("BEGIN IMMEDIATE")  # the writer waits for this lock, the queue fills
    for n in range(30):
        storage.write_sync(info("m", n=n))
    assert storage.dropped >= 10
    dropped = registry.counter("observabilipy_dropped_total", labelnames=("component", "reason"))
    queue_full = dropped.labels(component="sqlite_writer", reason="queue_full").value
    assert queue_full == storage.dropped
    blocker.execute("COMMIT")
    assert storage.flush()
    assert storage.count_sync() + storage.dropped == 30
    assert capsys.readouterr().err.count("is full") == 1  # one warning per streak
    storage.close_sync()


def test_async_writes_wait_for_room_without_blocking_the_loop(
    db_path: Path, raw_connection: Connect
) -> None:
    storage = SQLiteLogStorage(db_path, queue_size=5, registry=Registry())
    blocker = raw_connection(db_path)

    async def main() -> int:
        blocker.execute("BEGIN IMMEDIATE")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        writes = asyncio.gather(*(storage.write(info("m", n=n)) for n in range(20)))
        await asyncio.sleep(0.1)
        blocker.execute("COMMIT")  # room again: the waiting writes go in
        await writes
        task.cancel()
        return ticks

    assert asyncio.run(main()) >= 5  # the loop kept running while writes waited
    assert storage.count_sync() == 20
    assert storage.dropped == 0
    storage.close_sync()


def test_call_returns_the_job_result_and_raises_its_error(database: SQLiteDatabase) -> None:
    assert database.call(lambda conn: conn.execute("SELECT 40 + 2").fetchone()[0]) == 42

    def broken(conn: sqlite3.Connection) -> None:
        raise KeyError("job bug")

    with pytest.raises(KeyError, match="job bug"):
        database.call(broken)
    with pytest.raises(SQLiteStorageError, match="no such table"):
        database.call(lambda conn: conn.execute("DELETE FROM missing"))

    async def acall() -> int:
        return await database.acall(lambda conn: conn.execute("SELECT 7").fetchone()[0])

    assert asyncio.run(acall()) == 7


def test_a_failing_job_is_rolled_back_alone(
    database: SQLiteDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = SQLiteLogStorage(database)
    storage.write_sync(info("before"))

    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO logs (timestamp, level, message) VALUES (1, 'INFO', 'half')")
        raise ValueError("job bug")

    database.submit(half_then_fail, items=1)
    storage.write_sync(info("after"))
    assert not database.flush()  # something queued before the flush was lost
    assert [e.message for e in storage.read_sync()] == ["before", "after"]
    assert database.dropped == 1
    assert "job bug" in capsys.readouterr().err
    storage.write_sync(info("again"))
    assert database.flush()
    assert "succeed again" in capsys.readouterr().err


def test_read_runs_on_this_thread_s_connection_after_pending_writes(
    database: SQLiteDatabase,
) -> None:
    storage = SQLiteLogStorage(database)
    storage.write_sync(info("m"))
    assert database.read(lambda conn: conn.execute("SELECT count(*) FROM logs").fetchone()) == (1,)
    with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only"):
        database.read(lambda conn: conn.execute("DELETE FROM logs"))


def test_threads_read_and_write_concurrently(database: SQLiteDatabase) -> None:
    storage = SQLiteLogStorage(database)
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for n in range(300):
                storage.write_sync(info("w", worker=worker, n=n))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            last = 0
            for _ in range(20):
                ids = [e.id or 0 for e in storage.read_sync(after=last)]
                assert ids == sorted(ids)
                last = ids[-1] if ids else last
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert storage.count_sync() == 1_200


def test_close_releases_every_thread_and_file(
    db_path: Path, files_held_open: Callable[[Path], list[str]]
) -> None:
    storage = SQLiteLogStorage(db_path, registry=Registry())
    storage.write_sync(info("m"))
    list(storage.read_sync())
    thread = threading.Thread(target=lambda: list(storage.read_sync()))
    thread.start()
    thread.join()

    async def async_read() -> None:
        assert [e.message async for e in storage.read()] == ["m"]

    asyncio.run(async_read())
    assert files_held_open(db_path)
    writer = storage.database._thread
    storage.close_sync()
    storage.close_sync()
    assert writer is not None
    assert not writer.is_alive()
    assert files_held_open(db_path) == []
    assert not any(t.name.startswith("observabilipy-sqlite") for t in threading.enumerate())


def test_a_closed_database_refuses_storages_and_reads(database: SQLiteDatabase) -> None:
    logs = SQLiteLogStorage(database)
    logs.write_sync(info("m"))
    database.close()
    database.close()
    with pytest.raises(ObservabilityError, match="closed"):
        logs.write_sync(info("late"))
    with pytest.raises(ObservabilityError, match="closed"):
        list(logs.read_sync())
    with pytest.raises(ObservabilityError, match="closed"):
        database.read(lambda conn: None)


def test_closing_a_storage_keeps_a_shared_database_open(database: SQLiteDatabase) -> None:
    logs, metrics = SQLiteLogStorage(database), SQLiteMetricsStorage(database, registry=Registry())
    logs.write_sync(info("m"))
    logs.close_sync()
    metrics.write_sync(sample("up", 1.0, 1, "gauge"))
    assert metrics.count_sync() == 1
    assert database.read(lambda conn: conn.execute("SELECT count(*) FROM logs").fetchone()) == (1,)


def test_in_memory_databases_are_private_and_shared_by_threads() -> None:
    first, second = SQLiteLogStorage(":memory:"), SQLiteLogStorage(":memory:")
    first.write_sync(info("one"))
    seen: list[str] = []
    thread = threading.Thread(target=lambda: seen.extend(e.message for e in first.read_sync()))
    thread.start()
    thread.join()
    assert seen == ["one"]
    assert second.count_sync() == 0

    async def async_count() -> int:
        return await first.count()

    assert asyncio.run(async_count()) == 1
    first.close_sync()
    second.close_sync()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() in a threaded process
def test_a_forked_child_writes_with_its_own_writer_and_incarnation(
    db_path: Path, raw_connection: Connect
) -> None:
    logs = SQLiteLogStorage(db_path, registry=Registry())
    metrics = SQLiteMetricsStorage(logs.database, registry=Registry())
    metrics.write_sync(sample("up", 1.0, 1, "gauge"))
    logs.write_sync(info("parent"), durable=True)
    parent_process = metrics.process
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            logs.write_sync(info("child"))
            metrics.write_sync(sample("up", 2.0, 2, "gauge"))
            ok = logs.flush(5.0) and metrics.process != parent_process
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    logs.write_sync(info("parent again"))
    assert [e.message for e in logs.read_sync()] == ["parent", "child", "parent again"]
    processes = raw_connection(db_path).execute("SELECT process FROM metric_processes").fetchall()
    assert len(processes) == 2
    logs.close_sync()


# --- indexes --------------------------------------------------------------------------------------


def _plans(database: SQLiteDatabase, run: Callable[[], object]) -> list[tuple[str, list[str]]]:
    """Every statement ``run`` executes on this thread's reader, with its query plan."""
    statements: list[str] = []
    database.read(lambda conn: conn.set_trace_callback(statements.append))
    try:
        run()
    finally:
        database.read(lambda conn: conn.set_trace_callback(None))
    plans = []
    for sql in statements:
        if sql.lstrip().upper().startswith("SELECT"):
            explain = f"EXPLAIN QUERY PLAN {sql}"
            rows: list[Any] = database.read(lambda conn: conn.execute(explain).fetchall())  # noqa: B023
            plans.append((sql, [row[3] for row in rows]))
    assert plans, "no query ran"
    return plans


_FULL_SCAN = re.compile(r"^SCAN (logs|metric_samples|s)\b")


@pytest.mark.parametrize(
    "filters",
    [
        {"level": "warn"},
        {"min_level": "warning"},
        {"since": 5.0},
        {"after": 3},
        {"after": 3, "limit": 2},
        {"since": 1.0, "min_level": "error", "after": 2},
    ],
    ids=repr,
)
def test_log_reads_use_indexes(database: SQLiteDatabase, filters: dict[str, Any]) -> None:
    storage = SQLiteLogStorage(database)
    storage.write_many_sync(log(float(n), level) for n in range(10) for level in ("info", "error"))

    def reads() -> None:
        list(storage.read_sync(**filters))
        list(storage.read_ndjson_sync(**filters))

    for sql, plan in _plans(database, reads):
        assert not any(_FULL_SCAN.match(step) for step in plan), (sql, plan)
        assert not any("TEMP B-TREE" in step for step in plan), (sql, plan)
        if "since" in filters:
            assert any("USING COVERING INDEX logs_timestamp" in step for step in plan), plan
        if "level" in filters or "min_level" in filters:
            assert any("USING INDEX logs_level_id" in step for step in plan), plan


@pytest.mark.parametrize(
    "filters", [{"name": "jobs"}, {"since": 3.0}, {"after": 2, "name": "jobs"}], ids=repr
)
def test_metric_reads_use_indexes(database: SQLiteDatabase, filters: dict[str, Any]) -> None:
    storage = SQLiteMetricsStorage(database, registry=Registry())
    storage.write_many_sync(sample("jobs_total", float(n), n, "counter") for n in range(10))

    def reads() -> None:
        list(storage.read_sync(**filters))
        list(storage.read_ndjson_sync(**filters))

    for sql, plan in _plans(database, reads):
        assert not any(_FULL_SCAN.match(step) for step in plan), (sql, plan)
        assert not any("TEMP B-TREE" in step for step in plan), (sql, plan)
        if "name" in filters:
            assert any("metric_samples_name_id" in step for step in plan), plan
            assert any("metric_samples_family_id" in step for step in plan), plan


def test_counts_deletes_and_the_latest_point_lookups_use_indexes(
    database: SQLiteDatabase,
) -> None:
    def plan(sql: str) -> str:
        rows = database.read(lambda conn: conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall())
        return " | ".join(row[3] for row in rows)

    assert "COVERING INDEX logs_level_id" in plan("SELECT count(*) FROM logs WHERE level = 'INFO'")
    assert "INDEX logs_timestamp" in plan("DELETE FROM logs WHERE timestamp < 5")
    assert "INDEX logs_level_id" in plan("DELETE FROM logs WHERE level = 'DEBUG' AND timestamp < 5")
    assert "INDEX metric_samples_timestamp" in plan(
        "DELETE FROM metric_samples WHERE timestamp < 5"
    )
    assert "PRIMARY KEY" in plan(
        "DELETE FROM logs WHERE id IN (SELECT id FROM logs ORDER BY id LIMIT 3)"
    )
    # The latest point of a series: per process in metric_latest, or in the history.
    assert "PRIMARY KEY (process=? AND name=? AND labels=?)" in plan(
        "SELECT value FROM metric_latest WHERE process = 'p' AND name = 'up' AND labels = '{}'"
    )
    assert "INDEX metric_samples_name_id (name=?)" in plan(
        "SELECT value FROM metric_samples WHERE name = 'up' ORDER BY id DESC LIMIT 1"
    )


# --- streaming ------------------------------------------------------------------------------------


def _peak_while(consume: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        consume()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reads_stream_with_constant_memory(database: SQLiteDatabase) -> None:
    storage = SQLiteLogStorage(database)
    storage.write_many_sync(info("x" * 100, n=n) for n in range(20_000))
    storage.count_sync()

    def drain(limit: int, ndjson: bool) -> Callable[[], object]:
        def consume() -> None:
            reader = storage.read_ndjson_sync if ndjson else storage.read_sync
            for _ in reader(limit=limit):
                pass

        return consume

    for ndjson in (False, True):
        small = _peak_while(drain(2_000, ndjson))
        large = _peak_while(drain(20_000, ndjson))
        assert large < 2 * small + 64 * 1024, (ndjson, small, large)


# --- NDJSON ---------------------------------------------------------------------------------------


def test_log_ndjson_is_what_core_encodes(database: SQLiteDatabase) -> None:
    storage = SQLiteLogStorage(database)
    storage.write_many_sync(
        [
            LogEntry(timestamp=1_700_000_000.25, level="info", message="plain"),
            LogEntry(
                timestamp=2.5,
                level="warn",
                message='quote " tab \t newline \n ünï ✓ \u2028',
                attributes={"f": 0.1, "big": 2**63, "neg": -3, "none": None, "yes": True},
            ),
            LogEntry(timestamp=3.0, level="error", message="", attributes={"s": "a\\b"}),
        ]
    )
    ours = b"".join(storage.read_ndjson_sync())
    assert ours == b"".join(encode_logs_ndjson(storage.read_sync()))
    for line in ours.splitlines():
        json.loads(line)

    async def async_ndjson() -> bytes:
        return b"".join([chunk async for chunk in storage.read_ndjson(min_level="warn")])

    assert asyncio.run(async_ndjson()) == b"".join(
        encode_logs_ndjson(storage.read_sync(min_level="warn"))
    )


def test_log_ndjson_comes_in_chunks_of_about_64_kib(database: SQLiteDatabase) -> None:
    storage = SQLiteLogStorage(database)
    storage.write_many_sync(info("y" * 200) for _ in range(2_000))
    chunks = list(storage.read_ndjson_sync())
    assert len(chunks) > 3
    assert all(len(chunk) >= 64 * 1024 for chunk in chunks[:-1])
    assert all(chunk.endswith(b"\n") for chunk in chunks)
    assert sum(chunk.count(b"\n") for chunk in chunks) == 2_000


def test_metric_ndjson_is_what_core_encodes(database: SQLiteDatabase) -> None:
    storage = SQLiteMetricsStorage(database, registry=Registry())
    storage.write_many_sync(
        [
            sample("temp", 1.0, math.nan, "gauge", room="a"),
            sample("temp", 2.0, math.inf, "gauge", room="b"),
            sample("temp", 3.0, -math.inf, "gauge"),
            sample("jobs_total", 1_732_612_345.1234567, 0.1 + 0.2, "counter", queue='q"1'),
            sample("latency_bucket", 4.0, 12_345_678_901_234_567.0, "histogram", le="0.5"),
        ]
    )
    ours = b"".join(storage.read_ndjson_sync())
    assert ours == b"".join(encode_metrics_ndjson(storage.read_sync()))
    assert b'"value":"NaN"' in ours
    assert b'"value":"+Inf"' in ours

    async def async_ndjson() -> bytes:
        return b"".join([chunk async for chunk in storage.read_ndjson(name="temp")])

    assert asyncio.run(async_ndjson()) == b"".join(
        encode_metrics_ndjson(storage.read_sync(name="temp"))
    )


# --- metrics: what a write stores -----------------------------------------------------------------


def test_a_metrics_write_fills_history_latest_families_and_processes(
    db_path: Path, raw_connection: Connect
) -> None:
    registry = Registry()
    in_flight = registry.gauge("in", "In flight.", multiprocess_mode="max", unit="requests")
    in_flight.set(3)
    latency = registry.histogram("latency_seconds", "Latency.", labelnames=("route",), buckets=(1,))
    latency.labels(route='/a"b').observe(0.5)
    storage = SQLiteMetricsStorage(db_path, registry=registry)
    storage.write_many_sync(registry.snapshot(timestamp=10.0))
    storage.write_many_sync(registry.snapshot(timestamp=5.0))  # late and older: latest keeps 10.0
    storage.flush()
    conn = raw_connection(db_path)
    assert conn.execute("SELECT count(*) FROM metric_samples").fetchone() == (10,)
    latest = conn.execute(
        "SELECT process, name, labels, family, kind, timestamp, value, label_text "
        "FROM metric_latest ORDER BY name, labels"
    ).fetchall()
    assert {row[0] for row in latest} == {storage.process}
    assert {row[5] for row in latest} == {10.0}
    by_name = {(row[1], row[2]): row for row in latest}
    bucket = by_name[("latency_seconds_bucket", '{"le":"1.0","route":"/a\\"b"}')]
    assert bucket[3:5] == ("latency_seconds", "histogram")
    assert bucket[7] == 'route="/a\\"b",le="1.0"'
    assert by_name[("in_requests", "{}")][6:] == (3.0, "")
    families = {
        row[0]: row[1:]
        for row in conn.execute("SELECT family, kind, help, unit, gauge_mode FROM metric_families")
    }
    assert families["in_requests"] == ("gauge", "In flight.", "requests", "max")
    assert families["latency_seconds"] == ("histogram", "Latency.", "", "latest")
    [(process, hostname, pid, started, last_seen)] = conn.execute(
        "SELECT process, hostname, pid, started, last_seen FROM metric_processes"
    ).fetchall()
    assert process == storage.process == f"{hostname}/{pid}/{process.rsplit('/', 1)[1]}"
    assert pid == os.getpid()
    assert started <= last_seen
    storage.close_sync()


def test_the_label_text_is_what_exposition_writes(database: SQLiteDatabase) -> None:
    storage = SQLiteMetricsStorage(database, registry=Registry())
    # Labels given in sorted order: core's encode_metrics keeps the order it is given,
    # label_text sorts (so every process renders a label set the same way).
    points = [
        sample("reqs_total", 1.0, 2, "counter", method="GET", path='a\\b\n"c"'),
        sample("lat_bucket", 1.0, 1, "histogram", le="1", zone="z"),
        sample("lat_bucket", 1.0, 1, "histogram", le="+Inf", zone="z"),
        sample("lat_count", 1.0, 1, "histogram", zone="z"),
        sample("lat_sum", 1.0, 0.5, "histogram", zone="z"),
    ]
    storage.write_many_sync(points)
    rows = database.read(
        lambda conn: conn.execute("SELECT name, label_text, value FROM metric_latest").fetchall()
    )
    exposed = encode_metrics(points)
    for name, label_text, _ in rows:
        assert f"{name}{{{label_text}}} " in exposed, (name, label_text, exposed)


def test_metrics_retention_keeps_the_latest_points(database: SQLiteDatabase) -> None:
    storage = SQLiteMetricsStorage(database, registry=Registry())
    storage.write_many_sync(sample("jobs_total", float(t), t, "counter") for t in range(1, 6))
    assert storage.delete_before_sync(4.0) == 3
    assert storage.delete_oldest_sync(1) == 1
    storage.clear_sync()
    assert storage.count_sync() == 0
    latest = database.read(lambda conn: conn.execute("SELECT value FROM metric_latest").fetchall())
    assert latest == [(5.0,)]


# --- bad stored data reads back -------------------------------------------------------------------


@pytest.fixture
def damaged(database: SQLiteDatabase) -> SQLiteLogStorage:
    """A log table with rows whose attributes are not a JSON object, among good ones."""
    storage = SQLiteLogStorage(database)
    storage.write_sync(log(1.0, "info", "good 1", n=1))
    bad = ["{not json", "[1, 2]", "7", "", '{"a": 1} trailing']
    database.call(
        lambda conn: conn.executemany(
            "INSERT INTO logs (timestamp, level, message, attributes) VALUES (1, 'INFO', 'bad', ?)",
            [(text,) for text in bad],
        )
    )
    storage.write_sync(log(2.0, "info", "good 2", n=2))
    return storage


def test_attributes_that_are_not_json_read_back_raw(damaged: SQLiteLogStorage) -> None:
    got = [dict(e.attributes) for e in damaged.read_sync()]
    assert got == [
        {"n": 1},
        {"_raw": "{not json"},
        {"_raw": "[1, 2]"},
        {"_raw": "7"},
        {"_raw": ""},
        {"_raw": '{"a": 1} trailing'},
        {"n": 2},
    ]

    async def async_read() -> list[dict[str, Any]]:
        return [dict(e.attributes) async for e in damaged.read()]

    assert asyncio.run(async_read()) == got


@pytest.mark.parametrize("limit", [None, 1, 2, 4, 7])
def test_ndjson_of_damaged_attributes_stays_valid_and_complete(
    damaged: SQLiteLogStorage, limit: int | None
) -> None:
    expected = b"".join(encode_logs_ndjson(damaged.read_sync(limit=limit)))
    ours = b"".join(damaged.read_ndjson_sync(limit=limit))
    assert [json.loads(line) for line in ours.splitlines()] == [
        json.loads(line) for line in expected.splitlines()
    ]

    async def async_ndjson() -> bytes:
        return b"".join([chunk async for chunk in damaged.read_ndjson(limit=limit)])

    assert asyncio.run(async_ndjson()) == ours


def test_text_utf8_cannot_hold_is_kept_escaped(database: SQLiteDatabase) -> None:
    storage = SQLiteLogStorage(database)
    storage.write_many_sync(
        [info("fine"), info("bad \udcff bytes", path="\udc80"), info("fine too")]
    )
    stored = list(storage.read_sync())
    assert [e.message for e in stored] == ["fine", "bad \\udcff bytes", "fine too"]
    assert stored[1].attributes == {"path": "\udc80"}  # JSON's own escape reads back
    # In a batch of several statements, the bad entry in a later one: no entry twice.
    storage.write_many_sync(info("bad \udcff" if n == 700 else "fine", n=n) for n in range(1_000))
    assert [e.attributes["n"] for e in storage.read_sync(after=3)] == list(range(1_000))
    assert storage.dropped == 0
    metrics = SQLiteMetricsStorage(database, registry=Registry())
    metrics.write_sync(
        MetricSample(name="up", timestamp=1.0, value=1, labels={"x": "\udcff"}, help="h\udcff")
    )
    assert [s.labels for s in metrics.read_sync()] == [{"x": "\udcff"}]
