"""Log helpers: build :class:`~observabilipy.core.models.LogEntry` objects.

The helpers return the entry they build; the caller decides where it goes,
for example ``await storage.write(info("started"))`` or
``storage.write_sync(info("started"))``.  Every entry carries the current log
context (see :mod:`observabilipy.core.context`) under the call's own attributes.

>>> from observabilipy.core.context import log_context
>>> with log_context(request_id="r-1"):
...     entry = warn("disk low", free_mb=12)
>>> entry.level, entry.message, entry.attributes
('WARNING', 'disk low', {'request_id': 'r-1', 'free_mb': 12})

:func:`get_logger` gives a logger with a name, bound fields and an optional sink
that receives each entry; :func:`timed_log` logs the start and end of a block.
"""

from __future__ import annotations

import inspect
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Protocol, TypeAlias, runtime_checkable

from observabilipy.core.context import _LOG_CONTEXT
from observabilipy.core.errors import ConfigurationError, ValidationError
from observabilipy.core.levels import CRITICAL, DEBUG, ERROR, INFO, WARNING, normalize_level
from observabilipy.core.models import (
    AttributeValue,
    LogEntry,
    _trusted_log_entry,
    normalize_attribute,
    normalize_attributes,
)

__all__ = [
    "LogSink",
    "Logger",
    "SupportsWriteSync",
    "TimedLog",
    "critical",
    "debug",
    "error",
    "get_logger",
    "info",
    "log",
    "log_exception",
    "timed_log",
    "warn",
    "warning",
]

_internal_logger = logging.getLogger("observabilipy")

# Values of these exact types are stored as given; anything else goes through
# normalize_attribute (floats too: NaN and infinities must become text).
_KEPT_AS_IS = frozenset({str, int, bool, type(None)})

_NO_FIELDS: dict[str, AttributeValue] = {}


@runtime_checkable
class SupportsWriteSync(Protocol):
    """Anything with a synchronous ``write_sync(entry)``, such as a log storage."""

    def write_sync(self, entry: LogEntry) -> None:
        """Store one entry."""


#: Where a :class:`Logger` or :func:`timed_log` sends each entry it makes.
LogSink: TypeAlias = Callable[[LogEntry], object] | SupportsWriteSync


def log(level: str | int, message: str, /, **attributes: object) -> LogEntry:
    """Build an entry of ``level`` (any casing, ``WARN`` meaning ``WARNING``).

    ``level`` and ``message`` are positional, so ``level=`` and ``message=``
    are free to be attributes.  An unknown level raises
    :class:`~observabilipy.core.errors.ValidationError` naming ``level``.

    >>> entry = log("warn", "queue full", size=100)
    >>> entry.level, entry.attributes
    ('WARNING', {'size': 100})
    >>> log("loud", "hi")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ValidationError: level: unknown level 'loud'; expected one of ...
    """
    return _build(normalize_level(level), message, attributes, _NO_FIELDS)


def debug(message: str, /, **attributes: object) -> LogEntry:
    """Build a DEBUG entry.

    >>> debug("cache miss", key="user:1").level
    'DEBUG'
    """
    return _build(DEBUG, message, attributes, _NO_FIELDS)


def info(message: str, /, **attributes: object) -> LogEntry:
    """Build an INFO entry.

    >>> info("started", port=8000).attributes
    {'port': 8000}
    """
    return _build(INFO, message, attributes, _NO_FIELDS)


def warning(message: str, /, **attributes: object) -> LogEntry:
    """Build a WARNING entry.

    >>> warning("slow request").level
    'WARNING'
    """
    return _build(WARNING, message, attributes, _NO_FIELDS)


def warn(message: str, /, **attributes: object) -> LogEntry:
    """Build a WARNING entry (``warn`` is an alias; the level written is WARNING).

    >>> warn("retrying").level
    'WARNING'
    """
    return _build(WARNING, message, attributes, _NO_FIELDS)


def error(message: str, /, **attributes: object) -> LogEntry:
    """Build an ERROR entry.

    >>> error("payment failed", order=42).level
    'ERROR'
    """
    return _build(ERROR, message, attributes, _NO_FIELDS)


def critical(message: str, /, **attributes: object) -> LogEntry:
    """Build a CRITICAL entry.

    >>> critical("database gone").level
    'CRITICAL'
    """
    return _build(CRITICAL, message, attributes, _NO_FIELDS)


def log_exception(
    message: str | None = None,
    *,
    exc: BaseException | None = None,
    level: str | int = ERROR,
    **attributes: object,
) -> LogEntry:
    """Build an entry describing an exception (by default the one being handled).

    The entry carries ``exception.type``, ``exception.message`` and
    ``exception.traceback`` (formatted as Python prints it); ``message``
    defaults to the exception's text.  Called outside an ``except`` block
    without ``exc=``, it raises :class:`~observabilipy.core.errors.ValidationError`
    naming ``exc``.

    >>> try:
    ...     int("x")
    ... except ValueError:
    ...     entry = log_exception(user="ada")
    >>> entry.level, entry.message
    ('ERROR', "invalid literal for int() with base 10: 'x'")
    >>> entry.attributes["exception.type"], entry.attributes["user"]
    ('ValueError', 'ada')
    >>> entry.attributes["exception.traceback"].splitlines()[0]
    'Traceback (most recent call last):'
    """
    return _build_exception(message, exc, normalize_level(level), attributes, _NO_FIELDS)


class TimedLog:
    """What :func:`timed_log` returns: a context manager (``with`` or ``async with``).

    ``entries`` receives the start entry on entering and the exit entry on
    leaving; ``elapsed_seconds`` is set on leaving; ``dropped`` counts the
    entries the sink failed to take.
    """

    __slots__ = (
        "_attributes",
        "_level",
        "_message",
        "_sink",
        "_start",
        "elapsed_seconds",
        "entries",
    )

    def __init__(
        self,
        message: str,
        *,
        level: str | int = INFO,
        sink: LogSink | None = None,
        attributes: Mapping[str, object] | None = None,
    ) -> None:
        """Check the arguments now, so a mistake fails here and not inside the block."""
        _check_message(message)
        self._message = message
        self._level = normalize_level(level)
        self._attributes = normalize_attributes(attributes or {})
        self._sink = _Sink(sink) if sink is not None else None
        self._start = 0.0
        self.entries: list[LogEntry] = []
        self.elapsed_seconds: float | None = None

    @property
    def dropped(self) -> int:
        """How many entries the sink failed to take."""
        return self._sink.dropped if self._sink is not None else 0

    def __enter__(self) -> TimedLog:
        """Make the start entry and start the clock."""
        self._add(self._level, f"{self._message} [entry]", {"phase": "entry"})
        self._start = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Make the exit entry, with the error if the block raised (which propagates)."""
        elapsed = time.perf_counter() - self._start
        self.elapsed_seconds = elapsed
        extra: dict[str, AttributeValue] = {"phase": "exit", "elapsed_seconds": elapsed}
        level = self._level
        if exc is not None:
            level = ERROR
            extra["error.type"] = _type_name(exc)
            extra["error.message"] = str(exc)
        self._add(level, f"{self._message} [exit]", extra)

    async def __aenter__(self) -> TimedLog:
        """As :meth:`__enter__`, for ``async with``."""
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """As :meth:`__exit__`, for ``async with``."""
        self.__exit__(exc_type, exc, tb)

    def _add(self, level: str, message: str, extra: dict[str, AttributeValue]) -> None:
        attributes = {**_LOG_CONTEXT.get(), **self._attributes, **extra}
        entry = _trusted_log_entry(time.time(), level, message, attributes)
        self.entries.append(entry)
        if self._sink is not None:
            self._sink(entry)


def timed_log(
    message: str, *, level: str | int = INFO, sink: LogSink | None = None, **attributes: object
) -> TimedLog:
    """Log the start and the end of a block, with the time it took.

    The start entry has ``phase="entry"``; the exit entry ``phase="exit"`` and
    ``elapsed_seconds``.  When the block raises, the exit entry is still made,
    at level ERROR with ``error.type`` and ``error.message``, and the exception
    propagates unchanged.  ``sink`` (a callable or an object with
    ``write_sync``, such as a storage) receives each entry as it is made.

    >>> with timed_log("load config", path="app.toml") as timed:
    ...     pass
    >>> [(e.message, e.attributes["phase"]) for e in timed.entries]
    [('load config [entry]', 'entry'), ('load config [exit]', 'exit')]
    >>> timed.entries[1].attributes["elapsed_seconds"] >= 0
    True
    """
    return TimedLog(message, level=level, sink=sink, attributes=attributes)


class Logger:
    """A named source of log entries with bound fields and an optional sink.

    Entries carry ``logger=<name>``; their attributes are the log context, then
    the bound fields, then the call's attributes (later ones win).  A sink
    failure never reaches the caller: it is counted in :attr:`dropped` and
    reported once through the standard ``observabilipy`` logger.

    >>> log = get_logger("billing", region="eu")
    >>> log.info("invoice sent", invoice=7).attributes
    {'logger': 'billing', 'region': 'eu', 'invoice': 7}
    """

    __slots__ = ("_bound", "_fields", "_sink", "name")

    def __init__(self, name: str, /, *, sink: LogSink | None = None, **bound: object) -> None:
        """Make a logger; :func:`get_logger` is the usual way."""
        if not isinstance(name, str):
            raise ValidationError("name", f"must be str, got {type(name).__name__}")
        self.name = name
        self._bound = normalize_attributes(bound)
        self._fields: dict[str, AttributeValue] = {"logger": name, **self._bound}
        self._sink = _Sink(sink) if sink is not None else None

    @property
    def bound(self) -> dict[str, AttributeValue]:
        """A copy of the fields bound to this logger."""
        return dict(self._bound)

    @property
    def dropped(self) -> int:
        """How many entries the sink failed to take (shared with loggers from :meth:`bind`)."""
        return self._sink.dropped if self._sink is not None else 0

    def bind(self, **fields: object) -> Logger:
        """A new logger with ``fields`` added to the bound ones; this one is unchanged.

        >>> base = get_logger("api")
        >>> request_log = base.bind(request_id="r-9")
        >>> request_log.bound, base.bound
        ({'request_id': 'r-9'}, {})
        """
        child = object.__new__(Logger)
        child.name = self.name
        child._bound = {**self._bound, **normalize_attributes(fields)}
        child._fields = {"logger": self.name, **child._bound}
        child._sink = self._sink
        return child

    def log(self, level: str | int, message: str, /, **attributes: object) -> LogEntry:
        """Make an entry of ``level`` (see :func:`log`)."""
        return self._emit(_build(normalize_level(level), message, attributes, self._fields))

    def debug(self, message: str, /, **attributes: object) -> LogEntry:
        """Make a DEBUG entry."""
        return self._emit(_build(DEBUG, message, attributes, self._fields))

    def info(self, message: str, /, **attributes: object) -> LogEntry:
        """Make an INFO entry."""
        return self._emit(_build(INFO, message, attributes, self._fields))

    def warning(self, message: str, /, **attributes: object) -> LogEntry:
        """Make a WARNING entry."""
        return self._emit(_build(WARNING, message, attributes, self._fields))

    def warn(self, message: str, /, **attributes: object) -> LogEntry:
        """Make a WARNING entry (an alias of :meth:`warning`)."""
        return self._emit(_build(WARNING, message, attributes, self._fields))

    def error(self, message: str, /, **attributes: object) -> LogEntry:
        """Make an ERROR entry."""
        return self._emit(_build(ERROR, message, attributes, self._fields))

    def critical(self, message: str, /, **attributes: object) -> LogEntry:
        """Make a CRITICAL entry."""
        return self._emit(_build(CRITICAL, message, attributes, self._fields))

    def exception(
        self,
        message: str | None = None,
        *,
        exc: BaseException | None = None,
        level: str | int = ERROR,
        **attributes: object,
    ) -> LogEntry:
        """Make an entry describing an exception (see :func:`log_exception`)."""
        return self._emit(
            _build_exception(message, exc, normalize_level(level), attributes, self._fields)
        )

    def _emit(self, entry: LogEntry) -> LogEntry:
        if self._sink is not None:
            self._sink(entry)
        return entry

    def __repr__(self) -> str:
        """Name and bound fields."""
        return f"<Logger {self.name!r} bound={self._bound!r}>"


def get_logger(name: str, /, *, sink: LogSink | None = None, **bound: object) -> Logger:
    """A :class:`Logger` called ``name`` with ``bound`` fields on every entry.

    ``sink`` receives each entry: a callable, or an object with
    ``write_sync(entry)`` such as a log storage.  A failing sink costs the entry
    (counted in :attr:`Logger.dropped`), never an exception in the caller.

    >>> received = []
    >>> log = get_logger("worker", sink=received.append, queue="mail")
    >>> _ = log.warn("retrying", attempt=2)
    >>> [(e.level, e.attributes) for e in received]
    [('WARNING', {'logger': 'worker', 'queue': 'mail', 'attempt': 2})]
    """
    return Logger(name, sink=sink, **bound)


class _Sink:
    """A sink made safe: failures are counted and reported once, never raised."""

    __slots__ = ("_lock", "_warned", "_write", "dropped")

    def __init__(self, sink: LogSink) -> None:
        write = getattr(sink, "write_sync", None)
        if write is None:
            if not callable(sink):
                raise ConfigurationError(
                    f"sink: expected a callable or an object with write_sync(entry), "
                    f"got {type(sink).__name__}"
                )
            write = sink
        if inspect.iscoroutinefunction(write):
            raise ConfigurationError(
                "sink: must be synchronous; pass a storage (it has write_sync) "
                "or write entries yourself with `await storage.write(entry)`"
            )
        self._write: Callable[[LogEntry], object] = write
        self._lock = threading.Lock()
        self._warned = False
        self.dropped = 0

    def __call__(self, entry: LogEntry) -> None:
        try:
            self._write(entry)
        except Exception as exc:
            with self._lock:
                self.dropped += 1
                first = not self._warned
                self._warned = True
            if first:
                _internal_logger.warning(
                    "log sink %r failed (%s: %s); entries it refuses are dropped and "
                    "counted in .dropped; this is reported once",
                    self._write,
                    type(exc).__name__,
                    exc,
                )


def _check_message(message: object) -> None:
    if not isinstance(message, str):
        raise ValidationError("message", f"must be str, got {type(message).__name__}")


def _build(
    level: str,
    message: str,
    attributes: dict[str, object],
    fields: dict[str, AttributeValue],
) -> LogEntry:
    """The hot path: one dict merge, then only the call's attributes are checked."""
    if type(message) is not str:
        _check_message(message)
    context = _LOG_CONTEXT.get()
    merged: dict[str, AttributeValue] = {**context, **fields} if fields else context.copy()
    for key, value in attributes.items():
        if type(value) not in _KEPT_AS_IS:
            value = normalize_attribute(key, value)
        # mypy cannot see that the exact-type check above leaves only JSON scalars.
        merged[key] = value  # type: ignore[assignment]
    return _trusted_log_entry(time.time(), level, message, merged)


def _build_exception(
    message: str | None,
    exc: BaseException | None,
    level: str,
    attributes: dict[str, object],
    fields: dict[str, AttributeValue],
) -> LogEntry:
    if exc is None:
        exc = sys.exception()
        if exc is None:
            raise ValidationError(
                "exc",
                "no exception is being handled; call this inside an `except` block "
                "or pass exc=the_exception",
            )
    text = str(exc)
    attributes["exception.type"] = _type_name(exc)
    attributes["exception.message"] = text
    attributes["exception.traceback"] = "".join(traceback.format_exception(exc))
    if message is None:
        message = text or _type_name(exc)
    return _build(level, message, attributes, fields)


def _type_name(exc: BaseException) -> str:
    """``ValueError`` for builtins, ``package.module.Error`` for the rest."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"
