"""``observabilipy query``: read a SQLite file of observabilipy directly, read-only, streaming.

:func:`open_database` opens a file without ever creating, migrating or
writing it, and turns every reason it cannot be read into one line.
:func:`log_query` and :func:`metrics_query` build the exact SQL the command
runs (``--explain`` shows its plan): rows come in id order from the indexes
the schema has, ``(level, id)`` for a level filter and ``(name, id)`` for a
metric name, so ``--level error --limit 100`` reads about 100 index entries
whatever the size of the file.  Rows stream from the cursor to the output:
memory stays flat for any number of rows.

``--grep`` keeps entries whose message contains the text, ignoring case: the
rule of the HTTP API's ``q`` (``casefold()``), as a SQL function.

>>> sql, params = log_query(level="error", limit=100)
>>> sql
'SELECT id, timestamp, level, message, attributes FROM logs WHERE level = :level0 ORDER BY id LIMIT :limit'
>>> params
{'level0': 'ERROR', 'limit': 100}
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import quote

from observabilipy.cli.errors import CLIError
from observabilipy.cli.exposition import format_labels, format_value
from observabilipy.cli.render import escape, log_line
from observabilipy.cli.times import format_time
from observabilipy.core.levels import LEVELS, levels_at_or_above, normalize_level
from observabilipy.core.metrics import Registry
from observabilipy.sqlite import SQLiteDatabase, SQLiteStorageError
from observabilipy.sqlite.database import first_id_newer_than

__all__ = [
    "FORMATS",
    "explain",
    "log_query",
    "metrics_query",
    "open_database",
    "register_functions",
    "write_logs",
    "write_metrics",
]

#: Output formats of ``query``.
FORMATS: Final = ("table", "json", "ndjson")

#: The SQL function behind ``--grep``: ``observabilipy_contains(message, casefolded_text)``.
CONTAINS_FUNCTION: Final = "observabilipy_contains"

_LOG_COLUMNS: Final = "id, timestamp, level, message, attributes"
# One JSON object per row, built by SQLite: the keys and order of the HTTP API's NDJSON.
_LOG_JSON_COLUMN: Final = (
    "json_object('id', id, 'timestamp', timestamp, 'level', level, 'message', message, "
    "'attributes', CASE WHEN substr(attributes, 1, 1) = '{' AND json_valid(attributes) "
    "THEN json(attributes) ELSE json_object('_raw', attributes) END)"
)
_METRIC_COLUMNS: Final = "id, name, timestamp, value, labels, kind"

# Rows fetched per round trip and written per call.
_FETCH: Final = 256


def _contains(message: object, needle: str) -> bool:
    return isinstance(message, str) and needle in message.casefold()


def register_functions(conn: sqlite3.Connection) -> None:
    """Add the SQL function ``--grep`` uses to ``conn``.

    >>> conn = sqlite3.connect(":memory:")
    >>> register_functions(conn)
    >>> conn.execute("SELECT observabilipy_contains('Disk FULL', 'disk full')").fetchone()
    (1,)
    """
    conn.create_function(CONTAINS_FUNCTION, 2, _contains, deterministic=True)


def log_query(
    *,
    json_rows: bool = False,
    since: float | None = None,
    level: str | None = None,
    min_level: str | None = None,
    grep: str | None = None,
    limit: int | None = None,
    newest: bool = False,
) -> tuple[str, dict[str, object]]:
    """The SQL (and parameters) selecting log entries, oldest first (``newest``: newest first).

    Rows are ``id, timestamp, level, message, attributes``, or with ``json_rows``
    one JSON object text per row.  A ``min_level`` read is one ordered walk of the
    ``(level, id)`` index per level, merged by id: no sorting, so it streams.

    >>> sql, params = log_query(min_level="error", grep="Disk", newest=True)
    >>> print(sql.replace(" UNION ALL ", "\\nUNION ALL "))
    SELECT id, timestamp, level, message, attributes FROM logs WHERE level = :level0 AND observabilipy_contains(message, :grep)
    UNION ALL SELECT id, timestamp, level, message, attributes FROM logs WHERE level = :level1 AND observabilipy_contains(message, :grep) ORDER BY id DESC
    >>> params
    {'grep': 'disk', 'level0': 'ERROR', 'level1': 'CRITICAL'}
    """
    columns = _LOG_JSON_COLUMN + ", id" if json_rows else _LOG_COLUMNS
    conditions: list[str] = []
    params: dict[str, object] = {}
    if since is not None:
        # Start at the first id newer than `since`, found through the timestamp index.
        conditions.append(f"id >= {first_id_newer_than('logs')}")
        conditions.append("timestamp > :since")
        params["since"] = since
    if grep:
        conditions.append(f"{CONTAINS_FUNCTION}(message, :grep)")
        params["grep"] = grep.casefold()
    levels = _levels(level, min_level)
    if levels is None:
        arms = [conditions]
    elif not levels:
        arms = [["0"]]  # --level info --min-level error: nothing can match
    else:
        arms = []
        for n, name in enumerate(levels):
            arms.append([f"level = :level{n}", *conditions])
            params[f"level{n}"] = name
    sql = " UNION ALL ".join(
        f"SELECT {columns} FROM logs" + (" WHERE " + " AND ".join(arm) if arm else "")
        for arm in arms
    )
    sql += " ORDER BY id DESC" if newest else " ORDER BY id"
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = limit
    return sql, params


def _levels(level: str | None, min_level: str | None) -> tuple[str, ...] | None:
    """The levels a read keeps; None for all of them."""
    levels: tuple[str, ...] | None = None
    if level is not None:
        levels = (normalize_level(level),)
    if min_level is not None:
        severe = levels_at_or_above(min_level)
        levels = severe if levels is None else tuple(n for n in levels if n in severe)
    if levels is not None and len(levels) == len(LEVELS):
        return None
    return levels


def metrics_query(
    *,
    since: float | None = None,
    name: str | None = None,
    limit: int | None = None,
    newest: bool = False,
) -> tuple[str, dict[str, object]]:
    """The SQL (and parameters) selecting stored metric samples, in id order.

    ``name`` matches a sample name (``http_requests_total``) or its family's
    (``http_request_duration_seconds`` for the ``_bucket``, ``_sum`` and ``_count``
    samples): two ordered index walks merged by id.

    >>> metrics_query(limit=5)
    ('SELECT id, name, timestamp, value, labels, kind FROM metric_samples ORDER BY id LIMIT :limit', {'limit': 5})
    """
    conditions: list[str] = []
    params: dict[str, object] = {}
    if since is not None:
        conditions.append(f"id >= {first_id_newer_than('metric_samples')}")
        conditions.append("timestamp > :since")
        params["since"] = since
    arms = [conditions]
    if name is not None:
        arms = [
            ["name = :name", *conditions],
            ["family = :name", "name <> :name", *conditions],
        ]
        params["name"] = name
    sql = " UNION ALL ".join(
        f"SELECT {_METRIC_COLUMNS} FROM metric_samples"
        + (" WHERE " + " AND ".join(arm) if arm else "")
        for arm in arms
    )
    sql += " ORDER BY id DESC" if newest else " ORDER BY id"
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = limit
    return sql, params


def open_database(path: str | os.PathLike[str]) -> SQLiteDatabase:
    """Open ``path`` read-only; :class:`CLIError` with one line when it cannot be read.

    Refuses a missing path, a file that is not SQLite or is corrupt, a SQLite
    file observabilipy did not write, a 1.x file (it needs an upgrade, which
    writes) and a file of a newer schema.  Nothing is ever created or changed.

    >>> open_database("no/such/file.db")
    Traceback (most recent call last):
    ...
    observabilipy.cli.errors.CLIError: no/such/file.db: no such file
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise CLIError(f"{name}: no such file")
    if not os.path.isfile(name):
        raise CLIError(f"{name}: is not a file")
    _check_observabilipy_file(name)
    try:
        database = SQLiteDatabase(name, read_only=True, registry=Registry())
    except SQLiteStorageError as error:
        raise CLIError(str(error)) from None
    database.read(register_functions)
    return database


def _check_observabilipy_file(name: str) -> None:
    """Refuse, with a useful line, a file that is not a SQLite file observabilipy 2 wrote."""
    uri = "file:" + quote(str(Path(name).resolve())) + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as error:
        raise CLIError(f"{name}: cannot be opened ({error})") from None
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as error:
        raise CLIError(f"{name}: is not a SQLite database, or is corrupt ({error})") from None
    finally:
        conn.close()
    if "observabilipy_meta" in tables:
        return
    if "logs" in tables:
        raise CLIError(
            f"{name}: was written by observabilipy 1.x; open a copy once with observabilipy 2 "
            "(SQLiteDatabase('copy.db').close()) to upgrade it, then query the copy"
        )
    raise CLIError(f"{name}: is a SQLite database, but not one observabilipy wrote")


def explain(database: SQLiteDatabase, sql: str, params: dict[str, object]) -> list[str]:
    """The lines of SQLite's ``EXPLAIN QUERY PLAN`` for ``sql`` (what ``--explain`` prints)."""
    return [str(row[3]) for row in _rows(database, "EXPLAIN QUERY PLAN " + sql, params)]


def _rows(
    database: SQLiteDatabase, sql: str, params: dict[str, object]
) -> Iterator[tuple[Any, ...]]:
    """Stream the rows of ``sql``; a failing read is a one-line :class:`CLIError`."""
    for batch in _batches(database, sql, params):
        yield from batch


def _batches(
    database: SQLiteDatabase, sql: str, params: dict[str, object]
) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``sql`` a few hundred at a time: one write per batch, not per row."""
    try:
        cursor = database.execute(sql, params)
    except SQLiteStorageError as error:
        raise CLIError(str(error)) from None
    try:
        while rows := cursor.fetchmany(_FETCH):
            yield rows
    except sqlite3.DatabaseError as error:
        raise CLIError(str(database.read_error(error))) from None
    finally:
        cursor.close()


def write_logs(
    database: SQLiteDatabase,
    out: IO[str],
    *,
    output: str = "table",
    colour: bool = False,
    **filters: Any,
) -> int:
    """Stream the entries :func:`log_query` selects to ``out``; return how many."""
    sql, params = log_query(json_rows=output != "table", **filters)
    if output != "table":
        # Each row is one JSON text built by SQLite: written a batch at a time.
        return _write_json(out, _batches(database, sql, params), array=output == "json")
    out.write(f"{'ID':>8}  {'TIME':<24} {'LEVEL':<8} MESSAGE\n")
    count = 0
    for entry_id, timestamp, level, message, attributes in _rows(database, sql, params):
        line = log_line(timestamp, level, message, _attributes(attributes), colour=colour)
        out.write(f"{entry_id:>8}  {line}\n")
        count += 1
    return count


def write_metrics(
    database: SQLiteDatabase, out: IO[str], *, output: str = "table", **filters: Any
) -> int:
    """Stream the samples :func:`metrics_query` selects to ``out``; return how many."""
    rows = _rows(database, *metrics_query(**filters))
    if output == "table":
        out.write(f"{'ID':>8}  {'TIME':<24} {'TYPE':<9} {'VALUE':>14}  SERIES\n")
        count = 0
        for sample_id, name, timestamp, value, labels, kind in rows:
            shown = format_value(math.nan if value is None else float(value))
            series = escape(name + format_labels(_labels(labels)))
            out.write(
                f"{sample_id:>8}  {format_time(timestamp):<24} {kind:<9} {shown:>14}  {series}\n"
            )
            count += 1
        return count
    documents = (
        (
            json.dumps(
                {
                    "id": sample_id,
                    "name": name,
                    "timestamp": timestamp,
                    "value": _json_value(value),
                    "labels": _labels(labels),
                    "kind": kind,
                },
                ensure_ascii=False,
                separators=(",", ":"),
            ),
        )
        for sample_id, name, timestamp, value, labels, kind in rows
    )
    return _write_json(out, _batched(documents), array=output == "json")


def _write_json(out: IO[str], batches: Iterable[Sequence[tuple[Any, ...]]], *, array: bool) -> int:
    """NDJSON lines, or one JSON array written item by item; each row holds one JSON text."""
    count = 0
    separator = ",\n" if array else "\n"
    if array:
        out.write("[")
    for batch in batches:
        text = separator.join([row[0] for row in batch])
        if array:
            out.write(("\n" if count == 0 else ",\n") + text)
        else:
            out.write(text + "\n")
        count += len(batch)
    if array:
        out.write("\n]\n" if count else "]\n")
    return count


def _batched(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    while batch := list(islice(rows, _FETCH)):
        yield batch


def _attributes(text: object) -> dict[str, Any]:
    if text == "{}" or text is None:
        return {}
    try:
        value = json.loads(str(text))
    except ValueError:
        return {"_raw": text}
    return value if isinstance(value, dict) else {"_raw": text}


def _labels(text: object) -> dict[str, str]:
    try:
        value = json.loads(str(text))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _json_value(value: float | None) -> float | str:
    """NaN (stored as NULL) and infinities as strings, as the HTTP API writes them."""
    if value is None or math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return float(value)
