"""Retention policies applied to storage, through deletes only."""

from __future__ import annotations

import time

import pytest

from observabilipy.core.errors import ConfigurationError, ValidationError
from observabilipy.core.levels import normalize_level
from observabilipy.core.models import LevelRetentionPolicy, RetentionPolicy
from observabilipy.core.retention import (
    apply_log_retention,
    apply_log_retention_sync,
    apply_metrics_retention,
    apply_metrics_retention_sync,
    cutoff,
    excess,
)
from observabilipy.core.storage import InMemoryLogStorage, InMemoryMetricsStorage
from observabilipy.core.testing import log, sample

pytestmark = pytest.mark.core

NOW = 10_000.0


def _logs(*rows: tuple[float, str]) -> InMemoryLogStorage:
    storage = InMemoryLogStorage()
    storage.write_many_sync(log(t, level, f"{normalize_level(level)}@{t:g}") for t, level in rows)
    return storage


def _messages(storage: InMemoryLogStorage) -> list[str]:
    return [entry.message for entry in storage.read_sync()]


def test_pure_helpers() -> None:
    assert cutoff(NOW, 60) == NOW - 60
    assert cutoff(NOW, None) is None
    assert excess(10, 3) == 7
    assert excess(3, 10) == 0
    assert excess(3, None) == 0


def test_age_limit_deletes_older_entries_only() -> None:
    storage = _logs((NOW - 120, "info"), (NOW - 60, "info"), (NOW - 59, "info"), (NOW, "info"))
    deleted = apply_log_retention_sync(storage, RetentionPolicy(max_age_seconds=60), now=NOW)
    assert deleted == 1  # exactly 60 s old is kept: deletion is strictly older
    assert _messages(storage) == [f"INFO@{NOW - 60:g}", f"INFO@{NOW - 59:g}", f"INFO@{NOW:g}"]


def test_count_limit_deletes_the_earliest_written() -> None:
    storage = _logs(*((NOW - n, "info") for n in range(10)))
    assert apply_log_retention_sync(storage, RetentionPolicy(max_count=3), now=NOW) == 7
    assert _messages(storage) == [f"INFO@{NOW - n:g}" for n in (7, 8, 9)]
    assert apply_log_retention_sync(storage, RetentionPolicy(max_count=3), now=NOW) == 0


def test_age_goes_first_then_count() -> None:
    storage = _logs(*((NOW - n * 10, "info") for n in range(10, 0, -1)))
    policy = RetentionPolicy(max_age_seconds=55, max_count=2)
    assert apply_log_retention_sync(storage, policy, now=NOW) == 8
    assert _messages(storage) == [f"INFO@{NOW - 20:g}", f"INFO@{NOW - 10:g}"]


def test_level_policy_keeps_each_level_for_its_own_age() -> None:
    storage = _logs(
        (NOW - 7_200, "debug"),
        (NOW - 7_200, "warning"),
        (NOW - 7_200, "error"),
        (NOW - 90_000, "warning"),
        (NOW - 90_000, "critical"),
        (NOW - 10, "debug"),
    )
    policy = LevelRetentionPolicy(
        max_age_seconds={"Debug": 3_600, "WARN": 86_400},
        default_max_age_seconds=None,
    )
    assert apply_log_retention_sync(storage, policy, now=NOW) == 2
    assert _messages(storage) == [
        f"WARNING@{NOW - 7_200:g}",
        f"ERROR@{NOW - 7_200:g}",
        f"CRITICAL@{NOW - 90_000:g}",
        f"DEBUG@{NOW - 10:g}",
    ]


def test_level_policy_default_age_and_count() -> None:
    storage = _logs(
        (NOW - 500, "error"),
        (NOW - 500, "info"),
        (NOW - 50, "error"),
        (NOW - 40, "info"),
        (NOW - 30, "info"),
    )
    policy = LevelRetentionPolicy(
        max_age_seconds={"error": 1_000}, default_max_age_seconds=100, max_count=2
    )
    assert apply_log_retention_sync(storage, policy, now=NOW) == 3
    assert _messages(storage) == [f"INFO@{NOW - 40:g}", f"INFO@{NOW - 30:g}"]


def test_one_age_for_every_level_behaves_like_a_plain_age_limit() -> None:
    storage = _logs((NOW - 500, "debug"), (NOW - 500, "critical"), (NOW - 5, "error"))
    policy = LevelRetentionPolicy(default_max_age_seconds=100)
    assert apply_log_retention_sync(storage, policy, now=NOW) == 2
    assert _messages(storage) == [f"ERROR@{NOW - 5:g}"]


def test_now_defaults_to_the_current_time() -> None:
    storage = _logs((time.time() - 3_600, "info"), (time.time() + 3_600, "info"))
    assert apply_log_retention_sync(storage, RetentionPolicy(max_age_seconds=60)) == 1
    assert storage.count_sync() == 1


def test_no_limits_delete_nothing() -> None:
    storage = _logs((0.0, "info"), (1.0, "debug"))
    assert apply_log_retention_sync(storage, RetentionPolicy(), now=NOW) == 0
    assert apply_log_retention_sync(storage, LevelRetentionPolicy(), now=NOW) == 0
    assert storage.count_sync() == 2


def test_bad_policy_or_now_are_refused_naming_them() -> None:
    storage = _logs((0.0, "info"))
    with pytest.raises(ConfigurationError, match="policy"):
        apply_log_retention_sync(storage, {"max_age_seconds": 5}, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="policy"):
        apply_metrics_retention_sync(
            InMemoryMetricsStorage(),
            LevelRetentionPolicy(default_max_age_seconds=5),  # type: ignore[arg-type]
            now=NOW,
        )
    with pytest.raises(ValidationError) as caught:
        apply_log_retention_sync(storage, RetentionPolicy(max_count=1), now=float("nan"))
    assert caught.value.field == "now"
    assert storage.count_sync() == 1


def test_metrics_retention_by_age_and_count() -> None:
    storage = InMemoryMetricsStorage()
    storage.write_many_sync(sample("g", NOW - age, age) for age in (300, 200, 100, 50, 0))
    policy = RetentionPolicy(max_age_seconds=150, max_count=2)
    assert apply_metrics_retention_sync(storage, policy, now=NOW) == 3
    assert [s.value for s in storage.read_sync()] == [50.0, 0.0]


async def test_async_log_retention_with_levels() -> None:
    storage = _logs((NOW - 100, "debug"), (NOW - 100, "warn"), (NOW - 100, "info"))
    policy = LevelRetentionPolicy(max_age_seconds={"debug": 10, "warn": 10}, max_count=5)
    assert await apply_log_retention(storage, policy, now=NOW) == 2
    assert _messages(storage) == [f"INFO@{NOW - 100:g}"]


async def test_async_metrics_retention() -> None:
    storage = InMemoryMetricsStorage()
    storage.write_many_sync(sample("g", NOW - age) for age in (100, 10, 1))
    policy = RetentionPolicy(max_age_seconds=50, max_count=1)
    assert await apply_metrics_retention(storage, policy, now=NOW) == 2
    assert [s.timestamp for s in storage.read_sync()] == [NOW - 1]
