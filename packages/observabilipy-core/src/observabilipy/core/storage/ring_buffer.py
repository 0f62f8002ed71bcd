"""Ring-buffer storage: the most recent ``max_size`` logs or metric samples.

A fixed window of recent activity (10,000 by default): each write beyond it
drops the oldest entry, counted in :attr:`evicted`.  Use it where only the
recent past matters (tests, a dashboard of the last minutes, short-lived
scripts); use :mod:`observabilipy.core.storage.memory` to keep everything up
to a large safety cap, and SQLite to keep history across restarts.

Both classes share the in-memory storages' code and contract: thread-safe,
increasing ids that are never reused, streaming reads that do not hold the lock
while the consumer works, ``ObservabilityError`` on use after close.

>>> from observabilipy.core.models import LogEntry
>>> ring = RingBufferLogStorage(max_size=3)
>>> ring.write_many_sync(
...     LogEntry(timestamp=float(n), level="info", message=f"m{n}") for n in range(5)
... )
>>> [entry.message for entry in ring.read_sync()], ring.evicted
(['m2', 'm3', 'm4'], 2)
"""

from __future__ import annotations

from observabilipy.core.storage.memory import _LogStore, _MetricsStore


class RingBufferLogStorage(_LogStore):
    """The most recent ``max_size`` log entries.

    >>> from observabilipy.core.models import LogEntry
    >>> ring = RingBufferLogStorage(max_size=1)
    >>> ring.write_sync(LogEntry(timestamp=1.0, level="info", message="old"))
    >>> ring.write_sync(LogEntry(timestamp=2.0, level="info", message="new"))
    >>> [(entry.id, entry.message) for entry in ring.read_sync()]
    [(2, 'new')]
    """

    def __init__(self, max_size: int = 10_000) -> None:
        super().__init__(max_size, field="max_size")


class RingBufferMetricsStorage(_MetricsStore):
    """The most recent ``max_size`` metric samples.

    >>> from observabilipy.core.models import MetricSample
    >>> ring = RingBufferMetricsStorage(max_size=2)
    >>> ring.write_many_sync(
    ...     MetricSample(name="queue_depth", timestamp=float(n), value=n, kind="gauge")
    ...     for n in range(4)
    ... )
    >>> [s.value for s in ring.read_sync(name="queue_depth")]
    [2.0, 3.0]
    """

    def __init__(self, max_size: int = 10_000) -> None:
        super().__init__(max_size, field="max_size")
