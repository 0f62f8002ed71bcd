"""Store-and-forward export in EmbeddedRuntime: cursors, batches, backoff, drops, health, exit."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterable, Callable, Iterator
from typing import Any

import pytest

from observabilipy.core.errors import ConfigurationError, ObservabilityError
from observabilipy.core.export import PermanentExportError, RetryableExportError, Signal
from observabilipy.core.exporting import ExportSettings
from observabilipy.core.http.health import health, health_sync
from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry, MetricSample
from observabilipy.core.runtime import EmbeddedRuntime
from observabilipy.core.storage import InMemoryLogStorage, InMemoryMetricsStorage

pytestmark = pytest.mark.core

# Guards against a hang in the code under test; never reached when it works.
PATIENCE = 10.0

# What an in-test exporter does with one call: deliver (None), raise, or await first.
Outcome = BaseException | Callable[[], Any] | None


class Collector:
    """An in-test exporter: keeps what it is given; ``outcomes`` decide its calls in turn."""

    def __init__(
        self,
        name: str = "collector",
        signals: tuple[Signal, ...] = ("logs",),
        outcomes: tuple[Outcome, ...] = (),
    ) -> None:
        self.name = name
        self.signals = frozenset(signals)
        self.outcomes = list(outcomes)
        self.sizes: list[int] = []  # every batch handed over, delivered or not
        self.threads: list[str] = []  # where each was handed over
        self.delivered: list[LogEntry | MetricSample] = []
        self.closed = 0
        self.goal: int | None = None
        self.reached = threading.Event()

    def wait_for(self, count: int) -> bool:
        """Wait until ``count`` items were delivered in all."""
        self.goal = count
        if len(self.delivered) >= count:
            return True
        return self.reached.wait(PATIENCE)

    async def _take(self, items: AsyncIterable[LogEntry | MetricSample]) -> None:
        batch = [item async for item in items]
        self.sizes.append(len(batch))
        self.threads.append(threading.current_thread().name)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if callable(outcome):
            outcome = await outcome()
        if isinstance(outcome, BaseException):
            raise outcome
        self.delivered += batch
        if self.goal is not None and len(self.delivered) >= self.goal:
            self.reached.set()

    async def export_logs(self, entries: AsyncIterable[LogEntry]) -> None:
        await self._take(entries)

    async def export_metrics(self, samples: AsyncIterable[MetricSample]) -> None:
        await self._take(samples)

    async def close(self) -> None:
        self.closed += 1


def entries(count: int, *, timestamp: float = 1.0) -> list[LogEntry]:
    return [LogEntry(timestamp=timestamp, level="info", message=f"m{n}") for n in range(count)]


def messages(items: list[LogEntry | MetricSample]) -> list[str]:
    return [item.message for item in items if isinstance(item, LogEntry)]


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` briefly; for state with no event to wait on."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.005)


def metric(registry: Registry, name: str, **labels: str) -> float | None:
    for sample in registry.snapshot():
        if sample.name == name and sample.labels == labels:
            return sample.value
    return None


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def logs() -> InMemoryLogStorage:
    return InMemoryLogStorage()


@pytest.fixture
def runtimes() -> Iterator[list[EmbeddedRuntime]]:
    """Runtimes a test makes; stopped afterwards even if the test fails."""
    made: list[EmbeddedRuntime] = []
    yield made
    for runtime in made:
        runtime.stop(timeout=2.0)


@pytest.fixture
def exact_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Full jitter without the jitter: every backoff is its ceiling."""
    monkeypatch.setattr(random, "uniform", lambda low, high: high)


def make(runtimes: list[EmbeddedRuntime], **options: Any) -> EmbeddedRuntime:
    options.setdefault("registry", Registry())
    runtime = EmbeddedRuntime(**options)
    runtimes.append(runtime)
    return runtime


# --- cursors and batches ------------------------------------------------------------------------


def test_the_first_export_starts_at_the_oldest_entry_and_saves_the_cursor(
    logs: InMemoryLogStorage, runtimes: list[EmbeddedRuntime]
) -> None:
    logs.write_many_sync(entries(3))
    collector = Collector()
    runtime = make(runtimes, log_storage=logs, exporters=[collector])
    assert runtime.export_now() == {"collector": {"logs": 3}}
    assert messages(collector.delivered) == ["m0", "m1", "m2"]
    assert logs.load_cursor_sync("collector") == 3
    logs.write_sync(LogEntry(timestamp=2.0, level="info", message="later"))
    assert runtime.export_now() == {"collector": {"logs": 1}}
    assert runtime.export_now() == {"collector": {"logs": 0}}
    assert messages(collector.delivered) == ["m0", "m1", "m2", "later"]


def test_a_new_runtime_resumes_from_the_cursor_the_storage_kept(
    logs: InMemoryLogStorage, runtimes: list[EmbeddedRuntime]
) -> None:
    logs.write_many_sync(entries(2))
    make(runtimes, log_storage=logs, exporters=[Collector()]).export_now()
    logs.write_many_sync(entries(1, timestamp=5.0))
    again = Collector()
    assert make(runtimes, log_storage=logs, exporters=[again]).export_now() == {
        "collector": {"logs": 1}
    }
    assert [item.id for item in again.delivered] == [3]


def test_each_exporter_has_its_own_cursor(
    logs: InMemoryLogStorage, runtimes: list[EmbeddedRuntime]
) -> None:
    logs.write_many_sync(entries(2))
    first, second = Collector("first"), Collector("second", outcomes=(OSError("down"),))
    runtime = make(runtimes, log_storage=logs, exporters=[first, second])
    assert runtime.export_now() == {"first": {"logs": 2}, "second": {"logs": 0}}
    assert (logs.load_cursor_sync("first"), logs.load_cursor_sync("second")) == (2, None)
    assert runtime.export_now() == {"first": {"logs": 0}, "second": {"logs": 2}}


def test_reads_are_bounded_by_the_batch_size_whatever_the_backlog(
    logs: InMemoryLogStorage, runtimes: list[EmbeddedRuntime]
) -> None:
    logs.write_many_sync(entries(10_000))
    collector = Collector()
    runtime = make(runtimes, log_storage=logs, exporters=[collector], export_batch_size=64)
    assert runtime.export_now() == {"collector": {"logs": 10_000}}
    assert max(collector.sizes) == 64
    assert len(collector.sizes) == 157  # 156 full batches and the rest
    assert [item.id for item in collector.delivered] == list(range(1, 10_001))


def test_metrics_are_exported_from_metrics_storage(runtimes: list[EmbeddedRuntime]) -> None:
    registry = Registry()
    registry.counter("jobs", "Jobs run.").inc(3)
    storage = InMemoryMetricsStorage()
    collector = Collector(signals=("metrics",))
    runtime = make(runtimes, metrics_storage=storage, registry=registry, exporters=[collector])
    runtime.snapshot_now()
    stored = list(storage.read_sync())
    assert runtime.export_now() == {"collector": {"metrics": len(stored)}}
    assert collector.delivered == stored  # jobs and the runtime's own export metrics
    [jobs] = [
        s for s in collector.delivered if isinstance(s, MetricSample) and s.name == "jobs_total"
    ]
    assert (jobs.value, jobs.kind) == (3.0, "counter")
    assert storage.load_cursor_sync("collector") == stored[-1].id


# --- failures -----------------------------------------------------------------------------------


def test_the_cursor_is_saved_only_when_a_batch_is_delivered(
    logs: InMemoryLogStorage, runtimes: list[EmbeddedRuntime]
) -> None:
    logs.write_many_sync(entries(5))
    collector = Collector(outcomes=(None, RetryableExportError("HTTP 503", status=503)))
    runtime = make(runtimes, log_storage=logs, exporters=[collector], export_batch_size=2)
    assert runtime.export_now() == {"collector": {"logs": 2}}
    assert logs.load_cursor_sync("collector") == 2  # the first batch, not the failed one
    status = runtime.status()["exporters"]["collector"]
    assert status["state"] == "retrying"
    assert status["backlog"] == 3
    assert status["last_error"] == "RetryableExportError: HTTP 503"
    assert status["cursor"] == {"logs": 2}
    assert runtime.export_now() == {"collector": {"logs": 3}}
    assert messages(collector.delivered) == ["m0", "m1", "m2", "m3", "m4"]  # once each
    assert collector.sizes == [2, 2, 2, 1]  # the failed batch was handed over twice


def test_a_retryable_failure_is_retried_after_the_backoff(
    logs: InMemoryLogStorage,
    runtimes: list[EmbeddedRuntime],
    registry: Registry,
    exact_backoff: None,
) -> None:
    logs.write_many_sync(entries(3))
    down = RetryableExportError("connection refused")
    collector = Collector(outcomes=(down, down))
    runtime = make(
        runtimes,
        log_storage=logs,
        registry=registry,
        exporters=[collector],
        export_interval=3600,  # only the backoff can bring the retries
        export_backoff_initial=0.01,
        export_backoff_max=0.05,
    )
    runtime.start()
    assert collector.wait_for(3)
    assert collector.sizes == [3, 3, 3]
    failures = {"exporter": "collector", "signal": "logs", "reason": "retryable"}
    assert metric(registry, "observabilipy_export_failures_total", **failures) == 2.0


def test_retry_after_is_honoured_instead_of_the_backoff(
    logs: InMemoryLogStorage, runtimes: list[EmbeddedRuntime], exact_backoff: None
) -> None:
    logs.write_many_sync(entries(1))
    collector = Collector(outcomes=(RetryableExportError("HTTP 429", retry_after=0.05),))
    runtime = make(
        runtimes,
        log_storage=logs,
        exporters=[collector],
        export_interval=3600,
        export_backoff_initial=3600,  # without Retry-After the retry would be an hour away
        export_backoff_max=3600,
    )
    runtime.start()
    assert collector.wait_for(1)


def test_retry_after_is_capped_by_the_largest_backoff(
    logs: InMemoryLogStorage, runtimes: list[EmbeddedRuntime]
) -> None:
    logs.write_many_sync(entries(1))
    collector = Collector(outcomes=(RetryableExportError("HTTP 503", retry_after=86_400.0),))
    runtime = make(
        runtimes,
        log_storage=logs,
        exporters=[collector],
        export_interval=3600,
        export_backoff_initial=0.01,
        export_backoff_max=0.05,
    )
    runtime.start()
    assert collector.wait_for(1)


def test_the_backoff_doubles_with_full_jitter_up_to_its_cap(exact_backoff: None) -> None:
    settings = ExportSettings(backoff_initial=0.5, backoff_max=6.0)
    assert [settings.backoff(n, None) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 6.0, 6.0]
    assert settings.backoff(1_000, None) == 6.0


def test_a_jittered_backoff_stays_between_zero_and_its_ceiling() -> None:
    settings = ExportSettings(backoff_initial=1.0, backoff_max=100.0)
    delays = [settings.backoff(3, None) for _ in range(200)]
    assert all(0.0 <= delay <= 4.0 for delay in delays)
    assert len(set(delays)) > 1  # jittered, so many exporters do not retry in step


def test_a_permanent_refusal_drops_the_batch_counts_it_and_logs_once(
    logs: InMemoryLogStorage,
    runtimes: list[EmbeddedRuntime],
    registry: Registry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    logs.write_many_sync(entries(7))
    refused = PermanentExportError("HTTP 400: bad label", status=400)
    collector = Collector(outcomes=(refused, refused, None))
    runtime = make(
        runtimes,
        log_storage=logs,
        registry=registry,
        exporters=[collector],
        export_batch_size=3,
    )
    with caplog.at_level(logging.INFO, logger="observabilipy"):
        assert runtime.export_now() == {"collector": {"logs": 1}}
    assert messages(collector.delivered) == ["m6"]
    assert logs.load_cursor_sync("collector") == 7
    labels = {"exporter": "collector", "signal": "logs"}
    assert metric(registry, "observabilipy_export_dropped_total", **labels) == 6.0
    assert metric(registry, "observabilipy_export_items_total", **labels) == 1.0
    assert (
        metric(registry, "observabilipy_export_failures_total", reason="permanent", **labels) == 2
    )
    reports = [r.getMessage() for r in caplog.records if r.name == "observabilipy"]
    refusals = [m for m in reports if "refused" in m]
    assert len(refusals) == 1  # once per streak
    assert "collector refused 3 logs for good (HTTP 400: bad label)" in refusals[0]
    assert any("collector delivers logs again" in m for m in reports)


@pytest.mark.parametrize(
    "failure", [ValueError("bug in the exporter"), KeyError("x"), TimeoutError(), OSError(111)]
)
def test_any_other_exception_counts_as_retryable_and_never_kills_the_loop(
    logs: InMemoryLogStorage,
    runtimes: list[EmbeddedRuntime],
    registry: Registry,
    failure: Exception,
) -> None:
    logs.write_many_sync(entries(2))
    collector = Collector(outcomes=(failure, failure))
    healthy = Collector("healthy")
    runtime = make(
        runtimes,
        log_storage=logs,
        registry=registry,
        exporters=[collector, healthy],
        export_interval=3600,
        export_backoff_initial=0.01,
        export_backoff_max=0.02,
    )
    runtime.start()
    assert healthy.wait_for(2)
    assert collector.wait_for(2)
    assert messages(collector.delivered) == ["m0", "m1"]
    failed = metric(
        registry,
        "observabilipy_export_failures_total",
        exporter="collector",
        signal="logs",
        reason="timeout" if isinstance(failure, TimeoutError) else "error",
    )
    assert failed == 2.0
    assert runtime.status()["exporters"]["collector"]["state"] == "ok"


def test_an_exporter_slower_than_the_timeout_is_retried(
    logs: InMemoryLogStorage, runtimes: list[EmbeddedRuntime], registry: Registry
) -> None:
    logs.write_many_sync(entries(2))

    async def hang() -> None:
        await asyncio.sleep(3600)

    collector = Collector(outcomes=(hang,))
    runtime = make(
        runtimes,
        log_storage=logs,
        registry=registry,
        exporters=[collector],
        export_timeout=0.05,
        export_backoff_initial=0.01,
        export_backoff_max=0.02,
    )
    runtime.start()
    assert collector.wait_for(2)
    assert collector.sizes == [2, 2]
    labels = {"exporter": "collector", "signal": "logs", "reason": "timeout"}
    assert metric(registry, "observabilipy_export_failures_total", **labels) == 1.0


def test_a_failing_storage_read_is_retried_like_a_collector_outage(
    runtimes: list[EmbeddedRuntime], registry: Registry
) -> None:
    class Locked(InMemoryLogStorage):
        failures = 1

        async def load_cursor(self, key: str) -> int | None:
            if self.failures:
                self.failures -= 1
                raise OSError("database is locked")
            return await super().load_cursor(key)

    storage = Locked()
    storage.write_many_sync(entries(1))
    collector = Collector()
    runtime = make(runtimes, log_storage=storage, registry=registry, exporters=[collector])
    assert runtime.export_now() == {"collector": {"logs": 0}}
    assert runtime.status()["exporters"]["collector"]["last_error"] == (
        "OSError: database is locked"
    )
    assert runtime.status()["consecutive_failures"] == 0  # the runtime's own tasks are fine
    assert runtime.export_now() == {"collector": {"logs": 1}}


# --- lag, status, health ------------------------------------------------------------------------


def test_lag_is_the_age_of_the_oldest_entry_not_yet_delivered(
    logs: InMemoryLogStorage, runtimes: list[EmbeddedRuntime], registry: Registry
) -> None:
    hour_ago = time.time() - 3600
    logs.write_many_sync(entries(2, timestamp=hour_ago))
    logs.write_sync(LogEntry(timestamp=time.time() - 60, level="info", message="recent"))
    collector = Collector(outcomes=(None, OSError("down")))
    runtime = make(
        runtimes, log_storage=logs, registry=registry, exporters=[collector], export_batch_size=2
    )
    labels = {"exporter": "collector", "signal": "logs"}
    assert metric(registry, "observabilipy_export_lag_seconds", **labels) == 0.0
    runtime.export_now()
    # The two old entries went; "recent" waits since a minute.
    lag = metric(registry, "observabilipy_export_lag_seconds", **labels)
    assert lag is not None
    assert 60 <= lag < 3600
    assert runtime.status()["exporters"]["collector"]["lag_seconds"] >= 60
    runtime.export_now()
    assert metric(registry, "observabilipy_export_lag_seconds", **labels) == 0.0


def test_snapshots_carry_the_export_metrics(runtimes: list[EmbeddedRuntime]) -> None:
    registry = Registry()
    logs, metrics = InMemoryLogStorage(), InMemoryMetricsStorage()
    logs.write_many_sync(entries(4))
    runtime = make(
        runtimes, log_storage=logs, metrics_storage=metrics, registry=registry,
        exporters=[Collector()],
    )  # fmt: skip
    runtime.export_now()
    runtime.snapshot_now()
    stored = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in metrics.read_sync()}
    labels = (("exporter", "collector"), ("signal", "logs"))
    assert stored[("observabilipy_export_items_total", labels)] == 4.0
    assert stored[("observabilipy_export_dropped_total", labels)] == 0.0
    assert stored[("observabilipy_export_lag_seconds", labels)] == 0.0


def test_status_reports_each_exporter(
    logs: InMemoryLogStorage, runtimes: list[EmbeddedRuntime]
) -> None:
    metrics = InMemoryMetricsStorage()
    logs.write_many_sync(entries(3))
    both = Collector("both", signals=("logs", "metrics"))
    down = Collector("down", outcomes=(RetryableExportError("HTTP 502"),))
    runtime = make(runtimes, log_storage=logs, metrics_storage=metrics, exporters=[both, down])
    before = runtime.status()["exporters"]
    assert before["both"]["state"] == "pending"
    assert before["both"]["backlog"] is None  # not measured before the first attempt
    assert before["both"]["last_success"] is None
    runtime.export_now()
    after = runtime.status()["exporters"]
    assert after["both"]["state"] == "ok"
    assert after["both"]["backlog"] == 0
    assert after["both"]["cursor"] == {"logs": 3, "metrics": None}  # no samples yet
    assert isinstance(after["both"]["last_success"], float)
    assert after["both"]["consecutive_failures"] == 0
    assert after["down"]["state"] == "retrying"
    assert after["down"]["backlog"] == 3
    assert after["down"]["consecutive_failures"] == 1
    assert after["down"]["cursor"] == {"logs": None}
    assert after["down"]["last_error"] == "RetryableExportError: HTTP 502"


def test_health_warns_of_an_outage_without_failing(
    logs: InMemoryLogStorage, runtimes: list[EmbeddedRuntime]
) -> None:
    logs.write_many_sync(entries(3))
    collector = Collector(outcomes=(RetryableExportError("HTTP 503"),))
    runtime = make(runtimes, log_storage=logs, exporters=[collector], export_interval=3600)
    runtime.start()
    wait_until(lambda: runtime.status()["exporters"]["collector"]["backlog"] == 3)
    status, body = health_sync(runtime=runtime)
    document = json.loads(body)
    assert status == 200  # the data waits locally: no reason to leave a load balancer
    assert document["status"] == "warn"
    component = document["components"]["runtime"]
    assert component["status"] == "warn"
    assert component["warning"] == (
        "exporter 'collector' cannot deliver (RetryableExportError: HTTP 503); "
        "3 items wait in local storage and are retried"
    )
    assert component["exporters"]["collector"]["backlog"] == 3
    assert component["exporters"]["collector"]["last_success"] is None

    runtime.export_now()
    status, body = asyncio.run(health(runtime=runtime))
    document = json.loads(body)
    assert (status, document["status"]) == (200, "pass")
    exporter = document["components"]["runtime"]["exporters"]["collector"]
    assert exporter["backlog"] == 0
    assert isinstance(exporter["last_success"], float)


def test_health_says_when_a_collector_refuses_data(
    logs: InMemoryLogStorage, runtimes: list[EmbeddedRuntime]
) -> None:
    logs.write_many_sync(entries(1))
    collector = Collector(outcomes=(PermanentExportError("HTTP 413: too large"),))
    runtime = make(runtimes, log_storage=logs, exporters=[collector], export_interval=3600)
    runtime.start()
    wait_until(lambda: runtime.status()["exporters"]["collector"]["state"] == "dropping")
    status, body = health_sync(runtime=runtime)
    component = json.loads(body)["components"]["runtime"]
    assert (status, component["status"]) == (200, "warn")
    assert component["warning"] == (
        "exporter 'collector': the collector refuses data for good "
        "(PermanentExportError: HTTP 413: too large); it is dropped and counted"
    )


# --- starting and stopping ----------------------------------------------------------------------


def test_stop_makes_a_last_export_then_closes_the_exporters(
    logs: InMemoryLogStorage, runtimes: list[EmbeddedRuntime]
) -> None:
    collector = Collector()
    runtime = make(runtimes, log_storage=logs, exporters=[collector], export_interval=3600)
    runtime.start()
    assert collector.closed == 0
    logs.write_many_sync(entries(5))  # after the first attempt, an hour before the next
    assert runtime.stop() is True
    assert messages(collector.delivered) == ["m0", "m1", "m2", "m3", "m4"]
    assert collector.closed == 1
    assert logs.load_cursor_sync("collector") == 5


def test_the_last_export_carries_the_last_snapshot(runtimes: list[EmbeddedRuntime]) -> None:
    registry = Registry()
    jobs = registry.counter("jobs")
    storage = InMemoryMetricsStorage()
    collector = Collector(signals=("metrics",))
    runtime = make(
        runtimes, metrics_storage=storage, registry=registry, exporters=[collector],
        snapshot_interval=3600, export_interval=3600,
    )  # fmt: skip
    runtime.start()
    jobs.inc(7)
    assert runtime.stop() is True
    exported = [s for s in collector.delivered if isinstance(s, MetricSample)]
    assert [s.value for s in exported if s.name == "jobs_total"] == [7.0]


def test_stop_is_bounded_when_an_exporter_hangs(
    logs: InMemoryLogStorage, runtimes: list[EmbeddedRuntime]
) -> None:
    entered = threading.Event()

    async def hang() -> None:
        entered.set()
        await asyncio.Event().wait()

    class HangingClose(Collector):
        async def close(self) -> None:
            await asyncio.Event().wait()

    logs.write_many_sync(entries(1))
    collector = HangingClose(outcomes=(hang, hang))
    runtime = make(runtimes, log_storage=logs, exporters=[collector], export_timeout=3600)
    runtime.start()
    assert entered.wait(PATIENCE)
    assert runtime.stop(timeout=0.5) is True  # the attempt and close() were abandoned in time
    assert collector.delivered == []
    assert logs.load_cursor_sync("collector") is None  # nothing is lost: sent again next time


def test_a_runtime_restarts_with_its_exporters(
    logs: InMemoryLogStorage, runtimes: list[EmbeddedRuntime]
) -> None:
    collector = Collector()
    runtime = make(runtimes, log_storage=logs, exporters=[collector], export_interval=3600)
    runtime.start()
    assert runtime.stop()
    logs.write_many_sync(entries(2))
    runtime.start()
    assert collector.wait_for(2)
    assert runtime.stop()
    assert collector.closed == 2


def test_export_now_without_exporters_and_before_start(runtimes: list[EmbeddedRuntime]) -> None:
    assert make(runtimes).export_now() == {}
    collector = Collector()
    logs = InMemoryLogStorage()
    logs.write_many_sync(entries(1))
    runtime = make(runtimes, log_storage=logs, exporters=[collector])
    assert runtime.export_now() == {"collector": {"logs": 1}}  # on this thread
    assert runtime.stop() is True
    assert collector.closed == 1


async def test_export_now_in_a_coroutine_points_to_aexport_now(
    runtimes: list[EmbeddedRuntime],
) -> None:
    class Watched(InMemoryLogStorage):
        measured = threading.Event()  # an attempt ended (each measures the backlog last)

        async def count_after(self, after: int | None) -> int:
            self.measured.set()
            return await super().count_after(after)

    logs = Watched()
    logs.write_many_sync(entries(2))
    collector = Collector()
    runtime = make(runtimes, log_storage=logs, exporters=[collector])
    with pytest.raises(ObservabilityError, match="aexport_now"):
        runtime.export_now()
    assert await runtime.aexport_now() == {"collector": {"logs": 2}}
    logs.measured.clear()
    await runtime.astart()
    assert await asyncio.to_thread(logs.measured.wait, PATIENCE)  # the attempt made at start
    logs.write_many_sync(entries(1))
    assert await runtime.aexport_now() == {"collector": {"logs": 1}}  # on the exporters' thread
    assert collector.threads[-1] == "observabilipy-export"
    assert await runtime.astop() is True


def test_a_dead_collector_never_holds_the_interpreter_at_exit() -> None:
    code = textwrap.dedent(
        """
        import asyncio, socket
        from observabilipy.core.metrics import Registry
        from observabilipy.core.models import LogEntry
        from observabilipy.core.runtime import EmbeddedRuntime
        from observabilipy.core.storage import InMemoryLogStorage

        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]

        class Refused:
            name, signals = "refused", frozenset({"logs"})
            async def export_logs(self, entries):
                async for _ in entries:
                    pass
                await asyncio.open_connection("127.0.0.1", port)
            async def export_metrics(self, samples): ...
            async def close(self): ...

        class Silent(Refused):
            name = "silent"
            async def export_logs(self, entries):
                await asyncio.Event().wait()  # a collector that accepts and never answers

        logs = InMemoryLogStorage()
        logs.write_sync(LogEntry(timestamp=1.0, level="info", message="kept"))
        EmbeddedRuntime(log_storage=logs, exporters=[Refused(), Silent()], registry=Registry(),
                        export_interval=0.01, export_timeout=0.2,
                        export_backoff_initial=0.01, export_backoff_max=0.01).start()
        print("started", flush=True)
        """
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == ["started"]
    assert "refused could not deliver logs (ConnectionRefusedError" in child.stderr


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"exporters": [Collector(), Collector()]}, "two exporters are named 'collector'"),
        ({"exporters": [object()]}, "is not an exporter"),
        ({"exporters": "otlp"}, "must be a list of exporters"),
        ({"exporters": [Collector(name="")]}, "needs a non-empty str name"),
        ({"exporters": [Collector(signals=())]}, "use a non-empty frozenset"),
        ({"exporters": [Collector(signals=("traces",))]}, "use a non-empty frozenset"),  # type: ignore[arg-type]
        (
            {"exporters": [Collector(signals=("metrics",))]},
            "'collector' sends metrics but the runtime has no metrics_storage",
        ),
        ({"export_interval": 0}, "^export_interval: must be a positive finite number"),
        ({"export_timeout": float("inf")}, "^export_timeout: must be a positive"),
        ({"export_batch_size": 0}, "^export_batch_size: must be a whole number >= 1"),
        ({"export_batch_size": 10.5}, "^export_batch_size: must be a whole number >= 1"),
        ({"export_backoff_initial": -1}, "^export_backoff_initial: must be a positive"),
        (
            {"export_backoff_initial": 10, "export_backoff_max": 1},
            "^export_backoff_max: must be >= export_backoff_initial",
        ),
    ],
)
def test_bad_export_settings_name_the_argument(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        EmbeddedRuntime(log_storage=InMemoryLogStorage(), registry=Registry(), **options)
