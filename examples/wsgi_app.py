"""A plain WSGI application (no framework) with observabilipy's middleware and endpoints.

The application routes by itself and tells the middleware the route template
it matched by setting ``environ["observabilipy.route"]``; requests no route
matched share the ``<unmatched>`` label.  Everything stays in memory, in this
process (observabilipy-core only): serve it with one worker process (threads
are fine):

    gunicorn --chdir examples --threads 4 wsgi_app:app
    curl localhost:8000/hello/ada
    curl localhost:8000/observability/metrics/prometheus
    curl localhost:8000/observability/logs/json

or, with the standard library only, ``python examples/wsgi_app.py``.
Needs ``pip install observabilipy-wsgi``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from observabilipy.core import (
    EmbeddedRuntime,
    InMemoryLogStorage,
    ObservabilipyHandler,
    RingBufferMetricsStorage,
)
from observabilipy.wsgi import ROUTE_KEY, ObservabilityMiddleware, create_wsgi_app, mount

logs = InMemoryLogStorage()
metrics = RingBufferMetricsStorage(50_000)  # the last 50,000 snapshot points
runtime = EmbeddedRuntime(log_storage=logs, metrics_storage=metrics, snapshot_interval=5.0)
runtime.start()

logger = logging.getLogger("greeter")
logger.setLevel(logging.INFO)
logger.addHandler(ObservabilipyHandler(logs))

StartResponse = Callable[..., Any]
HELLO = re.compile(r"/hello/(?P<name>[^/]+)")


def greeter(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The application: ``/`` and ``/hello/{name}``."""
    path = environ.get("PATH_INFO", "")
    if path == "/":
        environ[ROUTE_KEY] = "/"
        return _json(start_response, "200 OK", {"routes": ["/hello/{name}"]})
    match = HELLO.fullmatch(path)
    if match:
        environ[ROUTE_KEY] = "/hello/{name}"
        logger.info("greeting", extra={"who": match["name"]})  # carries the request id
        return _json(start_response, "200 OK", {"hello": match["name"]})
    return _json(start_response, "404 Not Found", {"error": "not found"})


def _json(start_response: StartResponse, status: str, document: object) -> list[bytes]:
    body = json.dumps(document).encode()
    start_response(
        status, [("content-type", "application/json"), ("content-length", str(len(body)))]
    )
    return [body]


# The middleware records the greeter's requests; the endpoints are mounted beside it.
app = mount(
    ObservabilityMiddleware(greeter, log_storage=logs),
    "/observability",
    create_wsgi_app(log_storage=logs, metrics_storage=metrics, runtime=runtime),
)

if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    with make_server("127.0.0.1", 8000, app) as server:
        print("serving on http://127.0.0.1:8000 (try /hello/ada and /observability/logs)")
        server.serve_forever()
