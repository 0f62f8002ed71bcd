"""``observabilipy query`` on a 1,000,000-entry file vs the sqlite3 command-line tool, in one run.

Run with ``hatch run bench:python tools/bench/bench_cli_query.py`` (needs Debian's
``sqlite3``: ``apt-get install sqlite3``).

Both commands are started as processes and timed whole (wall time, output to
/dev/null), best of ``REPEATS`` runs, on the same file:

- ``--level error --limit 100``: the first 100 ERROR entries (one in ten is one);
- the same with ``--grep "request 9"`` (any case; the peer uses ``instr(lower())``,
  the CLI the HTTP API's ``casefold()`` rule as a SQL function);
- ``--level error --format json``: all 100,000 ERROR entries as one JSON array
  (the peer: ``sqlite3 -json``).

The first two read a few hundred rows through the ``(level, id)`` index: what they
measure is mostly starting the command, a Python interpreter and its imports
against a C program's start.  The interpreter's bare start and the import floor
(``python -c "import observabilipy.cli.app, observabilipy.cli.query"``) are
printed for scale.  Goals: an index read finishes within 50 ms of the import
floor (shown as the ratio to the peer that allows), and the bulk export, which
measures streaming throughput, takes at most 3x the peer's time.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script: make the repository root importable for the shared timing helpers.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from observabilipy.core.metrics import Registry
from observabilipy.sqlite import SQLiteDatabase
from tools.bench._common import Row, report

ENTRIES = 1_000_000
REPEATS = 7
LEVELS = ("DEBUG", "INFO", "INFO", "INFO", "INFO", "INFO", "INFO", "WARNING", "INFO", "ERROR")
COLUMNS = "id, timestamp, level, message, attributes"


def build(path: Path) -> None:
    """ENTRIES log entries, one ERROR in ten, in observabilipy's schema."""
    SQLiteDatabase(path, registry=Registry()).close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO logs (timestamp, level, message, attributes) VALUES (?, ?, ?, ?)",
            (
                (1.7e9 + n / 1000, LEVELS[n % 10], f"request {n} done", f'{{"n":{n}}}')
                for n in range(ENTRIES)
            ),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def wall_ns(command: list[str]) -> float:
    """Best wall time of ``command`` over REPEATS runs, in nanoseconds."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter_ns()
        subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
        best = min(best, time.perf_counter_ns() - start)
    return best


def main() -> int:
    """Build the file, time both tools on each query, print the table; 1 if a goal is missed."""
    peer = shutil.which("sqlite3")
    if peer is None:
        print("needs the sqlite3 command-line tool: apt-get install sqlite3", file=sys.stderr)
        return 1
    launcher = Path(sys.executable).with_name("observabilipy")
    ours = [str(launcher)] if launcher.exists() else [sys.executable, "-m", "observabilipy.cli"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.db"
        started = time.perf_counter()
        build(path)
        print(f"built {ENTRIES:,} entries in {time.perf_counter() - started:.1f} s")
        interpreter = wall_ns([sys.executable, "-c", "pass"])
        floor = wall_ns(
            [sys.executable, "-c", "import observabilipy.cli.app, observabilipy.cli.query"]
        )
        print(f"bare Python start: {interpreter / 1e6:.1f} ms; import floor: {floor / 1e6:.1f} ms")
        cases = [
            (
                "--level error --limit 100",
                ["--level", "error", "--limit", "100"],
                ["-readonly", str(path)],
                f"SELECT {COLUMNS} FROM logs WHERE level = 'ERROR' ORDER BY id LIMIT 100;",
                None,
            ),
            (
                "--level error --limit 100 --grep",
                ["--level", "error", "--limit", "100", "--grep", "request 9"],
                ["-readonly", str(path)],
                f"SELECT {COLUMNS} FROM logs WHERE level = 'ERROR' "
                "AND instr(lower(message), 'request 9') > 0 ORDER BY id LIMIT 100;",
                None,
            ),
            (
                "--level error --format json (100k rows)",
                ["--level", "error", "--format", "json"],
                ["-readonly", "-json", str(path)],
                f"SELECT {COLUMNS} FROM logs WHERE level = 'ERROR' ORDER BY id;",
                3.0,
            ),
        ]
        rows = []
        for name, args, peer_args, sql, goal in cases:
            ours_ns = wall_ns([*ours, "query", str(path), *args])
            peer_ns = wall_ns([peer, *peer_args, sql])
            # An index read: allowed the import floor plus 50 ms.
            allowed = goal if goal is not None else (floor + 50e6) / peer_ns
            rows.append(Row(name, ours_ns, peer_ns, round(allowed, 1)))
    passed = report(rows, peer="sqlite3")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
