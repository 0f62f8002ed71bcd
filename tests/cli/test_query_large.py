"""``query`` on a file of 1,000,000 log entries: index-backed with --level, streamed output."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from observabilipy.cli.app import main
from observabilipy.cli.query import explain, log_query, open_database
from observabilipy.core.metrics import Registry
from observabilipy.sqlite import SQLiteDatabase

if TYPE_CHECKING:
    from tests.cli._cli_support import COMMAND
else:
    from _cli_support import COMMAND

ENTRIES = 1_000_000
LEVELS = ("DEBUG", "INFO", "INFO", "INFO", "INFO", "INFO", "INFO", "WARNING", "INFO", "ERROR")

# Runs the command in a grandchild and reports what it printed and its peak memory.
_MEASURE = """
import resource, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)
lines = sum(chunk.count(b"\\n") for chunk in iter(lambda: child.stdout.read(1 << 16), b""))
child.wait()
print(child.returncode, lines, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def build(path: Path) -> None:
    """A file of ENTRIES entries, one ERROR in ten, written as fast as sqlite3 goes."""
    SQLiteDatabase(path, registry=Registry()).close()  # the schema
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # a test file: no need to survive a power cut
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO logs (timestamp, level, message, attributes) VALUES (?, ?, ?, '{}')",
            ((1.7e9 + n / 1000, LEVELS[n % 10], f"request {n} done") for n in range(ENTRIES)),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("large") / "big.db"
    build(path)
    return path


def test_level_and_limit_read_through_the_index(big_db: Path) -> None:
    for args, filters in (
        (["--level", "error", "--limit", "100"], {"level": "error", "limit": 100}),
        (
            ["--level", "error", "--limit", "100", "--grep", "request 9"],
            {"level": "error", "limit": 100, "grep": "request 9"},
        ),
    ):
        result = CliRunner().invoke(main, ["query", str(big_db), *args, "--explain"])
        assert result.exit_code == 0, result.output
        sql, params = log_query(**filters)  # type: ignore[arg-type]
        lines = result.stdout.splitlines()
        assert lines[0] == sql  # the exact SQL the command runs
        assert lines[2:] == ["-- SEARCH logs USING INDEX logs_level_id (level=?)"]
        database = open_database(big_db)
        try:
            assert explain(database, sql, params) == [
                "SEARCH logs USING INDEX logs_level_id (level=?)"
            ]
        finally:
            database.close()

    result = CliRunner().invoke(
        main, ["query", str(big_db), "--level", "error", "--limit", "100", "--format", "ndjson"]
    )
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["id"] for row in rows] == [10 * n + 10 for n in range(100)]
    assert {row["level"] for row in rows} == {"ERROR"}
    result = CliRunner().invoke(
        main,
        [
            "query",
            str(big_db),
            "--level",
            "error",
            "--grep",
            "REQUEST 99",
            "--limit",
            "3",
            "--format",
            "ndjson",
        ],
    )
    assert [json.loads(line)["message"] for line in result.stdout.splitlines()] == [
        "request 99 done",
        "request 999 done",
        "request 9909 done",
    ]


def test_output_streams_in_flat_memory(big_db: Path) -> None:
    def run(*args: str) -> tuple[int, int]:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                _MEASURE,
                *COMMAND,
                "query",
                str(big_db),
                "--format",
                "ndjson",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        status, lines, peak_kib = map(int, done.stdout.split())
        assert status == 0, done.stderr
        return lines, peak_kib

    few_lines, few_peak = run("--limit", "10")
    all_lines, all_peak = run()
    assert (few_lines, all_lines) == (10, ENTRIES)
    # A million rows are over 100 MB of NDJSON: holding them would show many times this.
    assert all_peak - few_peak < 20_000, (few_peak, all_peak)
