"""The storage contract as a pytest suite: subclass, provide a fixture, run.

Every test runs twice, once through the ``*_sync`` methods and once through the
async ones (driven by a private event loop, so the suite needs no asyncio
plugin).  The suite closes the storage after each test; ``close`` must accept
being called again, so a fixture that also closes is fine.

.. code-block:: python

    import pytest
    from observabilipy.core.testing import LogStorageContract, MetricsStorageContract

    class TestMyLogStorage(LogStorageContract):
        @pytest.fixture
        def log_storage(self, tmp_path):
            yield MyLogStorage(tmp_path / "logs.db")

    class TestMyMetricsStorage(MetricsStorageContract):
        @pytest.fixture
        def metrics_storage(self, tmp_path):
            yield MyMetricsStorage(tmp_path / "metrics.db")

A backend that keeps its data across closing and reopening (a file) also
overrides ``reopen_log_storage`` / ``reopen_metrics_storage``: a fixture giving a
function that opens the same data again, so the suite checks that export
cursors survive a restart (for the others that test is skipped):

.. code-block:: python

    class TestMyLogStorage(LogStorageContract):
        @pytest.fixture
        def log_storage(self, tmp_path):
            yield MyLogStorage(tmp_path / "logs.db")

        @pytest.fixture
        def reopen_log_storage(self, tmp_path):
            return lambda: MyLogStorage(tmp_path / "logs.db")

What a backend must do is written in :mod:`observabilipy.core.ports`; the test
names below say which rule each one checks.  :func:`log` and :func:`sample`
build test data tersely for a backend's own extra tests.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from typing import Any, TypeVar

import pytest

from observabilipy.core.errors import ObservabilityError, ValidationError
from observabilipy.core.models import LogEntry, MetricSample
from observabilipy.core.ports import LogStoragePort, MetricsStoragePort

_R = TypeVar("_R")
_I = TypeVar("_I")


async def _collect(stream: AsyncIterator[_I]) -> list[_I]:
    return [item async for item in stream]


def log(timestamp: float, level: str = "INFO", message: str = "m", **attributes: Any) -> LogEntry:
    """A log entry for tests: ``log(5.0, "warn", "disk low", free_mb=12)``.

    >>> log(1.0, "warn").level
    'WARNING'
    """
    return LogEntry(timestamp=timestamp, level=level, message=message, attributes=attributes)


def sample(
    name: str,
    timestamp: float,
    value: float = 1.0,
    kind: str = "untyped",
    **labels: str,
) -> MetricSample:
    """A metric sample for tests: ``sample("jobs_total", 5.0, 3, "counter", queue="mail")``.

    >>> sample("jobs_total", 1.0, 2, "counter").kind
    'counter'
    """
    return MetricSample(name=name, timestamp=timestamp, value=value, labels=labels, kind=kind)


class _Driver:
    """Calls a storage's sync methods, or its async ones on one event loop per test."""

    storage: LogStoragePort | MetricsStoragePort

    def __init__(self, runner: asyncio.Runner, *, sync: bool) -> None:
        self.sync = sync
        self._runner = runner

    def run(self, coroutine: Coroutine[Any, Any, _R]) -> _R:
        """Run ``coroutine`` on this test's event loop."""
        return self._runner.run(coroutine)

    def _pick(self, sync_call: Any, async_call: Any, *args: Any, **kwargs: Any) -> Any:
        if self.sync:
            return sync_call(*args, **kwargs)
        return self.run(async_call(*args, **kwargs))

    def load_cursor(self, key: str) -> int | None:
        """The export cursor saved under ``key``."""
        result: int | None = self._pick(
            self.storage.load_cursor_sync, self.storage.load_cursor, key
        )
        return result

    def save_cursor(self, key: str, value: int) -> None:
        """Save an export cursor."""
        self._pick(self.storage.save_cursor_sync, self.storage.save_cursor, key, value)

    def count_after(self, after: int | None) -> int:
        """How many stored items have ``id > after``."""
        result: int = self._pick(self.storage.count_after_sync, self.storage.count_after, after)
        return result


class LogApi(_Driver):
    """A :class:`LogStoragePort` seen through one of its two APIs; reads return lists."""

    storage: LogStoragePort

    def __init__(self, storage: LogStoragePort, runner: asyncio.Runner, *, sync: bool) -> None:
        super().__init__(runner, sync=sync)
        self.storage = storage

    def write(self, entry: LogEntry) -> None:
        """Store one entry."""
        self._pick(self.storage.write_sync, self.storage.write, entry)

    def write_many(self, entries: Iterable[LogEntry]) -> None:
        """Store several entries."""
        self._pick(self.storage.write_many_sync, self.storage.write_many, entries)

    def read(self, **filters: Any) -> list[LogEntry]:
        """Everything ``read`` streams for ``filters``."""
        if self.sync:
            return list(self.storage.read_sync(**filters))
        return self.run(_collect(self.storage.read(**filters)))

    def count(self) -> int:
        """How many entries are stored."""
        result: int = self._pick(self.storage.count_sync, self.storage.count)
        return result

    def count_by_level(self, level: str) -> int:
        """How many entries of ``level`` are stored."""
        result: int = self._pick(
            self.storage.count_by_level_sync, self.storage.count_by_level, level
        )
        return result

    def delete_before(self, timestamp: float) -> int:
        """Delete entries older than ``timestamp``."""
        result: int = self._pick(
            self.storage.delete_before_sync, self.storage.delete_before, timestamp
        )
        return result

    def delete_by_level_before(self, level: str, timestamp: float) -> int:
        """Delete entries of ``level`` older than ``timestamp``."""
        result: int = self._pick(
            self.storage.delete_by_level_before_sync,
            self.storage.delete_by_level_before,
            level,
            timestamp,
        )
        return result

    def delete_oldest(self, count: int) -> int:
        """Delete the ``count`` earliest-written entries."""
        result: int = self._pick(self.storage.delete_oldest_sync, self.storage.delete_oldest, count)
        return result

    def clear(self) -> None:
        """Delete everything."""
        self._pick(self.storage.clear_sync, self.storage.clear)

    def close(self) -> None:
        """Close the storage."""
        self._pick(self.storage.close_sync, self.storage.close)


class MetricsApi(_Driver):
    """A :class:`MetricsStoragePort` seen through one of its two APIs; reads return lists."""

    storage: MetricsStoragePort

    def __init__(self, storage: MetricsStoragePort, runner: asyncio.Runner, *, sync: bool) -> None:
        super().__init__(runner, sync=sync)
        self.storage = storage

    def write(self, sample: MetricSample) -> None:
        """Store one sample."""
        self._pick(self.storage.write_sync, self.storage.write, sample)

    def write_many(self, samples: Iterable[MetricSample]) -> None:
        """Store several samples."""
        self._pick(self.storage.write_many_sync, self.storage.write_many, samples)

    def read(self, **filters: Any) -> list[MetricSample]:
        """Everything ``read`` streams for ``filters``."""
        if self.sync:
            return list(self.storage.read_sync(**filters))
        return self.run(_collect(self.storage.read(**filters)))

    def count(self) -> int:
        """How many samples are stored."""
        result: int = self._pick(self.storage.count_sync, self.storage.count)
        return result

    def delete_before(self, timestamp: float) -> int:
        """Delete samples older than ``timestamp``."""
        result: int = self._pick(
            self.storage.delete_before_sync, self.storage.delete_before, timestamp
        )
        return result

    def delete_oldest(self, count: int) -> int:
        """Delete the ``count`` earliest-written samples."""
        result: int = self._pick(self.storage.delete_oldest_sync, self.storage.delete_oldest, count)
        return result

    def clear(self) -> None:
        """Delete everything."""
        self._pick(self.storage.clear_sync, self.storage.clear)

    def close(self) -> None:
        """Close the storage."""
        self._pick(self.storage.close_sync, self.storage.close)


def _ids(items: Iterable[LogEntry | MetricSample]) -> list[int | None]:
    return [item.id for item in items]


def _assert_increasing(ids: list[int | None]) -> None:
    numbers = [n for n in ids if isinstance(n, int)]
    assert numbers == ids, f"every stored item needs an int id: {ids}"
    assert numbers == sorted(set(numbers)), f"ids must be unique and increasing: {ids}"


def _check_cursors_are_kept_per_key(api: LogApi | MetricsApi) -> None:
    assert api.load_cursor("loki") is None
    api.save_cursor("loki", 3)
    api.save_cursor("otlp", 0)
    api.save_cursor("Loki EU/2", 12)
    assert (api.load_cursor("loki"), api.load_cursor("otlp"), api.load_cursor("Loki EU/2")) == (
        3,
        0,
        12,
    )
    api.save_cursor("loki", 2**40)
    assert api.load_cursor("loki") == 2**40


def _check_count_after(api: LogApi | MetricsApi, ids: list[int | None]) -> None:
    numbers = [n for n in ids if n is not None]
    assert len(numbers) == 5
    assert api.count_after(None) == 5
    assert api.count_after(0) == 5
    assert api.count_after(numbers[1]) == 3
    assert api.count_after(numbers[-1]) == 0
    assert api.count_after(numbers[-1] + 100) == 0
    assert api.delete_oldest(2) == 2
    assert api.count_after(None) == 3
    assert api.count_after(numbers[0]) == 3
    assert api.count_after(numbers[2]) == 2


def _check_bad_cursor_arguments(api: LogApi | MetricsApi) -> None:
    bad: Any = [("load_cursor", ("",), "key"), ("load_cursor", (7,), "key")]
    bad += [("save_cursor", ("", 1), "key"), ("save_cursor", ("loki", -1), "value")]
    bad += [("save_cursor", ("loki", 1.5), "value"), ("save_cursor", ("loki", True), "value")]
    bad += [("count_after", ("12",), "after")]
    for method, args, field in bad:
        with pytest.raises(ValidationError) as caught:
            getattr(api, method)(*args)
        assert caught.value.field == field


class LogStorageContract:
    """What every :class:`LogStoragePort` must do; subclass and override ``log_storage``."""

    @pytest.fixture
    def log_storage(self) -> LogStoragePort | Iterator[LogStoragePort]:
        """The storage under test, empty; subclasses override this fixture."""
        pytest.fail(f"{type(self).__name__} must override the log_storage fixture")

    @pytest.fixture(params=["sync", "async"])
    def logs(self, request: pytest.FixtureRequest, log_storage: LogStoragePort) -> Iterator[LogApi]:
        """The storage driven through its sync or its async methods; closed afterwards."""
        with asyncio.Runner() as runner:
            api = LogApi(log_storage, runner, sync=request.param == "sync")
            yield api
            api.close()

    # Writing and reading back

    def test_write_then_read_returns_equal_entries_with_increasing_ids(self, logs: LogApi) -> None:
        written = [log(3.0, "info", "a"), log(1.0, "error", "b"), log(2.0, "debug", "c")]
        for entry in written:
            logs.write(entry)
        stored = logs.read()
        assert stored == written  # written order, not timestamp order
        _assert_increasing(_ids(stored))

    def test_write_many_keeps_the_given_order(self, logs: LogApi) -> None:
        logs.write(log(0.0, message="first"))
        logs.write_many(log(float(n), message=f"m{n}") for n in range(5))
        logs.write_many([])
        stored = logs.read()
        assert [e.message for e in stored] == ["first", "m0", "m1", "m2", "m3", "m4"]
        _assert_increasing(_ids(stored))

    def test_attributes_round_trip_with_their_types(self, logs: LogApi) -> None:
        attributes = {
            "text": 'héllo 日本 "quoted"\nnext line',
            "whole": 42,
            "big": 2**53 + 1,
            "negative": -7,
            "fraction": 0.25,
            "yes": True,
            "no": False,
            "nothing": None,
        }
        logs.write(log(1.0, "info", "ünïcode message ✓", **attributes))
        [stored] = logs.read()
        assert stored.message == "ünïcode message ✓"
        assert dict(stored.attributes) == attributes
        assert {k: type(v) for k, v in stored.attributes.items()} == {
            k: type(v) for k, v in attributes.items()
        }

    def test_reads_stream_instead_of_returning_lists(self, logs: LogApi) -> None:
        logs.write(log(1.0))
        if logs.sync:
            stream = logs.storage.read_sync()
            assert isinstance(stream, Iterator)
            assert [e.message for e in stream] == ["m"]
        else:
            astream = logs.storage.read()
            assert isinstance(astream, AsyncIterator)
            assert [e.message for e in logs.run(_collect(astream))] == ["m"]

    def test_writing_while_a_read_is_consumed_does_not_block(self, logs: LogApi) -> None:
        # The reader is mid-stream when the writer comes: a backend holding a
        # lock (or a transaction) across yields would deadlock here.
        logs.write_many(log(float(n)) for n in range(1_500))
        seen = 0
        for _ in logs.storage.read_sync():
            if seen in (0, 500, 1_000):
                logs.storage.write_sync(log(9_999.0, message="during"))
            seen += 1
        assert seen >= 1_500
        assert logs.count() == 1_503

    # Filters

    def test_since_is_exclusive(self, logs: LogApi) -> None:
        logs.write_many(log(t, message=str(t)) for t in (1.0, 2.0, 2.0, 3.0))
        assert [e.message for e in logs.read(since=2.0)] == ["3.0"]
        assert [e.message for e in logs.read(since=1.5)] == ["2.0", "2.0", "3.0"]
        assert logs.read(since=3.0) == []

    def test_after_skips_up_to_the_given_id(self, logs: LogApi) -> None:
        logs.write_many(log(float(n), message=f"m{n}") for n in range(5))
        ids = _ids(logs.read())
        assert ids[2] is not None
        assert [e.message for e in logs.read(after=ids[2])] == ["m3", "m4"]
        assert logs.read(after=ids[-1] or 0) == []

    def test_after_cursor_with_equal_timestamps_never_skips_or_repeats(self, logs: LogApi) -> None:
        # A poller that keeps the last id it saw, reading in small pages while
        # writes keep arriving with one shared timestamp (where `since` fails).
        written: list[str] = []
        seen: list[str] = []
        cursor: int | None = None
        for round_ in range(12):
            batch = [log(1_000.0, message=f"r{round_}-{n}") for n in range(round_ % 4 + 1)]
            if round_ % 2:
                logs.write_many(batch)
            else:
                for entry in batch:
                    logs.write(entry)
            written += [e.message for e in batch]
            page = logs.read(after=cursor, limit=3)
            seen += [e.message for e in page]
            if page:
                cursor = page[-1].id
        while page := logs.read(after=cursor, limit=3):
            seen += [e.message for e in page]
            cursor = page[-1].id
        assert seen == written

    def test_level_is_case_insensitive_and_warn_means_warning(self, logs: LogApi) -> None:
        logs.write_many(
            [
                log(1.0, "debug"),
                log(2.0, "WARN", "w1"),
                log(3.0, "warning", "w2"),
                log(4.0, "error"),
            ]
        )
        for spelling in ("warn", "WARN", "Warning", "WARNING"):
            assert [e.message for e in logs.read(level=spelling)] == ["w1", "w2"]
        assert [e.level for e in logs.read(level="Error")] == ["ERROR"]
        assert logs.read(level="critical") == []

    def test_min_level_keeps_that_level_and_more_severe(self, logs: LogApi) -> None:
        levels = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
        logs.write_many(log(float(n), level) for n, level in enumerate(levels))
        assert [e.level for e in logs.read(min_level="warn")] == ["WARNING", "ERROR", "CRITICAL"]
        assert [e.level for e in logs.read(min_level="debug")] == levels
        assert [e.level for e in logs.read(min_level="CRITICAL")] == ["CRITICAL"]

    def test_limit(self, logs: LogApi) -> None:
        logs.write_many(log(float(n), message=f"m{n}") for n in range(5))
        assert logs.read(limit=0) == []
        assert [e.message for e in logs.read(limit=2)] == ["m0", "m1"]
        assert len(logs.read(limit=None)) == 5
        assert len(logs.read(limit=50)) == 5

    def test_filters_combine(self, logs: LogApi) -> None:
        logs.write_many(
            log(float(t), level, f"{level}@{t}")
            for t in range(1, 7)
            for level in ("info", "warning", "error")
        )
        got = logs.read(since=2.0, min_level="warn", limit=3)
        assert [e.message for e in got] == ["warning@3", "error@3", "warning@4"]
        cursor = got[-1].id
        assert [e.message for e in logs.read(after=cursor, level="error", limit=2)] == [
            "error@4",
            "error@5",
        ]
        assert logs.read(level="info", min_level="error") == []
        assert [e.message for e in logs.read(level="error", min_level="warn", since=5.0)] == [
            "error@6"
        ]

    # Counting and deleting

    def test_count_and_count_by_level(self, logs: LogApi) -> None:
        assert logs.count() == 0
        logs.write_many([log(1.0, "info"), log(2.0, "warn"), log(3.0, "WARNING"), log(4.0)])
        assert logs.count() == 4
        assert logs.count_by_level("info") == 2
        assert logs.count_by_level("Warn") == 2
        assert logs.count_by_level("CRITICAL") == 0

    def test_delete_before_is_strict_and_returns_how_many(self, logs: LogApi) -> None:
        logs.write_many(log(t, message=str(t)) for t in (3.0, 1.0, 2.0, 4.0))
        assert logs.delete_before(3.0) == 2
        assert [e.message for e in logs.read()] == ["3.0", "4.0"]
        assert logs.delete_before(0.0) == 0
        assert logs.count() == 2

    def test_delete_by_level_before(self, logs: LogApi) -> None:
        logs.write_many(
            [log(1.0, "debug", "old-debug"), log(1.0, "warn", "old-warn"), log(5.0, "debug", "new")]
        )
        assert logs.delete_by_level_before("DEBUG", 3.0) == 1
        assert [e.message for e in logs.read()] == ["old-warn", "new"]
        assert logs.delete_by_level_before("Warn", 3.0) == 1
        assert [e.message for e in logs.read()] == ["new"]

    def test_delete_oldest_removes_earliest_written(self, logs: LogApi) -> None:
        logs.write_many(log(float(10 - n), message=f"m{n}") for n in range(5))
        assert logs.delete_oldest(0) == 0
        assert logs.delete_oldest(2) == 2
        assert [e.message for e in logs.read()] == ["m2", "m3", "m4"]
        assert logs.delete_oldest(10) == 3
        assert logs.count() == 0

    def test_ids_keep_increasing_after_deletes_and_clear(self, logs: LogApi) -> None:
        logs.write_many(log(1.0) for _ in range(3))
        highest = max(n for n in _ids(logs.read()) if n is not None)
        logs.delete_oldest(3)
        logs.write(log(1.0, message="after delete"))
        [after_delete] = logs.read()
        assert after_delete.id is not None
        assert after_delete.id > highest
        logs.clear()
        assert logs.count() == 0
        assert logs.read() == []
        logs.write(log(1.0, message="after clear"))
        [after_clear] = logs.read()
        assert after_clear.id is not None
        assert after_clear.id > after_delete.id
        assert logs.read(after=after_delete.id) == [after_clear]

    # Export cursors

    @pytest.fixture
    def reopen_log_storage(self) -> Callable[[], LogStoragePort] | None:
        """For a backend that persists: a function opening the same data again (None: none)."""
        return None

    def test_cursors_start_unset_and_keep_the_last_value_saved_per_key(self, logs: LogApi) -> None:
        _check_cursors_are_kept_per_key(logs)

    def test_cursors_outlive_clear_and_deletes(self, logs: LogApi) -> None:
        logs.write_many(log(float(n)) for n in range(3))
        logs.save_cursor("loki", 2)
        logs.delete_oldest(1)
        logs.delete_before(10.0)
        logs.clear()
        assert logs.load_cursor("loki") == 2

    def test_count_after_counts_entries_past_an_id(self, logs: LogApi) -> None:
        logs.write_many(log(float(n)) for n in range(5))
        _check_count_after(logs, _ids(logs.read()))

    def test_bad_cursor_arguments_name_the_parameter(self, logs: LogApi) -> None:
        _check_bad_cursor_arguments(logs)

    def test_cursors_survive_closing_and_reopening(
        self, logs: LogApi, reopen_log_storage: Callable[[], LogStoragePort] | None
    ) -> None:
        if reopen_log_storage is None:
            pytest.skip("this backend keeps nothing across close (no reopen_log_storage)")
        logs.write_many(log(float(n)) for n in range(3))
        logs.save_cursor("loki", 2)
        logs.close()
        again = LogApi(reopen_log_storage(), logs._runner, sync=logs.sync)
        try:
            assert again.load_cursor("loki") == 2
            assert again.count_after(2) == 1
        finally:
            again.close()

    # Lifecycle, concurrency, bad input

    def test_close_is_idempotent_and_later_writes_raise(self, logs: LogApi) -> None:
        logs.write(log(1.0))
        logs.close()
        logs.close()
        with pytest.raises(ObservabilityError):
            logs.write(log(2.0))
        with pytest.raises(ObservabilityError):
            logs.write_many([log(3.0)])

    def test_concurrent_writers_lose_nothing(self, logs: LogApi) -> None:
        threads, per_thread = 8, 250

        def writer(worker: int) -> None:
            for n in range(per_thread):
                if n % 10 == 0:
                    logs.storage.write_many_sync(log(1.0, message=f"{worker}") for _ in range(5))
                else:
                    logs.storage.write_sync(log(1.0, message=f"{worker}"))

        async def async_writers() -> None:
            async def one(worker: int) -> None:
                for _ in range(per_thread):
                    await logs.storage.write(log(1.0, message=f"a{worker}"))

            await asyncio.gather(*(one(worker) for worker in range(4)))

        workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
        for thread in workers:
            thread.start()
        if not logs.sync:
            logs.run(async_writers())
        for thread in workers:
            thread.join()
        expected = threads * (per_thread + per_thread // 10 * 4)
        if not logs.sync:
            expected += 4 * per_thread
        stored = logs.read()
        assert logs.count() == expected
        assert len(stored) == expected
        _assert_increasing(_ids(stored))
        assert sum(1 for e in stored if e.message == "3") == per_thread + per_thread // 10 * 4

    @pytest.mark.parametrize(
        ("filters", "field"),
        [
            ({"limit": -1}, "limit"),
            ({"limit": 2.5}, "limit"),
            ({"after": "12"}, "after"),
            ({"after": 1.5}, "after"),
            ({"since": float("nan")}, "since"),
            ({"since": float("inf")}, "since"),
            ({"since": "yesterday"}, "since"),
            ({"level": "loud"}, "level"),
            ({"min_level": "verbose"}, "min_level"),
        ],
    )
    def test_bad_read_arguments_name_the_parameter(
        self, logs: LogApi, filters: dict[str, Any], field: str
    ) -> None:
        logs.write(log(1.0))
        with pytest.raises(ValidationError) as caught:
            logs.read(**filters)
        assert caught.value.field == field

    def test_bad_delete_and_count_arguments_name_the_parameter(self, logs: LogApi) -> None:
        with pytest.raises(ValidationError) as caught:
            logs.delete_oldest(-1)
        assert caught.value.field == "count"
        with pytest.raises(ValidationError) as caught:
            logs.delete_before(float("nan"))
        assert caught.value.field == "timestamp"
        with pytest.raises(ValidationError) as caught:
            logs.count_by_level("loud")
        assert caught.value.field == "level"
        with pytest.raises(ValidationError) as caught:
            logs.delete_by_level_before("loud", 1.0)
        assert caught.value.field == "level"


class MetricsStorageContract:
    """What every :class:`MetricsStoragePort` must do; subclass and override
    ``metrics_storage``."""

    @pytest.fixture
    def metrics_storage(self) -> MetricsStoragePort | Iterator[MetricsStoragePort]:
        """The storage under test, empty; subclasses override this fixture."""
        pytest.fail(f"{type(self).__name__} must override the metrics_storage fixture")

    @pytest.fixture(params=["sync", "async"])
    def metrics(
        self, request: pytest.FixtureRequest, metrics_storage: MetricsStoragePort
    ) -> Iterator[MetricsApi]:
        """The storage driven through its sync or its async methods; closed afterwards."""
        with asyncio.Runner() as runner:
            api = MetricsApi(metrics_storage, runner, sync=request.param == "sync")
            yield api
            api.close()

    def test_write_then_read_keeps_every_field(self, metrics: MetricsApi) -> None:
        written = MetricSample(
            name="http_requests_total",
            timestamp=1_700_000_000.25,
            value=3,
            labels={"method": "GET", "path": '/ünï "x"'},
            kind="counter",
            help="Requests served.",
        )
        metrics.write(written)
        metrics.write(sample("queue_depth", 1.0, 7.5, "gauge"))
        stored = metrics.read()
        assert stored[0] == written
        assert stored[0].help == "Requests served."
        assert (stored[1].name, stored[1].value, stored[1].kind) == ("queue_depth", 7.5, "gauge")
        _assert_increasing(_ids(stored))

    def test_non_finite_values_round_trip(self, metrics: MetricsApi) -> None:
        metrics.write_many(
            sample("temp", float(n), value, "gauge")
            for n, value in enumerate([float("nan"), float("inf"), float("-inf"), -0.5])
        )
        values = [s.value for s in metrics.read()]
        assert math.isnan(values[0])
        assert values[1:] == [float("inf"), float("-inf"), -0.5]

    def test_write_many_keeps_the_given_order(self, metrics: MetricsApi) -> None:
        metrics.write_many(sample("g", float(10 - n), n) for n in range(5))
        metrics.write_many([])
        stored = metrics.read()
        assert [s.value for s in stored] == [0.0, 1.0, 2.0, 3.0, 4.0]
        _assert_increasing(_ids(stored))

    def test_reads_stream_instead_of_returning_lists(self, metrics: MetricsApi) -> None:
        metrics.write(sample("g", 1.0))
        if metrics.sync:
            stream = metrics.storage.read_sync()
            assert isinstance(stream, Iterator)
            assert [s.name for s in stream] == ["g"]
        else:
            astream = metrics.storage.read()
            assert isinstance(astream, AsyncIterator)
            assert [s.name for s in metrics.run(_collect(astream))] == ["g"]

    def test_name_matches_sample_and_family_names(self, metrics: MetricsApi) -> None:
        metrics.write_many(
            [
                sample("jobs_total", 1.0, 1, "counter"),
                sample("jobs", 1.0, 2, "gauge"),
                sample("latency_bucket", 1.0, 3, "histogram", le="0.5"),
                sample("latency_sum", 1.0, 4, "histogram"),
                sample("latency_count", 1.0, 5, "histogram"),
                sample("latency_total", 1.0, 6, "gauge"),  # a gauge: not the family "latency"
                sample("jobs_total_count", 1.0, 7, "untyped"),
            ]
        )
        assert [s.value for s in metrics.read(name="jobs")] == [1.0, 2.0]
        assert [s.value for s in metrics.read(name="jobs_total")] == [1.0]
        assert [s.value for s in metrics.read(name="latency")] == [3.0, 4.0, 5.0]
        assert [s.value for s in metrics.read(name="latency_sum")] == [4.0]
        assert [s.value for s in metrics.read(name="latency_total")] == [6.0]
        assert metrics.read(name="missing") == []

    def test_since_after_and_limit(self, metrics: MetricsApi) -> None:
        metrics.write_many(sample("g", float(t), t) for t in (1, 2, 2, 3, 4))
        assert [s.value for s in metrics.read(since=2.0)] == [3.0, 4.0]
        stored = metrics.read()
        assert [s.value for s in metrics.read(after=stored[1].id)] == [2.0, 3.0, 4.0]
        assert metrics.read(limit=0) == []
        assert [s.value for s in metrics.read(limit=2)] == [1.0, 2.0]
        assert [s.value for s in metrics.read(since=1.0, after=stored[2].id, limit=1)] == [3.0]

    def test_after_cursor_with_equal_timestamps_never_skips_or_repeats(
        self, metrics: MetricsApi
    ) -> None:
        written: list[float] = []
        seen: list[float] = []
        cursor: int | None = None
        value = 0
        for round_ in range(10):
            batch = []
            for _ in range(round_ % 3 + 1):
                value += 1
                batch.append(sample("g", 5.0, value))
            metrics.write_many(batch)
            written += [s.value for s in batch]
            page = metrics.read(after=cursor, limit=2)
            seen += [s.value for s in page]
            if page:
                cursor = page[-1].id
        while page := metrics.read(after=cursor, limit=2):
            seen += [s.value for s in page]
            cursor = page[-1].id
        assert seen == written

    def test_count_delete_before_and_delete_oldest(self, metrics: MetricsApi) -> None:
        metrics.write_many(sample("g", float(t), t) for t in (5, 1, 3, 2, 4))
        assert metrics.count() == 5
        assert metrics.delete_before(3.0) == 2
        assert [s.value for s in metrics.read()] == [5.0, 3.0, 4.0]
        assert metrics.delete_oldest(1) == 1
        assert [s.value for s in metrics.read()] == [3.0, 4.0]
        assert metrics.delete_oldest(9) == 2
        assert metrics.count() == 0

    def test_ids_keep_increasing_after_clear(self, metrics: MetricsApi) -> None:
        metrics.write_many(sample("g", 1.0) for _ in range(3))
        highest = metrics.read()[-1].id
        metrics.clear()
        assert metrics.count() == 0
        metrics.write(sample("g", 1.0))
        [stored] = metrics.read()
        assert highest is not None
        assert stored.id is not None
        assert stored.id > highest

    @pytest.fixture
    def reopen_metrics_storage(self) -> Callable[[], MetricsStoragePort] | None:
        """For a backend that persists: a function opening the same data again (None: none)."""
        return None

    def test_cursors_start_unset_and_keep_the_last_value_saved_per_key(
        self, metrics: MetricsApi
    ) -> None:
        _check_cursors_are_kept_per_key(metrics)

    def test_cursors_outlive_clear_and_deletes(self, metrics: MetricsApi) -> None:
        metrics.write_many(sample("g", float(n)) for n in range(3))
        metrics.save_cursor("otlp", 3)
        metrics.delete_oldest(1)
        metrics.clear()
        assert metrics.load_cursor("otlp") == 3

    def test_count_after_counts_samples_past_an_id(self, metrics: MetricsApi) -> None:
        metrics.write_many(sample("g", float(n), n) for n in range(5))
        _check_count_after(metrics, _ids(metrics.read()))

    def test_bad_cursor_arguments_name_the_parameter(self, metrics: MetricsApi) -> None:
        _check_bad_cursor_arguments(metrics)

    def test_cursors_survive_closing_and_reopening(
        self,
        metrics: MetricsApi,
        reopen_metrics_storage: Callable[[], MetricsStoragePort] | None,
    ) -> None:
        if reopen_metrics_storage is None:
            pytest.skip("this backend keeps nothing across close (no reopen_metrics_storage)")
        metrics.write_many(sample("g", float(n)) for n in range(3))
        metrics.save_cursor("otlp", 1)
        metrics.close()
        again = MetricsApi(reopen_metrics_storage(), metrics._runner, sync=metrics.sync)
        try:
            assert again.load_cursor("otlp") == 1
            assert again.count_after(1) == 2
        finally:
            again.close()

    def test_close_is_idempotent_and_later_writes_raise(self, metrics: MetricsApi) -> None:
        metrics.close()
        metrics.close()
        with pytest.raises(ObservabilityError):
            metrics.write(sample("g", 1.0))

    def test_concurrent_writers_lose_nothing(self, metrics: MetricsApi) -> None:
        threads, per_thread = 8, 250

        def writer(worker: int) -> None:
            for n in range(per_thread):
                metrics.storage.write_sync(sample("g", 1.0, n, worker=str(worker)))

        workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
        for thread in workers:
            thread.start()

        async def async_writers() -> None:
            await asyncio.gather(
                *(metrics.storage.write(sample("a", 1.0, n)) for n in range(per_thread))
            )

        if not metrics.sync:
            metrics.run(async_writers())
        for thread in workers:
            thread.join()
        expected = threads * per_thread + (0 if metrics.sync else per_thread)
        stored = metrics.read()
        assert metrics.count() == expected == len(stored)
        _assert_increasing(_ids(stored))

    @pytest.mark.parametrize(
        ("filters", "field"),
        [
            ({"limit": -1}, "limit"),
            ({"after": "12"}, "after"),
            ({"since": float("nan")}, "since"),
            ({"name": "not a name"}, "name"),
        ],
    )
    def test_bad_read_arguments_name_the_parameter(
        self, metrics: MetricsApi, filters: dict[str, Any], field: str
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            metrics.read(**filters)
        assert caught.value.field == field

    def test_bad_delete_arguments_name_the_parameter(self, metrics: MetricsApi) -> None:
        with pytest.raises(ValidationError) as caught:
            metrics.delete_oldest(-1)
        assert caught.value.field == "count"
        with pytest.raises(ValidationError) as caught:
            metrics.delete_before(float("inf"))
        assert caught.value.field == "timestamp"
