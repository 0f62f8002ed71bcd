"""Retention: apply a RetentionPolicy or LevelRetentionPolicy to any storage.

The work is done by the storage itself, through ``delete_before``,
``delete_by_level_before``, ``delete_oldest`` and ``count``: nothing is read
into Python, so pruning a large SQLite file costs a few DELETE statements.
Age limits go first, then the count limit removes the earliest-written rest.

>>> from observabilipy.core.models import LogEntry, LevelRetentionPolicy
>>> from observabilipy.core.storage import InMemoryLogStorage
>>> storage = InMemoryLogStorage()
>>> storage.write_many_sync(
...     LogEntry(timestamp=t, level=level, message="m")
...     for t, level in [(100.0, "debug"), (100.0, "error"), (990.0, "debug")]
... )
>>> policy = LevelRetentionPolicy(max_age_seconds={"DEBUG": 60}, default_max_age_seconds=3600)
>>> apply_log_retention_sync(storage, policy, now=1000.0)
1
>>> [(e.timestamp, e.level) for e in storage.read_sync()]
[(100.0, 'ERROR'), (990.0, 'DEBUG')]
"""

from __future__ import annotations

import time

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.levels import LEVELS
from observabilipy.core.models import LevelRetentionPolicy, RetentionPolicy, validate_timestamp
from observabilipy.core.ports import LogStoragePort, MetricsStoragePort


def cutoff(now: float, max_age_seconds: float | None) -> float | None:
    """The timestamp before which entries are too old (``None``: no age limit).

    >>> cutoff(1000.0, 60)
    940.0
    >>> cutoff(1000.0, None) is None
    True
    """
    return None if max_age_seconds is None else now - max_age_seconds


def excess(count: int, max_count: int | None) -> int:
    """How many entries must go for ``count`` to fit ``max_count`` (``None``: no limit).

    >>> excess(120, 100), excess(80, 100), excess(80, None)
    (20, 0, 0)
    """
    return 0 if max_count is None else max(0, count - max_count)


def _now(now: float | None) -> float:
    return time.time() if now is None else validate_timestamp(now, field="now")


def _log_cutoffs(
    policy: RetentionPolicy | LevelRetentionPolicy, now: float
) -> tuple[float | None, dict[str, float]]:
    """One cutoff for every level, or a cutoff per level that has an age limit."""
    if isinstance(policy, RetentionPolicy):
        return cutoff(now, policy.max_age_seconds), {}
    if isinstance(policy, LevelRetentionPolicy):
        per_level: dict[str, float] = {}
        for level in LEVELS:
            level_cutoff = cutoff(now, policy.age_for(level))
            if level_cutoff is not None:
                per_level[level] = level_cutoff
        if len(per_level) == len(LEVELS) and len(set(per_level.values())) == 1:
            return per_level[LEVELS[0]], {}  # one age for all: one delete, not five
        return None, per_level
    raise ConfigurationError(
        f"policy: expected a RetentionPolicy or LevelRetentionPolicy, got {type(policy).__name__}"
    )


def _check_metrics_policy(policy: object) -> RetentionPolicy:
    if not isinstance(policy, RetentionPolicy):
        raise ConfigurationError(
            f"policy: metrics take a RetentionPolicy (ages per level are for logs), "
            f"got {type(policy).__name__}"
        )
    return policy


def apply_log_retention_sync(
    storage: LogStoragePort,
    policy: RetentionPolicy | LevelRetentionPolicy,
    *,
    now: float | None = None,
) -> int:
    """Delete the log entries ``policy`` no longer keeps; return how many went.

    ``now`` (Unix seconds, default: the current time) is what ages are measured from.

    >>> from observabilipy.core.models import LogEntry, RetentionPolicy
    >>> from observabilipy.core.storage import InMemoryLogStorage
    >>> storage = InMemoryLogStorage()
    >>> storage.write_many_sync(
    ...     LogEntry(timestamp=float(t), level="info", message="m") for t in range(10)
    ... )
    >>> apply_log_retention_sync(storage, RetentionPolicy(max_count=4), now=10.0)
    6
    """
    moment = _now(now)
    everything, per_level = _log_cutoffs(policy, moment)
    deleted = 0
    if everything is not None:
        deleted += storage.delete_before_sync(everything)
    for level, level_cutoff in per_level.items():
        deleted += storage.delete_by_level_before_sync(level, level_cutoff)
    surplus = excess(storage.count_sync(), policy.max_count)
    if surplus:
        deleted += storage.delete_oldest_sync(surplus)
    return deleted


async def apply_log_retention(
    storage: LogStoragePort,
    policy: RetentionPolicy | LevelRetentionPolicy,
    *,
    now: float | None = None,
) -> int:
    """Async twin of :func:`apply_log_retention_sync`.

    >>> import asyncio
    >>> from observabilipy.core.models import LogEntry, LevelRetentionPolicy
    >>> from observabilipy.core.storage import InMemoryLogStorage
    >>> storage = InMemoryLogStorage()
    >>> storage.write_sync(LogEntry(timestamp=0.0, level="warn", message="old"))
    >>> policy = LevelRetentionPolicy(max_age_seconds={"warn": 10})
    >>> asyncio.run(apply_log_retention(storage, policy, now=100.0))
    1
    """
    moment = _now(now)
    everything, per_level = _log_cutoffs(policy, moment)
    deleted = 0
    if everything is not None:
        deleted += await storage.delete_before(everything)
    for level, level_cutoff in per_level.items():
        deleted += await storage.delete_by_level_before(level, level_cutoff)
    surplus = excess(await storage.count(), policy.max_count)
    if surplus:
        deleted += await storage.delete_oldest(surplus)
    return deleted


def apply_metrics_retention_sync(
    storage: MetricsStoragePort, policy: RetentionPolicy, *, now: float | None = None
) -> int:
    """Delete the metric samples ``policy`` no longer keeps; return how many went.

    >>> from observabilipy.core.models import MetricSample, RetentionPolicy
    >>> from observabilipy.core.storage import InMemoryMetricsStorage
    >>> storage = InMemoryMetricsStorage()
    >>> storage.write_many_sync(
    ...     MetricSample(name="up", timestamp=float(t), value=1) for t in (0, 50, 100)
    ... )
    >>> apply_metrics_retention_sync(storage, RetentionPolicy(max_age_seconds=60), now=100.0)
    1
    """
    checked = _check_metrics_policy(policy)
    oldest_kept = cutoff(_now(now), checked.max_age_seconds)
    deleted = 0
    if oldest_kept is not None:
        deleted += storage.delete_before_sync(oldest_kept)
    surplus = excess(storage.count_sync(), checked.max_count)
    if surplus:
        deleted += storage.delete_oldest_sync(surplus)
    return deleted


async def apply_metrics_retention(
    storage: MetricsStoragePort, policy: RetentionPolicy, *, now: float | None = None
) -> int:
    """Async twin of :func:`apply_metrics_retention_sync`.

    >>> import asyncio
    >>> from observabilipy.core.models import MetricSample, RetentionPolicy
    >>> from observabilipy.core.storage import InMemoryMetricsStorage
    >>> storage = InMemoryMetricsStorage()
    >>> storage.write_many_sync(MetricSample(name="up", timestamp=1.0, value=1) for _ in range(3))
    >>> asyncio.run(apply_metrics_retention(storage, RetentionPolicy(max_count=1), now=2.0))
    2
    """
    checked = _check_metrics_policy(policy)
    oldest_kept = cutoff(_now(now), checked.max_age_seconds)
    deleted = 0
    if oldest_kept is not None:
        deleted += await storage.delete_before(oldest_kept)
    surplus = excess(await storage.count(), checked.max_count)
    if surplus:
        deleted += await storage.delete_oldest(surplus)
    return deleted
