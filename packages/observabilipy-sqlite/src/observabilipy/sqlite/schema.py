"""The database schema, its version, and the forward migrations that build it.

The version lives in ``observabilipy_meta`` (key ``schema_version``).
:data:`MIGRATIONS` is an ordered list: migration *n* takes a file from version
*n* to *n + 1*, so opening an older file runs the ones it lacks, in one
transaction, and a file newer than :data:`SCHEMA_VERSION` is refused with an
error naming the file and both versions (an older observabilipy must not write
into a layout it does not know).

Version 1 is the first layout of observabilipy 2; version 2 adds
``export_cursors``, where each exporter's position in ``logs`` and
``metric_samples`` is kept (:class:`ExportCursors`).  A file written by
observabilipy 1.x (a ``logs`` table of the same columns and no version) is
adopted by it: its entries keep their ids and their levels are made canonical
(``WARN`` becomes ``WARNING``).  1.x metrics were per-event deltas, which
cannot become cumulative points: the old ``metrics`` table is left as it was.

A file opened ``read_only`` cannot be upgraded: it opens when the migrations
it lacks are ones reads do without (``needed_for_reading=False``, as version 2:
a version-1 file reads with no export cursors saved), and is refused otherwise.

>>> import sqlite3
>>> conn = sqlite3.connect(":memory:", isolation_level=None)
>>> ensure_schema(conn, ":memory:")  # the version the file had
0
>>> read_version(conn, ":memory:") == SCHEMA_VERSION
True
>>> sorted(name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
['export_cursors', 'logs', 'metric_families', 'metric_latest', 'metric_processes', 'metric_samples', 'observabilipy_meta', 'sqlite_sequence']
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from observabilipy.core.storage.memory import check_cursor_key, check_cursor_value
from observabilipy.sqlite.errors import SQLiteStorageError

if TYPE_CHECKING:
    from observabilipy.sqlite.database import SQLiteDatabase

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ExportCursors",
    "Migration",
    "ensure_schema",
    "read_version",
]

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


# Version 2: one row per (storage, exporter); WITHOUT ROWID, as it is only ever
# looked up by its key.
_VERSION_2 = """
CREATE TABLE export_cursors (
  signal TEXT NOT NULL,
  name TEXT NOT NULL,
  value INTEGER NOT NULL,
  updated REAL NOT NULL,
  PRIMARY KEY (signal, name)
) WITHOUT ROWID
"""


@dataclass(frozen=True)
class Migration:
    """One step forward: ``apply(conn, path)`` takes a file from ``version - 1`` to ``version``.

    ``apply`` runs inside the migration transaction and must not commit.
    ``needed_for_reading``: False when this release can still read a file
    without it (it only adds what reads do without), so ``read_only`` opens it.

    >>> MIGRATIONS[0].version, MIGRATIONS[0].summary
    (1, 'logs, metric history, latest points per process, families and processes')
    >>> MIGRATIONS[1].needed_for_reading
    False
    """

    version: int
    summary: str
    apply: Callable[[sqlite3.Connection, str], None]
    needed_for_reading: bool = True


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


def _to_version_2(conn: sqlite3.Connection, path: str) -> None:
    conn.execute(_VERSION_2)


#: Every migration, oldest first: ``MIGRATIONS[n]`` upgrades version ``n`` to ``n + 1``.
MIGRATIONS: list[Migration] = [
    Migration(
        1, "logs, metric history, latest points per process, families and processes", _to_version_1
    ),
    Migration(
        2,
        "export cursors: where each exporter stopped reading",
        _to_version_2,
        needed_for_reading=False,
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
    ``read_only`` that lacks a migration reads need (it cannot be upgraded).
    ``conn`` must be in autocommit mode (``isolation_level=None``).

    >>> import sqlite3
    >>> conn = sqlite3.connect(":memory:", isolation_level=None)
    >>> ensure_schema(conn, "obs.db"), ensure_schema(conn, "obs.db")
    (0, 2)
    >>> _ = conn.execute("UPDATE observabilipy_meta SET value = '7'")
    >>> ensure_schema(conn, "obs.db")
    Traceback (most recent call last):
    ...
    observabilipy.sqlite.errors.SQLiteStorageError: obs.db: schema version 7 is newer than the 2 this observabilipy-sqlite knows; upgrade observabilipy-sqlite to open it
    """
    target = len(MIGRATIONS)
    found = read_version(conn, path)
    _refuse_newer(found, target, path)
    if found == target:
        return found
    if read_only:
        if found and not any(m.needed_for_reading for m in MIGRATIONS[found:]):
            return found
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


_SAVE_CURSOR: Final = (
    "INSERT INTO export_cursors (signal, name, value, updated) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (signal, name) DO UPDATE SET value = excluded.value, updated = excluded.updated"
)
_LOAD_CURSOR: Final = "SELECT value FROM export_cursors WHERE signal = ? AND name = ?"


class ExportCursors:
    """The export cursors of one storage (``signal``: ``"logs"`` or ``"metrics"``) in a file.

    Saves are queued for the database's writer like every write: committed with
    the next batch (within ``flush_interval``) and at close, and seen at once by
    loads, which commit this process's queued writes first.  Not waiting for the
    commit keeps a cursor save per exported batch cheap.  A ``read_only`` file of
    version 1 has no such table: its cursors read as never saved (saves are
    dropped and counted, as every write to a read-only database is).

    >>> from observabilipy.sqlite.database import SQLiteDatabase
    >>> db = SQLiteDatabase(":memory:")
    >>> cursors = ExportCursors(db, "logs")
    >>> cursors.load_sync("loki") is None
    True
    >>> cursors.save_sync("loki", 42)
    >>> cursors.load_sync("loki"), ExportCursors(db, "metrics").load_sync("loki")
    (42, None)
    >>> db.close()
    """

    def __init__(self, database: SQLiteDatabase, signal: Literal["logs", "metrics"]) -> None:
        self._database = database
        self._signal = signal

    def _save_job(self, key: str, value: int) -> Callable[[sqlite3.Connection], None]:
        params = (self._signal, check_cursor_key(key), check_cursor_value(value), time.time())

        def save(conn: sqlite3.Connection) -> None:
            conn.execute(_SAVE_CURSOR, params)

        return save

    def save_sync(self, key: str, value: int) -> None:
        """Keep ``value`` under ``key`` (queued for the writer)."""
        self._database.submit(self._save_job(key, value))

    async def save(self, key: str, value: int) -> None:
        """Async twin of :meth:`save_sync` (waits for room in a full queue off the loop)."""
        await self._database.asubmit(self._save_job(key, value))

    def load_sync(self, key: str) -> int | None:
        """The value saved under ``key`` (None: never saved)."""
        params = (self._signal, check_cursor_key(key))
        database = self._database
        try:
            row = database.read(lambda conn: conn.execute(_LOAD_CURSOR, params).fetchone())
        except sqlite3.OperationalError as exc:
            if database.read(_has_cursor_table):
                raise database.read_error(exc) from exc
            return None
        except sqlite3.DatabaseError as exc:
            raise database.read_error(exc) from exc
        return None if row is None else int(row[0])

    async def load(self, key: str) -> int | None:
        """Async twin of :meth:`load_sync`."""
        params = (self._signal, check_cursor_key(key))
        database = self._database
        await database.aflush_pending()
        async with database.aconnect() as conn:
            try:
                async with conn.execute(_LOAD_CURSOR, params) as cursor:
                    row = await cursor.fetchone()
            except sqlite3.OperationalError as exc:
                async with conn.execute(_HAS_CURSOR_TABLE) as cursor:
                    if await cursor.fetchone() is not None:
                        raise database.read_error(exc) from exc
                return None
            except sqlite3.DatabaseError as exc:
                raise database.read_error(exc) from exc
        return None if row is None else int(row[0])


_HAS_CURSOR_TABLE: Final = (
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'export_cursors'"
)


def _has_cursor_table(conn: sqlite3.Connection) -> bool:
    return conn.execute(_HAS_CURSOR_TABLE).fetchone() is not None
