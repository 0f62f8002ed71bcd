"""SQLiteLogStorage: log entries in the ``logs`` table of a SQLite file.

Writes only queue the entry for the database's writer thread (see
:mod:`observabilipy.sqlite.database`); ``durable=True`` also waits for the
commit.  Reads run SQL that the table's indexes answer: ``after`` and
``since`` start at the first matching id (``since`` through the timestamp
index), ``level``/``min_level`` walk the ``(level, id)`` index, one ordered
walk per level merged by id, and rows stream from the cursor.  Retention is
``DELETE`` statements run by the writer.

>>> from observabilipy.core import LogEntry, info, warn
>>> storage = SQLiteLogStorage(":memory:")
>>> storage.write_sync(info("started", port=8000))
>>> storage.write_many_sync([warn("disk low", free_mb=12), info("done")])
>>> [(e.id, e.level, e.message) for e in storage.read_sync(min_level="warn")]
[(2, 'WARNING', 'disk low')]
>>> storage.write_sync(LogEntry(timestamp=1.5, level="error", message="boom", attributes={"n": 1}))
>>> b"".join(storage.read_ndjson_sync(level="error"))
b'{"id":4,"timestamp":1.5,"level":"ERROR","message":"boom","attributes":{"n":1}}\\n'
>>> storage.close_sync()
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, cast

from observabilipy.core.errors import ConfigurationError, ObservabilityError, ValidationError
from observabilipy.core.levels import LEVELS, levels_at_or_above, normalize_level
from observabilipy.core.models import LogEntry, _trusted_log_entry, validate_timestamp
from observabilipy.core.storage.memory import check_after, check_count, check_limit
from observabilipy.sqlite._encoding import (
    ATTRIBUTES_JSON_SQL,
    achunks,
    attributes_from_text,
    attributes_text,
    chunks,
    safe_text,
)
from observabilipy.sqlite.database import (
    SQLiteDatabase,
    first_id_newer_than,
    insert_rows,
    rowcount_of,
)
from observabilipy.sqlite.schema import ExportCursors

__all__ = ["SQLiteLogStorage"]

_ENTRY_COLUMNS: Final = "id, timestamp, level, message, attributes"

# NDJSON rows are built by SQLite's json_object(), keys in core's order: one text
# column, as cheap to fetch as it gets.  The fast form trusts attributes that start
# with "{" to be JSON (the writer only stores json.dumps output): json() raises on
# the rare row that is not, and the read resumes after the last row delivered with
# the checking form.
_NDJSON_COLUMNS: Final = (
    "json_object('id', id, 'timestamp', timestamp, 'level', level, 'message', message, "
    "'attributes', CASE WHEN substr(attributes, 1, 1) = '{' THEN json(attributes) "
    "ELSE json_object('_raw', attributes) END)"
)
_NDJSON_CHECKED_COLUMNS: Final = (
    "json_object('id', id, 'timestamp', timestamp, 'level', CAST(level AS TEXT), "
    f"'message', CAST(message AS TEXT), 'attributes', {ATTRIBUTES_JSON_SQL})"
)
_INSERT: Final = "INSERT INTO logs (timestamp, level, message, attributes)"

# Rows fetched per round trip by async reads and NDJSON: one aiosqlite hop or one
# list comprehension per few hundred rows.
_FETCH: Final = 256


def insert_entries(conn: sqlite3.Connection, entries: list[LogEntry]) -> None:
    """The writer's batch writer for LogEntry: every entry of ``entries``, a few statements.

    >>> conn = sqlite3.connect(":memory:")
    >>> _ = conn.execute("CREATE TABLE logs (id INTEGER PRIMARY KEY, timestamp, level, message, attributes)")
    >>> insert_entries(conn, [LogEntry(timestamp=1.0, level="info", message="hi", attributes={"n": 1})])
    >>> conn.execute("SELECT * FROM logs").fetchall()
    [(1, 1.0, 'INFO', 'hi', '{"n":1}')]
    """
    params: list[object] = []
    add = params.append
    for entry in entries:
        attributes = entry.attributes
        add(entry.timestamp)
        add(entry.level)
        add(entry.message)
        add(attributes_text(attributes) if attributes else "{}")
    conn.execute("SAVEPOINT entries")
    try:
        insert_rows(conn, _INSERT, 4, params)
    except UnicodeEncodeError:
        # A lone surrogate (text decoded with surrogateescape) cannot be stored as
        # UTF-8: keep the entries with the character escaped rather than lose the
        # batch (again from the start: statements before the failing one went in).
        conn.execute("ROLLBACK TO entries")
        insert_rows(conn, _INSERT, 4, [safe_text(p) if type(p) is str else p for p in params])
    conn.execute("RELEASE entries")


@dataclass(frozen=True, slots=True)
class _Selection:
    """Checked read arguments: which entries a read returns, whatever columns it wants."""

    since: float | None
    after: int | None
    levels: tuple[str, ...] | None  # None: every level
    limit: int | None

    @classmethod
    def of(
        cls, since: object, after: object, level: object, min_level: object, limit: object
    ) -> _Selection | None:
        """Check the read arguments (errors name them); None when nothing can match."""
        cursor = check_after(after)
        checked_limit = check_limit(limit)
        cutoff = None if since is None else validate_timestamp(since, field="since")
        levels: tuple[str, ...] | None = None
        if level is not None:
            levels = (normalize_level(level, field="level"),)
        if min_level is not None:
            severe = levels_at_or_above(normalize_level(min_level, field="min_level"))
            levels = severe if levels is None else tuple(n for n in levels if n in severe)
        if checked_limit == 0 or levels == ():
            return None
        if levels is not None and len(levels) == len(LEVELS):
            levels = None  # every level: no filter at all
        return cls(cutoff, cursor, levels, checked_limit)

    def query(self, columns: str) -> tuple[str, dict[str, object]]:
        """The SQL (and its parameters) selecting ``columns`` of these entries, in id order.

        ``columns`` start with the row's ``id`` or are one JSON object text; a
        query of several arms (one per level) then also selects ``id`` last, for
        the ORDER BY of the merge.
        """
        conditions: list[str] = []
        params: dict[str, object] = {}
        if self.after is not None:
            conditions.append("id > :after")
            params["after"] = self.after
        if self.since is not None:
            conditions.append(f"id >= {first_id_newer_than('logs')}")
            conditions.append("timestamp > :since")
            params["since"] = self.since
        arms: list[list[str]] = [conditions]
        if self.levels is not None:
            # One arm per level, each an ordered walk of the (level, id) index; SQLite
            # merges them by id, so a min_level read streams without sorting.
            arms = []
            for n, name in enumerate(self.levels):
                arms.append([f"level = :level{n}", *conditions])
                params[f"level{n}"] = name
        if len(arms) > 1 and not columns.startswith("id,"):
            columns += ", id"
        selects = [
            f"SELECT {columns} FROM logs" + (" WHERE " + " AND ".join(arm) if arm else "")
            for arm in arms
        ]
        sql = " UNION ALL ".join(selects) + " ORDER BY id"
        if self.limit is not None:
            sql += " LIMIT :limit"
            params["limit"] = self.limit
        return sql, params

    def rest(self, last_id: int | None, delivered: int) -> _Selection | None:
        """The entries still to deliver after ``delivered`` of them, up to ``last_id``."""
        limit = None if self.limit is None else self.limit - delivered
        if limit == 0:
            return None
        after = self.after if last_id is None else last_id
        return _Selection(self.since, after, self.levels, limit)


def _entry(row: tuple[Any, ...]) -> LogEntry:
    entry_id, timestamp, level, message, attributes = row
    return _trusted_log_entry(
        timestamp,
        level,
        message,
        {} if attributes == "{}" else attributes_from_text(attributes),
        entry_id,
    )


def _ndjson_block(rows: list[tuple[Any, ...]]) -> str:
    return "\n".join([row[0] for row in rows]) + "\n"


def _id_of_line(line: str) -> int:
    """The id of an NDJSON row: json_object() writes it first, ``{"id":42,...``."""
    return int(line[6 : line.index(",", 6)])


class SQLiteLogStorage:
    """Log entries in a SQLite file; implements :class:`~observabilipy.core.ports.LogStoragePort`.

    ``database`` is a :class:`SQLiteDatabase` (shared with other storages and
    closed by whoever opened it) or a path (``":memory:"`` included), which this
    storage opens with ``database_options`` and closes in :meth:`close_sync`.

    Writes queue entries for the writer thread and return; ``durable=True``
    waits until the entry is committed.  A read first commits the writes this
    process still has queued (a thread reads what it wrote).  Entries lost to
    a full queue or a failing disk are counted in :attr:`dropped`.

    >>> import tempfile, os
    >>> from observabilipy.core import error
    >>> path = os.path.join(tempfile.mkdtemp(), "obs.db")
    >>> storage = SQLiteLogStorage(path, flush_interval=0.05)
    >>> storage.write_sync(error("payment failed", order=17), durable=True)
    >>> storage.count_sync(), storage.count_by_level_sync("error")
    (1, 1)
    >>> storage.close_sync()
    >>> [e.attributes for e in SQLiteLogStorage(path).read_sync()]
    [{'order': 17}]
    """

    def __init__(
        self, database: SQLiteDatabase | str | os.PathLike[str], **database_options: Any
    ) -> None:
        if isinstance(database, SQLiteDatabase):
            if database_options:
                raise ConfigurationError(
                    f"{', '.join(sorted(database_options))}: options are for a path; "
                    "the SQLiteDatabase given is already open"
                )
            self._database = database
            self._owns_database = False
        else:
            self._database = SQLiteDatabase(database, **database_options)
            self._owns_database = True
        self._database.register_batch_writer(LogEntry, insert_entries)
        self._cursors = ExportCursors(self._database, "logs")
        self._closed = False

    @property
    def database(self) -> SQLiteDatabase:
        """The database this storage writes to."""
        return self._database

    @property
    def dropped(self) -> int:
        """Items the database lost (queue full, storage failures); shared by its storages."""
        return self._database.dropped

    def __repr__(self) -> str:
        return f"<SQLiteLogStorage {self._database.path!r}>"

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise ObservabilityError(
                "SQLiteLogStorage is closed; create a new storage to keep using the file"
            )

    # --- writing ------------------------------------------------------------------------------

    def write_sync(self, entry: LogEntry, *, durable: bool = False) -> None:
        """Queue one entry; with ``durable=True`` return once it is committed."""
        if type(entry) is not LogEntry:
            entry = _checked(entry)
        if self._closed:
            self._refuse_if_closed()
        database = self._database
        if not database.try_put(entry):
            database.put(entry)
        if durable:
            self._database.flush()

    def write_many_sync(self, entries: Iterable[LogEntry], *, durable: bool = False) -> None:
        """Queue several entries, all or none, in the given order (ids follow it)."""
        batch = _checked_batch(entries)
        self._refuse_if_closed()
        self._database.put_many(batch)
        if durable:
            self._database.flush()

    async def write(self, entry: LogEntry, *, durable: bool = False) -> None:
        """Queue one entry (awaits nothing slow); ``durable=True`` awaits the commit."""
        if type(entry) is not LogEntry:
            entry = _checked(entry)
        if self._closed:
            self._refuse_if_closed()
        database = self._database
        if not database.try_put(entry):  # the queue is full: wait for room, off the loop
            await database.aput(entry)
        if durable:
            await database.aflush()

    async def write_many(self, entries: Iterable[LogEntry], *, durable: bool = False) -> None:
        """Async twin of :meth:`write_many_sync`."""
        batch = _checked_batch(entries)
        self._refuse_if_closed()
        await self._database.aput_many(batch)
        if durable:
            await self._database.aflush()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every write queued so far is committed (see :meth:`SQLiteDatabase.flush`)."""
        return self._database.flush(timeout)

    async def aflush(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109 - mirrors the sync twin
        """Async :meth:`flush`."""
        return await self._database.aflush(timeout)

    # --- reading ------------------------------------------------------------------------------

    def read_sync(
        self,
        *,
        since: float | None = None,
        after: int | None = None,
        level: str | None = None,
        min_level: str | None = None,
        limit: int | None = None,
    ) -> Iterator[LogEntry]:
        """Stream entries oldest first; see :mod:`observabilipy.core.ports` for the filters."""
        selection = _Selection.of(since, after, level, min_level, limit)
        self._refuse_if_closed()
        self._database.flush_pending()
        return self._entries(selection)

    def _entries(self, selection: _Selection | None) -> Iterator[LogEntry]:
        if selection is None:
            return
        cursor = self._database.execute(*selection.query(_ENTRY_COLUMNS))
        try:
            for row in cursor:
                yield _entry(row)
        except sqlite3.DatabaseError as exc:
            raise self._database.read_error(exc) from exc
        finally:
            cursor.close()

    def read(
        self,
        *,
        since: float | None = None,
        after: int | None = None,
        level: str | None = None,
        min_level: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[LogEntry]:
        """Async twin of :meth:`read_sync`, through aiosqlite (arguments are checked at the call)."""
        selection = _Selection.of(since, after, level, min_level, limit)
        self._refuse_if_closed()
        return self._aentries(selection)

    async def _aentries(self, selection: _Selection | None) -> AsyncIterator[LogEntry]:
        if selection is None:
            return
        database = self._database
        await database.aflush_pending()
        async with database.aconnect() as conn:
            try:
                async with conn.execute(*selection.query(_ENTRY_COLUMNS)) as cursor:
                    while rows := await cursor.fetchmany(_FETCH):
                        for row in rows:
                            yield _entry(cast("tuple[Any, ...]", row))
            except sqlite3.DatabaseError as exc:
                raise database.read_error(exc) from exc

    def read_ndjson_sync(
        self,
        *,
        since: float | None = None,
        after: int | None = None,
        level: str | None = None,
        min_level: str | None = None,
        limit: int | None = None,
    ) -> Iterator[bytes]:
        """The entries :meth:`read_sync` selects, as NDJSON chunks of about 64 KiB.

        Each line is the object core's ``encode_logs_ndjson`` writes (keys ``id``,
        ``timestamp``, ``level``, ``message``, ``attributes``), built by SQLite's
        ``json_object()`` without making entries: the fast path for HTTP responses.
        SQLite writes timestamps with 15 significant digits (10 µs at today's
        dates); page with ``after`` and the ids, which are exact.
        """
        selection = _Selection.of(since, after, level, min_level, limit)
        self._refuse_if_closed()
        self._database.flush_pending()
        return chunks(self._ndjson_blocks(selection))

    def _ndjson_blocks(self, selection: _Selection | None) -> Iterator[str]:
        columns = _NDJSON_COLUMNS
        while selection is not None:
            cursor = self._database.execute(*selection.query(columns))
            last_id: int | None = None
            delivered = 0
            try:
                while rows := cursor.fetchmany(_FETCH):
                    yield _ndjson_block(rows)
                    last_id = _id_of_line(rows[-1][0])
                    delivered += len(rows)
                return
            except sqlite3.DatabaseError as exc:
                if columns is _NDJSON_CHECKED_COLUMNS:
                    raise self._database.read_error(exc) from exc
                # A row whose attributes are not JSON: go on from the last row delivered,
                # checking every row from there.
                columns = _NDJSON_CHECKED_COLUMNS
                selection = selection.rest(last_id, delivered)
            finally:
                cursor.close()

    def read_ndjson(
        self,
        *,
        since: float | None = None,
        after: int | None = None,
        level: str | None = None,
        min_level: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[bytes]:
        """Async twin of :meth:`read_ndjson_sync`, through aiosqlite."""
        selection = _Selection.of(since, after, level, min_level, limit)
        self._refuse_if_closed()
        return achunks(self._andjson_blocks(selection))

    async def _andjson_blocks(self, selection: _Selection | None) -> AsyncIterator[str]:
        if selection is None:
            return
        database = self._database
        await database.aflush_pending()
        columns = _NDJSON_COLUMNS
        async with database.aconnect() as conn:
            while selection is not None:
                last_id: int | None = None
                delivered = 0
                try:
                    async with conn.execute(*selection.query(columns)) as cursor:
                        while rows := await cursor.fetchmany(_FETCH):
                            block = cast("list[tuple[Any, ...]]", rows)
                            yield _ndjson_block(block)
                            last_id = _id_of_line(block[-1][0])
                            delivered += len(block)
                    return
                except sqlite3.DatabaseError as exc:
                    if columns is _NDJSON_CHECKED_COLUMNS:
                        raise database.read_error(exc) from exc
                    columns = _NDJSON_CHECKED_COLUMNS
                    selection = selection.rest(last_id, delivered)

    # --- counting -----------------------------------------------------------------------------

    def _count_sync(self, sql: str, params: tuple[object, ...] = ()) -> int:
        self._refuse_if_closed()
        self._database.flush_pending()
        row = self._database.execute(sql, params).fetchone()
        return int(row[0])

    async def _count(self, sql: str, params: tuple[object, ...] = ()) -> int:
        self._refuse_if_closed()
        database = self._database
        await database.aflush_pending()
        async with database.aconnect() as conn:
            try:
                async with conn.execute(sql, params) as cursor:
                    row = await cursor.fetchone()
            except sqlite3.DatabaseError as exc:
                raise database.read_error(exc) from exc
        return int(row[0]) if row is not None else 0

    def count_sync(self) -> int:
        """How many entries are stored."""
        return self._count_sync("SELECT count(*) FROM logs")

    async def count(self) -> int:
        """Async twin of :meth:`count_sync`."""
        return await self._count("SELECT count(*) FROM logs")

    def count_by_level_sync(self, level: str) -> int:
        """How many entries of ``level`` (any casing, WARN for WARNING) are stored."""
        canonical = normalize_level(level)
        return self._count_sync("SELECT count(*) FROM logs WHERE level = ?", (canonical,))

    async def count_by_level(self, level: str) -> int:
        """Async twin of :meth:`count_by_level_sync`."""
        canonical = normalize_level(level)
        return await self._count("SELECT count(*) FROM logs WHERE level = ?", (canonical,))

    def count_after_sync(self, after: int | None) -> int:
        """How many entries have ``id > after`` (None: all); a range of the primary key."""
        cursor = check_after(after)
        return self._count_sync("SELECT count(*) FROM logs WHERE id > ?", (cursor or 0,))

    async def count_after(self, after: int | None) -> int:
        """Async twin of :meth:`count_after_sync`."""
        cursor = check_after(after)
        return await self._count("SELECT count(*) FROM logs WHERE id > ?", (cursor or 0,))

    # --- export cursors (the ``export_cursors`` table, see ExportCursors) ---------------------

    def load_cursor_sync(self, key: str) -> int | None:
        """The export cursor saved under ``key`` (None: never saved)."""
        self._refuse_if_closed()
        return self._cursors.load_sync(key)

    async def load_cursor(self, key: str) -> int | None:
        """Async twin of :meth:`load_cursor_sync`."""
        self._refuse_if_closed()
        return await self._cursors.load(key)

    def save_cursor_sync(self, key: str, value: int) -> None:
        """Keep the export cursor ``value`` under ``key`` (queued, as writes are)."""
        self._refuse_if_closed()
        self._cursors.save_sync(key, value)

    async def save_cursor(self, key: str, value: int) -> None:
        """Async twin of :meth:`save_cursor_sync`."""
        self._refuse_if_closed()
        await self._cursors.save(key, value)

    # --- deleting (through the writer, so deletes serialise with writes) ----------------------

    def delete_before_sync(self, timestamp: float) -> int:
        """Delete entries with ``timestamp < timestamp``; return how many went."""
        cutoff = validate_timestamp(timestamp, field="timestamp")
        self._refuse_if_closed()
        return self._database.call(rowcount_of("DELETE FROM logs WHERE timestamp < ?", cutoff))

    async def delete_before(self, timestamp: float) -> int:
        """Async twin of :meth:`delete_before_sync`."""
        cutoff = validate_timestamp(timestamp, field="timestamp")
        self._refuse_if_closed()
        return await self._database.acall(
            rowcount_of("DELETE FROM logs WHERE timestamp < ?", cutoff)
        )

    def delete_by_level_before_sync(self, level: str, timestamp: float) -> int:
        """Delete entries of ``level`` older than ``timestamp``; return how many went."""
        job = rowcount_of(
            "DELETE FROM logs WHERE level = ? AND timestamp < ?",
            normalize_level(level),
            validate_timestamp(timestamp, field="timestamp"),
        )
        self._refuse_if_closed()
        return self._database.call(job)

    async def delete_by_level_before(self, level: str, timestamp: float) -> int:
        """Async twin of :meth:`delete_by_level_before_sync`."""
        job = rowcount_of(
            "DELETE FROM logs WHERE level = ? AND timestamp < ?",
            normalize_level(level),
            validate_timestamp(timestamp, field="timestamp"),
        )
        self._refuse_if_closed()
        return await self._database.acall(job)

    def delete_oldest_sync(self, count: int) -> int:
        """Delete the ``count`` earliest-written entries; return how many went."""
        wanted = check_count(count)
        self._refuse_if_closed()
        if not wanted:
            return 0
        return self._database.call(rowcount_of(_DELETE_OLDEST, wanted))

    async def delete_oldest(self, count: int) -> int:
        """Async twin of :meth:`delete_oldest_sync`."""
        wanted = check_count(count)
        self._refuse_if_closed()
        if not wanted:
            return 0
        return await self._database.acall(rowcount_of(_DELETE_OLDEST, wanted))

    def clear_sync(self) -> None:
        """Delete every entry; ids keep counting up from where they were."""
        self._refuse_if_closed()
        self._database.call(rowcount_of("DELETE FROM logs"))

    async def clear(self) -> None:
        """Async twin of :meth:`clear_sync`."""
        self._refuse_if_closed()
        await self._database.acall(rowcount_of("DELETE FROM logs"))

    # --- closing ------------------------------------------------------------------------------

    def close_sync(self) -> None:
        """Commit what is queued; close the database if this storage opened it (idempotent).

        Later calls, except close, raise ObservabilityError.
        """
        if self._closed:
            return
        self._closed = True
        if self._owns_database:
            self._database.close()
        elif not self._database.closed:
            self._database.flush()

    async def close(self) -> None:
        """Async twin of :meth:`close_sync` (the final commit is awaited)."""
        if self._closed:
            return
        self._closed = True
        if self._owns_database:
            await self._database.aclose()
        elif not self._database.closed:
            await self._database.aflush()


# Ids, not rowids of a scan: the primary key walk stops after `count` rows.
_DELETE_OLDEST: Final = "DELETE FROM logs WHERE id IN (SELECT id FROM logs ORDER BY id LIMIT ?)"


def _checked(entry: object) -> LogEntry:
    if isinstance(entry, LogEntry):  # a subclass: store a plain copy
        return _trusted_log_entry(entry.timestamp, entry.level, entry.message, entry.attributes)
    raise ValidationError("entry", f"must be a LogEntry, got {type(entry).__name__}")


def _checked_batch(entries: Iterable[LogEntry]) -> list[LogEntry]:
    batch = entries if type(entries) is list else list(entries)
    for entry in batch:
        if type(entry) is not LogEntry:
            return [e if type(e) is LogEntry else _checked(e) for e in batch]
    return batch
