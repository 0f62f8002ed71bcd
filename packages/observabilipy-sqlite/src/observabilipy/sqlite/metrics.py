"""SQLiteMetricsStorage: cumulative metric points of many processes in one SQLite file.

Every write stores, in one transaction of the database's writer:

- the points, as history rows of ``metric_samples`` (what ``read`` returns);
- each series' newest point for this process incarnation in ``metric_latest``,
  with its exposition label text rendered once, here;
- each family's kind, help, unit and gauge mode in ``metric_families`` (the mode
  from the registry's Gauge, ``multiprocess_mode``);
- this process's row of ``metric_processes`` (``last_seen``).

The exposition summed over processes is built from the last three
(:meth:`SQLiteMetricsStorage.exposition`, in :mod:`observabilipy.sqlite.multiprocess`).
Retention deletes history only: ``metric_latest`` is the multi-process truth.

A process incarnation is ``"<hostname>/<pid>/<start time ns>"``, made when the
storage is created and made again in a forked child (gunicorn forks workers
after the app and its storage exist), so a restarted worker never overwrites
the points of the one before it.

>>> from observabilipy.core import Registry
>>> registry = Registry()
>>> registry.counter("jobs", "Jobs run.", labelnames=("queue",)).labels(queue="mail").inc(3)
>>> storage = SQLiteMetricsStorage(":memory:", registry=registry)
>>> storage.write_many_sync(registry.snapshot(timestamp=10.0))
>>> [(s.name, s.labels, s.value, s.help) for s in storage.read_sync(name="jobs")]
[('jobs_total', {'queue': 'mail'}, 3.0, 'Jobs run.')]
>>> b"".join(storage.read_ndjson_sync())
b'{"id":1,"name":"jobs_total","timestamp":10.0,"value":3.0,"labels":{"queue":"mail"},"kind":"counter"}\\n'
>>> storage.close_sync()
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, Final, cast

from observabilipy.core.errors import ConfigurationError, ObservabilityError, ValidationError
from observabilipy.core.exposition import _family_of
from observabilipy.core.metrics import Gauge, Registry, default_registry
from observabilipy.core.models import (
    MetricSample,
    _trusted_metric_sample,
    validate_metric_name,
    validate_timestamp,
)
from observabilipy.core.storage.memory import check_after, check_count, check_limit
from observabilipy.sqlite._encoding import (
    achunks,
    chunks,
    label_text,
    labels_from_text,
    labels_text,
    safe_text,
    value_json,
)
from observabilipy.sqlite.database import (
    SQLiteDatabase,
    first_id_newer_than,
    insert_rows,
    rowcount_of,
)
from observabilipy.sqlite.schema import ExportCursors

__all__ = ["SQLiteMetricsStorage", "process_incarnation"]

_NAN: Final = float("nan")
_FETCH: Final = 256

# Series whose texts a storage remembers between snapshots (a registry keeps at most
# 10,000 per family by default).
_SERIES_CACHE_SIZE: Final = 100_000

_SAMPLE_COLUMNS: Final = (
    "s.id, s.name, s.timestamp, s.value, s.labels, s.kind, "
    "coalesce((SELECT help FROM metric_families WHERE family = s.family), '')"
)
_NDJSON_COLUMNS: Final = (
    "s.id, json_quote(s.name), s.timestamp, s.value, "
    "CASE WHEN json_valid(s.labels) THEN s.labels ELSE '{}' END, json_quote(s.kind)"
)

_INSERT_HISTORY: Final = (
    "INSERT INTO metric_samples (name, family, kind, timestamp, value, labels, process)"
)
_UPSERT_LATEST: Final = (
    "INSERT INTO metric_latest (process, name, labels, family, kind, timestamp, value, label_text)"
)
# Keep the newest point: a late write of an older snapshot never replaces a newer one.
_ON_LATEST_CONFLICT: Final = (
    "ON CONFLICT (process, name, labels) DO UPDATE SET family = excluded.family, "
    "kind = excluded.kind, timestamp = excluded.timestamp, value = excluded.value, "
    "label_text = excluded.label_text WHERE excluded.timestamp >= metric_latest.timestamp"
)
_UPSERT_FAMILY: Final = "INSERT INTO metric_families (family, kind, help, unit, gauge_mode)"
# Help and unit only replace what is there when given; the gauge mode only when the
# registry knows the family (a process without it must not reset another's mode).
_ON_FAMILY_CONFLICT: Final = (
    "ON CONFLICT (family) DO UPDATE SET kind = excluded.kind, "
    "help = CASE WHEN excluded.help <> '' THEN excluded.help ELSE metric_families.help END, "
    "unit = CASE WHEN excluded.unit <> '' THEN excluded.unit ELSE metric_families.unit END"
)
_UPSERT_PROCESS: Final = (
    "INSERT INTO metric_processes (process, hostname, pid, started, last_seen) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (process) DO UPDATE SET last_seen = excluded.last_seen"
)
_DELETE_OLDEST: Final = (
    "DELETE FROM metric_samples WHERE id IN (SELECT id FROM metric_samples ORDER BY id LIMIT ?)"
)


def process_incarnation() -> str:
    """This process's incarnation id: ``"<hostname>/<pid>/<start time ns>"``.

    >>> import os
    >>> process_incarnation().split("/")[1] == str(os.getpid())
    True
    """
    return f"{socket.gethostname()}/{os.getpid()}/{time.time_ns()}"


class _Incarnation:
    """Who writes: the process id string and the values of its metric_processes row."""

    __slots__ = ("hostname", "id", "pid", "started")

    def __init__(self) -> None:
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.started = time.time()
        self.id = f"{self.hostname}/{self.pid}/{time.time_ns()}"


class _StoreSamples:
    """The writer job of one write: history, latest points, families, the process row."""

    __slots__ = ("incarnation", "samples", "storage")

    def __init__(
        self, storage: SQLiteMetricsStorage, samples: list[MetricSample], incarnation: _Incarnation
    ) -> None:
        self.storage = storage
        self.samples = samples
        self.incarnation = incarnation

    def __call__(self, conn: sqlite3.Connection) -> None:
        process = self.incarnation.id
        history: list[object] = []
        latest: list[object] = []
        families: dict[str, tuple[str, str]] = {}  # family -> (kind, help), newest wins
        add_history = history.extend
        add_latest = latest.extend
        series_of = self.storage._series
        for sample in self.samples:
            name, kind, value = sample.name, sample.kind, sample.value
            family, family_kind, key, text = series_of(name, kind, sample.labels)
            if value != value:
                value = None  # type: ignore[assignment]  # stored as NULL either way; say so
            add_history((name, family, kind, sample.timestamp, value, key, process))
            add_latest((process, name, key, family, kind, sample.timestamp, value, text))
            if sample.help or family not in families:
                families[family] = (family_kind, sample.help)
        insert_rows(conn, _INSERT_HISTORY, 7, history)
        insert_rows(conn, _UPSERT_LATEST, 8, latest, _ON_LATEST_CONFLICT)
        known: list[object] = []
        unknown: list[object] = []
        for family, (kind, help) in families.items():
            unit, mode = self.storage._family_settings(family)
            row = (family, kind, safe_text(help), unit, mode or "latest")
            (known if mode is not None else unknown).extend(row)
        if known:
            insert_rows(
                conn,
                _UPSERT_FAMILY,
                5,
                known,
                _ON_FAMILY_CONFLICT + ", gauge_mode = excluded.gauge_mode",
            )
        if unknown:
            insert_rows(conn, _UPSERT_FAMILY, 5, unknown, _ON_FAMILY_CONFLICT)
        me = self.incarnation
        conn.execute(_UPSERT_PROCESS, (process, me.hostname, me.pid, me.started, time.time()))


def _metrics_query(
    columns: str, since: object, after: object, name: object, limit: object
) -> tuple[str, dict[str, object]] | None:
    """Check the read arguments; the SQL and parameters, or None when nothing can match."""
    cursor = check_after(after)
    checked_limit = check_limit(limit)
    cutoff = None if since is None else validate_timestamp(since, field="since")
    family = None if name is None else validate_metric_name(name, field="name")
    if checked_limit == 0:
        return None
    conditions: list[str] = []
    params: dict[str, object] = {}
    if cursor is not None:
        conditions.append("s.id > :after")
        params["after"] = cursor
    if cutoff is not None:
        conditions.append(f"s.id >= {first_id_newer_than('metric_samples')}")
        conditions.append("s.timestamp > :since")
        params["since"] = cutoff
    arms: list[list[str]] = [conditions]
    if family is not None:
        # `name` matches a sample name or a family name: two ordered index walks,
        # (name, id) and (family, id), merged by id; the second skips what the first has.
        arms = [
            ["s.name = :name", *conditions],
            ["s.family = :name", "s.name <> :name", *conditions],
        ]
        params["name"] = family
    selects = [
        f"SELECT {columns} FROM metric_samples AS s"
        + (" WHERE " + " AND ".join(arm) if arm else "")
        for arm in arms
    ]
    sql = " UNION ALL ".join(selects) + " ORDER BY 1"
    if checked_limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = checked_limit
    return sql, params


def _sample(row: tuple[Any, ...]) -> MetricSample:
    sample_id, name, timestamp, value, labels, kind, help = row
    return _trusted_metric_sample(
        name,
        timestamp,
        _NAN if value is None else value,
        labels_from_text(labels),
        kind,
        help,
        sample_id,
    )


def _ndjson_block(rows: list[tuple[Any, ...]]) -> str:
    return "".join(
        [
            f'{{"id":{i},"name":{n},"timestamp":{t!r},"value":{value_json(v)},'
            f'"labels":{labels},"kind":{k}}}\n'
            for i, n, t, v, labels, k in rows
        ]
    )


class SQLiteMetricsStorage:
    """Metric samples in a SQLite file; implements :class:`~observabilipy.core.ports.MetricsStoragePort`.

    ``database`` is a :class:`SQLiteDatabase` (shared with other storages and
    closed by whoever opened it) or a path, which this storage opens with
    ``database_options`` and closes in :meth:`close_sync`.  ``registry``
    (default: the default registry) says each gauge family's
    ``multiprocess_mode`` and unit; when this storage opens its own database,
    its drops are counted there too.

    Writes queue one job for the writer and return; ``durable=True`` waits for
    the commit.  A read first commits this process's queued writes.

    >>> from observabilipy.core import MetricSample
    >>> storage = SQLiteMetricsStorage(":memory:")
    >>> storage.write_sync(MetricSample(name="temp", timestamp=1.0, value=float("nan"), kind="gauge"))
    >>> [(s.name, s.value) for s in storage.read_sync()]
    [('temp', nan)]
    >>> storage.close_sync()
    """

    def __init__(
        self,
        database: SQLiteDatabase | str | os.PathLike[str],
        *,
        registry: Registry | None = None,
        **database_options: Any,
    ) -> None:
        self._registry = default_registry if registry is None else registry
        if isinstance(database, SQLiteDatabase):
            if database_options:
                raise ConfigurationError(
                    f"{', '.join(sorted(database_options))}: options are for a path; "
                    "the SQLiteDatabase given is already open"
                )
            self._database = database
            self._owns_database = False
        else:
            database_options.setdefault("registry", self._registry)
            self._database = SQLiteDatabase(database, **database_options)
            self._owns_database = True
        self._incarnation = _Incarnation()
        # family -> (unit, gauge mode or None), from the registry; only families it knows.
        self._settings: dict[str, tuple[str, str | None]] = {}
        # A snapshot writes every series again: their texts are made once (writer thread only).
        self._series_texts: dict[tuple[object, ...], tuple[str, str, str, str]] = {}
        self._cursors = ExportCursors(self._database, "metrics")
        self._closed = False

    @property
    def database(self) -> SQLiteDatabase:
        """The database this storage writes to."""
        return self._database

    @property
    def registry(self) -> Registry:
        """The registry that gives gauge modes (and, in exposition, this process's live values)."""
        return self._registry

    @property
    def process(self) -> str:
        """This process's incarnation id, as written in the ``process`` columns.

        >>> storage = SQLiteMetricsStorage(":memory:")
        >>> storage.process.count("/")
        2
        >>> storage.close_sync()
        """
        return self._current_incarnation().id

    @property
    def dropped(self) -> int:
        """Items the database lost (queue full, storage failures); shared by its storages."""
        return self._database.dropped

    def __repr__(self) -> str:
        return f"<SQLiteMetricsStorage {self._database.path!r}>"

    def _current_incarnation(self) -> _Incarnation:
        incarnation = self._incarnation
        if incarnation.pid != os.getpid():  # a forked child is a new incarnation
            incarnation = self._incarnation = _Incarnation()
        return incarnation

    def _series(self, name: str, kind: str, labels: Mapping[str, str]) -> tuple[str, str, str, str]:
        """(family, family kind, canonical labels JSON, exposition label text) of a series."""
        key = (name, kind, *labels.items())
        texts = self._series_texts.get(key)
        if texts is None:
            family, family_kind, _ = _family_of(
                _trusted_metric_sample(name, 0.0, 0.0, labels, kind)
            )
            texts = (family, family_kind, labels_text(labels), label_text(labels, kind))
            if len(self._series_texts) >= _SERIES_CACHE_SIZE:
                self._series_texts.clear()  # label values that never repeat: start over
            self._series_texts[key] = texts
        return texts

    def _family_settings(self, family: str) -> tuple[str, str | None]:
        """(unit, gauge mode) of ``family`` from the registry; mode None when it is unknown."""
        settings = self._settings.get(family)
        if settings is None:
            found = self._registry.get(family)
            if found is None:
                return "", None  # not cached: the family may be registered later
            mode = found.multiprocess_mode if isinstance(found, Gauge) else "latest"
            settings = self._settings[family] = (found.unit, mode)
        return settings

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise ObservabilityError(
                "SQLiteMetricsStorage is closed; create a new storage to keep using the file"
            )

    def _job(self, samples: list[MetricSample]) -> _StoreSamples:
        return _StoreSamples(self, samples, self._current_incarnation())

    # --- writing ------------------------------------------------------------------------------

    def write_sync(self, sample: MetricSample, *, durable: bool = False) -> None:
        """Queue one sample; with ``durable=True`` return once it is committed."""
        self.write_many_sync([sample], durable=durable)

    def write_many_sync(self, samples: Iterable[MetricSample], *, durable: bool = False) -> None:
        """Queue several samples (one writer job, one transaction), in the given order."""
        batch = _checked_batch(samples)
        self._refuse_if_closed()
        if batch:
            self._database.submit(self._job(batch), items=len(batch))
            if durable:
                self._database.flush()

    async def write(self, sample: MetricSample, *, durable: bool = False) -> None:
        """Async twin of :meth:`write_sync` (queues; awaits only a full queue or ``durable``)."""
        await self.write_many([sample], durable=durable)

    async def write_many(self, samples: Iterable[MetricSample], *, durable: bool = False) -> None:
        """Async twin of :meth:`write_many_sync`."""
        batch = _checked_batch(samples)
        self._refuse_if_closed()
        if batch:
            await self._database.asubmit(self._job(batch), items=len(batch))
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
        name: str | None = None,
        limit: int | None = None,
    ) -> Iterator[MetricSample]:
        """Stream samples oldest first; ``name`` matches sample or family names."""
        query = _metrics_query(_SAMPLE_COLUMNS, since, after, name, limit)
        self._refuse_if_closed()
        self._database.flush_pending()
        return self._samples(query)

    def _samples(self, query: tuple[str, dict[str, object]] | None) -> Iterator[MetricSample]:
        if query is None:
            return
        cursor = self._database.execute(*query)
        try:
            for row in cursor:
                yield _sample(row)
        except sqlite3.DatabaseError as exc:
            raise self._database.read_error(exc) from exc
        finally:
            cursor.close()

    def read(
        self,
        *,
        since: float | None = None,
        after: int | None = None,
        name: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[MetricSample]:
        """Async twin of :meth:`read_sync`, through aiosqlite (arguments are checked at the call)."""
        query = _metrics_query(_SAMPLE_COLUMNS, since, after, name, limit)
        self._refuse_if_closed()
        return self._asamples(query)

    async def _arows(
        self, query: tuple[str, dict[str, object]] | None
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        if query is None:
            return
        database = self._database
        await database.aflush_pending()
        async with database.aconnect() as conn:
            try:
                async with conn.execute(*query) as cursor:
                    while rows := await cursor.fetchmany(_FETCH):
                        yield cast("list[tuple[Any, ...]]", rows)  # plain tuples: no row_factory
            except sqlite3.DatabaseError as exc:
                raise database.read_error(exc) from exc

    async def _asamples(
        self, query: tuple[str, dict[str, object]] | None
    ) -> AsyncIterator[MetricSample]:
        async for rows in self._arows(query):
            for row in rows:
                yield _sample(row)

    def read_ndjson_sync(
        self,
        *,
        since: float | None = None,
        after: int | None = None,
        name: str | None = None,
        limit: int | None = None,
    ) -> Iterator[bytes]:
        """The samples :meth:`read_sync` selects, as NDJSON chunks of about 64 KiB.

        Same objects as core's ``encode_metrics_ndjson`` (``id``, ``name``,
        ``timestamp``, ``value``, ``labels``, ``kind``; NaN and infinities as the
        strings ``"NaN"``, ``"+Inf"``, ``"-Inf"``), built without making samples.
        """
        query = _metrics_query(_NDJSON_COLUMNS, since, after, name, limit)
        self._refuse_if_closed()
        self._database.flush_pending()
        return chunks(self._ndjson_blocks(query))

    def _ndjson_blocks(self, query: tuple[str, dict[str, object]] | None) -> Iterator[str]:
        if query is None:
            return
        cursor = self._database.execute(*query)
        try:
            while rows := cursor.fetchmany(_FETCH):
                yield _ndjson_block(rows)
        except sqlite3.DatabaseError as exc:
            raise self._database.read_error(exc) from exc
        finally:
            cursor.close()

    def read_ndjson(
        self,
        *,
        since: float | None = None,
        after: int | None = None,
        name: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[bytes]:
        """Async twin of :meth:`read_ndjson_sync`, through aiosqlite."""
        query = _metrics_query(_NDJSON_COLUMNS, since, after, name, limit)
        self._refuse_if_closed()
        return achunks(self._andjson_blocks(query))

    async def _andjson_blocks(
        self, query: tuple[str, dict[str, object]] | None
    ) -> AsyncIterator[str]:
        async for rows in self._arows(query):
            yield _ndjson_block(rows)

    def exposition(self, *, registry: Registry | None = None, openmetrics: bool = False) -> str:
        """Prometheus (or OpenMetrics) text summed over every process writing this file.

        See :func:`observabilipy.sqlite.multiprocess.encode_exposition`.
        """
        from observabilipy.sqlite.multiprocess import encode_exposition

        return encode_exposition(self, registry=registry, openmetrics=openmetrics)

    # --- counting and deleting ----------------------------------------------------------------

    def _count_sync(self, sql: str, params: tuple[object, ...] = ()) -> int:
        self._refuse_if_closed()
        self._database.flush_pending()
        return int(self._database.execute(sql, params).fetchone()[0])

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
        """How many samples the history holds."""
        return self._count_sync("SELECT count(*) FROM metric_samples")

    async def count(self) -> int:
        """Async twin of :meth:`count_sync`."""
        return await self._count("SELECT count(*) FROM metric_samples")

    def count_after_sync(self, after: int | None) -> int:
        """How many history points have ``id > after`` (None: all); a range of the primary key."""
        cursor = check_after(after)
        return self._count_sync("SELECT count(*) FROM metric_samples WHERE id > ?", (cursor or 0,))

    async def count_after(self, after: int | None) -> int:
        """Async twin of :meth:`count_after_sync`."""
        cursor = check_after(after)
        return await self._count("SELECT count(*) FROM metric_samples WHERE id > ?", (cursor or 0,))

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

    def delete_before_sync(self, timestamp: float) -> int:
        """Delete history points with ``timestamp < timestamp``; return how many went.

        The latest point of each series per process (what exposition sums) stays.
        """
        cutoff = validate_timestamp(timestamp, field="timestamp")
        self._refuse_if_closed()
        return self._database.call(_delete_before(cutoff))

    async def delete_before(self, timestamp: float) -> int:
        """Async twin of :meth:`delete_before_sync`."""
        cutoff = validate_timestamp(timestamp, field="timestamp")
        self._refuse_if_closed()
        return await self._database.acall(_delete_before(cutoff))

    def delete_oldest_sync(self, count: int) -> int:
        """Delete the ``count`` earliest-written history points; return how many went."""
        wanted = check_count(count)
        self._refuse_if_closed()
        if not wanted:
            return 0
        return self._database.call(_delete_oldest(wanted))

    async def delete_oldest(self, count: int) -> int:
        """Async twin of :meth:`delete_oldest_sync`."""
        wanted = check_count(count)
        self._refuse_if_closed()
        if not wanted:
            return 0
        return await self._database.acall(_delete_oldest(wanted))

    def clear_sync(self) -> None:
        """Delete the whole history; ids keep counting up.  Latest points per process stay."""
        self._refuse_if_closed()
        self._database.call(_clear)

    async def clear(self) -> None:
        """Async twin of :meth:`clear_sync`."""
        self._refuse_if_closed()
        await self._database.acall(_clear)

    # --- closing ------------------------------------------------------------------------------

    def close_sync(self) -> None:
        """Commit what is queued; close the database if this storage opened it (idempotent)."""
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


def _delete_before(cutoff: float) -> Callable[[sqlite3.Connection], int]:
    return rowcount_of("DELETE FROM metric_samples WHERE timestamp < ?", cutoff)


def _delete_oldest(count: int) -> Callable[[sqlite3.Connection], int]:
    return rowcount_of(_DELETE_OLDEST, count)


_clear = rowcount_of("DELETE FROM metric_samples")


def _checked_batch(samples: Iterable[MetricSample]) -> list[MetricSample]:
    batch = list(samples)
    for sample in batch:
        if not isinstance(sample, MetricSample):
            raise ValidationError("sample", f"must be a MetricSample, got {type(sample).__name__}")
    return batch
