"""observabilipy-wsgi: the observability endpoints and request middleware for any WSGI app.

- :func:`create_wsgi_app`: ``/logs``, ``/metrics``, ``/metrics/prometheus``,
  ``/health`` ... as a PEP 3333 application (core's
  :class:`~observabilipy.core.http.ObservabilityAPI`, translated);
- :func:`mount`: serve it under a prefix of any WSGI app;
- :class:`ObservabilityMiddleware`: request metrics, one log entry and a
  request id per request (core's :class:`~observabilipy.core.http.RequestTelemetry`),
  labelled by the framework's route template: :func:`init_flask` for Flask,
  :func:`bottle_route` for Bottle, ``environ["observabilipy.route"]`` for anything else.

>>> from observabilipy.core.metrics import Registry
>>> registry = Registry()
>>> def site(environ, start_response):
...     environ[ROUTE_KEY] = "/"
...     start_response("200 OK", [("content-type", "text/plain")])
...     return [b"home"]
>>> app = mount(ObservabilityMiddleware(site, registry=registry), "/observability",
...             create_wsgi_app(registry=registry))
>>> def get(path):
...     environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": ""}
...     response = app(environ, lambda status, headers, exc_info=None: None)
...     try:
...         return b"".join(response)
...     finally:
...         getattr(response, "close", lambda: None)()
>>> get("/")
b'home'
>>> exposition = get("/observability/metrics/prometheus").decode()
>>> [line for line in exposition.splitlines() if line.startswith("http_requests_total")]
['http_requests_total{method="GET",route="/",status="200"} 1.0']
"""

from __future__ import annotations

from observabilipy.wsgi.app import create_wsgi_app, environ_headers, mount, request_path
from observabilipy.wsgi.middleware import (
    ERROR_KEY,
    ROUTE_KEY,
    ObservabilityMiddleware,
    RouteResolver,
    bottle_route,
    environ_route,
    flask_route,
    init_flask,
)

__all__ = [
    "ERROR_KEY",
    "ROUTE_KEY",
    "ObservabilityMiddleware",
    "RouteResolver",
    "bottle_route",
    "create_wsgi_app",
    "environ_headers",
    "environ_route",
    "flask_route",
    "init_flask",
    "mount",
    "request_path",
]
