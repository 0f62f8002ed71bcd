"""The framework-neutral HTTP API: logs, metrics and health for any web framework.

:class:`ObservabilityAPI` answers a :class:`Request` with a :class:`Response`
(``handle_sync``) or an :class:`AsyncResponse` (``handle``); the ASGI, WSGI,
FastAPI and Django adapters only translate.  See :mod:`observabilipy.core.http.api`
for the routes and their rules, :mod:`~observabilipy.core.http.params` for the
parameters and :mod:`~observabilipy.core.http.access` for access checks.

>>> from observabilipy.core.metrics import Registry
>>> registry = Registry()
>>> registry.counter("jobs", "Jobs run.").inc(3)
>>> api = ObservabilityAPI(registry=registry, access=bearer_token("s3cret"))
>>> api.handle_sync(Request("GET", "/metrics/prometheus")).status
401
>>> response = api.handle_sync(
...     Request("GET", "/metrics/prometheus", headers={"authorization": "Bearer s3cret"})
... )
>>> print(b"".join(response.body).decode(), end="")
# HELP jobs_total Jobs run.
# TYPE jobs_total counter
jobs_total 3.0
"""

from __future__ import annotations

from observabilipy.core.http.access import AccessCheck, basic_auth, bearer_token
from observabilipy.core.http.api import ROUTES, AsyncResponse, ObservabilityAPI, Request, Response
from observabilipy.core.http.health import HealthCheck
from observabilipy.core.http.params import ParameterError
from observabilipy.core.http.telemetry import RequestScope, RequestTelemetry

__all__ = [
    "ROUTES",
    "AccessCheck",
    "AsyncResponse",
    "HealthCheck",
    "ParameterError",
    "ObservabilityAPI",
    "Request",
    "RequestScope",
    "RequestTelemetry",
    "Response",
    "basic_auth",
    "bearer_token",
]
