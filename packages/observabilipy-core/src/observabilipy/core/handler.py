"""A :class:`logging.Handler` that stores standard-library log records as structured entries.

The application's thread does as little as possible: it formats the message
(arguments may be mutable, so that cannot wait), snapshots the log context and
appends a plain tuple to a bounded queue.  One daemon writer thread turns
queued records into :class:`~observabilipy.core.models.LogEntry` objects and
writes them in batches with the storage's ``write_many_sync``.  Nothing here
blocks the caller or raises into its code path: a full queue, a record that
cannot be stored or a failing storage costs the records concerned, counted in
``handler.dropped`` and in the ``observabilipy_dropped_total`` counter, with one
warning on stderr per failure streak.

>>> import logging
>>> from observabilipy.core.storage import InMemoryLogStorage
>>> storage = InMemoryLogStorage()
>>> handler = ObservabilipyHandler(storage)
>>> log = logging.getLogger("doctest.handler")
>>> log.propagate = False
>>> log.addHandler(handler)
>>> log.warning("disk %s is %d%% full", "/var", 91, extra={"host": "db1"})
>>> handler.flush()
True
>>> [(e.level, e.message, e.attributes["host"]) for e in storage.read_sync()]
[('WARNING', 'disk /var is 91% full', 'db1')]
>>> log.removeHandler(handler)
>>> handler.close()
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import sys
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Collection, Mapping
from typing import Final

from observabilipy.core.context import ContextProvider, current_log_context
from observabilipy.core.errors import ConfigurationError
from observabilipy.core.levels import normalize_level
from observabilipy.core.metrics import Registry, default_registry
from observabilipy.core.models import (
    AttributeValue,
    LogEntry,
    _trusted_log_entry,
    normalize_attribute,
)
from observabilipy.core.ports import LogStoragePort

__all__ = ["DEFAULT_TIMEOUT", "ObservabilipyHandler"]

#: Seconds flush() and close() wait for the writer before giving up.
DEFAULT_TIMEOUT: Final = 5.0

# Every handler shares one exit budget, so a process with a hung storage still
# exits within this many seconds however many handlers it has.
_EXIT_TIMEOUT: Final = 5.0

_COMPONENT: Final = "logging_handler"
_REASONS: Final = ("queue_full", "invalid_record", "storage_error")

# Attributes every LogRecord has (plus the two a Formatter adds): anything else
# on a record came from ``extra=``.  Taken from a real record so new Python
# versions (3.12 added taskName) are covered without a list to maintain.
_PLAIN_RECORD_FIELDS: Final = logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
_STANDARD_FIELD_COUNT: Final = len(_PLAIN_RECORD_FIELDS)
_RECORD_ATTRIBUTES: Final = frozenset(_PLAIN_RECORD_FIELDS) | {"message", "asctime", "taskName"}

# (record, message, log context, provider's fields): what emit() queues.
_Queued = tuple[logging.LogRecord, str, Mapping[str, AttributeValue], Mapping[str, object] | None]


class _FlushMarker(threading.Event):
    """Queued by flush(); the writer sets it once everything queued before is written."""


class ObservabilipyHandler(logging.Handler):
    """Send standard-library log records to a log storage without slowing the caller.

    ``storage`` is any :class:`~observabilipy.core.ports.LogStoragePort`; only its
    synchronous methods are used, so the handler works in threads, scripts and
    inside a running event loop alike.  The handler never closes the storage:
    whoever created it closes it (after closing the handler).

    Each stored entry carries the record's level (custom levels map to the
    canonical level at or below their number), ``record.created`` as its
    timestamp, the formatted message (a formatter set with ``setFormatter`` is
    applied, otherwise ``record.getMessage()``) and these attributes, later ones
    winning on a name clash:

    - ``logger``, ``module``, ``funcName``, ``lineno``, ``pathname``,
      ``threadName`` and ``process`` from the record;
    - ``exception.type``, ``exception.message``, ``exception.traceback`` when the
      record has ``exc_info``, and ``stack_info`` when it has one;
    - the fields returned by ``context_provider`` (called on the logging thread);
    - the current log context (:func:`observabilipy.core.context.current_log_context`);
    - every ``extra=`` field.

    ``include`` keeps only the attribute names listed; ``exclude`` drops names.
    Values that are not JSON scalars are stored as ``str(value)``.  Like the
    standard library's QueueHandler, ``extra`` values are read on the writer
    thread, so pass values the application will not mutate after the call.

    Records wait in a queue of at most ``queue_size`` and are written in batches
    of up to ``batch_size``, at the latest ``flush_interval`` seconds after they
    were logged.  What cannot be written is counted: :attr:`dropped` and the
    ``observabilipy_dropped_total{component="logging_handler", reason=...}``
    counter of ``registry`` (the default registry if None), with ``reason`` one
    of ``queue_full``, ``invalid_record`` and ``storage_error``.

    At interpreter exit, queued records are flushed, waiting at most 5 seconds
    in all (a hung storage never holds the process).
    After ``os.fork()`` the child starts its own writer with an empty queue
    (records queued in the parent are written by the parent only).  Records
    logged by code running on a writer thread (a storage that logs) are ignored,
    so a handler never feeds itself.

    >>> from observabilipy.core.storage import InMemoryLogStorage
    >>> handler = ObservabilipyHandler(InMemoryLogStorage(), exclude={"pathname", "process"})
    >>> handler.handle(logging.makeLogRecord({"msg": "hi", "levelname": "WARN", "levelno": 30}))
    True
    >>> handler.flush(timeout=1.0), handler.dropped
    (True, 0)
    >>> handler.close()
    """

    def __init__(
        self,
        storage: LogStoragePort,
        *,
        level: int | str = logging.NOTSET,
        queue_size: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        context_provider: ContextProvider | None = None,
        include: Collection[str] | None = None,
        exclude: Collection[str] = (),
        registry: Registry | None = None,
    ) -> None:
        _check_count(queue_size, "queue_size")
        _check_count(batch_size, "batch_size")
        if (
            isinstance(flush_interval, bool)
            or not isinstance(flush_interval, (int, float))
            or not math.isfinite(flush_interval)
            or flush_interval <= 0
        ):
            raise ConfigurationError(
                f"flush_interval: must be a positive finite number of seconds, "
                f"got {flush_interval!r}"
            )
        if context_provider is not None and not callable(context_provider):
            raise ConfigurationError(
                "context_provider: must be a callable returning a mapping, "
                f"got {type(context_provider).__name__}"
            )
        super().__init__(level)
        self._context_provider = context_provider
        self._queue: deque[_Queued | _FlushMarker] = deque()
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._closed = False
        self._reopen_lock = threading.Lock()
        self._writer = _Writer(
            self._queue,
            storage,
            batch_size=batch_size,
            flush_interval=float(flush_interval),
            include=None if include is None else _names(include, "include"),
            exclude=_names(exclude, "exclude"),
            drops=_DropCounter(registry if registry is not None else default_registry),
        )
        self._writer.start()
        # The writer holds no reference to the handler: a handler nobody uses
        # any more is collected, and this stops its thread once the queue is written.
        weakref.finalize(self, self._writer.stop).atexit = False

    @property
    def dropped(self) -> int:
        """How many records were lost so far (full queue, invalid record, storage failure).

        >>> from observabilipy.core.storage import InMemoryLogStorage
        >>> handler = ObservabilipyHandler(InMemoryLogStorage())
        >>> handler.dropped
        0
        >>> handler.close()
        """
        return self._writer.drops.total

    @property
    def pending(self) -> int:
        """How many records are queued and not yet handed to the storage.

        >>> from observabilipy.core.storage import InMemoryLogStorage
        >>> handler = ObservabilipyHandler(InMemoryLogStorage())
        >>> handler.pending
        0
        >>> handler.close()
        """
        return len(self._queue)

    def handle(self, record: logging.LogRecord) -> bool:
        """Apply the handler's filters, then :meth:`emit`.

        Unlike the base class this takes no lock: emit() only appends to a
        thread-safe queue, and the lock would double its cost.
        """
        if self.filters:
            passed: object = self.filter(record)
            if not passed:
                return False
            if isinstance(passed, logging.LogRecord):  # Python 3.12+: a filter may swap it
                record = passed
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Queue ``record`` for the writer thread; never blocks, never raises.

        Only the message and the context are taken here; everything else is
        done on the writer thread.  A full queue drops the record (counted).
        """
        if _get_ident() in _writer_threads:
            return
        if self._closed and not self._reopen():
            return
        try:
            message = self.format(record) if self.formatter else record.getMessage()
            provided = None
            provider = self._context_provider
            if provider is not None:
                try:
                    provided = dict(provider())
                except Exception:
                    # The provider's fault, not the record's: report it and keep the record.
                    self.handleError(record)
            queue = self._queue
            if len(queue) >= self._queue_size:
                self._writer.drops.add("queue_full")
                return
            queue.append((record, message, current_log_context(), provided))
            # Wake the writer once per batch, not once per record.
            if len(queue) == self._batch_size:
                self._writer.wake.set()
        except RecursionError:
            raise
        except Exception:
            self._writer.drops.add("invalid_record")
            self.handleError(record)

    # Handler.flush() returns None; saying whether everything was written is the point here.
    def flush(self, timeout: float = DEFAULT_TIMEOUT) -> bool:  # type: ignore[override]
        """Wait until every record queued before this call is written; False on timeout.

        Records the storage refused count as handled (they are counted drops).
        If an earlier flush timed out and the storage has not answered since,
        this returns False at once instead of waiting again.

        >>> from observabilipy.core.storage import InMemoryLogStorage
        >>> ObservabilipyHandler(InMemoryLogStorage()).flush(timeout=1.0)
        True
        """
        return self._writer.flush(timeout)

    def close(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Flush (waiting at most ``timeout`` seconds), stop the writer thread, detach.

        A record logged after close() reopens the handler, as logging.FileHandler
        reopens its file: logging.config.dictConfig() (which uvicorn, Django and
        others call at start-up) closes every existing handler but leaves it
        attached to its loggers, and those records must not vanish.  The storage
        stays open: close it yourself once every handler writing to it is closed.
        Calling close() again does nothing.

        >>> from observabilipy.core.storage import InMemoryLogStorage
        >>> handler = ObservabilipyHandler(InMemoryLogStorage())
        >>> handler.close(timeout=1.0)
        >>> handler.close()
        """
        with self._reopen_lock:
            if not self._closed:
                self._closed = True
                self._writer.close(timeout)
        super().close()

    def _reopen(self) -> bool:
        """Start a new writer after close(); False if the old one is still stuck."""
        with self._reopen_lock:
            if self._closed:
                old = self._writer.thread
                if old is not None and old.is_alive():
                    return False  # stuck on a hung storage: ignore records, never wait
                self._writer.stopping = False
                self._writer.start()
                self._closed = False
        return True


class _DropCounter:
    """Counts lost records per reason, in the handler and in the registry."""

    def __init__(self, registry: Registry) -> None:
        family = registry.counter(
            "observabilipy_dropped_total",
            "Items observabilipy could not keep (queue full, invalid, storage failure).",
            labelnames=("component", "reason"),
        )
        self._children = {
            reason: family.labels(component=_COMPONENT, reason=reason) for reason in _REASONS
        }
        self._lock = threading.Lock()
        self.total = 0

    def add(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self.total += count
        self._children[reason].inc(count)

    def reinit_after_fork(self) -> None:
        self._lock = threading.Lock()


class _Writer:
    """The queue's consumer: one daemon thread building entries and writing batches.

    Kept apart from the handler so that the thread does not keep the handler alive.
    """

    def __init__(
        self,
        queue: deque[_Queued | _FlushMarker],
        storage: LogStoragePort,
        *,
        batch_size: int,
        flush_interval: float,
        include: frozenset[str] | None,
        exclude: frozenset[str],
        drops: _DropCounter,
    ) -> None:
        self.queue = queue
        self.storage = storage
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.include = include
        self.exclude = exclude
        self.drops = drops
        self.wake = threading.Event()
        self.stopping = False
        # Set when a flush timed out; cleared whenever the storage returns.
        self.stalled = False
        self.failing = False
        self.failed_records = 0
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        _register_exit_hook()
        self.thread = threading.Thread(
            target=self._run, name="observabilipy-log-writer", daemon=True
        )
        with _writers_lock:
            _writers.add(self)
        self.thread.start()

    def stop(self) -> None:
        """Ask the thread to write what is queued and end (does not wait)."""
        self.stopping = True
        self.wake.set()

    def flush(self, timeout: float) -> bool:
        thread = self.thread
        if thread is None or not thread.is_alive() or thread.ident == threading.get_ident():
            return not self.queue
        if self.stalled:
            return False
        marker = _FlushMarker()
        self.queue.append(marker)
        self.wake.set()
        if marker.wait(max(timeout, 0.0)):
            return True
        self.stalled = True
        return False

    def close(self, timeout: float) -> None:
        deadline = time.monotonic() + max(timeout, 0.0)
        self.flush(timeout)
        self.stop()
        thread = self.thread
        if thread is not None and not self.stalled and thread.ident != threading.get_ident():
            thread.join(max(deadline - time.monotonic(), 0.0))

    def after_fork_in_child(self) -> None:
        # The parent writes what it queued; the child starts afresh with new locks.
        self.queue.clear()
        self.wake = threading.Event()
        self.drops.reinit_after_fork()
        self.stalled = False
        if not self.stopping:
            self.start()

    def _run(self) -> None:
        ident = threading.get_ident()
        _writer_threads.add(ident)
        try:
            while not self.stopping:
                self.wake.wait(self.flush_interval)
                self.wake.clear()
                self._drain_safely()
            self._drain_safely()
        finally:
            _writer_threads.discard(ident)
            with _writers_lock:
                _writers.discard(self)

    def _drain_safely(self) -> None:
        # _write() handles the failures it expects; this keeps the thread alive
        # through the ones nobody expected.
        try:
            self._drain()
        except Exception as exc:
            _warn(f"logging handler writer error ({type(exc).__name__}: {exc}); continuing")

    def _drain(self) -> None:
        """Write everything queued, in batches; release flush markers in order."""
        queue = self.queue
        batch: list[_Queued] = []
        while True:
            try:
                item = queue.popleft()
            except IndexError:
                break
            if isinstance(item, _FlushMarker):
                self._write(batch)
                batch = []
                item.set()
                continue
            batch.append(item)
            if len(batch) >= self.batch_size:
                self._write(batch)
                batch = []
        self._write(batch)

    def _write(self, batch: list[_Queued]) -> None:
        if not batch:
            return
        entries: list[LogEntry] = []
        entry = self._entry
        for record, message, context, provided in batch:
            try:
                entries.append(entry(record, message, context, provided))
            except Exception:
                self.drops.add("invalid_record")
        if not entries:
            return
        try:
            self.storage.write_many_sync(entries)
        except Exception as exc:
            self.stalled = False
            self.drops.add("storage_error", len(entries))
            self.failed_records += len(entries)
            if not self.failing:
                self.failing = True
                _warn(
                    f"logging handler could not write {len(entries)} records to "
                    f"{type(self.storage).__name__} ({type(exc).__name__}: {exc}); dropping "
                    "them and any others until a write succeeds"
                )
            return
        self.stalled = False
        if self.failing:
            self.failing = False
            _warn(
                f"logging handler writes to {type(self.storage).__name__} succeed again "
                f"({self.failed_records} records were dropped)"
            )
            self.failed_records = 0

    def _entry(
        self,
        record: logging.LogRecord,
        message: str,
        context: Mapping[str, AttributeValue],
        provided: Mapping[str, object] | None,
    ) -> LogEntry:
        try:
            level = normalize_level(record.levelname)
        except ValueError:  # a custom level name: its number decides
            level = normalize_level(record.levelno)
        # Standard record fields have known JSON-safe types; the log context was
        # normalised when it was set.  Only provider and extra= values need checking.
        attributes: dict[str, AttributeValue] = {
            "logger": record.name,
            "module": record.module,
            "funcName": record.funcName,
            "lineno": record.lineno,
            "pathname": record.pathname,
            "threadName": record.threadName,
            "process": record.process,
        }
        exc_info = record.exc_info
        if exc_info and exc_info[1] is not None:
            error = exc_info[1]
            attributes["exception.type"] = _type_name(error)
            attributes["exception.message"] = str(error)
            attributes["exception.traceback"] = "".join(
                traceback.format_exception(type(error), error, exc_info[2])
            )
        if record.stack_info:
            attributes["stack_info"] = str(record.stack_info)
        if provided:
            for key, value in provided.items():
                attributes[str(key)] = normalize_attribute(key, value)
        if context:
            attributes.update(context)
        fields = record.__dict__
        # Every record has the standard fields, so more keys than that means a
        # formatter's additions or extra=; the length check spares most records the set test.
        if len(fields) > _STANDARD_FIELD_COUNT and not _RECORD_ATTRIBUTES.issuperset(fields):
            # A copy: a later handler's formatter may add keys while we read.
            for key, value in fields.copy().items():
                if key not in _RECORD_ATTRIBUTES:
                    attributes[key] = normalize_attribute(key, value)
        if self.include is not None or self.exclude:
            include, exclude = self.include, self.exclude
            attributes = {
                key: value
                for key, value in attributes.items()
                if key not in exclude and (include is None or key in include)
            }
        timestamp = float(record.created)
        if not math.isfinite(timestamp):
            raise ValueError(f"record.created is not a finite timestamp: {timestamp!r}")
        return _trusted_log_entry(timestamp, level, str(message), attributes)


def _type_name(error: BaseException) -> str:
    """``ValueError`` for builtins, ``package.module.Error`` for the rest (as log_exception)."""
    cls = type(error)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_count(value: object, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{field}: must be a whole number >= 1, got {value!r}")


def _names(names: Collection[str], field: str) -> frozenset[str]:
    if isinstance(names, str) or not all(isinstance(name, str) for name in names):
        raise ConfigurationError(
            f"{field}: must be a collection of attribute names (str), got {names!r}"
        )
    return frozenset(names)


def _warn(text: str) -> None:
    """Tell the operator on stderr: never through logging, which may lead back here."""
    with contextlib.suppress(Exception):
        if sys.stderr is not None:
            sys.stderr.write(f"observabilipy: {text}\n")


_get_ident = threading.get_ident
# Writers whose thread runs (strong references: the thread needs them anyway).
_writers: set[_Writer] = set()
_writers_lock = threading.Lock()
# Thread ids of every writer: records logged on them are ignored (no feedback loop).
_writer_threads: set[int] = set()


def _flush_at_exit() -> None:
    deadline = time.monotonic() + _EXIT_TIMEOUT
    with _writers_lock:
        writers = list(_writers)
    for writer in writers:
        writer.flush(deadline - time.monotonic())


def _after_fork_in_child() -> None:
    global _writers_lock
    _writers_lock = threading.Lock()
    _writer_threads.clear()
    writers = list(_writers)
    _writers.clear()
    for writer in writers:
        writer.after_fork_in_child()


_exit_hook_registered = False


def _register_exit_hook() -> None:
    # Registered with the first handler, after logging's own shutdown hook and the
    # storage's: atexit runs hooks in reverse order, so queued records reach the
    # storage before logging.shutdown() closes handlers and before the storage closes.
    global _exit_hook_registered
    if not _exit_hook_registered:
        _exit_hook_registered = True
        atexit.register(_flush_at_exit)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
