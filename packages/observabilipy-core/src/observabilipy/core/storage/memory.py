"""In-memory storage for logs and metrics, bounded by a cap on how many it keeps.

:class:`InMemoryLogStorage` and :class:`InMemoryMetricsStorage` keep everything
in a Python list, up to ``max_entries`` / ``max_samples`` (one million by
default, so a forgotten retention policy costs memory, not the process).  When
full, each write evicts the oldest entries and adds to :attr:`evicted`.

How they behave (the same for the ring buffers, which share this code):

- one lock guards every change, so concurrent writers, retention and readers
  never lose a write; async methods run the same code as their ``*_sync`` twins;
- ids come from a counter that only goes up: never reused, not reset by clear();
- export cursors live in a dict beside the items (kept by clear(), gone with the
  process: an exporter of an in-memory store starts again from the oldest entry);
- reads check their arguments at the call, then stream: they walk the store in
  id order, a few hundred entries per lock acquisition, and never hold the lock
  while the consumer handles an entry.  A read returns what was stored when it
  was called (entries written meanwhile wait for the next read, by ``after``);
- after :meth:`close` the data is released and every call except ``close``
  raises :class:`~observabilipy.core.errors.ObservabilityError`.

>>> from observabilipy.core.models import LogEntry
>>> storage = InMemoryLogStorage(max_entries=2)
>>> for n in range(3):
...     storage.write_sync(LogEntry(timestamp=float(n), level="info", message=f"m{n}"))
>>> [(entry.id, entry.message) for entry in storage.read_sync()]
[(2, 'm1'), (3, 'm2')]
>>> storage.evicted
1
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from operator import attrgetter
from typing import Generic, TypeVar

from observabilipy.core.errors import ConfigurationError, ObservabilityError, ValidationError
from observabilipy.core.levels import levels_at_or_above, normalize_level
from observabilipy.core.models import (
    LogEntry,
    MetricSample,
    validate_metric_name,
    validate_timestamp,
)

_T = TypeVar("_T", LogEntry, MetricSample)

# Entries handed out per lock acquisition while a read streams: large enough that
# locking costs little per entry, small enough that writers barely wait.
_READ_CHUNK = 512

# Stored items always carry an int id (given on write).
_stored_id = attrgetter("id")

# Family names: a counter's samples end in _total, a histogram's in these three.
_FAMILY_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
}


def check_capacity(value: object, *, field: str) -> int:
    """Return ``value`` if it can bound a store (a whole number >= 1), else raise.

    >>> check_capacity(0, field="max_size")
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: max_size: must be a whole number >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{field}: must be a whole number >= 1, got {value!r}")
    return value


def check_limit(limit: object) -> int | None:
    """Return ``limit`` if it is None or a whole number >= 0, else raise.

    >>> check_limit(-1)
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ValidationError: limit: must be a whole number >= 0 or None, got -1
    """
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValidationError("limit", f"must be a whole number >= 0 or None, got {limit!r}")
    return limit


def check_after(after: object) -> int | None:
    """Return ``after`` if it is None or an id (a whole number), else raise.

    >>> check_after("12")
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ValidationError: after: must be an entry id (int) or None, got '12'
    """
    if after is None:
        return None
    if isinstance(after, bool) or not isinstance(after, int):
        raise ValidationError("after", f"must be an entry id (int) or None, got {after!r}")
    return after


def check_count(count: object) -> int:
    """Return ``count`` (for delete_oldest) if it is a whole number >= 0, else raise.

    >>> check_count(2.5)
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ValidationError: count: must be a whole number >= 0, got 2.5
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValidationError("count", f"must be a whole number >= 0, got {count!r}")
    return count


def check_cursor_key(key: object) -> str:
    """Return ``key`` if it can name an export cursor (a non-empty str), else raise.

    >>> check_cursor_key("")
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ValidationError: key: must be a non-empty str (an exporter's name), got ''
    """
    if not isinstance(key, str) or not key:
        raise ValidationError("key", f"must be a non-empty str (an exporter's name), got {key!r}")
    return key


def check_cursor_value(value: object) -> int:
    """Return ``value`` if it can be an export cursor (an id: a whole number >= 0), else raise.

    >>> check_cursor_value(-1)
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ValidationError: value: must be an entry id (a whole number >= 0), got -1
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError("value", f"must be an entry id (a whole number >= 0), got {value!r}")
    return value


def family_names(name: str) -> dict[str, str]:
    """Sample names that belong to family ``name``, each with the kind it needs.

    What ``read(name=...)`` matches besides ``name`` itself.

    >>> family_names("requests")["requests_total"]
    'counter'
    >>> sorted(family_names("latency"))
    ['latency_bucket', 'latency_count', 'latency_sum', 'latency_total']
    """
    return {
        name + suffix: kind for kind, suffixes in _FAMILY_SUFFIXES.items() for suffix in suffixes
    }


async def _stream(items: Iterator[_T]) -> AsyncIterator[_T]:
    for item in items:
        yield item


class _BoundedStore(Generic[_T]):
    """Items in id order in a list, at most ``capacity`` of them, under one lock.

    Evicted and deleted-oldest items leave by moving ``_head`` forward; the list
    is compacted once the dead prefix is an eighth of the capacity, so writes
    stay amortised O(1) and the dead prefix stays bounded.
    """

    _item_type: type[_T]
    _item_field: str

    def __init__(self, capacity: object, *, field: str) -> None:
        self._capacity = check_capacity(capacity, field=field)
        self._compact_at = max(64, self._capacity // 8)
        self._lock = threading.Lock()
        self._items: list[_T] = []
        self._head = 0
        self._last_id = 0
        self._evicted = 0
        self._closed = False
        self._cursors: dict[str, int] = {}

    @property
    def evicted(self) -> int:
        """How many items were dropped to stay within the capacity (not retention)."""
        return self._evicted

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise ObservabilityError(
                f"{type(self).__name__} is closed; create a new storage to keep writing"
            )

    def _check_item(self, item: object) -> None:
        if not isinstance(item, self._item_type):
            raise ValidationError(
                self._item_field,
                f"must be a {self._item_type.__name__}, got {type(item).__name__}",
            )

    def _drop_head(self, count: int) -> None:
        """Forget the ``count`` oldest items (lock held)."""
        self._head += count
        if self._head >= self._compact_at:
            del self._items[: self._head]
            self._head = 0

    def _after_append(self) -> None:
        excess = len(self._items) - self._head - self._capacity
        if excess > 0:
            self._evicted += excess
            self._drop_head(excess)

    # Subclasses expose these as write/write_many with the port's parameter names.
    def _write(self, item: _T) -> None:
        # Request telemetry writes here once per request: the common case skips the calls.
        if type(item) is not self._item_type:
            self._check_item(item)
        with self._lock:
            if self._closed:
                self._refuse_if_closed()
            self._last_id = item_id = self._last_id + 1
            self._items.append(item.with_id(item_id))
            if len(self._items) - self._head > self._capacity:
                self._after_append()

    def _write_many(self, items: Iterable[_T]) -> None:
        batch = list(items)
        for item in batch:
            self._check_item(item)
        with self._lock:
            self._refuse_if_closed()
            first = self._last_id + 1
            self._last_id += len(batch)
            self._items.extend(item.with_id(n) for n, item in enumerate(batch, first))
            self._after_append()

    def _select(
        self,
        since: object,
        after: object,
        limit: object,
        keep: Callable[[_T], bool] | None,
    ) -> Iterator[_T]:
        """Check the common read arguments now; return the stream of matching items."""
        cursor = check_after(after)
        checked_limit = check_limit(limit)
        if since is not None:
            cutoff = validate_timestamp(since, field="since")
            also = keep

            def newer(item: _T) -> bool:
                return item.timestamp > cutoff and (also is None or also(item))

            keep = newer
        with self._lock:
            self._refuse_if_closed()
            last = self._last_id
        return self._walk(0 if cursor is None else cursor, last, checked_limit, keep)

    def _walk(
        self, cursor: int, last: int, limit: int | None, keep: Callable[[_T], bool] | None
    ) -> Iterator[_T]:
        remaining = -1 if limit is None else limit
        while remaining:
            with self._lock:
                start = bisect_right(self._items, cursor, lo=self._head, key=_stored_id)
                chunk = self._items[start : start + _READ_CHUNK]
            for item in chunk:
                if _stored_id(item) > last:
                    return
                if keep is None or keep(item):
                    yield item
                    remaining -= 1
                    if not remaining:
                        return
            if len(chunk) < _READ_CHUNK:
                return
            cursor = _stored_id(chunk[-1])

    def _snapshot(self) -> list[_T]:
        with self._lock:
            self._refuse_if_closed()
            return self._items[self._head :]

    def count_sync(self) -> int:
        """How many items are stored."""
        with self._lock:
            self._refuse_if_closed()
            return len(self._items) - self._head

    def count_after_sync(self, after: int | None) -> int:
        """How many items have ``id > after`` (None: all); a binary search, not a walk."""
        cursor = check_after(after)
        with self._lock:
            self._refuse_if_closed()
            if cursor is None:
                return len(self._items) - self._head
            return len(self._items) - bisect_right(
                self._items, cursor, lo=self._head, key=_stored_id
            )

    def load_cursor_sync(self, key: str) -> int | None:
        """The id saved under ``key`` (None: never saved)."""
        name = check_cursor_key(key)
        with self._lock:
            self._refuse_if_closed()
            return self._cursors.get(name)

    def save_cursor_sync(self, key: str, value: int) -> None:
        """Keep ``value`` under ``key`` (for the life of this storage object)."""
        name = check_cursor_key(key)
        position = check_cursor_value(value)
        with self._lock:
            self._refuse_if_closed()
            self._cursors[name] = position

    def _delete_where(self, doomed: Callable[[_T], bool]) -> int:
        with self._lock:
            self._refuse_if_closed()
            before = len(self._items) - self._head
            self._items = [item for item in self._items[self._head :] if not doomed(item)]
            self._head = 0
            return before - len(self._items)

    def delete_before_sync(self, timestamp: float) -> int:
        """Delete items with ``timestamp < timestamp``; return how many went."""
        cutoff = validate_timestamp(timestamp, field="timestamp")
        return self._delete_where(lambda item: item.timestamp < cutoff)

    def delete_oldest_sync(self, count: int) -> int:
        """Delete the ``count`` earliest-written items; return how many went."""
        wanted = check_count(count)
        with self._lock:
            self._refuse_if_closed()
            gone = min(wanted, len(self._items) - self._head)
            self._drop_head(gone)
            return gone

    def clear_sync(self) -> None:
        """Delete everything; ids keep counting up from where they were."""
        with self._lock:
            self._refuse_if_closed()
            self._items = []
            self._head = 0

    def close_sync(self) -> None:
        """Release the data; later calls (except close) raise ObservabilityError."""
        with self._lock:
            self._closed = True
            self._items = []
            self._head = 0
            self._cursors = {}

    async def count(self) -> int:
        """How many items are stored."""
        return self.count_sync()

    async def count_after(self, after: int | None) -> int:
        """Async twin of :meth:`count_after_sync`."""
        return self.count_after_sync(after)

    async def load_cursor(self, key: str) -> int | None:
        """Async twin of :meth:`load_cursor_sync`."""
        return self.load_cursor_sync(key)

    async def save_cursor(self, key: str, value: int) -> None:
        """Async twin of :meth:`save_cursor_sync`."""
        self.save_cursor_sync(key, value)

    async def delete_before(self, timestamp: float) -> int:
        """Delete items older than ``timestamp`` (see :meth:`delete_before_sync`)."""
        return self.delete_before_sync(timestamp)

    async def delete_oldest(self, count: int) -> int:
        """Delete the ``count`` earliest-written items (see :meth:`delete_oldest_sync`)."""
        return self.delete_oldest_sync(count)

    async def clear(self) -> None:
        """Delete everything (see :meth:`clear_sync`)."""
        self.clear_sync()

    async def close(self) -> None:
        """Release the data (see :meth:`close_sync`)."""
        self.close_sync()


class _LogStore(_BoundedStore[LogEntry]):
    """A bounded store of log entries implementing LogStoragePort."""

    _item_type = LogEntry
    _item_field = "entry"

    def write_sync(self, entry: LogEntry) -> None:
        """Store one entry; its stored copy gets the next id."""
        self._write(entry)

    def write_many_sync(self, entries: Iterable[LogEntry]) -> None:
        """Store several entries, all or none, with consecutive ids in the given order."""
        self._write_many(entries)

    async def write(self, entry: LogEntry) -> None:
        """Async twin of :meth:`write_sync`."""
        self._write(entry)

    async def write_many(self, entries: Iterable[LogEntry]) -> None:
        """Async twin of :meth:`write_many_sync`."""
        self._write_many(entries)

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
        accepted: frozenset[str] | None = None
        if level is not None:
            accepted = frozenset((normalize_level(level, field="level"),))
        if min_level is not None:
            floor = normalize_level(min_level, field="min_level")
            severe = frozenset(levels_at_or_above(floor))
            accepted = severe if accepted is None else accepted & severe
        keep: Callable[[LogEntry], bool] | None = None
        if accepted is not None:
            levels = accepted

            def keep_level(entry: LogEntry) -> bool:
                return entry.level in levels

            keep = keep_level
        return self._select(since, after, limit, keep)

    def read(
        self,
        *,
        since: float | None = None,
        after: int | None = None,
        level: str | None = None,
        min_level: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[LogEntry]:
        """Async twin of :meth:`read_sync` (arguments are checked at the call)."""
        return _stream(
            self.read_sync(since=since, after=after, level=level, min_level=min_level, limit=limit)
        )

    def count_by_level_sync(self, level: str) -> int:
        """How many entries of ``level`` (any casing, WARN for WARNING) are stored."""
        canonical = normalize_level(level)
        return sum(1 for entry in self._snapshot() if entry.level == canonical)

    def delete_by_level_before_sync(self, level: str, timestamp: float) -> int:
        """Delete entries of ``level`` older than ``timestamp``; return how many went."""
        canonical = normalize_level(level)
        cutoff = validate_timestamp(timestamp, field="timestamp")
        return self._delete_where(
            lambda entry: entry.timestamp < cutoff and entry.level == canonical
        )

    async def count_by_level(self, level: str) -> int:
        """Async twin of :meth:`count_by_level_sync`."""
        return self.count_by_level_sync(level)

    async def delete_by_level_before(self, level: str, timestamp: float) -> int:
        """Async twin of :meth:`delete_by_level_before_sync`."""
        return self.delete_by_level_before_sync(level, timestamp)


class _MetricsStore(_BoundedStore[MetricSample]):
    """A bounded store of metric samples implementing MetricsStoragePort."""

    _item_type = MetricSample
    _item_field = "sample"

    def write_sync(self, sample: MetricSample) -> None:
        """Store one sample; its stored copy gets the next id."""
        self._write(sample)

    def write_many_sync(self, samples: Iterable[MetricSample]) -> None:
        """Store several samples, all or none, with consecutive ids in the given order."""
        self._write_many(samples)

    async def write(self, sample: MetricSample) -> None:
        """Async twin of :meth:`write_sync`."""
        self._write(sample)

    async def write_many(self, samples: Iterable[MetricSample]) -> None:
        """Async twin of :meth:`write_many_sync`."""
        self._write_many(samples)

    def read_sync(
        self,
        *,
        since: float | None = None,
        after: int | None = None,
        name: str | None = None,
        limit: int | None = None,
    ) -> Iterator[MetricSample]:
        """Stream samples oldest first; ``name`` matches sample or family names."""
        keep: Callable[[MetricSample], bool] | None = None
        if name is not None:
            family = validate_metric_name(name, field="name")
            members = family_names(family)

            def keep_name(sample: MetricSample) -> bool:
                return sample.name == family or members.get(sample.name) == sample.kind

            keep = keep_name
        return self._select(since, after, limit, keep)

    def read(
        self,
        *,
        since: float | None = None,
        after: int | None = None,
        name: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[MetricSample]:
        """Async twin of :meth:`read_sync` (arguments are checked at the call)."""
        return _stream(self.read_sync(since=since, after=after, name=name, limit=limit))


class InMemoryLogStorage(_LogStore):
    """Log entries in memory, at most ``max_entries`` (the oldest are evicted).

    >>> from observabilipy.core.models import LogEntry
    >>> storage = InMemoryLogStorage()
    >>> storage.write_sync(LogEntry(timestamp=1.0, level="WARN", message="disk low"))
    >>> [entry.message for entry in storage.read_sync(min_level="warning")]
    ['disk low']
    >>> InMemoryLogStorage(max_entries=0)
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: max_entries: must be a whole number >= 1, got 0
    """

    def __init__(self, *, max_entries: int = 1_000_000) -> None:
        super().__init__(max_entries, field="max_entries")


class InMemoryMetricsStorage(_MetricsStore):
    """Metric samples in memory, at most ``max_samples`` (the oldest are evicted).

    >>> from observabilipy.core.models import MetricSample
    >>> storage = InMemoryMetricsStorage()
    >>> storage.write_sync(MetricSample(name="jobs_total", timestamp=1.0, value=3, kind="counter"))
    >>> [(s.name, s.value) for s in storage.read_sync(name="jobs")]
    [('jobs_total', 3.0)]
    """

    def __init__(self, *, max_samples: int = 1_000_000) -> None:
        super().__init__(max_samples, field="max_samples")
