"""The storage contracts every backend implements.

A backend offers each operation twice: ``async`` for asyncio code and a
``*_sync`` twin for threads, WSGI apps and scripts.  Both act on the same data.

Reading rules shared by every backend (checked by :mod:`observabilipy.core.testing`):

- entries come back in the order they were written, which is the order of
  their ``id`` (ids increase with every write and are never reused);
- ``since`` keeps entries with ``timestamp > since`` (exclusive, as in 1.x);
- ``after`` keeps entries with ``id > after``: a poller that passes the last id
  it saw never skips nor repeats an entry, even when timestamps are equal;
- ``level`` keeps one level, ``min_level`` that level and more severe ones
  (both case-insensitive, ``WARN`` meaning ``WARNING``);
- ``limit`` caps how many come back (``None``: all); reads stream.

Export cursors (where store-and-forward export resumes, see
:mod:`observabilipy.core.exporting`): each storage keeps, per key (an exporter's name), the id of the last entry that
exporter delivered.  ``load_cursor`` gives None for a key never saved, else
the value ``save_cursor`` last kept (at once, from any thread); a backend that
persists keeps cursors across closing and reopening (committed with its other
writes, at the latest at close); cursors outlive ``clear`` and deletes.  ``count_after(after)`` says how many stored entries have ``id > after``
(all of them for None): an exporter's backlog, answered from the ids alone.

>>> from observabilipy.core import InMemoryLogStorage
>>> isinstance(InMemoryLogStorage(), LogStoragePort)
True
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Protocol, runtime_checkable

from observabilipy.core.models import LogEntry, MetricSample


@runtime_checkable
class LogStoragePort(Protocol):
    """Where log entries are kept."""

    async def write(self, entry: LogEntry) -> None:
        """Store one entry."""

    async def write_many(self, entries: Iterable[LogEntry]) -> None:
        """Store several entries at once (one transaction where the backend has them)."""

    def read(
        self,
        *,
        since: float | None = None,
        after: int | None = None,
        level: str | None = None,
        min_level: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[LogEntry]:
        """Stream stored entries, oldest first, each with its ``id`` set."""

    async def count(self) -> int:
        """How many entries are stored."""

    async def count_by_level(self, level: str) -> int:
        """How many entries of ``level`` are stored."""

    async def delete_before(self, timestamp: float) -> int:
        """Delete entries with ``timestamp < timestamp``; return how many went."""

    async def delete_by_level_before(self, level: str, timestamp: float) -> int:
        """Delete entries of ``level`` older than ``timestamp``; return how many went."""

    async def delete_oldest(self, count: int) -> int:
        """Delete the ``count`` earliest-written entries; return how many went."""

    async def load_cursor(self, key: str) -> int | None:
        """The id saved under ``key`` by :meth:`save_cursor` (None: never saved)."""

    async def save_cursor(self, key: str, value: int) -> None:
        """Keep ``value`` (an id, >= 0) under ``key``, replacing what was there."""

    async def count_after(self, after: int | None) -> int:
        """How many stored entries have ``id > after`` (None: how many are stored)."""

    async def clear(self) -> None:
        """Delete everything."""

    async def close(self) -> None:
        """Release files, threads and connections; pending writes are kept."""

    def write_sync(self, entry: LogEntry) -> None:
        """Synchronous twin of :meth:`write`."""

    def write_many_sync(self, entries: Iterable[LogEntry]) -> None:
        """Synchronous twin of :meth:`write_many`."""

    def read_sync(
        self,
        *,
        since: float | None = None,
        after: int | None = None,
        level: str | None = None,
        min_level: str | None = None,
        limit: int | None = None,
    ) -> Iterator[LogEntry]:
        """Synchronous twin of :meth:`read`."""

    def count_sync(self) -> int:
        """Synchronous twin of :meth:`count`."""

    def count_by_level_sync(self, level: str) -> int:
        """Synchronous twin of :meth:`count_by_level`."""

    def delete_before_sync(self, timestamp: float) -> int:
        """Synchronous twin of :meth:`delete_before`."""

    def delete_by_level_before_sync(self, level: str, timestamp: float) -> int:
        """Synchronous twin of :meth:`delete_by_level_before`."""

    def delete_oldest_sync(self, count: int) -> int:
        """Synchronous twin of :meth:`delete_oldest`."""

    def load_cursor_sync(self, key: str) -> int | None:
        """Synchronous twin of :meth:`load_cursor`."""

    def save_cursor_sync(self, key: str, value: int) -> None:
        """Synchronous twin of :meth:`save_cursor`."""

    def count_after_sync(self, after: int | None) -> int:
        """Synchronous twin of :meth:`count_after`."""

    def clear_sync(self) -> None:
        """Synchronous twin of :meth:`clear`."""

    def close_sync(self) -> None:
        """Synchronous twin of :meth:`close`."""


@runtime_checkable
class MetricsStoragePort(Protocol):
    """Where metric samples are kept (a time series of cumulative points)."""

    async def write(self, sample: MetricSample) -> None:
        """Store one sample."""

    async def write_many(self, samples: Iterable[MetricSample]) -> None:
        """Store several samples at once."""

    def read(
        self,
        *,
        since: float | None = None,
        after: int | None = None,
        name: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[MetricSample]:
        """Stream stored samples, oldest first, each with its ``id`` set.

        ``name`` keeps samples whose sample name or family name equals it
        (``requests`` matches ``requests_total``; ``latency`` its ``_bucket``,
        ``_sum`` and ``_count`` samples).
        """

    async def count(self) -> int:
        """How many samples are stored."""

    async def delete_before(self, timestamp: float) -> int:
        """Delete samples with ``timestamp < timestamp``; return how many went."""

    async def delete_oldest(self, count: int) -> int:
        """Delete the ``count`` earliest-written samples; return how many went."""

    async def load_cursor(self, key: str) -> int | None:
        """The id saved under ``key`` by :meth:`save_cursor` (None: never saved)."""

    async def save_cursor(self, key: str, value: int) -> None:
        """Keep ``value`` (an id, >= 0) under ``key``, replacing what was there."""

    async def count_after(self, after: int | None) -> int:
        """How many stored samples have ``id > after`` (None: how many are stored)."""

    async def clear(self) -> None:
        """Delete everything."""

    async def close(self) -> None:
        """Release files, threads and connections; pending writes are kept."""

    def write_sync(self, sample: MetricSample) -> None:
        """Synchronous twin of :meth:`write`."""

    def write_many_sync(self, samples: Iterable[MetricSample]) -> None:
        """Synchronous twin of :meth:`write_many`."""

    def read_sync(
        self,
        *,
        since: float | None = None,
        after: int | None = None,
        name: str | None = None,
        limit: int | None = None,
    ) -> Iterator[MetricSample]:
        """Synchronous twin of :meth:`read`."""

    def count_sync(self) -> int:
        """Synchronous twin of :meth:`count`."""

    def delete_before_sync(self, timestamp: float) -> int:
        """Synchronous twin of :meth:`delete_before`."""

    def delete_oldest_sync(self, count: int) -> int:
        """Synchronous twin of :meth:`delete_oldest`."""

    def load_cursor_sync(self, key: str) -> int | None:
        """Synchronous twin of :meth:`load_cursor`."""

    def save_cursor_sync(self, key: str, value: int) -> None:
        """Synchronous twin of :meth:`save_cursor`."""

    def count_after_sync(self, after: int | None) -> int:
        """Synchronous twin of :meth:`count_after`."""

    def clear_sync(self) -> None:
        """Synchronous twin of :meth:`clear`."""

    def close_sync(self) -> None:
        """Synchronous twin of :meth:`close`."""
