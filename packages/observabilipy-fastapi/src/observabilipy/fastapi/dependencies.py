"""``instrument_dependency``: count and time FastAPI endpoints as core's ``@instrument`` does.

Add it to a route's (or router's) ``dependencies``: each call of the endpoint
increments ``<name>_calls_total{status="success"|"error"}`` and observes its
duration in ``<name>_duration_seconds``, the metrics
:func:`observabilipy.core.instrument` records for a function.  An endpoint that
raises (``HTTPException`` included) counts as an error; the exception passes
through untouched.  The request middleware already counts every request by
route; this is for the endpoints whose own work you want named and timed.

>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> from observabilipy.core.metrics import Registry
>>> registry = Registry()
>>> app = FastAPI()
>>> @app.get("/checkout", dependencies=[instrument_dependency("checkout", registry=registry)])
... async def checkout() -> dict[str, str]:
...     return {"status": "paid"}
>>> TestClient(app).get("/checkout").json()
{'status': 'paid'}
>>> registry.get("checkout_calls").labels(status="success").value
1.0
"""

from __future__ import annotations

import inspect
import re
import threading
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

from fastapi import Depends, Request
from observabilipy.core.errors import ConfigurationError
from observabilipy.core.metrics import (
    DEFAULT_HISTOGRAM_BUCKETS,
    CounterChild,
    HistogramChild,
    Registry,
    default_registry,
)

__all__ = ["instrument_dependency"]

_UNSAFE: Final = re.compile(r"[^a-zA-Z0-9_]+")
# `Depends(..., scope="function")` (FastAPI 0.121+) ends the dependency when the endpoint
# returns, before the response is sent: the duration is the endpoint's own.
_FUNCTION_SCOPE: Final = "scope" in inspect.signature(Depends).parameters

_Bound = tuple[CounterChild, CounterChild, HistogramChild]


def instrument_dependency(
    name: str | None = None,
    *,
    registry: Registry | None = None,
    buckets: Sequence[float] | None = None,
    **labels: str,
) -> Any:
    """A ``Depends`` counting and timing each call of the endpoint it is attached to.

    - ``name``: the metrics' prefix; by default the endpoint's route name
      (its function name: ``read_user`` -> ``read_user_calls_total``);
    - ``registry``: where the metrics live (the default registry if None);
    - ``buckets``: the duration histogram's bounds;
    - ``labels``: fixed labels added to both metrics (``status`` is taken).

    With a ``name`` the metrics are created at once, so a clash with another
    family fails at import time; without one, at the endpoint's first call.

    >>> instrument_dependency("checkout", status="x")
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: labels: 'status' is set by instrument_dependency (success or error); rename your label
    """
    if "status" in labels:
        raise ConfigurationError(
            "labels: 'status' is set by instrument_dependency (success or error); rename your label"
        )
    where = default_registry if registry is None else registry
    bounds = DEFAULT_HISTOGRAM_BUCKETS if buckets is None else tuple(buckets)
    fixed = dict(labels)
    named = _bind(where, name, fixed, bounds) if name is not None else None
    by_route: dict[str, _Bound] = {}
    lock = threading.Lock()

    def metrics_for(request: Request) -> _Bound:
        if named is not None:
            return named
        prefix = getattr(request.scope.get("route"), "name", None) or getattr(
            request.scope.get("endpoint"), "__name__", None
        )
        if not isinstance(prefix, str):
            prefix = "endpoint"
        bound = by_route.get(prefix)
        if bound is None:
            with lock:
                bound = by_route.get(prefix)
                if bound is None:
                    bound = by_route[prefix] = _bind(where, _metric_safe(prefix), fixed, bounds)
        return bound

    async def instrumented(request: Request) -> AsyncIterator[None]:
        success, failure, duration = metrics_for(request)
        start = time.perf_counter()
        try:
            yield
        except Exception:
            failure.inc()
            duration.observe(time.perf_counter() - start)
            raise
        success.inc()
        duration.observe(time.perf_counter() - start)

    if _FUNCTION_SCOPE:
        return Depends(instrumented, scope="function")
    return Depends(instrumented)  # pragma: no cover - FastAPI before 0.121


def _bind(
    registry: Registry, name: str, labels: dict[str, str], buckets: Sequence[float]
) -> _Bound:
    """Create (or get) the two families as ``@instrument`` names them; bind the series."""
    calls = registry.counter(
        f"{name}_calls_total",
        f"Calls of the {name} endpoint, by status.",
        labelnames=("status", *labels),
    )
    duration = registry.histogram(
        f"{name}_duration_seconds",
        f"Duration of {name} endpoint calls in seconds.",
        labelnames=tuple(labels),
        buckets=buckets,
    )
    return (
        calls.labels(status="success", **labels),
        calls.labels(status="error", **labels),
        duration.labels(**labels),
    )


def _metric_safe(name: str) -> str:
    """``read-user.v2`` -> ``read_user_v2``: a route name as a metric name prefix."""
    safe = _UNSAFE.sub("_", name).strip("_") or "endpoint"
    return f"_{safe}" if safe[0].isdigit() else safe
