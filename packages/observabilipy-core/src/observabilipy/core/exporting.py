"""Store-and-forward export: the part of :class:`~observabilipy.core.runtime.EmbeddedRuntime`
that sends what local storage holds to its exporters.

Each exporter reads each signal it sends (``logs``, ``metrics``) from local storage
behind its own cursor, kept in that storage under the exporter's name (so a SQLite
file resumes where the last process stopped; an exporter never seen before starts
at the oldest entry the storage holds).  Every ``interval`` seconds, per exporter
and signal:

- read at most ``batch_size`` entries after the cursor (memory stays bounded
  whatever the backlog) and hand them to the exporter as an async iterable;
- delivered: move the cursor past the batch, and go on with the next batch until
  the backlog is empty (the cursor is saved in the storage when the backlog is
  drained or an attempt fails, and every second during a long drain);
- :class:`~observabilipy.core.export.RetryableExportError`, any other exception,
  or no answer within ``timeout`` seconds: keep the cursor, wait an exponential
  backoff with full jitter (``backoff_initial`` doubling per failure, capped at
  ``backoff_max``; a collector's ``Retry-After`` instead, up to the cap), try the
  same batch again;
- :class:`~observabilipy.core.export.PermanentExportError`: the collector refuses
  this batch for good; it is dropped (the cursor moves past it), counted, and the
  reason logged once per streak.

Entries thus arrive once each across outages of any length that retention
outlasts, and across restarts (stopping saves the cursor); after a crash, what was
delivered in its last second is sent again.  Exporters run on one daemon thread
with its own asyncio event loop; a slow exporter never delays another.  Run
exporters in one process per storage: two processes exporting one SQLite file
under the same names would both send it.

The runtime's registry counts what happens, per ``exporter`` and ``signal``:
``observabilipy_export_items_total`` (delivered),
``observabilipy_export_failures_total`` (failed attempts, ``reason`` one of
``retryable``, ``timeout``, ``error``, ``permanent``),
``observabilipy_export_dropped_total`` (items refused for good) and the gauge
``observabilipy_export_lag_seconds`` (age of the oldest entry not yet delivered;
0 when caught up).

>>> from observabilipy.core.storage import InMemoryLogStorage
>>> from observabilipy.core.models import LogEntry
>>> class Printer:
...     name, signals = "printer", frozenset({"logs"})
...     async def export_logs(self, entries):
...         print([entry.message async for entry in entries])
...     async def export_metrics(self, samples): ...
...     async def close(self): ...
>>> logs = InMemoryLogStorage()
>>> logs.write_many_sync(LogEntry(timestamp=1.0, level="info", message=m) for m in "abc")
>>> exports = Exports(
...     [Printer()], log_storage=logs, metrics_storage=None, registry=Registry(),
...     settings=ExportSettings(batch_size=2),
... )
>>> exports.export_now()
['a', 'b']
['c']
{'printer': {'logs': 3}}
>>> exports.export_now(), logs.load_cursor_sync("printer")
({'printer': {'logs': 0}}, 3)
>>> exports.stop(deadline=float("inf"))
True
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.thread  # here, not lazily: at interpreter exit its import fails
import contextlib
import logging
import random
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypedDict, TypeVar, cast

from observabilipy.core.errors import ConfigurationError, ObservabilityError
from observabilipy.core.export import (
    ExporterPort,
    PermanentExportError,
    RetryableExportError,
    Signal,
)
from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry, MetricSample
from observabilipy.core.ports import LogStoragePort, MetricsStoragePort

__all__ = [
    "ExportSettings",
    "ExporterState",
    "ExporterStatus",
    "Exports",
    "check_exporters",
    "report",
]

_logger = logging.getLogger("observabilipy")

_SIGNALS: Final[tuple[Signal, ...]] = ("logs", "metrics")
_STORAGE_ARGUMENT: Final = {"logs": "log_storage", "metrics": "metrics_storage"}

# How often a long drain saves its cursor: what a crash can make it send again.
_SAVE_EVERY: Final = 1.0

_T = TypeVar("_T")

#: What an exporter is doing: ``pending`` (no attempt yet), ``ok`` (its last
#: batch was delivered), ``retrying`` (its last attempt failed; the data waits
#: locally), ``dropping`` (the collector refused its last batch for good).
ExporterState = Literal["pending", "ok", "retrying", "dropping"]

# Worse states win when an exporter's signals disagree.
_SEVERITY: Final[dict[ExporterState, int]] = {"pending": 0, "ok": 1, "dropping": 2, "retrying": 3}


class ExporterStatus(TypedDict):
    """One exporter in :meth:`EmbeddedRuntime.status` (times: Unix seconds; None: not yet)."""

    state: ExporterState
    #: Items stored and not yet delivered, all signals (None: not measured yet).
    backlog: int | None
    #: Age in seconds of the oldest item not yet delivered (0: caught up).
    lag_seconds: float
    last_success: float | None
    last_error: str | None
    last_error_at: float | None
    #: Failed attempts (and refused batches) since the last delivery.
    consecutive_failures: int
    #: Per signal, the id of the last item delivered or dropped (None: none yet).
    cursor: dict[str, int | None]


@dataclass(frozen=True)
class ExportSettings:
    """How the export loop paces itself (seconds, and items per batch).

    >>> ExportSettings().interval, ExportSettings().batch_size
    (60.0, 1000)
    """

    interval: float = 60.0
    batch_size: int = 1_000
    timeout: float = 30.0
    backoff_initial: float = 1.0
    backoff_max: float = 300.0

    def backoff(self, failures: int, retry_after: float | None) -> float:
        """Seconds to wait after the ``failures``-th failure in a row.

        Full jitter: a random delay up to ``backoff_initial * 2 ** (failures - 1)``,
        capped at ``backoff_max``; a collector's ``retry_after`` is honoured up to
        the cap.

        >>> settings = ExportSettings(backoff_initial=1.0, backoff_max=8.0)
        >>> settings.backoff(1, retry_after=3.0), settings.backoff(1, retry_after=60.0)
        (3.0, 8.0)
        >>> 0.0 <= settings.backoff(10, retry_after=None) <= 8.0
        True
        """
        if retry_after is not None:
            return min(retry_after, self.backoff_max)
        ceiling = self.backoff_initial * 2.0 ** min(failures - 1, 64)
        return random.uniform(0.0, min(ceiling, self.backoff_max))


def check_exporters(
    exporters: object,
    *,
    log_storage: LogStoragePort | None,
    metrics_storage: MetricsStoragePort | None,
) -> list[ExporterPort]:
    """The exporters, checked: ExporterPort objects with unique names and storage to read.

    >>> check_exporters("otlp", log_storage=None, metrics_storage=None)
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: exporters: must be a list of exporters, got 'otlp'
    """
    if isinstance(exporters, (str, bytes)) or not isinstance(exporters, Iterable):
        raise ConfigurationError(f"exporters: must be a list of exporters, got {exporters!r}")
    checked: list[ExporterPort] = []
    names: set[str] = set()
    for exporter in exporters:
        if not isinstance(exporter, ExporterPort):
            raise ConfigurationError(
                f"exporters: {exporter!r} is not an exporter (it needs name, signals, "
                "export_logs, export_metrics and close; see observabilipy.core.export)"
            )
        name = exporter.name
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"exporters: {exporter!r} needs a non-empty str name")
        if name in names:
            raise ConfigurationError(
                f"exporters: two exporters are named {name!r}; give each its own name "
                "(it keys the exporter's cursor, metrics and health)"
            )
        names.add(name)
        signals = exporter.signals
        if not isinstance(signals, (set, frozenset)) or not signals or set(signals) - {*_SIGNALS}:
            raise ConfigurationError(
                f"exporters: {name!r} has signals {signals!r}; "
                "use a non-empty frozenset of 'logs' and 'metrics'"
            )
        for signal, storage in (("logs", log_storage), ("metrics", metrics_storage)):
            if signal in signals and storage is None:
                raise ConfigurationError(
                    f"exporters: {name!r} sends {signal} but the runtime has no "
                    f"{_STORAGE_ARGUMENT[signal]} to read them from"
                )
        checked.append(exporter)
    return checked


def report(level: int, message: str, *args: object) -> None:
    """Log on the ``observabilipy`` logger; if its handlers fail, fall back to stderr.

    Logging may lead to a handler writing to the very storage that just failed:
    whatever that handler raises (even a RecursionError) stays here, never in a loop.
    """
    try:
        _logger.log(level, message, *args)
    except Exception:
        with contextlib.suppress(Exception):
            sys.stderr.write(f"observabilipy: {message % args}\n")


async def _items(batch: list[_T]) -> AsyncIterator[_T]:
    for item in batch:
        yield item


class _Stream:
    """One exporter and one signal: its cursor, its pacing and what it reports."""

    def __init__(
        self,
        exporter: ExporterPort,
        signal: Signal,
        storage: LogStoragePort | MetricsStoragePort,
        registry: Registry,
    ) -> None:
        self.exporter = exporter
        self.name = exporter.name
        self.signal = signal
        self.storage = storage
        self.cursor: int | None = None
        self.saved: int | None = None  # the cursor as the storage has it
        self.next_save = 0.0  # time.monotonic() after which a long drain saves it
        self.loaded = False
        self.due = 0.0  # time.monotonic() of the next attempt
        self.state: ExporterState = "pending"
        self.failures = 0
        self.backlog: int | None = None
        self.oldest: float | None = None  # timestamp of the oldest item not yet delivered
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        labels = {"exporter": self.name, "signal": signal}
        self.exported = registry.counter(
            "observabilipy_export_items",
            "Items exporters delivered.",
            labelnames=("exporter", "signal"),
        ).labels(**labels)
        self.dropped = registry.counter(
            "observabilipy_export_dropped",
            "Items exporters dropped because the collector refused them for good.",
            labelnames=("exporter", "signal"),
        ).labels(**labels)
        self.lag = registry.gauge(
            "observabilipy_export_lag_seconds",
            "Age of the oldest item not yet exported (0: caught up).",
            labelnames=("exporter", "signal"),
            multiprocess_mode="max",
        ).labels(**labels)
        self._failed = registry.counter(
            "observabilipy_export_failures",
            "Export attempts that failed, by reason (retryable, timeout, error, permanent).",
            labelnames=("exporter", "signal", "reason"),
        )

    def count_failure(self, reason: str) -> None:
        self._failed.labels(exporter=self.name, signal=self.signal, reason=reason).inc()

    def lag_seconds(self) -> float:
        oldest = self.oldest
        return 0.0 if oldest is None else max(time.time() - oldest, 0.0)


class _ExitSafeExecutor(concurrent.futures.ThreadPoolExecutor):
    """The export loop's executor, where asyncio resolves collectors' host names.

    Once the interpreter is exiting, no executor accepts work and no thread
    starts, so the last export (the runtime's exit hook) could not even resolve
    ``localhost``.  Then the call runs on the export thread itself: the last
    batch still reaches the collector, within the same exit deadline.
    """

    def submit(
        self, fn: Callable[..., _T], /, *args: object, **kwargs: object
    ) -> concurrent.futures.Future[_T]:
        try:
            return super().submit(fn, *args, **kwargs)
        except RuntimeError:  # "cannot schedule new futures / create new thread at shutdown"
            future: concurrent.futures.Future[_T] = concurrent.futures.Future()
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)
            return future


class _Session:
    """The event loop exporters run on, until stop() closes it, and what lives on it."""

    def __init__(self, streams: Sequence[_Stream]) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(
            _ExitSafeExecutor(max_workers=2, thread_name_prefix="observabilipy-export")
        )
        self.stopping = asyncio.Event()
        self.deadline = float("inf")  # time.monotonic() by which stop() wants the thread gone
        # One attempt at a time per stream: the loop's own, export_now()'s, stop()'s.
        self.locks = {id(stream): asyncio.Lock() for stream in streams}


class Exports:
    """The exporters of one runtime, their cursors and the thread that runs them.

    :class:`~observabilipy.core.runtime.EmbeddedRuntime` builds one when given
    exporters, calls :meth:`start` and :meth:`stop` with its own, and
    :meth:`export_now` on demand.  See the module docstring for the rules.
    """

    def __init__(
        self,
        exporters: Sequence[ExporterPort],
        *,
        log_storage: LogStoragePort | None,
        metrics_storage: MetricsStoragePort | None,
        registry: Registry,
        settings: ExportSettings,
    ) -> None:
        self._exporters = list(exporters)
        self._settings = settings
        self._streams: list[_Stream] = []
        for exporter in self._exporters:
            for signal, storage in (("logs", log_storage), ("metrics", metrics_storage)):
                if signal in exporter.signals and storage is not None:
                    self._streams.append(_Stream(exporter, signal, storage, registry))
        self._lock = threading.Lock()
        self._session: _Session | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle (any thread) ---------------------------------------------------------------

    def _live_session(self) -> _Session:
        """The current session, or a new one (none yet, or its thread died and closed it)."""
        session = self._session
        if session is None or session.loop.is_closed():
            session = self._session = _Session(self._streams)
        return session

    def start(self) -> None:
        """Run the exporters on a daemon thread, each first at once (nothing if it runs)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            for stream in self._streams:
                stream.due = 0.0
            session = self._live_session()
            self._thread = threading.Thread(
                target=self._run, args=(session,), name="observabilipy-export", daemon=True
            )
            self._thread.start()

    def stop(self, *, deadline: float) -> bool:
        """One last export attempt, then close the exporters, all by ``deadline``.

        ``deadline`` is a :func:`time.monotonic` time.  True when everything
        ended in time; the thread is a daemon, so a hung exporter never holds
        the interpreter at exit.
        """
        with self._lock:
            session, thread = self._session, self._thread
            self._session = self._thread = None
            if session is not None and thread is None:
                # Made by export_now() without start(): close on this thread.
                with contextlib.suppress(Exception):
                    session.loop.run_until_complete(self._close_exporters(deadline))
                session.loop.close()
                return True
        if session is None or thread is None:
            return True
        session.deadline = deadline
        with contextlib.suppress(RuntimeError):  # the loop already ended
            session.loop.call_soon_threadsafe(session.stopping.set)
        if thread is threading.current_thread():
            return False
        thread.join(max(deadline - time.monotonic(), 0.0))
        return not thread.is_alive()

    def after_fork_in_child(self) -> None:
        """Forget the parent's thread and loop (the child starts its own at start())."""
        if self._session is not None:
            # Used by the parent's thread: never closed here, kept from the collector.
            _inherited.append(self._session)
        self._lock = threading.Lock()
        self._session = self._thread = None
        for stream in self._streams:
            stream.loaded = False  # read the cursor the parent saved
            stream.due = 0.0

    def export_now(self) -> dict[str, dict[str, int]]:
        """Export every backlog now, ignoring backoff; return items delivered per exporter.

        Failures are handled and counted as in the background (never raised).
        Runs on the exporters' thread when it runs, else on this thread, which
        must not be running an event loop (use the runtime's ``aexport_now``).
        """
        with self._lock:
            session = self._session
            thread = self._thread
            if thread is None or not thread.is_alive():
                with contextlib.suppress(RuntimeError):
                    asyncio.get_running_loop()
                    raise ObservabilityError(
                        "export_now() cannot run inside a running event loop; "
                        "use `await runtime.aexport_now()`"
                    )
                session = self._live_session()
                return session.loop.run_until_complete(self._export_all(session))
            assert session is not None
            future = asyncio.run_coroutine_threadsafe(self._export_all(session), session.loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise ObservabilityError("the runtime stopped during export_now()") from None

    # --- status (any thread) ------------------------------------------------------------------

    def refresh_lag(self) -> None:
        """Set each lag gauge from the oldest item not yet delivered (before a snapshot)."""
        for stream in self._streams:
            stream.lag.set(stream.lag_seconds())

    def status(self) -> dict[str, ExporterStatus]:
        """Each exporter's state, backlog, last success and error, cursor per signal."""
        result: dict[str, ExporterStatus] = {}
        for exporter in self._exporters:
            streams = [s for s in self._streams if s.exporter is exporter]
            backlogs = [s.backlog for s in streams]
            errors = [s for s in streams if s.last_error_at is not None]
            latest = max(errors, key=lambda s: s.last_error_at or 0.0, default=None)
            successes = [s.last_success for s in streams if s.last_success is not None]
            result[exporter.name] = {
                "state": max((s.state for s in streams), key=_SEVERITY.__getitem__),
                "backlog": None if None in backlogs else sum(b or 0 for b in backlogs),
                "lag_seconds": max(s.lag_seconds() for s in streams),
                "last_success": max(successes, default=None),
                "last_error": None if latest is None else latest.last_error,
                "last_error_at": None if latest is None else latest.last_error_at,
                "consecutive_failures": max(s.failures for s in streams),
                "cursor": {s.signal: s.cursor for s in streams},
            }
        return result

    # --- the exporters' thread and loop -------------------------------------------------------

    def _run(self, session: _Session) -> None:
        loop = session.loop
        try:
            loop.run_until_complete(self._serve(session))
        except BaseException as exc:  # never into the interpreter's thread hook
            report(
                logging.ERROR, "observabilipy export loop ended: %s: %s", type(exc).__name__, exc
            )
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, session: _Session) -> None:
        tasks = [asyncio.create_task(self._keep_exporting(s, session)) for s in self._streams]
        await session.stopping.wait()
        # The last attempt leaves time to close the exporters, and the loop, by the deadline.
        reserve = min(1.0, (session.deadline - time.monotonic()) / 4)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(_loop_time(session.deadline - reserve)):
                await asyncio.gather(*(self._drain(s, session, final=True) for s in self._streams))
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_exporters(session.deadline - reserve / 2)

    async def _keep_exporting(self, stream: _Stream, session: _Session) -> None:
        while not session.stopping.is_set():
            delay = stream.due - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(session.stopping.wait(), delay)
                continue  # export_now() may have moved `due` meanwhile
            await self._drain(stream, session, final=False)

    async def _export_all(self, session: _Session) -> dict[str, dict[str, int]]:
        counts = await asyncio.gather(
            *(self._drain(s, session, final=False) for s in self._streams)
        )
        result: dict[str, dict[str, int]] = {e.name: {} for e in self._exporters}
        for stream, count in zip(self._streams, counts, strict=True):
            result[stream.name][stream.signal] = count
        return result

    async def _close_exporters(self, deadline: float) -> None:
        for exporter in self._exporters:
            try:
                async with asyncio.timeout_at(_loop_time(deadline)):
                    await exporter.close()
            except Exception as exc:
                report(
                    logging.WARNING,
                    "observabilipy export: closing %s failed (%s: %s)",
                    exporter.name,
                    type(exc).__name__,
                    exc,
                )

    async def _drain(self, stream: _Stream, session: _Session, *, final: bool) -> int:
        """Deliver batches until the backlog is empty or an attempt fails; return items sent."""
        delivered = 0
        async with session.locks[id(stream)]:
            try:
                if not stream.loaded:
                    stream.cursor = stream.saved = await stream.storage.load_cursor(stream.name)
                    stream.loaded = True
                while True:
                    sent, more = await self._one_batch(stream)
                    delivered += sent
                    if not more or (session.stopping.is_set() and not final):
                        break
                    if time.monotonic() >= stream.next_save:
                        await self._save(stream)
                await self._save(stream)
            except Exception as exc:  # the storage failed: same pacing as a retryable error
                self._failed(stream, "error", exc, retry_after=None)
            except asyncio.CancelledError:  # cut short by stop()'s deadline: keep the progress
                with contextlib.suppress(Exception):
                    if stream.cursor is not None and stream.cursor != stream.saved:
                        stream.storage.save_cursor_sync(stream.name, stream.cursor)
                raise
            await self._measure(stream)
        return delivered

    async def _save(self, stream: _Stream) -> None:
        """Save the cursor in the storage, if it moved since it was last saved.

        Once per drain, not per batch: a save is a write (a SQLite transaction),
        and the read of the next batch would wait for its commit.
        """
        cursor = stream.cursor
        if cursor is not None and cursor != stream.saved:
            await stream.storage.save_cursor(stream.name, cursor)
            stream.saved = cursor
        stream.next_save = time.monotonic() + _SAVE_EVERY

    async def _one_batch(self, stream: _Stream) -> tuple[int, bool]:
        """Send the next batch; (items delivered, whether to go on draining)."""
        limit = self._settings.batch_size
        batch = [item async for item in stream.storage.read(after=stream.cursor, limit=limit)]
        if not batch:
            self._rest(stream)
            return 0, False
        sent = 0
        try:
            async with asyncio.timeout(self._settings.timeout):
                if stream.signal == "logs":
                    await stream.exporter.export_logs(_items(cast("list[LogEntry]", batch)))
                else:
                    await stream.exporter.export_metrics(_items(cast("list[MetricSample]", batch)))
        except PermanentExportError as exc:
            self._dropped(stream, batch, exc)
        except RetryableExportError as exc:
            self._failed(stream, "retryable", exc, retry_after=exc.retry_after)
            return 0, False
        except TimeoutError as exc:
            self._failed(stream, "timeout", exc, retry_after=None)
            return 0, False
        except Exception as exc:  # a bug or an unclassified failure: retry, never die
            self._failed(stream, "error", exc, retry_after=None)
            return 0, False
        else:
            sent = len(batch)
            self._delivered(stream, batch)
        if len(batch) < limit:
            self._rest(stream)
            return sent, False
        return sent, True

    # --- outcomes -----------------------------------------------------------------------------

    def _rest(self, stream: _Stream) -> None:
        """Nothing left to send: the next attempt is an interval away."""
        stream.due = time.monotonic() + self._settings.interval
        if stream.state == "pending":
            stream.state = "ok"

    def _delivered(self, stream: _Stream, batch: list[LogEntry | MetricSample]) -> None:
        stream.cursor = batch[-1].id
        stream.exported.inc(len(batch))
        stream.last_success = time.time()
        if stream.failures:
            report(
                logging.INFO,
                "observabilipy export: %s delivers %s again (after %d failed attempts)",
                stream.name,
                stream.signal,
                stream.failures,
            )
        stream.failures = 0
        stream.state = "ok"

    def _failed(
        self, stream: _Stream, reason: str, exc: BaseException, *, retry_after: float | None
    ) -> None:
        stream.failures += 1
        stream.count_failure(reason)
        delay = self._settings.backoff(stream.failures, retry_after)
        stream.due = time.monotonic() + delay
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        stream.last_error, stream.last_error_at = text, time.time()
        if stream.state != "retrying":
            stream.state = "retrying"
            report(
                logging.WARNING,
                "observabilipy export: %s could not deliver %s (%s); they stay in local "
                "storage and are retried with backoff",
                stream.name,
                stream.signal,
                text,
            )

    def _dropped(
        self, stream: _Stream, batch: list[LogEntry | MetricSample], exc: PermanentExportError
    ) -> None:
        stream.cursor = batch[-1].id
        stream.failures += 1
        stream.count_failure("permanent")
        stream.dropped.inc(len(batch))
        stream.last_error, stream.last_error_at = f"{type(exc).__name__}: {exc}", time.time()
        if stream.state != "dropping":
            stream.state = "dropping"
            report(
                logging.WARNING,
                "observabilipy export: %s refused %d %s for good (%s); dropped them; "
                "further refusals are counted in observabilipy_export_dropped_total",
                stream.name,
                len(batch),
                stream.signal,
                exc,
            )

    async def _measure(self, stream: _Stream) -> None:
        """Backlog and the age of the oldest item not yet delivered (cheap: by id)."""
        try:
            stream.backlog = await stream.storage.count_after(stream.cursor)
            stream.oldest = None
            async for item in stream.storage.read(after=stream.cursor, limit=1):
                stream.oldest = item.timestamp
        except Exception:  # the storage failing is reported by the attempt itself
            return
        stream.lag.set(stream.lag_seconds())


def _loop_time(monotonic_deadline: float) -> float:
    """A time.monotonic() deadline in the running loop's clock (the same clock by default)."""
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_deadline - time.monotonic())


# Sessions of a parent process's thread, after fork: the child must not close them.
_inherited: list[_Session] = []
