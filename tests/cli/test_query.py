"""``observabilipy query`` on real SQLite files: formats, filters, read-only, errors, plans."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from observabilipy.cli.app import main
from observabilipy.cli.query import explain, log_query, metrics_query, open_database
from observabilipy.core.http import ObservabilityAPI, Request
from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry
from observabilipy.sqlite import SQLiteDatabase, SQLiteLogStorage

if TYPE_CHECKING:
    from tests.cli._cli_support import fill_database
else:
    from _cli_support import fill_database

NOW = 1_800_000_000.0


def query(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["query", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def app_db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    registry = Registry()
    requests = registry.counter("http_requests", "Requests.", labelnames=("route",))
    requests.labels(route="/users/{id}").inc(3)
    latency = registry.histogram("latency_seconds", "Latency.", buckets=(0.5,))
    latency.observe(0.25)
    entries = [
        LogEntry(timestamp=NOW - 7200, level="DEBUG", message="cache warm", attributes={}),
        LogEntry(timestamp=NOW - 3000, level="INFO", message="started", attributes={"port": 8000}),
        LogEntry(timestamp=NOW - 60, level="WARNING", message="Éclair stock LOW", attributes={}),
        LogEntry(
            timestamp=NOW - 30, level="ERROR", message="payment failed", attributes={"order": 17}
        ),
        LogEntry(timestamp=NOW - 10, level="CRITICAL", message="out of memory", attributes={}),
    ]
    fill_database(path, entries, registry)
    return path


def ids(out: str) -> list[int]:
    return [json.loads(line)["id"] for line in out.splitlines()]


def test_table_is_the_default(app_db: Path) -> None:
    status, out, err = query(str(app_db), "--min-level", "error")
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "      ID  TIME                     LEVEL    MESSAGE",
        "       4  2027-01-15T07:59:30.000Z ERROR    payment failed  order=17",
        "       5  2027-01-15T07:59:50.000Z CRITICAL out of memory",
    ]


def test_ndjson_is_what_the_http_api_serves_for_the_same_file(app_db: Path) -> None:
    status, out, _ = query(str(app_db), "--format", "ndjson")
    assert status == 0
    storage = SQLiteLogStorage(app_db, read_only=True, registry=Registry())
    try:
        response = ObservabilityAPI(log_storage=storage).handle_sync(Request("GET", "/logs"))
        served = b"".join(response.body).decode()
    finally:
        storage.close_sync()
    assert out == served


def test_json_is_one_array(app_db: Path) -> None:
    status, out, _ = query(str(app_db), "--format", "json", "--level", "info")
    assert status == 0
    assert json.loads(out) == [
        {
            "id": 2,
            "timestamp": NOW - 3000,
            "level": "INFO",
            "message": "started",
            "attributes": {"port": 8000},
        }
    ]
    assert (
        json.loads(query(str(app_db), "--format", "json", "--level", "info", "--grep", "x")[1])
        == []
    )


def test_filters(app_db: Path) -> None:
    def found(*args: str) -> list[int]:
        status, out, err = query(str(app_db), "--format", "ndjson", *args)
        assert status == 0, err
        return ids(out)

    assert found("--level", "warn") == [3]
    assert found("--min-level", "WARNING") == [3, 4, 5]
    assert found("--level", "info", "--min-level", "error") == []
    assert found("--grep", "éCLAIR") == [3]  # casefold, as the HTTP API's q
    assert found("--grep", "o") == [3, 5]
    assert found("--since", "2027-01-15T07:58:00Z") == [3, 4, 5]
    assert found("--limit", "2") == [1, 2]
    assert found("--newest", "--limit", "2") == [5, 4]
    assert found("--newest", "--min-level", "warning", "--limit", "2") == [5, 4]
    assert found("--limit", "0") == []


def test_metrics(app_db: Path) -> None:
    status, out, _ = query(str(app_db), "metrics", "--format", "ndjson")
    assert status == 0
    samples = [json.loads(line) for line in out.splitlines()]
    assert {(s["name"], s["value"]) for s in samples} == {
        ("http_requests_total", 3.0),
        ("latency_seconds_bucket", 1.0),
        ("latency_seconds_sum", 0.25),
        ("latency_seconds_count", 1.0),
    }
    assert samples[0]["labels"] == {"route": "/users/{id}"}
    family = ids(
        query(str(app_db), "metrics", "--format", "ndjson", "--name", "latency_seconds")[1]
    )
    assert len(family) == 4  # +Inf and 0.5 buckets, sum, count
    status, out, _ = query(str(app_db), "metrics", "--name", "http_requests_total")
    assert out.splitlines()[1].split()[2:] == [
        "counter",
        "3",
        'http_requests_total{route="/users/{id}"}',
    ]


def test_options_of_the_other_kind_are_refused(app_db: Path) -> None:
    assert query(str(app_db), "metrics", "--level", "error") == (
        1,
        "",
        "Error: --level: for logs; metrics take --name, --since, --limit\n",
    )
    assert query(str(app_db), "--name", "up")[2].startswith("Error: --name: for metrics")
    assert query(str(app_db), "metrics", "--name", "bad name")[2].startswith("Error: --name: ")


def test_the_file_is_never_written(app_db: Path, tmp_path: Path) -> None:
    before = hashlib.sha256(app_db.read_bytes()).hexdigest()
    for args in (["--format", "json"], ["metrics"], ["--explain", "--grep", "x"]):
        assert query(str(app_db), *args)[0] == 0
    assert hashlib.sha256(app_db.read_bytes()).hexdigest() == before
    missing = tmp_path / "missing.db"
    assert query(str(missing)) == (1, "", f"Error: {missing}: no such file\n")
    assert not missing.exists()


def test_files_it_cannot_read_are_one_line(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("hello, this is not a database\n" * 100)
    assert query(str(text))[2].startswith(f"Error: {text}: is not a SQLite database, or is corrupt")

    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER)")
    conn.close()
    assert (
        query(str(foreign))[2]
        == f"Error: {foreign}: is a SQLite database, but not one observabilipy wrote\n"
    )

    old = tmp_path / "one.db"
    with sqlite3.connect(old) as conn:
        conn.execute(
            "CREATE TABLE logs (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp REAL, "
            "level TEXT, message TEXT, attributes TEXT)"
        )
    conn.close()
    assert "was written by observabilipy 1.x" in query(str(old))[2]
    assert query(str(tmp_path))[2] == f"Error: {tmp_path}: is not a file\n"


def test_a_corrupt_page_is_reported_not_raised(app_db: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.db"
    data = bytearray(app_db.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    for page in range(1, len(data) // page_size):  # every page but the first (the schema)
        start = page * page_size
        data[start : start + page_size] = b"\xff" * page_size
    damaged.write_bytes(bytes(data))
    status, _, err = query(str(damaged))
    assert status == 1
    assert err.startswith(f"Error: {damaged}: ")
    assert err.count("\n") == 1


def test_plans_walk_indexes_without_sorting(app_db: Path) -> None:
    database = open_database(app_db)
    try:
        for filters in (
            {"level": "error", "limit": 100},
            {"min_level": "warning", "grep": "x"},
            {"min_level": "warning", "newest": True},
            {"level": "error", "since": NOW - 60},
        ):
            plan = " | ".join(explain(database, *log_query(**filters)))
            assert "USING INDEX logs_level_id (level=?" in plan, (filters, plan)
            assert "TEMP B-TREE" not in plan, (filters, plan)
        plan = " | ".join(explain(database, *log_query(since=NOW - 60)))
        assert "logs_timestamp" in plan
        assert "TEMP B-TREE" not in plan
        plan = " | ".join(explain(database, *metrics_query(name="latency_seconds")))
        assert "metric_samples_name_id" in plan
        assert "metric_samples_family_id" in plan
        assert "TEMP B-TREE" not in plan
    finally:
        database.close()


def test_explain_prints_the_sql_it_runs(app_db: Path) -> None:
    status, out, _ = query(str(app_db), "--level", "error", "--limit", "100", "--explain")
    assert status == 0
    sql, params = log_query(level="error", limit=100)
    assert out.splitlines() == [
        sql,
        f"-- parameters: {params}",
        "-- SEARCH logs USING INDEX logs_level_id (level=?)",
    ]


def test_a_file_being_written_is_read_as_committed(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    database = SQLiteDatabase(path, registry=Registry())
    logs = SQLiteLogStorage(database)
    try:
        logs.write_sync(
            LogEntry(timestamp=NOW, level="INFO", message="one", attributes={}), durable=True
        )
        assert ids(query(str(path), "--format", "ndjson")[1]) == [1]
        logs.write_sync(
            LogEntry(timestamp=NOW, level="INFO", message="two", attributes={}), durable=True
        )
        assert ids(query(str(path), "--format", "ndjson")[1]) == [1, 2]
    finally:
        database.close()


def test_a_file_of_the_first_schema_is_read_without_upgrading_it(app_db: Path) -> None:
    """A file from an older installation (schema 1, before export cursors) as it was sent."""
    conn = sqlite3.connect(app_db, isolation_level=None)
    conn.execute("DROP TABLE IF EXISTS export_cursors")
    conn.execute("UPDATE observabilipy_meta SET value = '1' WHERE key = 'schema_version'")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = hashlib.sha256(app_db.read_bytes()).hexdigest()
    status, out, err = query(str(app_db), "--format", "ndjson", "--min-level", "error")
    assert (status, err) == (0, "")
    assert ids(out) == [4, 5]
    assert hashlib.sha256(app_db.read_bytes()).hexdigest() == before
