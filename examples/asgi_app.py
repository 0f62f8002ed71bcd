"""A raw ASGI application (no framework) with observabilipy's middleware and endpoints.

The application routes by itself and tells the middleware the route template
it matched by setting ``scope["observabilipy.route"]``; requests no route
matched share the ``<unmatched>`` label.  The endpoints are mounted under
``/observability``; the runtime (metric snapshots into storage, for
``/observability/metrics`` history) runs from the lifespan.  Everything stays in
memory, in this process: serve it with one worker.

    uvicorn --app-dir examples asgi_app:app
    curl localhost:8000/hello/ada
    curl localhost:8000/observability/metrics/prometheus
    curl localhost:8000/observability/logs/json

Needs ``pip install observabilipy-asgi uvicorn``.
"""

from __future__ import annotations

import json
import logging
import re

from observabilipy.asgi import (
    ROUTE_KEY,
    ObservabilityMiddleware,
    Receive,
    Scope,
    Send,
    create_asgi_app,
)
from observabilipy.core import (
    EmbeddedRuntime,
    InMemoryLogStorage,
    ObservabilipyHandler,
    RingBufferMetricsStorage,
)

PREFIX = "/observability"
HELLO = re.compile(r"/hello/(?P<name>[^/]+)")

logs = InMemoryLogStorage()
metrics = RingBufferMetricsStorage(50_000)  # the last 50,000 snapshot points
runtime = EmbeddedRuntime(log_storage=logs, metrics_storage=metrics, snapshot_interval=5.0)

logger = logging.getLogger("greeter")
logger.setLevel(logging.INFO)
logger.addHandler(ObservabilipyHandler(logs))

endpoints = create_asgi_app(log_storage=logs, metrics_storage=metrics, runtime=runtime)


async def greeter(scope: Scope, receive: Receive, send: Send) -> None:
    """The application: ``/``, ``/hello/{name}`` and the endpoints under ``/observability``."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    path: str = scope["path"]
    if path == PREFIX or path.startswith(PREFIX + "/"):
        # Mounted: the endpoints read their routes below root_path.
        await endpoints({**scope, "root_path": scope.get("root_path", "") + PREFIX}, receive, send)
        return
    if path == "/":
        scope[ROUTE_KEY] = "/"
        await respond(send, 200, {"routes": ["/hello/{name}", PREFIX + "/logs"]})
        return
    match = HELLO.fullmatch(path)
    if match:
        scope[ROUTE_KEY] = "/hello/{name}"
        logger.info("greeting", extra={"person": match["name"]})  # carries the request id
        await respond(send, 200, {"hello": match["name"]})
        return
    await respond(send, 404, {"error": "not found"})


async def lifespan(receive: Receive, send: Send) -> None:
    """Start the runtime with the server, stop it (with a last snapshot) at shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await runtime.astart()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await runtime.astop()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def respond(send: Send, status: int, document: object) -> None:
    body = json.dumps(document).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# Every request is recorded, except those of the endpoints themselves.
app = ObservabilityMiddleware(greeter, log_storage=logs, exclude_paths=[PREFIX, PREFIX + "/*"])
