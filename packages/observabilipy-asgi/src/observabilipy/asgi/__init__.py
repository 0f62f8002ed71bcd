"""observabilipy-asgi: observability endpoints and request middleware for any ASGI app.

- :func:`create_asgi_app`: the logs, metrics and health endpoints of core's
  HTTP API as an ASGI app, to mount under any prefix (or serve alone);
- :class:`ObservabilityMiddleware`: records every HTTP request (count,
  duration, in-flight, one log entry, a request id in the log context).

Both only translate between ASGI and :mod:`observabilipy.core.http`, so every
framework adapter answers and records the same way.

>>> import asyncio
>>> from observabilipy.core.metrics import Registry
>>> registry = Registry()
>>> endpoints = create_asgi_app(registry=registry)
>>> app = ObservabilityMiddleware(endpoints, registry=registry, exclude_paths=["/metrics/*"])
>>> async def get(path):
...     sent = []
...     async def receive():
...         return {"type": "http.disconnect"}
...     async def send(message):
...         sent.append(message)
...     scope = {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": []}
...     await app(scope, receive, send)
...     return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])
>>> asyncio.run(get("/health"))[0]
200
>>> exposition = asyncio.run(get("/metrics/prometheus"))[1].decode()
>>> print(next(line for line in exposition.splitlines() if line.startswith("http_requests_total")))
http_requests_total{method="GET",route="<unmatched>",status="200"} 1.0
"""

from __future__ import annotations

from observabilipy.asgi.app import (
    ObservabilityApp,
    core_request,
    create_asgi_app,
    route_path,
    send_response,
)
from observabilipy.asgi.middleware import (
    ROUTE_KEY,
    ObservabilityMiddleware,
    RouteResolver,
    starlette_route,
)
from observabilipy.asgi.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "ROUTE_KEY",
    "ASGIApp",
    "Message",
    "ObservabilityApp",
    "ObservabilityMiddleware",
    "Receive",
    "RouteResolver",
    "Scope",
    "Send",
    "core_request",
    "create_asgi_app",
    "route_path",
    "send_response",
    "starlette_route",
]
