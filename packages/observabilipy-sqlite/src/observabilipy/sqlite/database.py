"""One SQLite file: a batching writer thread, readers per thread, the schema checked at open.

:class:`SQLiteDatabase` owns the file.  Writes never touch SQLite on the
caller's thread: they are appended to a bounded queue, and one long-lived
daemon thread commits what is queued in batches, one transaction each
(``BEGIN IMMEDIATE`` ... ``COMMIT``), at the latest ``flush_interval`` seconds
after the write.  :meth:`~SQLiteDatabase.flush` waits until everything queued
before it is committed.  Reads run on a connection of the reading thread (sync)
or on a short-lived aiosqlite connection (async); the file is in WAL mode, so
readers and the writer never wait for each other.

Failures never reach the code that wrote: a full queue (after a short wait for
room), a full disk, a read-only file or a locked database drop the items
concerned, count them in :attr:`~SQLiteDatabase.dropped` and in
``observabilipy_dropped_total{component="sqlite_writer", reason=...}``, and
print one warning on stderr per failure streak (not through ``logging``, whose
handler may be writing into this very database).  The writer survives a failed
batch (rollback, drop, continue) and picks up again when the disk has room.

``":memory:"`` gives a private in-memory database shared by the writer and the
readers of this process (a shared-cache URI; readers read uncommitted, so a
long read never blocks the writer).  After ``os.fork()`` the child starts its
own writer with an empty queue (the parent writes what it had queued) and new
connections; an in-memory database starts afresh, empty, in the child.

>>> db = SQLiteDatabase(":memory:")
>>> db.submit(lambda conn: conn.execute("INSERT INTO observabilipy_meta VALUES ('owner', 'doc')"))
>>> db.flush()
True
>>> db.read(lambda conn: conn.execute("SELECT value FROM observabilipy_meta WHERE key = 'owner'").fetchone())
('doc',)
>>> db.close()
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import math
import os
import sqlite3
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from itertools import groupby
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Generic, TypeVar
from urllib.parse import quote

import aiosqlite

from observabilipy.core.errors import ConfigurationError, ObservabilityError
from observabilipy.core.metrics import CounterChild, Registry, default_registry
from observabilipy.sqlite.errors import SQLiteStorageError
from observabilipy.sqlite.schema import ensure_schema

__all__ = [
    "DEFAULT_TIMEOUT",
    "MEMORY",
    "BatchWriter",
    "SQLiteDatabase",
    "first_id_newer_than",
    "insert_rows",
    "rowcount_of",
]

_T = TypeVar("_T")

#: The path that asks for an in-memory database.
MEMORY: Final = ":memory:"

#: Seconds flush() and close() wait for the writer before giving up.
DEFAULT_TIMEOUT: Final = 5.0

# How long a write waits for room in a full queue before it is dropped.  Short:
# a caller may be a request handler; long enough for the writer to commit a few
# batches (it commits hundreds of thousands of rows per second).
_ROOM_WAIT: Final = 1.0

# How long call() waits for a job's result (a retention DELETE of millions of rows
# takes seconds; a writer that does not answer for a minute is stuck).
_CALL_TIMEOUT: Final = 60.0

# All databases share one exit budget, so a stuck file delays exit by this much at most.
_EXIT_TIMEOUT: Final = 5.0

_COMPONENT: Final = "sqlite_writer"

# Primary SQLite result codes -> the drop reason they are counted under.
_REASON_OF_CODE: Final = {
    3: "read_only",  # SQLITE_PERM
    5: "busy",  # SQLITE_BUSY: another process held the write lock past busy_timeout
    6: "busy",  # SQLITE_LOCKED
    8: "read_only",  # SQLITE_READONLY
    10: "io_error",  # SQLITE_IOERR (a file size limit lands here: EFBIG)
    13: "disk_full",  # SQLITE_FULL
    14: "read_only",  # SQLITE_CANTOPEN: in practice, a folder this process cannot write
}

# SQLITE_CORRUPT and SQLITE_NOTADB: the file is damaged or is not a database.
_CORRUPT_CODES: Final = frozenset({11, 26})

# Errors at open that mean "cannot write here" (permissions, read-only location,
# full disk), not "wrong file": the database opens with its writes dropped.
# SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN.
_UNWRITABLE_CODES: Final = frozenset({3, 8, 10, 13, 14})

# Connections opened before a fork must not be used nor closed by the child: they
# are kept here, unreferenced otherwise, for the rest of the child's life.
_inherited: list[object] = []

_memory_names = itertools.count(1)


# --- queue items ----------------------------------------------------------------------------------


class _Waiter:
    """Completion of a job or flush marker: an Event for a thread, a future for a coroutine."""

    __slots__ = ("_event", "_future", "_loop", "ok")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.ok = False
        self._loop = loop
        self._event: threading.Event | None = None
        self._future: asyncio.Future[None] | None = None
        if loop is None:
            self._event = threading.Event()
        else:
            self._future = loop.create_future()

    def release(self, ok: bool) -> None:
        """Called by the writer thread once the batch holding this item is settled."""
        self.ok = ok
        if self._event is not None:
            self._event.set()
        elif self._loop is not None:
            # The loop may be closed by now (its coroutine gave up): nothing to tell.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(_resolve, self._future)

    def wait(self, timeout: float) -> bool:
        """Block this thread until released or ``timeout`` seconds passed."""
        assert self._event is not None
        return self._event.wait(max(timeout, 0.0))

    async def await_release(self, timeout: float) -> bool:  # noqa: ASYNC109 - mirrors the sync twin
        """Wait in a coroutine until released or ``timeout`` seconds passed."""
        assert self._future is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._future), max(timeout, 0.0))
        except TimeoutError:
            return False
        return True


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


class _Marker:
    """Queued by flush(): released after the batch holding it is committed."""

    __slots__ = ("failures", "waiter")

    def __init__(self, waiter: _Waiter, failures: int) -> None:
        self.waiter = waiter
        # Losses (failed batches or jobs) so far: more at release means something
        # queued before the marker was lost.
        self.failures = failures


class _Job(Generic[_T]):
    """A write run by the writer inside its transaction (in a savepoint of its own)."""

    __slots__ = ("error", "fn", "items", "result", "waiter")

    def __init__(
        self, fn: Callable[[sqlite3.Connection], _T], items: int, waiter: _Waiter | None
    ) -> None:
        self.fn = fn
        # How many stored items the job carries (counted as dropped if it fails).
        self.items = items
        self.waiter = waiter
        self.result: _T | None = None
        self.error: BaseException | None = None


#: Writes rows of one item type in the writer's transaction: ``writer(conn, items)``.
BatchWriter = Callable[[sqlite3.Connection, list[Any]], None]


class _Drops:
    """Counts lost items per reason, in the database and in the registry's drop counter.

    Reasons: ``queue_full``, ``read_only``, ``disk_full``, ``io_error``, ``busy``
    and ``storage_error`` (anything else).

    The registry's series are made at the first drop: a database that never
    loses anything adds nothing to every snapshot and scrape.
    """

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._children: dict[str, CounterChild] = {}
        self._lock = threading.Lock()
        self.total = 0

    def add(self, reason: str, count: int) -> None:
        with self._lock:
            self.total += count
        try:
            child = self._children.get(reason)
            if child is None:
                family = self._registry.counter(
                    "observabilipy_dropped_total",
                    "Items observabilipy could not keep (queue full, invalid, storage failure).",
                    labelnames=("component", "reason"),
                )
                child = self._children[reason] = family.labels(component=_COMPONENT, reason=reason)
            child.inc(count)
        except Exception:  # a registry refusing the family must not break the writer
            pass

    def reinit_after_fork(self) -> None:
        self._lock = threading.Lock()


class _UnwritableError(SQLiteStorageError):
    """The file cannot be written (read-only location, full disk): degrade, do not fail."""

    def __init__(self, path: str, problem: str, reason: str) -> None:
        super().__init__(path, problem)
        self.reason = reason


def _reason(error: BaseException) -> str:
    if isinstance(error, _UnwritableError):
        return error.reason
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return _REASON_OF_CODE.get(code & 0xFF, "storage_error")
    return "storage_error"


def _warn(text: str) -> None:
    """Tell the operator on stderr: never through logging, which may lead back here."""
    with contextlib.suppress(Exception):
        if sys.stderr is not None:
            sys.stderr.write(f"observabilipy: {text}\n")


def _set_wal(conn: sqlite3.Connection, *, deadline: float) -> None:
    """Switch the file to WAL, waiting for other processes that open it at the same time.

    Changing the journal mode takes an exclusive lock for which SQLite may answer "database
    is locked" at once, without its busy handler, when several processes open one new file.
    """
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _check_number(value: object, field: str, *, minimum: float, whole: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{field}: must be a number, got {value!r}")
    if whole and not isinstance(value, int):
        raise ConfigurationError(f"{field}: must be a whole number, got {value!r}")
    if not math.isfinite(value) or value < minimum:
        raise ConfigurationError(f"{field}: must be finite and >= {minimum:g}, got {value!r}")


# --- the database ---------------------------------------------------------------------------------


class SQLiteDatabase:
    """A SQLite file (or ``":memory:"``) with one batching writer thread; see the module doc.

    - ``queue_size``: writes waiting for the writer, at most (a full queue makes
      a write wait up to a second for room, then drops it);
    - ``batch_size``: items committed per transaction, at most;
    - ``flush_interval``: seconds the writer gathers writes before committing;
    - ``busy_timeout``: seconds a connection waits for another process's lock;
    - ``read_only``: open an existing file without writing to it (writes are
      dropped and counted, reason ``read_only``);
    - ``registry``: where ``observabilipy_dropped_total`` is counted (default:
      the default registry).

    Opening checks the file: one that is not a SQLite database or is corrupt,
    or holds a newer schema, raises :class:`SQLiteStorageError` naming the path;
    an older schema is upgraded.  The database is closed by :meth:`close` (or
    ``with``), and at interpreter exit within a bounded time.

    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> with SQLiteDatabase(os.path.join(folder, "obs.db"), flush_interval=0.05) as db:
    ...     db.call(lambda conn: conn.execute("SELECT count(*) FROM logs").fetchone()[0])
    0
    >>> SQLiteDatabase(os.path.join(folder, "obs.db"), batch_size=0)
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: batch_size: must be finite and >= 1, got 0
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        queue_size: int = 100_000,
        batch_size: int = 1_000,
        flush_interval: float = 0.1,
        busy_timeout: float = 5.0,
        read_only: bool = False,
        registry: Registry | None = None,
    ) -> None:
        _check_number(queue_size, "queue_size", minimum=1, whole=True)
        _check_number(batch_size, "batch_size", minimum=1, whole=True)
        _check_number(flush_interval, "flush_interval", minimum=0.001, whole=False)
        _check_number(busy_timeout, "busy_timeout", minimum=0, whole=False)
        if not isinstance(path, (str, os.PathLike)):
            raise ConfigurationError(f"path: must be a file path or ':memory:', got {path!r}")
        self._path = os.fspath(path)
        self._memory = self._path == MEMORY
        if self._memory and read_only:
            raise ConfigurationError("read_only: an in-memory database cannot be read-only")
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._flush_interval = float(flush_interval)
        self._busy_timeout = float(busy_timeout)
        self._read_only = bool(read_only)
        self._drops = _Drops(default_registry if registry is None else registry)
        self._batch_writers: dict[type, BatchWriter] = {}
        self._closed = False
        self._state_lock = threading.Lock()
        self._reset_runtime_state()
        self._target = self._memory_target() if self._memory else self._path
        # Open and check the file now, on the caller's thread: a bad path fails here.
        self._writer_conn: sqlite3.Connection | None = None
        # (reason, why) when writes are refused: they are dropped and counted.
        self._refusal: tuple[str, str] | None = None
        if self._read_only:
            self._check_read_only_file()
            self._refusal = ("read_only", "it is opened read_only")
        else:
            try:
                self._writer_conn = self._open_writer()
            except _UnwritableError as exc:
                # A read-only location or a full disk: the application keeps running.
                self._refusal = (exc.reason, exc.problem)
                _warn(f"cannot write {self._path} ({exc.problem}); its writes will be dropped")
        self._thread: threading.Thread | None = None
        _register_process_hooks()
        with _live_lock:
            _live.add(self)
        if self._refusal is None:
            self._start_writer()

    def _reset_runtime_state(self) -> None:
        """The queue, locks and connections of this process (again in a forked child)."""
        self._pid = os.getpid()
        self._queue: deque[object] = deque()
        self._wake = threading.Event()
        self._stopping = False
        # True while the writer holds items taken from the queue but not yet committed.
        self._inflight = False
        # Set when a flush timed out; cleared when the writer finishes a batch.
        self._stalled = False
        self._losses = 0
        self._failing = False
        self._failed_items = 0
        self._queue_full = False
        self._full_drops = 0
        self._warned_refusal = False
        # Held by the writer while it is inside SQLite, so fork() waits for it.
        self._fork_lock = threading.Lock()
        self._readers: dict[int, sqlite3.Connection] = {}
        self._readers_lock = threading.Lock()

    # --- opening ----------------------------------------------------------------------------

    def _memory_target(self) -> str:
        return f"file:observabilipy-{os.getpid()}-{next(_memory_names)}?mode=memory&cache=shared"

    def _connect(self, *, reader: bool) -> sqlite3.Connection:
        if self._memory:
            conn = sqlite3.connect(
                self._target,
                uri=True,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            if reader:
                # Shared-cache readers would otherwise lock tables against the writer.
                conn.execute("PRAGMA read_uncommitted = 1")
        elif self._read_only:
            conn = sqlite3.connect(
                self._read_only_uri(),
                uri=True,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        else:
            conn = sqlite3.connect(
                self._path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        if reader:
            conn.execute("PRAGMA query_only = 1")
        return conn

    def _read_only_uri(self) -> str:
        return "file:" + quote(str(Path(self._path).resolve())) + "?mode=ro"

    def _open_writer(self) -> sqlite3.Connection:
        """Connect, set the pragmas and bring the schema up to date; errors name the file."""
        if not self._memory and os.path.isdir(self._path):
            raise SQLiteStorageError(self._path, "is a directory, not a database file")
        conn: sqlite3.Connection | None = None
        try:
            conn = self._connect(reader=False)
            if not self._memory:
                # WAL: readers and the writer never block each other; NORMAL: a commit
                # is durable once the WAL is checkpointed, and never corrupts the file.
                _set_wal(conn, deadline=time.monotonic() + self._busy_timeout)
                conn.execute("PRAGMA synchronous = NORMAL")
                # Keep the WAL from staying huge after a burst (it is reused, not shrunk).
                conn.execute("PRAGMA journal_size_limit = 67108864")
            conn.execute("PRAGMA foreign_keys = OFF")
            ensure_schema(conn, self._path)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            code = getattr(exc, "sqlite_errorcode", 0)
            parent = os.path.dirname(os.path.abspath(self._path))
            if (
                not self._memory
                and isinstance(code, int)
                and code & 0xFF in _UNWRITABLE_CODES
                and os.path.isdir(parent)
            ):
                problem = f"{type(exc).__name__}: {exc}"
                raise _UnwritableError(self._path, problem, _reason(exc)) from exc
            raise self._open_error(exc) from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return conn

    def _check_read_only_file(self) -> None:
        if not os.path.isfile(self._path):
            raise SQLiteStorageError(self._path, "does not exist (read_only opens existing files)")
        conn: sqlite3.Connection | None = None
        try:
            conn = self._connect(reader=True)
            ensure_schema(conn, self._path, read_only=True)
        except sqlite3.Error as exc:
            raise self._open_error(exc) from exc
        finally:
            if conn is not None:
                conn.close()

    def _open_error(self, exc: sqlite3.Error) -> SQLiteStorageError:
        detail = f"{type(exc).__name__}: {exc}"
        code = getattr(exc, "sqlite_errorcode", 0)
        if isinstance(code, int) and code & 0xFF in _CORRUPT_CODES:
            return SQLiteStorageError(
                self._path, f"is not a SQLite database, or is corrupt ({detail})"
            )
        return SQLiteStorageError(self._path, f"cannot be opened ({detail})")

    # --- properties ---------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The file this database writes (``":memory:"`` for an in-memory one)."""
        return self._path

    @property
    def read_only(self) -> bool:
        """Whether writes are refused: opened ``read_only=True``, or unwritable at open.

        >>> db = SQLiteDatabase(":memory:")
        >>> db.read_only
        False
        >>> db.close()
        """
        return self._refusal is not None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def dropped(self) -> int:
        """How many items were lost (queue full, storage failures), since opening.

        >>> db = SQLiteDatabase(":memory:")
        >>> db.dropped
        0
        >>> db.close()
        """
        return self._drops.total

    @property
    def pending(self) -> int:
        """Items queued and not yet taken by the writer."""
        return len(self._queue)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<SQLiteDatabase {self._path!r} {state}>"

    def __enter__(self) -> SQLiteDatabase:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- writing ------------------------------------------------------------------------------

    def register_batch_writer(self, item_type: type, writer: BatchWriter) -> None:
        """Have ``writer(conn, items)`` store queued items of ``item_type``, in batches.

        Storages register one for their row type (the log storage for LogEntry);
        consecutive queued items of that type reach it together, inside the
        writer's transaction.  Registering again replaces the writer.

        >>> db = SQLiteDatabase(":memory:")
        >>> def store(conn, items):
        ...     conn.executemany("INSERT INTO observabilipy_meta VALUES (?, ?)", items)
        >>> db.register_batch_writer(tuple, store)
        >>> db.put(("note", "kept")); db.put_many([("other", "too")])
        >>> db.read(lambda conn: conn.execute("SELECT count(*) FROM observabilipy_meta").fetchone())
        (3,)
        >>> db.close()
        """
        self._batch_writers[item_type] = writer

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise ObservabilityError(
                f"the SQLite database {self._path} is closed; open a new one to keep writing"
            )

    def _offer(self, item: object) -> bool:
        """Queue ``item`` if there is room; False when the queue is full."""
        queue = self._queue
        if len(queue) >= self._queue_size:
            return False
        queue.append(item)
        if self._queue_full:
            self._room_again()
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()  # a batch is ready: no need to wait for flush_interval
        return True

    def _offer_many(self, items: Sequence[object]) -> bool:
        queue = self._queue
        # A batch larger than the whole queue still goes in when the queue is empty.
        if queue and len(queue) + len(items) > self._queue_size:
            return False
        queue.extend(items)
        if self._queue_full:
            self._room_again()
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()
        return True

    def try_put(self, item: object) -> bool:
        """Queue ``item`` if the queue has room now; False when it is full (nothing queued).

        Raises ObservabilityError once closed; on a ``read_only`` database the
        item is dropped and counted (True: there is nothing to wait for).
        """
        if self._closed:
            self._refuse_if_closed()
        if self._refusal is not None:
            self._drop_refused(1)
            return True
        return self._offer(item)

    def put(self, item: object) -> None:
        """Queue one item for the writer (waiting up to a second for room, then dropping it)."""
        if not self.try_put(item):
            self._wait_for_room_sync([item])

    def put_many(self, items: Sequence[object]) -> None:
        """Queue several items, all or none (waiting for room as :meth:`put`)."""
        self._refuse_if_closed()
        if not items:
            return
        if self._refusal is not None:
            self._drop_refused(len(items))
        elif not self._offer_many(items):
            self._wait_for_room_sync(items)

    async def aput(self, item: object) -> None:
        """Async :meth:`put`: waits for room with ``asyncio.sleep``, never blocking the loop."""
        if not self.try_put(item):
            await self._wait_for_room([item])

    async def aput_many(self, items: Sequence[object]) -> None:
        """Async :meth:`put_many`."""
        self._refuse_if_closed()
        if not items:
            return
        if self._refusal is not None:
            self._drop_refused(len(items))
        elif not self._offer_many(items):
            await self._wait_for_room(items)

    def _wait_for_room_sync(self, items: Sequence[object]) -> None:
        self._wake.set()
        deadline = time.monotonic() + _ROOM_WAIT
        delay = 0.001
        while time.monotonic() < deadline and not self._closed:
            time.sleep(delay)
            if self._offer_many(items):
                return
            delay = min(delay * 2, 0.05)
        self._drop_full(len(items))

    async def _wait_for_room(self, items: Sequence[object]) -> None:
        self._wake.set()
        deadline = time.monotonic() + _ROOM_WAIT
        delay = 0.001
        while time.monotonic() < deadline and not self._closed:
            await asyncio.sleep(delay)
            if self._offer_many(items):
                return
            delay = min(delay * 2, 0.05)
        self._drop_full(len(items))

    def submit(self, job: Callable[[sqlite3.Connection], object], *, items: int = 0) -> None:
        """Queue ``job(conn)`` to run inside the writer's next transaction; do not wait.

        Jobs run in the order queued, each in a savepoint: a job that raises is
        rolled back alone (counted as ``items`` dropped and warned about), the rest
        of the batch commits.  ``items``: how many stored items the job carries.

        >>> db = SQLiteDatabase(":memory:")
        >>> db.submit(lambda conn: conn.execute("DELETE FROM logs"))
        >>> db.flush()
        True
        >>> db.close()
        """
        self.put(_Job(job, items, None))

    async def asubmit(self, job: Callable[[sqlite3.Connection], object], *, items: int = 0) -> None:
        """Async :meth:`submit` (waits for room in a full queue without blocking the loop)."""
        await self.aput(_Job(job, items, None))

    def call(
        self, job: Callable[[sqlite3.Connection], _T], *, timeout: float = _CALL_TIMEOUT
    ) -> _T:
        """Run ``job(conn)`` in the writer's transaction and return its result once committed.

        What ``job`` raises is raised here; so is :class:`SQLiteStorageError` when
        the commit fails or the writer does not answer within ``timeout``.  For
        writes whose result matters (retention deletes); they serialise with
        every queued write.

        >>> db = SQLiteDatabase(":memory:")
        >>> db.call(lambda conn: conn.execute("DELETE FROM logs").rowcount)
        0
        >>> db.close()
        """
        self._refuse_if_closed()
        self._refuse_if_read_only()
        if self._on_writer_thread():
            raise SQLiteStorageError(self._path, "call() from inside a writer job would deadlock")
        waiter = _Waiter()
        queued = _Job(job, 0, waiter)
        self.put(queued)
        self._wake.set()
        if not waiter.wait(timeout):
            raise SQLiteStorageError(
                self._path, f"the writer did not answer within {timeout:g} s (database locked?)"
            )
        return self._job_outcome(queued)

    async def acall(
        self,
        job: Callable[[sqlite3.Connection], _T],
        *,
        timeout: float = _CALL_TIMEOUT,  # noqa: ASYNC109 - mirrors the sync twin
    ) -> _T:
        """Async :meth:`call`: awaits the writer without blocking the event loop."""
        self._refuse_if_closed()
        self._refuse_if_read_only()
        waiter = _Waiter(asyncio.get_running_loop())
        queued = _Job(job, 0, waiter)
        await self.aput(queued)
        self._wake.set()
        if not await waiter.await_release(timeout):
            raise SQLiteStorageError(
                self._path, f"the writer did not answer within {timeout:g} s (database locked?)"
            )
        return self._job_outcome(queued)

    def _refuse_if_read_only(self) -> None:
        if self._refusal is not None:
            raise SQLiteStorageError(self._path, f"cannot be changed: {self._refusal[1]}")

    def _job_outcome(self, job: _Job[_T]) -> _T:
        if job.error is not None:
            if isinstance(job.error, sqlite3.Error):
                raise SQLiteStorageError(
                    self._path, f"write failed ({type(job.error).__name__}: {job.error})"
                ) from job.error
            raise job.error
        return job.result  # type: ignore[return-value]

    def _on_writer_thread(self) -> bool:
        thread = self._thread
        return thread is not None and thread.ident == threading.get_ident()

    def _writer_alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def has_pending_writes(self) -> bool:
        """Whether writes of this process are queued or being committed (cheap).

        Reads call :meth:`flush` first when this is true, so a thread reads
        what it wrote.
        """
        return bool(self._queue) or self._inflight

    def flush(self, timeout: float = DEFAULT_TIMEOUT) -> bool:
        """Wait until everything queued before this call is committed.

        Returns True when it was, False if ``timeout`` passed first or something
        queued before it was lost meanwhile (dropped and counted).  Never blocks
        longer than ``timeout``; after a timeout, later calls answer False at once
        until the writer finishes the batch it was stuck in.

        >>> db = SQLiteDatabase(":memory:")
        >>> db.submit(lambda conn: conn.execute("DELETE FROM logs"))
        >>> db.has_pending_writes(), db.flush(), db.has_pending_writes()
        (True, True, False)
        >>> db.close()
        """
        if not self.has_pending_writes():
            return True
        if self._on_writer_thread() or not self._writer_alive():
            return not self.has_pending_writes()
        if self._stalled:
            return False
        waiter = _Waiter()
        self._queue.append(_Marker(waiter, self._losses))
        self._wake.set()
        if waiter.wait(timeout):
            return waiter.ok
        self._stalled = True
        return False

    async def aflush(self, timeout: float = DEFAULT_TIMEOUT) -> bool:  # noqa: ASYNC109 - mirrors the sync twin
        """Async :meth:`flush`: awaits the commit without blocking the event loop."""
        if not self.has_pending_writes():
            return True
        if not self._writer_alive():
            return not self.has_pending_writes()
        if self._stalled:
            return False
        waiter = _Waiter(asyncio.get_running_loop())
        self._queue.append(_Marker(waiter, self._losses))
        self._wake.set()
        if await waiter.await_release(timeout):
            return waiter.ok
        self._stalled = True
        return False

    # --- dropping -----------------------------------------------------------------------------

    def _drop_full(self, count: int) -> None:
        self._drops.add("queue_full", count)
        self._full_drops += count
        if not self._queue_full:
            self._queue_full = True
            _warn(
                f"the SQLite writer queue of {self._path} is full ({self._queue_size} items); "
                "dropping writes until it has room"
            )

    def _room_again(self) -> None:
        self._queue_full = False
        _warn(
            f"the SQLite writer queue of {self._path} has room again "
            f"({self._full_drops} writes were dropped)"
        )
        self._full_drops = 0

    def _drop_refused(self, count: int) -> None:
        assert self._refusal is not None
        reason, problem = self._refusal
        self._drops.add(reason, count)
        if not self._warned_refusal:
            self._warned_refusal = True
            _warn(f"dropping every write to {self._path} ({problem}); they are counted")

    # --- the writer thread --------------------------------------------------------------------

    def _start_writer(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="observabilipy-sqlite-writer", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            stopping = self._stopping
            self._drain_safely()
            if stopping:
                break
        with self._fork_lock:
            conn, self._writer_conn = self._writer_conn, None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def _drain_safely(self) -> None:
        # _write_batch() handles the failures it expects; this keeps the thread alive
        # through the ones nobody expected.
        try:
            while self._queue:
                self._inflight = True
                batch = self._take_batch()
                with self._fork_lock:
                    self._write_batch(batch)
                self._inflight = False
        except Exception as exc:
            _warn(f"SQLite writer error on {self._path} ({type(exc).__name__}: {exc}); continuing")
        finally:
            self._inflight = False

    def _take_batch(self) -> list[object]:
        queue = self._queue
        popleft = queue.popleft
        batch: list[object] = []
        append = batch.append
        for _ in range(self._batch_size):
            try:
                append(popleft())
            except IndexError:
                break
        return batch

    def _write_batch(self, batch: list[object]) -> None:
        """Commit ``batch`` in one transaction; on failure roll back and drop its items."""
        markers = [item for item in batch if type(item) is _Marker]
        jobs = [item for item in batch if type(item) is _Job]
        if len(markers) == len(batch):  # flushes with nothing to write: no transaction
            self._stalled = False
            for marker in markers:
                marker.waiter.release(marker.failures == self._losses)
            return
        conn = self._writer_conn
        try:
            if conn is None:  # the connection could not be opened again (after a fork)
                conn = self._writer_conn = self._open_writer()
            conn.execute("BEGIN IMMEDIATE")
            for item_type, group in groupby(batch, type):
                if item_type is _Marker:
                    continue
                if item_type is _Job:
                    for job in group:
                        self._run_job(conn, job)  # type: ignore[arg-type]
                else:
                    self._batch_writers[item_type](conn, list(group))
            conn.execute("COMMIT")
        except Exception as exc:
            if conn is not None and conn.in_transaction:
                with contextlib.suppress(Exception):
                    conn.execute("ROLLBACK")
            self._losses += 1
            for job in jobs:
                job.error = exc  # committed nothing, whatever the job itself did
            rows = len(batch) - len(markers) - len(jobs)
            self._record_failure(rows + sum(job.items for job in jobs), exc)
            committed = False
        else:
            committed = True
            failed = [job for job in jobs if job.error is not None and job.waiter is None]
            for job in failed:
                self._losses += 1
                self._record_failure(job.items, job.error)  # type: ignore[arg-type]
            if not failed and self._failing:
                self._recovered()
        self._stalled = False
        self._inflight = False
        for job in jobs:
            if job.waiter is not None:
                job.waiter.release(committed and job.error is None)
        failures = self._losses
        for marker in markers:
            marker.waiter.release(committed and marker.failures == failures)

    def _run_job(self, conn: sqlite3.Connection, job: _Job[Any]) -> None:
        conn.execute("SAVEPOINT observabilipy_job")
        try:
            job.result = job.fn(conn)
        except Exception as exc:
            if not conn.in_transaction:
                raise  # SQLite rolled the whole transaction back (disk full, I/O error)
            conn.execute("ROLLBACK TO observabilipy_job")
            conn.execute("RELEASE observabilipy_job")
            job.error = exc
        else:
            conn.execute("RELEASE observabilipy_job")

    def _record_failure(self, count: int, error: BaseException) -> None:
        if count:
            self._drops.add(_reason(error), count)
        self._failed_items += count
        if not self._failing:
            self._failing = True
            _warn(
                f"could not write {count} items to {self._path} ({type(error).__name__}: "
                f"{error}); dropping them and any others until a write succeeds"
            )

    def _recovered(self) -> None:
        self._failing = False
        _warn(f"writes to {self._path} succeed again ({self._failed_items} items were dropped)")
        self._failed_items = 0

    # --- reading ------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        """This thread's reader connection (opened on first use)."""
        conn = self._readers.get(threading.get_ident())
        if conn is None:
            conn = self._new_reader()
        return conn

    def _new_reader(self) -> sqlite3.Connection:
        self._refuse_if_closed()
        try:
            conn = self._connect(reader=True)
        except sqlite3.Error as exc:
            raise self._open_error(exc) from exc
        with self._readers_lock:
            if len(self._readers) >= 2 * threading.active_count() + 8:
                self._close_readers_of_dead_threads()
            self._readers[threading.get_ident()] = conn
        return conn

    def _close_readers_of_dead_threads(self) -> None:
        alive = {thread.ident for thread in threading.enumerate()}
        for ident in [ident for ident in self._readers if ident not in alive]:
            with contextlib.suppress(Exception):
                self._readers.pop(ident).close()

    def read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn(conn)`` on this thread's reader connection and return its result.

        Writes still queued by this process are committed first, so a thread
        reads what it wrote.  The connection is read-only (``query_only``); do
        not close it.

        >>> db = SQLiteDatabase(":memory:")
        >>> db.read(lambda conn: conn.execute("SELECT key FROM observabilipy_meta").fetchone())
        ('schema_version',)
        >>> db.close()
        """
        self._refuse_if_closed()
        self.flush_pending()
        return fn(self._reader())

    def flush_pending(self) -> None:
        """Commit this process's queued writes before a read (nothing to do, quickly, if none)."""
        if self.has_pending_writes():
            self.flush()

    def execute(
        self, sql: str, parameters: Sequence[object] | dict[str, object] = ()
    ) -> sqlite3.Cursor:
        """Run a query on this thread's reader connection; iterate the cursor to stream rows.

        A database error is raised as :class:`SQLiteStorageError` naming the file.

        >>> db = SQLiteDatabase(":memory:")
        >>> db.execute("SELECT count(*) FROM metric_samples").fetchone()
        (0,)
        >>> db.close()
        """
        self._refuse_if_closed()
        try:
            return self._reader().execute(sql, parameters)
        except sqlite3.DatabaseError as exc:
            raise self.read_error(exc) from exc

    def read_error(self, exc: sqlite3.Error) -> SQLiteStorageError:
        """The error a failed read raises: the file's path and SQLite's reason."""
        return SQLiteStorageError(self._path, f"read failed ({type(exc).__name__}: {exc})")

    async def aflush_pending(self) -> None:
        """Async twin of the read-your-writes flush that sync reads do."""
        if self.has_pending_writes():
            await self.aflush()

    @contextlib.asynccontextmanager
    async def aconnect(self) -> AsyncIterator[aiosqlite.Connection]:
        """An aiosqlite connection for async reads, closed when the block ends.

        Each async read opens its own (about a millisecond): aiosqlite runs a
        thread per connection, which a long-lived connection would keep for the
        life of the process.  Writes do not go here: they go through the writer.

        >>> import asyncio
        >>> db = SQLiteDatabase(":memory:")
        >>> async def count():
        ...     async with db.aconnect() as conn:
        ...         async with conn.execute("SELECT count(*) FROM logs") as cursor:
        ...             return await cursor.fetchone()
        >>> asyncio.run(count())
        (0,)
        >>> db.close()
        """
        self._refuse_if_closed()
        if self._memory:
            target, uri = self._target, True
        elif self._read_only:
            target, uri = self._read_only_uri(), True
        else:
            target, uri = self._path, False
        try:
            connecting = aiosqlite.connect(
                target, uri=uri, timeout=self._busy_timeout, isolation_level=None
            )
            # aiosqlite's thread is not a daemon: a read abandoned where no event
            # loop finalises it would hold the interpreter at exit, forever.
            thread = getattr(connecting, "_thread", None)
            if isinstance(thread, threading.Thread) and thread.ident is None:
                thread.daemon = True
            conn = await connecting
        except sqlite3.Error as exc:
            raise self._open_error(exc) from exc
        try:
            if self._memory:
                await conn.execute("PRAGMA read_uncommitted = 1")
            yield conn
        finally:
            await conn.close()

    # --- closing ------------------------------------------------------------------------------

    def close(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Commit what is queued, stop the writer, close every connection (idempotent).

        Waits at most ``timeout`` seconds for the writer; a writer stuck on a
        locked file is left behind (it is a daemon thread), never waited for.
        An async read in progress keeps its own connection until it ends.

        >>> db = SQLiteDatabase(":memory:")
        >>> db.close(); db.close()
        >>> db.closed
        True
        """
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
        with _live_lock:
            _live.discard(self)
        deadline = time.monotonic() + max(timeout, 0.0)
        thread = self._thread
        if thread is not None and thread.is_alive() and not self._on_writer_thread():
            if not self._stalled:
                self.flush(timeout)
            self._stopping = True
            self._wake.set()
            if not self._stalled:
                thread.join(max(deadline - time.monotonic(), 0.0))
        else:
            self._stopping = True
        with self._readers_lock:
            readers, self._readers = list(self._readers.values()), {}
        for conn in readers:
            with contextlib.suppress(Exception):
                conn.close()

    async def aclose(self, timeout: float = DEFAULT_TIMEOUT) -> None:  # noqa: ASYNC109 - mirrors the sync twin
        """Async :meth:`close`: the final flush is awaited, not blocked on."""
        if self._closed:
            return
        deadline = time.monotonic() + max(timeout, 0.0)
        await self.aflush(timeout)
        self.close(max(deadline - time.monotonic(), 0.0))

    # --- fork ---------------------------------------------------------------------------------

    def _before_fork(self) -> bool:
        # Wait (boundedly) until the writer is outside SQLite, whose internal locks a
        # child would otherwise inherit in a locked state.
        return self._fork_lock.acquire(timeout=self._busy_timeout + 1.0)

    def _after_fork_in_parent(self, acquired: bool) -> None:
        if acquired:
            self._fork_lock.release()

    def _after_fork_in_child(self) -> None:
        _inherited.append((self._writer_conn, list(self._readers.values())))
        self._writer_conn = None
        self._reset_runtime_state()
        self._drops.reinit_after_fork()
        self._thread = None
        if self._closed or self._refusal is not None:
            return
        if self._memory:
            # The parent's in-memory database is not this process's: start an empty one.
            self._target = self._memory_target()
        try:
            self._writer_conn = self._open_writer()
        except Exception as exc:  # retried by the writer at its next batch
            _warn(f"could not reopen {self._path} after fork ({exc}); will retry")
        self._start_writer()


# Parameters per statement in insert_rows(): under SQLite's historical limit of 999,
# so any build of SQLite takes them.
_MAX_PARAMETERS: Final = 960
_row_statements: dict[tuple[str, str, int, int], str] = {}


def insert_rows(
    conn: sqlite3.Connection, head: str, width: int, params: list[object], tail: str = ""
) -> None:
    """Insert many rows with few statements: ``head VALUES (?,...),(?,...) tail``.

    ``params`` holds every row's values one after the other (``width`` per
    row).  One statement of a few hundred rows binds once and steps once, where
    ``executemany`` steps (and releases the GIL) per row: twice as fast alone,
    and far faster while other threads want the GIL.

    >>> conn = sqlite3.connect(":memory:")
    >>> _ = conn.execute("CREATE TABLE t (a, b)")
    >>> insert_rows(conn, "INSERT INTO t (a, b)", 2, [1, "x", 2, "y"])
    >>> conn.execute("SELECT count(*), sum(a) FROM t").fetchone()
    (2, 3)
    """
    per_statement = _MAX_PARAMETERS // width * width
    for start in range(0, len(params), per_statement):
        chunk = params[start : start + per_statement]
        rows = len(chunk) // width
        key = (head, tail, width, rows)
        sql = _row_statements.get(key)
        if sql is None:
            row = "(" + ",".join("?" * width) + ")"
            sql = f"{head} VALUES {','.join([row] * rows)} {tail}"
            if len(_row_statements) < 1024:
                _row_statements[key] = sql
        conn.execute(sql, chunk)


def rowcount_of(sql: str, *params: object) -> Callable[[sqlite3.Connection], int]:
    """A writer job running one statement and returning how many rows it changed.

    >>> db = SQLiteDatabase(":memory:")
    >>> db.call(rowcount_of("DELETE FROM logs WHERE level = ?", "DEBUG"))
    0
    >>> db.close()
    """

    def job(conn: sqlite3.Connection) -> int:
        return conn.execute(sql, params).rowcount

    return job


def first_id_newer_than(table: str) -> str:
    """SQL for the smallest id of ``table`` with ``timestamp > :since``.

    Rows are read in id order; ``id >= (this)`` lets a ``since`` read start at
    the first row that can match, found through the timestamp index (index
    entries only, no table rows), instead of scanning the table from its start.
    ``INDEXED BY``: left alone, SQLite prefers walking ids from the oldest for a
    ``min(id)``, which reads the whole table when ``since`` is recent.

    >>> first_id_newer_than("logs")
    '(SELECT min(id) FROM logs INDEXED BY logs_timestamp WHERE timestamp > :since)'
    """
    return f"(SELECT min(id) FROM {table} INDEXED BY {table}_timestamp WHERE timestamp > :since)"


# --- process-wide hooks ---------------------------------------------------------------------------

_live: weakref.WeakSet[SQLiteDatabase] = weakref.WeakSet()
_live_lock = threading.Lock()
_hooks_registered = False
_held_for_fork: list[tuple[SQLiteDatabase, bool]] = []


def _close_all_at_exit() -> None:
    deadline = time.monotonic() + _EXIT_TIMEOUT
    with _live_lock:
        databases = list(_live)
    for database in databases:
        with contextlib.suppress(Exception):
            database.close(max(deadline - time.monotonic(), 0.0))


def _before_fork() -> None:
    with _live_lock:
        databases = list(_live)
    _held_for_fork[:] = [(database, database._before_fork()) for database in databases]


def _after_fork_in_parent() -> None:
    for database, acquired in _held_for_fork:
        database._after_fork_in_parent(acquired)
    _held_for_fork.clear()


def _after_fork_in_child() -> None:
    global _live_lock
    _live_lock = threading.Lock()
    databases = [database for database, _ in _held_for_fork] or list(_live)
    _held_for_fork.clear()
    for database in databases:
        database._after_fork_in_child()


def _register_process_hooks() -> None:
    global _hooks_registered
    if _hooks_registered:
        return
    _hooks_registered = True
    atexit.register(_close_all_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(
            before=_before_fork,
            after_in_parent=_after_fork_in_parent,
            after_in_child=_after_fork_in_child,
        )


# Registered at import, before any logging handler writing here is created: atexit
# runs hooks in reverse order, so handlers flush into the databases before they close.
_register_process_hooks()
