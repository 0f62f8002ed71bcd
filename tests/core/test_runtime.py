"""EmbeddedRuntime: registry snapshots and retention in the background, surviving failures."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterable, Iterator

import pytest

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.handler import ObservabilipyHandler
from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry, MetricSample, RetentionPolicy
from observabilipy.core.runtime import EmbeddedRuntime
from observabilipy.core.storage import InMemoryLogStorage, InMemoryMetricsStorage

pytestmark = pytest.mark.core

# Guards against a hang in the code under test; never reached when it works.
PATIENCE = 10.0
# Short enough that a test waits little, long enough to be an honest interval.
TICK = 0.01


class WatchedMetricsStorage(InMemoryMetricsStorage):
    """Calls ``on_write`` after each stored batch, so tests wait on events, not sleeps."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.on_write: Callable[[WatchedMetricsStorage], None] = lambda storage: None

    def write_many_sync(self, samples: Iterable[MetricSample]) -> None:
        super().write_many_sync(samples)
        self.writes += 1
        self.on_write(self)


class FlakyMetricsStorage(WatchedMetricsStorage):
    """Raises for the first ``failures`` writes, then stores normally."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.attempts = 0

    def write_many_sync(self, samples: Iterable[MetricSample]) -> None:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise OSError("database is locked")
        super().write_many_sync(samples)


class HangingMetricsStorage(InMemoryMetricsStorage):
    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def write_many_sync(self, samples: Iterable[MetricSample]) -> None:
        self.entered.set()
        self.release.wait(PATIENCE)


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def runtimes() -> Iterator[list[EmbeddedRuntime]]:
    """Runtimes a test starts; stopped afterwards even if the test fails."""
    started: list[EmbeddedRuntime] = []
    yield started
    for runtime in started:
        runtime.stop(timeout=1.0)


def latest(storage: InMemoryMetricsStorage, name: str) -> float:
    values = [sample.value for sample in storage.read_sync(name=name)]
    assert values, f"no sample of {name}"
    return values[-1]


def test_snapshots_land_in_storage_as_cumulative_values(
    registry: Registry, runtimes: list[EmbeddedRuntime]
) -> None:
    jobs = registry.counter("jobs", "Jobs run")
    storage = WatchedMetricsStorage()
    seen_three = threading.Event()
    storage.on_write = lambda s: seen_three.set() if latest(s, "jobs_total") == 3 else None
    runtime = EmbeddedRuntime(metrics_storage=storage, registry=registry, snapshot_interval=TICK)
    runtimes.append(runtime)
    for _ in range(3):
        jobs.inc()
    runtime.start()
    assert seen_three.wait(PATIENCE)
    # every later snapshot repeats the cumulative value: a time series, not deltas
    assert {sample.value for sample in storage.read_sync(name="jobs")} == {3.0}
    assert runtime.status()["last_snapshot"] is not None


def test_stop_takes_a_last_snapshot(registry: Registry) -> None:
    jobs = registry.counter("jobs", "Jobs run", labelnames=("queue",))
    storage = InMemoryMetricsStorage()
    runtime = EmbeddedRuntime(metrics_storage=storage, registry=registry, snapshot_interval=3600)
    runtime.start()
    for _ in range(3):
        jobs.labels(queue="mail").inc()
    assert runtime.stop() is True
    [sample] = storage.read_sync()
    assert (sample.name, sample.labels, sample.value) == ("jobs_total", {"queue": "mail"}, 3.0)
    assert not runtime.running


def test_stop_is_idempotent_and_fine_when_never_started() -> None:
    runtime = EmbeddedRuntime()
    assert runtime.stop() is True
    runtime.start()
    assert runtime.stop() is True
    assert runtime.stop() is True
    runtime.start()  # a stopped runtime starts again
    assert runtime.running
    assert runtime.stop() is True


def test_start_twice_runs_one_thread(runtimes: list[EmbeddedRuntime]) -> None:
    runtime = EmbeddedRuntime()
    runtimes.append(runtime)
    runtime.start()
    runtime.start()
    threads = [t for t in threading.enumerate() if t.name == "observabilipy-runtime"]
    assert runtime.is_alive
    assert len([t for t in threads if t is runtime._thread]) == 1
    assert runtime.stop()


def test_retention_runs_at_its_interval(runtimes: list[EmbeddedRuntime]) -> None:
    logs = InMemoryLogStorage()
    logs.write_many_sync(LogEntry(timestamp=0.0, level="info", message="old") for _ in range(5))
    metrics = InMemoryMetricsStorage()
    metrics.write_sync(MetricSample(name="up", timestamp=0.0, value=1))
    runtime = EmbeddedRuntime(
        log_storage=logs,
        metrics_storage=metrics,
        registry=Registry(),
        log_retention=RetentionPolicy(max_age_seconds=60),
        metrics_retention=RetentionPolicy(max_age_seconds=60),
        snapshot_interval=3600,
        retention_interval=TICK,
    )
    runtimes.append(runtime)
    runtime.start()
    wait_for(lambda: runtime.status()["last_retention"] is not None)
    assert logs.count_sync() == 0
    assert metrics.count_sync() == 0


def test_run_retention_now_and_snapshot_now(registry: Registry) -> None:
    registry.gauge("depth", "Queue depth").set(4)
    logs = InMemoryLogStorage()
    logs.write_many_sync(LogEntry(timestamp=0.0, level="debug", message="x") for _ in range(3))
    metrics = InMemoryMetricsStorage()
    runtime = EmbeddedRuntime(
        log_storage=logs,
        metrics_storage=metrics,
        registry=registry,
        log_retention=RetentionPolicy(max_count=1),
    )
    assert runtime.run_retention_now() == 2
    assert runtime.snapshot_now() == 1
    assert latest(metrics, "depth") == 4.0


def test_failing_iterations_are_logged_once_and_the_loop_goes_on(
    registry: Registry, runtimes: list[EmbeddedRuntime], caplog: pytest.LogCaptureFixture
) -> None:
    registry.counter("jobs").inc()
    storage = FlakyMetricsStorage(failures=2)
    stored = threading.Event()
    storage.on_write = lambda s: stored.set()
    runtime = EmbeddedRuntime(metrics_storage=storage, registry=registry, snapshot_interval=TICK)
    runtimes.append(runtime)
    with caplog.at_level(logging.INFO, logger="observabilipy"):
        runtime.start()
        assert stored.wait(PATIENCE)
        assert runtime.stop()

    assert storage.attempts >= 3
    assert latest(storage, "jobs_total") == 1.0
    messages = [r.getMessage() for r in caplog.records if r.name == "observabilipy"]
    failures = [m for m in messages if "failed" in m]
    assert len(failures) == 1  # once per streak, not once per attempt
    assert "snapshot failed (OSError: database is locked)" in failures[0]
    assert any("snapshot works again" in m for m in messages)
    status = runtime.status()
    assert status["last_error"] == "snapshot: OSError: database is locked"
    assert status["consecutive_failures"] == 0


def test_status_reports_a_failure_streak(registry: Registry) -> None:
    storage = FlakyMetricsStorage(failures=100)
    runtime = EmbeddedRuntime(metrics_storage=storage, registry=registry)
    runtime.start()
    assert runtime.stop()  # the last snapshot fails: recorded, not raised
    status = runtime.status()
    assert status["running"] is False
    assert status["consecutive_failures"] == 1
    assert status["last_error_at"] is not None
    assert status["last_snapshot"] is None


class FailingLogStorage(InMemoryLogStorage):
    def write_many_sync(self, entries: Iterable[LogEntry]) -> None:
        raise OSError("log database is locked")

    def delete_before_sync(self, timestamp: float) -> int:
        raise OSError("log database is locked")


def test_failure_report_routed_to_the_broken_storage_does_not_loop(
    registry: Registry, runtimes: list[EmbeddedRuntime], capfd: pytest.CaptureFixture[str]
) -> None:
    """The observabilipy logger writes, through the handler, to the storage that failed."""
    storage = FailingLogStorage()
    handler = ObservabilipyHandler(storage, registry=registry)
    logger = logging.getLogger("observabilipy")
    logger.addHandler(handler)
    try:
        runtime = EmbeddedRuntime(
            log_storage=storage,
            registry=registry,
            log_retention=RetentionPolicy(max_age_seconds=60),
            retention_interval=TICK,
        )
        runtimes.append(runtime)
        runtime.start()
        wait_for(lambda: runtime.status()["consecutive_failures"] >= 3)
        assert handler.flush()
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert runtime.running  # the loop goes on
    assert handler.dropped == 1  # one report for the streak, dropped by the handler
    assert capfd.readouterr().err.count("could not write 1 records") == 1


def test_a_raising_log_handler_does_not_stop_the_loop(
    registry: Registry, runtimes: list[EmbeddedRuntime], capfd: pytest.CaptureFixture[str]
) -> None:
    class RaisingHandler(logging.Handler):
        def handle(self, record: logging.LogRecord) -> bool:
            raise RuntimeError("handler broke")

    registry.counter("jobs").inc()
    storage = FlakyMetricsStorage(failures=1)
    stored = threading.Event()
    storage.on_write = lambda s: stored.set()
    logger = logging.getLogger("observabilipy")
    raising = RaisingHandler()
    logger.addHandler(raising)
    try:
        runtime = EmbeddedRuntime(
            metrics_storage=storage, registry=registry, snapshot_interval=TICK
        )
        runtimes.append(runtime)
        runtime.start()
        assert stored.wait(PATIENCE)
    finally:
        logger.removeHandler(raising)
    assert latest(storage, "jobs_total") == 1.0
    assert "observabilipy: observabilipy runtime: snapshot failed" in capfd.readouterr().err


def test_stop_returns_even_if_storage_hangs(registry: Registry) -> None:
    storage = HangingMetricsStorage()
    runtime = EmbeddedRuntime(metrics_storage=storage, registry=registry, snapshot_interval=TICK)
    try:
        runtime.start()
        assert storage.entered.wait(PATIENCE)
        assert runtime.stop(timeout=0.05) is False
    finally:
        storage.release.set()
    assert runtime.stop(timeout=PATIENCE) is True


def test_context_manager(registry: Registry) -> None:
    registry.counter("jobs").inc(2)
    storage = InMemoryMetricsStorage()
    with EmbeddedRuntime(metrics_storage=storage, registry=registry) as runtime:
        assert runtime.running
    assert not runtime.is_alive
    assert latest(storage, "jobs_total") == 2.0


async def test_async_start_stop_and_async_with(registry: Registry) -> None:
    jobs = registry.counter("jobs")
    storage = InMemoryMetricsStorage()
    runtime = EmbeddedRuntime(metrics_storage=storage, registry=registry)
    await runtime.astart()
    assert runtime.running
    jobs.inc()
    assert await runtime.astop() is True
    assert latest(storage, "jobs_total") == 1.0

    async with EmbeddedRuntime(metrics_storage=storage, registry=registry) as again:
        assert again.running
        jobs.inc()
    assert not again.is_alive
    assert latest(storage, "jobs_total") == 2.0


@pytest.mark.parametrize("field", ["snapshot_interval", "retention_interval"])
@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), True, "10"])
def test_bad_intervals_name_the_parameter(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=f"^{field}: must be a positive finite"):
        EmbeddedRuntime(**{field: value})  # type: ignore[arg-type]


def test_retention_without_its_storage_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"^log_retention: needs log_storage"):
        EmbeddedRuntime(log_retention=RetentionPolicy(max_count=1))
    with pytest.raises(ConfigurationError, match=r"^metrics_retention: needs metrics_storage"):
        EmbeddedRuntime(metrics_retention=RetentionPolicy(max_count=1))
    with pytest.raises(ConfigurationError, match=r"^metrics_retention: must be a RetentionPolicy"):
        EmbeddedRuntime(
            metrics_storage=InMemoryMetricsStorage(),
            metrics_retention={"max_count": 1},  # type: ignore[arg-type]
        )


def test_a_running_runtime_is_stopped_with_a_last_snapshot_at_exit() -> None:
    code = textwrap.dedent(
        """
        from observabilipy.core.metrics import Registry
        from observabilipy.core.runtime import EmbeddedRuntime
        from observabilipy.core.storage import InMemoryMetricsStorage

        class PrintingStorage(InMemoryMetricsStorage):
            def write_many_sync(self, samples):
                for sample in samples:
                    print(sample.name, sample.value, flush=True)

        registry = Registry()
        jobs = registry.counter("jobs")
        EmbeddedRuntime(metrics_storage=PrintingStorage(), registry=registry,
                        snapshot_interval=3600).start()
        for _ in range(3):
            jobs.inc()
        """
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == ["jobs_total 3.0"]


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` briefly; for state with no event to wait on."""
    done = threading.Event()
    for _ in range(int(PATIENCE / TICK)):
        if condition():
            return
        done.wait(TICK)
    raise AssertionError("condition never became true")


def test_at_exit_the_last_snapshot_is_exported_and_the_exporter_closed() -> None:
    code = textwrap.dedent(
        """
        from observabilipy.core.metrics import Registry
        from observabilipy.core.runtime import EmbeddedRuntime
        from observabilipy.core.storage import InMemoryMetricsStorage

        class Printer:
            name, signals = "printer", frozenset({"metrics"})
            async def export_logs(self, entries): ...
            async def export_metrics(self, samples):
                async for sample in samples:
                    if sample.name == "jobs_total":
                        print("exported", sample.name, sample.value, flush=True)
            async def close(self):
                print("closed", flush=True)

        registry = Registry()
        jobs = registry.counter("jobs")
        EmbeddedRuntime(metrics_storage=InMemoryMetricsStorage(), registry=registry,
                        exporters=[Printer()], snapshot_interval=3600,
                        export_interval=3600).start()
        for _ in range(3):
            jobs.inc()
        """
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == ["exported jobs_total 3.0", "closed"]


def test_status_lists_no_exporters_when_there_are_none(registry: Registry) -> None:
    runtime = EmbeddedRuntime(metrics_storage=InMemoryMetricsStorage(), registry=registry)
    assert runtime.status()["exporters"] == {}
    assert runtime.export_now() == {}
    assert registry.get("observabilipy_export_items") is None  # no export series at all
