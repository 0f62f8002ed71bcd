"""The database schema, its version, and the forward migrations that build it.

The version lives in ``observabilipy_meta`` (key ``schema_version``).
:data:`MIGRATIONS` is an ordered list: migration *n* takes a file from version
*n* to *n + 1*, so opening an older file runs the ones it lacks, in one
transaction, and a file newer than :data:`SCHEMA_VERSION` is refused with an
error naming the file and both versions (an older observabilipy must not write
into a layout it does not know).

Version 1 is the first layout of observabilipy 2.  A file written by
observabilipy 1.x (a ``logs`` table of the same columns and no version) is
adopted by it: its entries keep their ids and their levels are made canonical
(``WARN`` becomes ``WARNING``).  1.x metrics were per-event deltas, which
cannot become cumulative points: the old ``metrics`` table is left as it was.

>>> import sqlite3
>>> conn = sqlite3.connect(":memory:", isolation_level=None)
>>> ensure_schema(conn, ":memory:")  # the version the file had
0
>>> read_version(conn, ":memory:") == SCHEMA_VERSION
True
>>> sorted(name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
['logs', 'metric_families', 'metric_latest', 'metric_processes', 'metric_samples', 'observabilipy_meta', 'sqlite_sequence']
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from observabilipy.sqlite.errors import SQLiteStorageError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "ensure_schema", "read_version"]

META_TABLE: Final = "observabilipy_meta"

# The tables of version 1 (the agreed layout; the multi-process exposition reads
# metric_latest, metric_families and metric_processes).
_VERSION_1 = """
CREATE TABLE observabilipy_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS logs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  timestamp REAL NOT NULL,
  level TEXT NOT NULL,
  message TEXT NOT NULL,
  attributes TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX logs_timestamp ON logs (timestamp);
CREATE INDEX logs_level_id ON logs (level, id);
CREATE TABLE metric_families (
  family TEXT PRIMARY KEY, kind TEXT NOT NULL, help TEXT NOT NULL DEFAULT '',
  unit TEXT NOT NULL DEFAULT '', gauge_mode TEXT NOT NULL DEFAULT 'latest'
);
CREATE TABLE metric_samples (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  family TEXT NOT NULL,
  kind TEXT NOT NULL,
  timestamp REAL NOT NULL,
  value REAL,
  labels TEXT NOT NULL,
  process TEXT NOT NULL
);
CREATE INDEX metric_samples_timestamp ON metric_samples (timestamp);
CREATE INDEX metric_samples_name_id ON metric_samples (name, id);
CREATE INDEX metric_samples_family_id ON metric_samples (family, id);
CREATE TABLE metric_latest (
  process TEXT NOT NULL, name TEXT NOT NULL, labels TEXT NOT NULL,
  family TEXT NOT NULL, kind TEXT NOT NULL, timestamp REAL NOT NULL, value REAL,
  label_text TEXT NOT NULL,
  PRIMARY KEY (process, name, labels)
) WITHOUT ROWID;
CREATE TABLE metric_processes (
  process TEXT PRIMARY KEY,
  hostname TEXT NOT NULL, pid INTEGER NOT NULL, started REAL NOT NULL, last_seen REAL NOT NULL
);
"""

# What observabilipy 1.x created: the same logs columns, its own index names.
_LOGS_1X_COLUMNS: Final = ["id", "timestamp", "level", "message", "attributes"]
_TABLES_OF_VERSION_1: Final = (
    "logs",
    "metric_families",
    "metric_samples",
    "metric_latest",
    "metric_processes",
)


@dataclass(frozen=True)
class Migration:
    """One step forward: ``apply(conn, path)`` takes a file from ``version - 1`` to ``version``.

    ``apply`` runs inside the migration transaction and must not commit.

    >>> MIGRATIONS[0].version, MIGRATIONS[0].summary
    (1, 'logs, metric history, latest points per process, families and processes')
    """

    version: int
    summary: str
    apply: Callable[[sqlite3.Connection, str], None]


def _tables(conn: sqlite3.Connection) -> dict[str, str]:
    rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
    return {name: sql or "" for name, sql in rows}


def _to_version_1(conn: sqlite3.Connection, path: str) -> None:
    existing = _tables(conn)
    clashes = [name for name in _TABLES_OF_VERSION_1[1:] if name in existing]
    if clashes:
        raise SQLiteStorageError(
            path,
            f"has table(s) {', '.join(clashes)} but no observabilipy schema version; "
            "refusing to change a database observabilipy did not create",
        )
    if "logs" in existing:
        _adopt_1x_logs(conn, path, existing["logs"])
    # Statement by statement: executescript() would commit the migration transaction.
    for statement in _VERSION_1.split(";"):
        if statement.strip():
            conn.execute(statement)


def _adopt_1x_logs(conn: sqlite3.Connection, path: str, create_sql: str) -> None:
    """Keep an observabilipy 1.x ``logs`` table: same columns, ids never reused."""
    columns = [row[1] for row in conn.execute("PRAGMA table_info(logs)")]
    if columns != _LOGS_1X_COLUMNS or "AUTOINCREMENT" not in create_sql.upper():
        raise SQLiteStorageError(
            path,
            f"has a table 'logs' observabilipy did not create (columns {', '.join(columns)}) "
            "and no observabilipy schema version; use another file",
        )
    # 1.x indexed (timestamp) and (level, timestamp) under other names: version 1
    # creates its own, and a redundant index only slows writes.
    conn.execute("DROP INDEX IF EXISTS idx_logs_timestamp")
    conn.execute("DROP INDEX IF EXISTS idx_logs_level_timestamp")
    # 1.x stored levels as written ('WARN', 'warning'): filters compare canonical names.
    conn.execute(
        """
        UPDATE logs SET level = CASE upper(trim(level))
            WHEN 'WARN' THEN 'WARNING' WHEN 'FATAL' THEN 'CRITICAL' ELSE upper(trim(level)) END
        WHERE level NOT IN ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')
        """
    )


#: Every migration, oldest first: ``MIGRATIONS[n]`` upgrades version ``n`` to ``n + 1``.
MIGRATIONS: list[Migration] = [
    Migration(
        1, "logs, metric history, latest points per process, families and processes", _to_version_1
    ),
]

#: The version this release writes (the number of migrations).
SCHEMA_VERSION: Final = len(MIGRATIONS)


def read_version(conn: sqlite3.Connection, path: str) -> int:
    """The schema version stored in the file (0 for a file observabilipy never set up).

    >>> import sqlite3
    >>> read_version(sqlite3.connect(":memory:"), ":memory:")
    0
    """
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (META_TABLE,)
    ).fetchone()
    if not has_meta:
        return 0
    row = conn.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'schema_version'").fetchone()
    try:
        version = int(row[0]) if row is not None else -1
    except (TypeError, ValueError):
        version = -1
    if version < 0:
        raise SQLiteStorageError(
            path, f"{META_TABLE} holds no valid schema_version ({row!r}); the file is damaged"
        )
    return version


def ensure_schema(conn: sqlite3.Connection, path: str, *, read_only: bool = False) -> int:
    """Bring the file to :data:`SCHEMA_VERSION`; return the version it had before.

    Runs the missing migrations in one ``BEGIN IMMEDIATE`` transaction, so
    processes opening a new file at the same moment create it once.  Raises
    :class:`SQLiteStorageError` for a newer file, and for an older one opened
    ``read_only`` (it cannot be upgraded).  ``conn`` must be in autocommit mode
    (``isolation_level=None``).

    >>> import sqlite3
    >>> conn = sqlite3.connect(":memory:", isolation_level=None)
    >>> ensure_schema(conn, "obs.db"), ensure_schema(conn, "obs.db")
    (0, 1)
    >>> _ = conn.execute("UPDATE observabilipy_meta SET value = '7'")
    >>> ensure_schema(conn, "obs.db")
    Traceback (most recent call last):
    ...
    observabilipy.sqlite.errors.SQLiteStorageError: obs.db: schema version 7 is newer than the 1 this observabilipy-sqlite knows; upgrade observabilipy-sqlite to open it
    """
    target = len(MIGRATIONS)
    found = read_version(conn, path)
    _refuse_newer(found, target, path)
    if found == target:
        return found
    if read_only:
        raise SQLiteStorageError(
            path,
            f"schema version {found} is older than {target} and the file is opened "
            "read_only; open it once without read_only to upgrade it",
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have upgraded the file while this one waited for the lock.
        found = read_version(conn, path)
        _refuse_newer(found, target, path)
        for migration in MIGRATIONS[found:]:
            migration.apply(conn, path)
            conn.execute(
                f"INSERT INTO {META_TABLE} (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(migration.version),),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return found


def _refuse_newer(found: int, target: int, path: str) -> None:
    if found > target:
        raise SQLiteStorageError(
            path,
            f"schema version {found} is newer than the {target} this observabilipy-sqlite "
            "knows; upgrade observabilipy-sqlite to open it",
        )
