"""Many processes, one truth: the exposition of a SQLite file that several processes write.

gunicorn and uvicorn run an application in several worker processes.  Each
worker's runtime snapshots its own registry into the shared file, whose
``metric_latest`` table keeps the newest point of every series of every
process *incarnation* (one run of one process: ``<hostname>/<pid>/<start ns>``).
:func:`encode_exposition` turns those rows into one Prometheus text:

- counters and histograms are summed over incarnations, so a scrape of any
  worker shows the whole application's totals;
- gauges combine per their family's ``multiprocess_mode``: ``sum``, ``max`` and
  ``min`` over live processes (a NaN makes a sum NaN; max and min skip it),
  ``latest`` (the value with the newest timestamp, also from a process that
  has ended) or ``all`` (one series per live process, labelled
  ``process="<pid>"``, or ``"<hostname>/<pid>"`` for another host's);
- a restarted worker is a new incarnation, so its predecessor's rows still
  count and a counter never goes down.

An incarnation of this host is dead when no process has its pid, or when the
process holding the pid now started after it (Linux tells; elsewhere a later
incarnation registering the pid says so).  Other hosts' incarnations (a file
copied from another machine) are never judged.  :func:`compact` keeps the
table bounded: it folds the rows of dead incarnations into the
``__retired__`` pseudo-process, once a minute from the exposition.

>>> from observabilipy.core.metrics import Registry
>>> from observabilipy.sqlite.metrics import SQLiteMetricsStorage
>>> registry = Registry()
>>> jobs = registry.counter("jobs", "Jobs run", labelnames=("queue",))
>>> storage = SQLiteMetricsStorage(":memory:", registry=registry)
>>> jobs.labels(queue="mail").inc(2)
>>> storage.write_many_sync(registry.snapshot())   # what the runtime does at each interval
>>> jobs.labels(queue="mail").inc(3)               # recorded after that snapshot
>>> print(encode_exposition(storage), end="")      # the file's truth
# HELP jobs_total Jobs run
# TYPE jobs_total counter
jobs_total{queue="mail"} 2.0
>>> print(encode_exposition(storage, registry=registry), end="")  # this process live
# HELP jobs_total Jobs run
# TYPE jobs_total counter
jobs_total{queue="mail"} 5.0
>>> storage.close_sync()
"""

from __future__ import annotations

import functools
import math
import os
import socket
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final, NamedTuple

from observabilipy.core.exposition import _family_of, _header
from observabilipy.core.metrics import Gauge, Registry, _render_labels, format_float
from observabilipy.sqlite._encoding import label_text

if TYPE_CHECKING:
    from observabilipy.sqlite.metrics import SQLiteMetricsStorage

__all__ = ["COMPACT_INTERVAL", "RETIRED", "compact", "encode_exposition"]

#: The pseudo-process that holds the folded totals of incarnations that ended.
RETIRED: Final = "__retired__"

#: Seconds between the compactions that :func:`encode_exposition` starts on its own.
COMPACT_INTERVAL: Final = 60.0

# --- text ---------------------------------------------------------------------------------------


def _value_text(value: float | None) -> str:
    # SQLite stores NaN as NULL.  repr() is the canonical form below 1e6 (as in core's exposition).
    if value is None:
        return "NaN"
    return repr(value) if -1e6 < value < 1e6 else format_float(value)


# --- which incarnations are gone ----------------------------------------------------------------


class _Incarnation(NamedTuple):
    process: str
    hostname: str
    pid: int
    started: float


def _pid_gone(pid: int) -> bool:
    """Whether no process has this pid on this machine (False when we cannot tell)."""
    # On Windows os.kill(pid, 0) sends CTRL_C_EVENT: never probe there.  0 and
    # negative pids name process groups.
    if os.name != "posix" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: alive, run by another user
        return False
    return False


# An incarnation is made after its process started; this absorbs the rounding of the
# kernel's start time (clock ticks) and of the clocks compared.
_CLOCK_SLACK: Final = 1.0


def _process_started(pid: int) -> float | None:
    """When the process holding ``pid`` now started (Unix seconds); None where Linux cannot say."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            stat = stat_file.read()
        # Field 22, counted after the command name (which may hold spaces and parentheses).
        ticks = int(stat[stat.rindex(b")") + 2 :].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return time.time() - age


def _dead_incarnations(incarnations: Iterable[_Incarnation], hostname: str) -> set[str]:
    """The incarnations of this host whose process has ended.

    An incarnation is dead when no process has its pid, or when the process
    that has the pid now started after the incarnation was made (the pid was
    reused).  Where the start time of a process is unknown (not Linux), an
    incarnation is also dead when a later one registered the same pid.  Other
    hosts' incarnations are never judged: their pids mean nothing here.
    """
    by_pid: dict[int, list[_Incarnation]] = {}
    for incarnation in incarnations:
        if incarnation.hostname == hostname and incarnation.process != RETIRED:
            by_pid.setdefault(incarnation.pid, []).append(incarnation)
    dead: set[str] = set()
    for pid, group in by_pid.items():
        if _pid_gone(pid):
            dead.update(i.process for i in group)
            continue
        started = _process_started(pid)
        if started is not None:
            dead.update(i.process for i in group if i.started < started - _CLOCK_SLACK)
        else:
            newest = max(group, key=lambda i: i.started)
            dead.update(i.process for i in group if i is not newest)
    return dead


def _incarnations(conn: sqlite3.Connection) -> list[_Incarnation]:
    rows = conn.execute("SELECT process, hostname, pid, started FROM metric_processes")
    return [_Incarnation(*row) for row in rows]


# --- compaction ---------------------------------------------------------------------------------

# Counters and histogram parts of a dead incarnation are added to the retired totals.
_FOLD_SUMMED: Final = """
INSERT INTO metric_latest (process, name, labels, family, kind, timestamp, value, label_text)
SELECT :retired, name, labels, family, kind, timestamp, value, label_text
FROM metric_latest WHERE process = :process AND kind IN ('counter', 'histogram')
ON CONFLICT (process, name, labels) DO UPDATE SET
    value = metric_latest.value + excluded.value,
    timestamp = max(metric_latest.timestamp, excluded.timestamp)
"""

# A `latest` gauge keeps its value after its process ends: it was the newest
# truth when written, and a fresh process that never set it shows it still.
# Gauges of the other modes describe live processes only and are dropped.
_FOLD_LATEST: Final = """
INSERT INTO metric_latest (process, name, labels, family, kind, timestamp, value, label_text)
SELECT :retired, l.name, l.labels, l.family, l.kind, l.timestamp, l.value, l.label_text
FROM metric_latest AS l JOIN metric_families AS f ON f.family = l.family
WHERE l.process = :process AND l.kind NOT IN ('counter', 'histogram') AND f.gauge_mode = 'latest'
ON CONFLICT (process, name, labels) DO UPDATE SET
    value = excluded.value, timestamp = excluded.timestamp,
    family = excluded.family, kind = excluded.kind, label_text = excluded.label_text
WHERE excluded.timestamp >= metric_latest.timestamp
"""


def _fold_dead(conn: sqlite3.Connection, *, hostname: str, keep: str | None = None) -> int:
    """Fold every dead incarnation into ``__retired__``; return how many were folded.

    Runs inside the writer's transaction, so readers see the rows either
    before or after the fold, and the totals are the same in both.  ``keep``
    (this process's own incarnation) is never folded.
    """
    dead = sorted(_dead_incarnations(_incarnations(conn), hostname) - {keep})
    if not dead:
        return 0
    params = [{"retired": RETIRED, "process": process} for process in dead]
    conn.executemany(_FOLD_SUMMED, params)
    conn.executemany(_FOLD_LATEST, params)
    conn.executemany("DELETE FROM metric_latest WHERE process = ?", [(p,) for p in dead])
    conn.executemany("DELETE FROM metric_processes WHERE process = ?", [(p,) for p in dead])
    conn.execute(
        "INSERT INTO metric_processes (process, hostname, pid, started, last_seen) "
        "VALUES (?, '', 0, 0.0, ?) ON CONFLICT (process) DO UPDATE SET last_seen = excluded.last_seen",
        (RETIRED, time.time()),
    )
    return len(dead)


# When each database was last compacted (time.monotonic()), for encode_exposition's interval.
_last_compaction: weakref.WeakKeyDictionary[object, float] = weakref.WeakKeyDictionary()
_compaction_lock = threading.Lock()


def compact(storage: SQLiteMetricsStorage, *, wait: bool = True, timeout: float = 5.0) -> int:
    """Fold the rows of dead incarnations into ``__retired__``; return how many were folded.

    A dead incarnation is one of this host whose process has ended (its pid
    runs no process, or a process started after it).  Its counter and histogram values are
    added to the ``__retired__`` rows, its ``latest`` gauges are kept there
    (when newer than what is there), its other gauges are dropped, and its own
    rows go: all in one writer transaction, so every exposition shows the same
    totals before and after.  Incarnations of other hosts are left alone, and
    so is the storage's own.

    :func:`encode_exposition` runs this on its own every :data:`COMPACT_INTERVAL`
    seconds.  With ``wait=False`` the fold is queued behind pending writes and
    0 is returned at once; otherwise what the writer reports is raised
    (:class:`~observabilipy.sqlite.errors.SQLiteStorageError` when it fails or
    does not answer within ``timeout``).

    >>> from observabilipy.sqlite.metrics import SQLiteMetricsStorage
    >>> storage = SQLiteMetricsStorage(":memory:")
    >>> compact(storage)   # nothing has ended yet
    0
    >>> storage.close_sync()
    """
    database = storage.database
    own = storage.process

    def job(conn: sqlite3.Connection) -> int:
        return _fold_dead(conn, hostname=socket.gethostname(), keep=own)

    with _compaction_lock:
        _last_compaction[database] = time.monotonic()
    if not wait:
        database.submit(job)
        return 0
    return database.call(job, timeout=timeout)


def _compact_if_due(storage: SQLiteMetricsStorage) -> None:
    database = storage.database
    if database.read_only:
        return  # nothing can be folded; another process's exposition will
    with _compaction_lock:
        last = _last_compaction.get(database)
        due = last is None or time.monotonic() - last >= COMPACT_INTERVAL
    if due:
        # Not waited for: this scrape's totals are the same with or without the fold,
        # and a failed fold is counted and warned by the writer.
        compact(storage, wait=False)


# --- reading the file's truth -------------------------------------------------------------------


class _Family(NamedTuple):
    kind: str
    help: str
    unit: str
    mode: str  # how values of several processes combine (gauges and untyped)


#: family name -> {series text (`name{labels}`): value}; None is NaN.
_Values = dict[str, dict[str, float | None]]

_SUMMED_KINDS: Final = frozenset({"counter", "histogram"})

# SQLite renders each series' `name{labels}` from the stored label text, so
# Python only joins strings: no JSON is parsed on the way out.
_SERIES: Final = "l.name || CASE l.label_text WHEN '' THEN '' ELSE '{' || l.label_text || '}' END"

# Rows whose kind is not their family's current kind (a metric redefined
# between deploys) are left out: one family is exposed with one TYPE.
_FROM: Final = """
FROM metric_latest AS l JOIN metric_families AS f ON f.family = l.family AND f.kind = l.kind
"""

_SUMMED_SQL: Final = f"""
SELECT l.family, {_SERIES}, SUM(l.value) {_FROM}
WHERE l.kind IN ('counter', 'histogram') /* and not excluded */
GROUP BY l.name, l.labels
"""

# One aggregate per gauge mode; a NaN (NULL) makes a sum NaN, max and min skip it.
_GAUGE_AGGREGATES: Final = {
    "sum": "CASE WHEN COUNT(l.value) = COUNT(*) THEN SUM(l.value) END",
    "max": "MAX(l.value)",
    "min": "MIN(l.value)",
    # SQLite takes the bare column l.value from the row holding MAX(l.timestamp).
    "latest": "l.value, MAX(l.timestamp)",
}

_GAUGE_SQL: Final = f"""
SELECT l.family, {_SERIES}, /* aggregate */ {_FROM}
WHERE f.gauge_mode = ? AND l.kind NOT IN ('counter', 'histogram') /* and not excluded */
GROUP BY l.name, l.labels
"""

_ALL_SQL: Final = f"""
SELECT l.family, l.name, l.label_text, l.value, l.process {_FROM}
WHERE f.gauge_mode = 'all' AND l.kind NOT IN ('counter', 'histogram') /* and not excluded */
ORDER BY l.name, l.labels, l.process
"""


def _excluding(sql: str, processes: list[str]) -> str:
    """``sql`` leaving out the rows of ``processes`` (bound as parameters)."""
    if not processes:
        return sql
    return sql.replace(
        "/* and not excluded */", f"AND l.process NOT IN ({', '.join('?' * len(processes))})"
    )


def _series_text(name: str, text: str) -> str:
    return f"{name}{{{text}}}" if text else name


def _with_process(text: str, process: str) -> str:
    """``text`` plus the ``process`` label that gauges in mode ``all`` carry."""
    label = _render_labels([("process", process)])
    return f"{text},{label}" if text else label


def _process_label(incarnation: _Incarnation, hostname: str) -> str:
    # The pid alone on this host.  Another host's pid may equal a local one, so it
    # carries its hostname: two series with equal labels would fail the scrape.
    if incarnation.hostname == hostname:
        return str(incarnation.pid)
    return f"{incarnation.hostname}/{incarnation.pid}"


def _read_file(
    conn: sqlite3.Connection, *, own: str | None, hostname: str
) -> tuple[dict[str, _Family], _Values]:
    """The families, and the values of every incarnation but ``own`` combined per series."""
    families = {
        row[0]: _Family(*row[1:])
        for row in conn.execute("SELECT family, kind, help, unit, gauge_mode FROM metric_families")
    }
    incarnations = _incarnations(conn)
    mine = [own] if own is not None else []
    values: _Values = {}
    _collect(values, conn.execute(_excluding(_SUMMED_SQL, mine), mine))

    modes = {family.mode for family in families.values() if family.kind not in _SUMMED_KINDS}
    if not modes:
        return families, values
    # Sum, max, min and all describe live processes: the dead and the retired are left out.
    gone = [*mine, RETIRED, *sorted(_dead_incarnations(incarnations, hostname))]
    for mode, aggregate in _GAUGE_AGGREGATES.items():
        if mode in modes:
            skip = mine if mode == "latest" else gone
            sql = _excluding(_GAUGE_SQL.replace("/* aggregate */", aggregate), skip)
            _collect(values, conn.execute(sql, [mode, *skip]))
    if "all" in modes:
        labels = {i.process: _process_label(i, hostname) for i in incarnations}
        rows = conn.execute(_excluding(_ALL_SQL, gone), gone)
        for family, name, text, value, process in rows:
            label = labels.get(process, process)  # no registration row: its id says who
            series = _series_text(name, _with_process(text, label))
            values.setdefault(family, {})[series] = value
    return families, values


def _collect(values: _Values, rows: Iterable[tuple[str, str, float | None]]) -> None:
    # Rows arrive grouped by sample name, so the family changes rarely.
    family, series = "", {}
    for row in rows:
        if row[0] != family:
            family = row[0]
            series = values.setdefault(family, {})
        series[row[1]] = row[2]


# --- this process's live values -----------------------------------------------------------------


def _merge_registry(families: dict[str, _Family], values: _Values, registry: Registry) -> None:
    """Combine ``registry``'s current values, as one more live process, into ``values``."""
    for family in registry.families():
        mode = family.multiprocess_mode if isinstance(family, Gauge) else "latest"
        stored = families.get(family.name)
        if stored is not None and stored.kind != family.kind:
            values.pop(family.name, None)  # the file's rows are of an older definition
        families[family.name] = _Family(family.kind, family.help, family.unit, mode)

    pid = str(os.getpid())
    # sample name -> (its family's series, kind, how values combine): a few names per family.
    targets: dict[str, tuple[dict[str, float | None], str, str]] = {}
    for sample in registry.snapshot():
        target = targets.get(sample.name)
        if target is None:
            name, kind, _ = _family_of(sample)
            mode = "sum" if kind in _SUMMED_KINDS else families[name].mode
            target = targets[sample.name] = (values.setdefault(name, {}), kind, mode)
        series, kind, mode = target
        text = label_text(sample.labels, kind)  # as the storage renders metric_latest.label_text
        key = f"{sample.name}{{{text}}}" if text else sample.name
        value: float | None = sample.value
        if value != value:
            value = None  # NaN, as SQLite gives it
        if mode == "sum":
            held = series.get(key, 0.0)
            series[key] = None if held is None or value is None else held + value
        elif mode in ("max", "min"):
            held = series.get(key)  # None: no other process, or NaN, which max and min skip
            if held is not None and value is not None:
                value = max(held, value) if mode == "max" else min(held, value)
            series[key] = held if value is None else value
        elif mode == "all":
            series[_series_text(sample.name, _with_process(text, pid))] = value
        else:  # latest: our value is as of now, newer than any stored point
            series[key] = value


# --- rendering ----------------------------------------------------------------------------------

_PART_RANK: Final = {"_bucket": 0, "_count": 1, "_sum": 2}


def _bound(le: str) -> float:
    try:
        return float(le)  # float() reads "+Inf" too
    except ValueError:
        return math.nan


def _histogram_order(family: str, series: str) -> tuple[str, int, float] | None:
    """(labels without `le`, part, bucket bound): the exposition order of a histogram's series."""
    brace = series.find("{")
    name, text = (series, "") if brace < 0 else (series[:brace], series[brace + 1 : -1])
    rank = _PART_RANK.get(name[len(family) :]) if name.startswith(family) else None
    if rank is None:
        return None  # not a part of this histogram
    if rank:
        return text, rank, 0.0
    cut = text.rfind('le="')  # `le` is a bucket's last label
    if cut < 0 or (cut > 0 and text[cut - 1] != ","):
        return None
    return text[: max(cut - 1, 0)], rank, _bound(text[cut + 4 : -1])


def _render(families: dict[str, _Family], values: _Values, openmetrics: bool) -> str:
    out: list[str] = []
    for name in sorted(values):
        series = values[name]
        family = families.get(name)
        if not series or family is None:
            continue
        _header(out, name, family.kind, family.help, family.unit, openmetrics)
        items: Iterable[tuple[str, float | None]] = series.items()
        if family.kind == "histogram":
            # Per series: buckets by increasing bound, then _count, then _sum.
            keyed = [(order, item) for item in items if (order := _histogram_order(name, item[0]))]
            keyed.sort(key=lambda pair: pair[0])
            items = [item for _, item in keyed]
        # repr() is the canonical text below 1e6 (as in core's exposition); NULL is NaN.
        out.extend(
            [
                f"{text} {repr(v) if v is not None and -1e6 < v < 1e6 else _value_text(v)}\n"
                for text, v in items
            ]
        )
    if openmetrics:
        out.append("# EOF\n")
    return "".join(out)


# --- the exposition -----------------------------------------------------------------------------


def encode_exposition(
    storage: SQLiteMetricsStorage,
    *,
    registry: Registry | None = None,
    openmetrics: bool = False,
) -> str:
    """Prometheus text 0.0.4 (or OpenMetrics 1.0) of every process sharing the storage's file.

    Counters and histograms are summed over process incarnations; gauges are
    combined per their family's ``multiprocess_mode`` (``sum``, ``max``,
    ``min`` over live processes; ``latest``: the newest value written;
    ``all``: one series per live process with a ``process="<pid>"`` label).
    HELP and TYPE come from the file's families; no sample has a timestamp.

    Given ``registry`` (the registry this process records into), this
    process's values are its current ones, fresher than its last snapshot in
    the file, and replace its stored rows.  Without it the text shows the
    file alone, as a fresh process sees it.

    >>> from observabilipy.core.metrics import Registry
    >>> from observabilipy.sqlite.metrics import SQLiteMetricsStorage
    >>> registry = Registry()
    >>> registry.gauge("queue_depth", "Jobs waiting", multiprocess_mode="max").set(4)
    >>> storage = SQLiteMetricsStorage(":memory:", registry=registry)
    >>> storage.write_many_sync(registry.snapshot())
    >>> print(encode_exposition(storage, openmetrics=True), end="")
    # HELP queue_depth Jobs waiting
    # TYPE queue_depth gauge
    queue_depth 4.0
    # EOF
    >>> storage.close_sync()
    """
    own = storage.process if registry is not None else None
    _compact_if_due(storage)
    # database.read() first commits what this process queued: it is part of the file's truth.
    read = functools.partial(_read_file, own=own, hostname=socket.gethostname())
    families, values = storage.database.read(read)
    if registry is not None:
        _merge_registry(families, values, registry)
    return _render(families, values, openmetrics)
