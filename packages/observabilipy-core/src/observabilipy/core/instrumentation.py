"""``@instrument``: count a function's calls and time them, sync or async.

Each call increments ``<name>_calls_total{status="success"|"error"}`` and
observes its duration in ``<name>_duration_seconds``.  The function's return
value and exceptions pass through untouched.

>>> from observabilipy.core.metrics import Registry
>>> registry = Registry()
>>> @instrument("checkout", registry=registry, labels={"shop": "eu"})
... def checkout(total: float) -> float:
...     return total * 1.2
>>> checkout(10.0)
12.0
>>> calls = registry.counter("checkout_calls_total", labelnames=("status", "shop"))
>>> calls.labels(status="success", shop="eu").value
1.0
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast, overload

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.metrics import (
    DEFAULT_HISTOGRAM_BUCKETS,
    CounterChild,
    HistogramChild,
    Registry,
    default_registry,
)

__all__ = ["instrument"]

_F = TypeVar("_F", bound=Callable[..., Any])

_internal_logger = logging.getLogger("observabilipy")
_UNSAFE = re.compile(r"[^a-zA-Z0-9_]+")


@overload
def instrument(name: _F, /) -> _F: ...


@overload
def instrument(
    name: str | None = None,
    *,
    registry: Registry | None = None,
    labels: Mapping[str, str] | None = None,
    counter_name: str | None = None,
    histogram_name: str | None = None,
    buckets: Sequence[float] | None = None,
) -> Callable[[_F], _F]: ...


def instrument(
    name: str | Callable[..., Any] | None = None,
    *,
    registry: Registry | None = None,
    labels: Mapping[str, str] | None = None,
    counter_name: str | None = None,
    histogram_name: str | None = None,
    buckets: Sequence[float] | None = None,
) -> Any:
    """Count and time every call of the decorated function (sync or async).

    Use it bare (``@instrument``) or with arguments:

    - ``name``: metric name prefix; by default the function's module and
      qualified name made metric-safe (``myapp.jobs.send`` -> ``myapp_jobs_send``);
    - ``registry``: where the metrics live (the default registry if ``None``);
    - ``labels``: fixed labels added to both metrics (``status`` is taken);
    - ``counter_name`` / ``histogram_name``: full names replacing
      ``<name>_calls_total`` / ``<name>_duration_seconds``;
    - ``buckets``: histogram buckets (``DEFAULT_HISTOGRAM_BUCKETS`` if ``None``).

    A call that returns counts as ``status="success"``; one that raises an
    :class:`Exception` counts as ``status="error"``, and the exception is
    re-raised as it is.  Both observe the duration.  A call ended by a
    :class:`BaseException` that is not an ``Exception`` (``KeyboardInterrupt``,
    ``SystemExit``, ``asyncio.CancelledError``) did not finish: it is neither
    counted nor timed, so cancelled requests do not show up as errors or skew
    the durations; the exception propagates untouched.

    The metric families are created when the function is decorated, so a bad
    name or a clash with an existing family fails at import time.  After that,
    a failure to record is reported once and never reaches the caller.
    Generator functions are refused: only their creation could be timed.

    >>> from observabilipy.core.metrics import Registry
    >>> registry = Registry()
    >>> @instrument(registry=registry, counter_name="jobs_total", histogram_name="job_seconds")
    ... async def send_mail() -> str:
    ...     return "sent"
    >>> import asyncio
    >>> asyncio.run(send_mail())
    'sent'
    >>> registry.counter("jobs_total", labelnames=("status",)).labels(status="success").value
    1.0
    """
    if callable(name):
        return _decorate(name, None, registry, labels, counter_name, histogram_name, buckets)

    def decorator(func: _F) -> _F:
        return _decorate(func, name, registry, labels, counter_name, histogram_name, buckets)

    return decorator


def _decorate(
    func: _F,
    name: str | None,
    registry: Registry | None,
    labels: Mapping[str, str] | None,
    counter_name: str | None,
    histogram_name: str | None,
    buckets: Sequence[float] | None,
) -> _F:
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise ConfigurationError(
            f"instrument: {func.__qualname__} is a generator function, whose calls only "
            "create the generator; instrument the function that consumes it instead"
        )
    static = dict(labels or {})
    if "status" in static:
        raise ConfigurationError(
            "labels: 'status' is set by instrument (success or error); rename your label"
        )
    prefix = name if name is not None else _metric_safe(f"{func.__module__}.{func.__qualname__}")
    where = registry if registry is not None else default_registry
    calls = where.counter(
        counter_name or f"{prefix}_calls_total",
        f"Calls of {func.__qualname__}, by status.",
        labelnames=("status", *static),
    )
    duration = where.histogram(
        histogram_name or f"{prefix}_duration_seconds",
        f"Duration of {func.__qualname__} calls in seconds.",
        labelnames=tuple(static),
        buckets=DEFAULT_HISTOGRAM_BUCKETS if buckets is None else buckets,
    )
    # Bound once here: a call then costs two updates, with no label matching.
    success = calls.labels(status="success", **static)
    failure = calls.labels(status="error", **static)
    timing = duration.labels(**static)
    clock = time.perf_counter

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                result = await func(*args, **kwargs)
            except Exception:
                _record(failure, timing, clock() - start)
                raise
            _record(success, timing, clock() - start)
            return result

        return cast(_F, async_wrapper)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            result = func(*args, **kwargs)
        except Exception:
            _record(failure, timing, clock() - start)
            raise
        _record(success, timing, clock() - start)
        return result

    return cast(_F, wrapper)


_reported = False


def _record(outcome: CounterChild, timing: HistogramChild, elapsed: float) -> None:
    """Update both metrics; a failure here must never reach the instrumented code."""
    global _reported
    try:
        outcome.inc()
        timing.observe(elapsed)
    except Exception:
        if not _reported:
            _reported = True
            _internal_logger.warning(
                "instrument could not record a call; metrics are incomplete", exc_info=True
            )


def _metric_safe(dotted: str) -> str:
    """``pkg.mod.Class.<locals>.run`` -> ``pkg_mod_Class_locals_run``."""
    safe = _UNSAFE.sub("_", dotted).strip("_")
    safe = re.sub(r"__+", "_", safe)
    return f"_{safe}" if safe[:1].isdigit() else safe
