"""The embedded runtime: background snapshots of the metric registry, retention, export.

Recording a metric is an in-memory add on a :class:`~observabilipy.core.metrics.Registry`.
:class:`EmbeddedRuntime` turns that into history: every ``snapshot_interval``
seconds it writes the registry's cumulative values into metrics storage, and
every ``retention_interval`` seconds it applies the retention policies.  It runs
on one daemon thread, so Flask, Django, plain scripts and asyncio apps all use it
the same way, and it stops (with a last snapshot) at interpreter exit.

Given ``exporters``, it also forwards what the storages hold to them, every
``export_interval`` seconds, on a second daemon thread (store-and-forward with
persisted cursors and backoff: see :mod:`observabilipy.core.exporting`).

>>> from observabilipy.core.metrics import Registry
>>> from observabilipy.core.storage import InMemoryMetricsStorage
>>> registry = Registry()
>>> jobs = registry.counter("jobs_total", "Jobs run.")
>>> storage = InMemoryMetricsStorage()
>>> with EmbeddedRuntime(metrics_storage=storage, registry=registry):
...     for _ in range(3):
...         jobs.inc()
>>> [(s.name, s.value) for s in storage.read_sync()][-1]
('jobs_total', 3.0)
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Final, TypedDict

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.export import ExporterPort
from observabilipy.core.exporting import (
    ExporterStatus,
    Exports,
    ExportSettings,
    check_exporters,
    report,
)
from observabilipy.core.metrics import Registry, default_registry
from observabilipy.core.models import LevelRetentionPolicy, RetentionPolicy
from observabilipy.core.ports import LogStoragePort, MetricsStoragePort
from observabilipy.core.retention import apply_log_retention_sync, apply_metrics_retention_sync
from observabilipy.core.storage.memory import check_capacity

__all__ = ["EmbeddedRuntime", "ExporterStatus", "RuntimeStatus"]

# All runtimes share one exit budget, so a hung storage delays exit by this much at most.
_EXIT_TIMEOUT: Final = 5.0


class RuntimeStatus(TypedDict):
    """What :meth:`EmbeddedRuntime.status` reports (times are Unix seconds, None: not yet)."""

    running: bool
    last_snapshot: float | None
    last_retention: float | None
    last_error: str | None
    last_error_at: float | None
    #: Failed tasks since the last task that succeeded (export failures not included:
    #: they are each exporter's own, below).
    consecutive_failures: int
    #: Per exporter name: its state, backlog, last success and error, cursors.
    exporters: dict[str, ExporterStatus]


class EmbeddedRuntime:
    """Snapshot ``registry`` into ``metrics_storage`` and apply retention, in the background.

    - every ``snapshot_interval`` seconds: ``metrics_storage.write_many_sync(registry.snapshot())``,
      the cumulative value of every series (skipped without ``metrics_storage``);
    - every ``retention_interval`` seconds: ``log_retention`` on ``log_storage``
      and ``metrics_retention`` on ``metrics_storage`` (each when given).

    ``registry`` defaults to the default registry.  A task that fails (the
    storage raises) is logged once per failure streak on the ``observabilipy``
    logger, recorded in :meth:`status`, and tried again at its next interval;
    it never ends the loop.  The runtime never closes the storages.

    ``exporters`` (each an :class:`~observabilipy.core.export.ExporterPort` with
    its own name) get what the storages hold, read behind cursors kept in the
    storages: at start, then every ``export_interval`` seconds (60 by default),
    each drains its backlog in batches of at most ``export_batch_size`` items
    (1,000); an attempt that fails or takes longer than ``export_timeout`` seconds
    (30) is tried again
    after an exponential backoff with full jitter from ``export_backoff_initial``
    (1) up to ``export_backoff_max`` (300) seconds, or after the collector's
    ``Retry-After`` (up to the same cap).  The rules, and the metrics the
    runtime counts in ``registry``, are in :mod:`observabilipy.core.exporting`.
    :meth:`stop` makes a last export attempt and closes the exporters, within
    its timeout.

    Use :meth:`start` / :meth:`stop`, ``with runtime:`` or, in asyncio code,
    ``await runtime.astart()`` / ``await runtime.astop()`` or ``async with runtime:``.
    A runtime still running at interpreter exit is stopped (with its last
    snapshot) within a bounded time.  After ``os.fork()`` the child has no
    runtime thread: call :meth:`start` again in the child (for example in
    gunicorn's ``post_fork`` hook).

    >>> EmbeddedRuntime(snapshot_interval=0)
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: snapshot_interval: must be a positive finite number of seconds, got 0
    """

    def __init__(
        self,
        *,
        log_storage: LogStoragePort | None = None,
        metrics_storage: MetricsStoragePort | None = None,
        registry: Registry | None = None,
        snapshot_interval: float = 10.0,
        log_retention: RetentionPolicy | LevelRetentionPolicy | None = None,
        metrics_retention: RetentionPolicy | None = None,
        retention_interval: float = 60.0,
        exporters: Sequence[ExporterPort] = (),
        export_interval: float = 60.0,
        export_batch_size: int = 1_000,
        export_timeout: float = 30.0,
        export_backoff_initial: float = 1.0,
        export_backoff_max: float = 300.0,
    ) -> None:
        self._snapshot_interval = _check_interval(snapshot_interval, "snapshot_interval")
        self._retention_interval = _check_interval(retention_interval, "retention_interval")
        settings = ExportSettings(
            interval=_check_interval(export_interval, "export_interval"),
            batch_size=check_capacity(export_batch_size, field="export_batch_size"),
            timeout=_check_interval(export_timeout, "export_timeout"),
            backoff_initial=_check_interval(export_backoff_initial, "export_backoff_initial"),
            backoff_max=_check_interval(export_backoff_max, "export_backoff_max"),
        )
        if settings.backoff_max < settings.backoff_initial:
            raise ConfigurationError(
                f"export_backoff_max: must be >= export_backoff_initial "
                f"({settings.backoff_initial:g}), got {settings.backoff_max:g}"
            )
        checked_exporters = check_exporters(
            exporters, log_storage=log_storage, metrics_storage=metrics_storage
        )
        if log_retention is not None and log_storage is None:
            raise ConfigurationError("log_retention: needs log_storage to apply it to")
        if metrics_retention is not None and metrics_storage is None:
            raise ConfigurationError("metrics_retention: needs metrics_storage to apply it to")
        if log_retention is not None and not isinstance(
            log_retention, (RetentionPolicy, LevelRetentionPolicy)
        ):
            raise ConfigurationError(
                "log_retention: must be a RetentionPolicy or LevelRetentionPolicy, "
                f"got {type(log_retention).__name__}"
            )
        if metrics_retention is not None and not isinstance(metrics_retention, RetentionPolicy):
            raise ConfigurationError(
                f"metrics_retention: must be a RetentionPolicy, "
                f"got {type(metrics_retention).__name__}"
            )
        self._log_storage = log_storage
        self._metrics_storage = metrics_storage
        self._registry = registry if registry is not None else default_registry
        self._log_retention = log_retention
        self._metrics_retention = metrics_retention
        self._thread: threading.Thread | None = None
        self._reinit_locks()
        self._last_snapshot: float | None = None
        self._last_retention: float | None = None
        self._last_error: str | None = None
        self._last_error_at: float | None = None
        self._failures = 0
        self._failing: set[str] = set()
        self._exports = (
            Exports(
                checked_exporters,
                log_storage=log_storage,
                metrics_storage=metrics_storage,
                registry=self._registry,
                settings=settings,
            )
            if checked_exporters
            else None
        )

    def _reinit_locks(self) -> None:
        # Runs again in a forked child, where a lock held by a parent thread stays held.
        self._stop_event = threading.Event()
        # Serialises the tasks, so stop()'s last snapshot and a loop iteration never overlap.
        self._work_lock = threading.Lock()
        self._state_lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the background thread is alive.

        >>> EmbeddedRuntime().running
        False
        """
        thread = self._thread
        return thread is not None and thread.is_alive()

    is_alive = running

    def start(self) -> None:
        """Start the background thread (does nothing if it runs and is not stopping).

        >>> runtime = EmbeddedRuntime()
        >>> runtime.start(); runtime.start()
        >>> runtime.running
        True
        >>> runtime.stop()
        True
        """
        with self._state_lock:
            if self.running and not self._stop_event.is_set():
                return
            _register_exit_hook()
            self._stop_event = threading.Event()
            self._thread = threading.Thread(
                target=self._run,
                args=(self._stop_event,),
                name="observabilipy-runtime",
                daemon=True,
            )
            _running.add(self)
            self._thread.start()
            if self._exports is not None:
                self._exports.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Take a last snapshot, export once more, stop; True if all ended within ``timeout``.

        Then each exporter's ``close()`` is awaited.  Safe to call more than once
        and when never started.  Never waits longer than ``timeout`` seconds,
        even when the storage or a collector hangs.

        >>> EmbeddedRuntime().stop()
        True
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._state_lock:
            thread = self._thread
            _running.discard(self)
        ended = True
        if thread is not None and thread.is_alive():
            self._stop_event.set()
            if thread is threading.current_thread():
                return False
            # The last snapshot first, so that the last export carries it.
            thread.join(max(deadline - time.monotonic(), 0.0))
            ended = not thread.is_alive()
        if self._exports is not None:
            ended = self._exports.stop(deadline=deadline) and ended
        return ended

    async def astart(self) -> None:
        """:meth:`start` for asyncio code (the blocking part runs in a worker thread)."""
        await asyncio.to_thread(self.start)

    # asyncio.timeout() could not bound this: it would abandon the await, not the
    # thread join running underneath, so the timeout goes down to stop().
    async def astop(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
        """:meth:`stop` for asyncio code: the event loop keeps running meanwhile."""
        return await asyncio.to_thread(self.stop, timeout)

    def __enter__(self) -> EmbeddedRuntime:
        """Start; ``with runtime:`` stops it (with a last snapshot) at the end of the block."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop; exceptions of the block propagate."""
        self.stop()

    async def __aenter__(self) -> EmbeddedRuntime:
        """As ``with``, for ``async with runtime:``."""
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop without blocking the event loop."""
        await self.astop()

    def snapshot_now(self) -> int:
        """Write the registry's current values to metrics storage now; return how many.

        Raises what the storage raises (the background loop catches it instead).
        Without ``metrics_storage`` this does nothing and returns 0.

        >>> from observabilipy.core.metrics import Registry
        >>> from observabilipy.core.storage import InMemoryMetricsStorage
        >>> registry = Registry()
        >>> registry.gauge("queue_depth", "Jobs waiting.").set(4)
        >>> runtime = EmbeddedRuntime(metrics_storage=InMemoryMetricsStorage(), registry=registry)
        >>> runtime.snapshot_now()
        1
        """
        storage = self._metrics_storage
        if storage is None:
            return 0
        if self._exports is not None:
            self._exports.refresh_lag()
        with self._work_lock:
            samples = self._registry.snapshot()
            storage.write_many_sync(samples)
        self._last_snapshot = time.time()
        return len(samples)

    def run_retention_now(self) -> int:
        """Apply the retention policies now; return how many entries and samples went.

        Raises what the storage raises (the background loop catches it instead).

        >>> from observabilipy.core.models import LogEntry, RetentionPolicy
        >>> from observabilipy.core.storage import InMemoryLogStorage
        >>> logs = InMemoryLogStorage()
        >>> logs.write_many_sync(LogEntry(timestamp=0.0, level="info", message=str(n)) for n in range(5))
        >>> runtime = EmbeddedRuntime(log_storage=logs, log_retention=RetentionPolicy(max_count=2))
        >>> runtime.run_retention_now(), logs.count_sync()
        (3, 2)
        """
        deleted = 0
        with self._work_lock:
            if self._log_storage is not None and self._log_retention is not None:
                deleted += apply_log_retention_sync(self._log_storage, self._log_retention)
            if self._metrics_storage is not None and self._metrics_retention is not None:
                deleted += apply_metrics_retention_sync(
                    self._metrics_storage, self._metrics_retention
                )
        self._last_retention = time.time()
        return deleted

    def export_now(self) -> dict[str, dict[str, int]]:
        """Send every exporter's backlog now; return the items delivered per exporter and signal.

        For tests and scripts: it ignores backoff, and handles failures as the
        background loop does (counted, logged, in :meth:`status`; never raised).
        It runs on the exporters' thread, or on this one when the runtime is not
        started; from a coroutine, use :meth:`aexport_now`.  Without exporters
        it returns ``{}``.

        >>> from observabilipy.core.models import LogEntry
        >>> from observabilipy.core.storage import InMemoryLogStorage
        >>> class Counting:
        ...     name, signals, sent = "counting", frozenset({"logs"}), 0
        ...     async def export_logs(self, entries):
        ...         self.sent += len([entry async for entry in entries])
        ...     async def export_metrics(self, samples): ...
        ...     async def close(self): ...
        >>> logs = InMemoryLogStorage()
        >>> logs.write_sync(LogEntry(timestamp=1.0, level="info", message="hello"))
        >>> exporter = Counting()
        >>> runtime = EmbeddedRuntime(log_storage=logs, exporters=[exporter], registry=Registry())
        >>> runtime.export_now(), exporter.sent
        ({'counting': {'logs': 1}}, 1)
        >>> runtime.status()["exporters"]["counting"]["cursor"]
        {'logs': 1}
        >>> runtime.stop()
        True
        """
        if self._exports is None:
            return {}
        return self._exports.export_now()

    async def aexport_now(self) -> dict[str, dict[str, int]]:
        """:meth:`export_now` for asyncio code (the event loop keeps running meanwhile)."""
        return await asyncio.to_thread(self.export_now)

    def status(self) -> RuntimeStatus:
        """What a health check needs: alive or not, last successes, last error, exporters.

        Times are Unix seconds (None: not yet).  ``consecutive_failures`` counts
        failed tasks since the last task that succeeded; ``exporters`` holds an
        :class:`~observabilipy.core.exporting.ExporterStatus` per exporter.

        >>> sorted(EmbeddedRuntime().status())
        ['consecutive_failures', 'exporters', 'last_error', 'last_error_at', 'last_retention', 'last_snapshot', 'running']
        """
        return {
            "running": self.running,
            "last_snapshot": self._last_snapshot,
            "last_retention": self._last_retention,
            "last_error": self._last_error,
            "last_error_at": self._last_error_at,
            "consecutive_failures": self._failures,
            "exporters": {} if self._exports is None else self._exports.status(),
        }

    def _attempt(self, task: str, action: Callable[[], object]) -> None:
        """Run one task of the loop; a failure is recorded and reported, never raised."""
        try:
            action()
        except Exception as exc:
            self._failures += 1
            self._last_error = f"{task}: {type(exc).__name__}: {exc}"
            self._last_error_at = time.time()
            if task not in self._failing:
                self._failing.add(task)
                report(
                    logging.WARNING,
                    "observabilipy runtime: %s failed (%s: %s); retrying at each interval",
                    task,
                    type(exc).__name__,
                    exc,
                )
            return
        self._failures = 0
        if task in self._failing:
            self._failing.discard(task)
            report(logging.INFO, "observabilipy runtime: %s works again", task)

    def _run(self, stop: threading.Event) -> None:
        """The loop: each task at its own interval until ``stop`` is set, then a last snapshot."""
        now = time.monotonic()
        next_snapshot = now + self._snapshot_interval
        next_retention = now + self._retention_interval
        while not stop.wait(max(min(next_snapshot, next_retention) - time.monotonic(), 0.0)):
            if time.monotonic() >= next_snapshot:
                self._attempt("snapshot", self.snapshot_now)
                next_snapshot = time.monotonic() + self._snapshot_interval
            if time.monotonic() >= next_retention:
                self._attempt("retention", self.run_retention_now)
                next_retention = time.monotonic() + self._retention_interval
        # What was recorded since the previous snapshot is not lost.
        self._attempt("snapshot", self.snapshot_now)

    def _after_fork_in_child(self) -> None:
        self._reinit_locks()
        self._thread = None
        if self._exports is not None:
            self._exports.after_fork_in_child()


def _check_interval(value: object, field: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(
            f"{field}: must be a positive finite number of seconds, got {value!r}"
        )
    return float(value)


# Runtimes started and not stopped: stopped at exit, reset after fork.  Strong
# references, as the running thread holds its runtime anyway.
_running: set[EmbeddedRuntime] = set()


def _stop_at_exit() -> None:
    deadline = time.monotonic() + _EXIT_TIMEOUT
    for runtime in list(_running):
        runtime.stop(timeout=deadline - time.monotonic())


def _after_fork_in_child() -> None:
    for runtime in list(_running):
        runtime._after_fork_in_child()
    _running.clear()


_exit_hook_registered = False


def _register_exit_hook() -> None:
    # Registered at the first start(), after the storages exist: atexit runs hooks
    # in reverse order, so the last snapshot happens before a storage's own exit
    # hook closes it.
    global _exit_hook_registered
    if not _exit_hook_registered:
        _exit_hook_registered = True
        atexit.register(_stop_at_exit)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
