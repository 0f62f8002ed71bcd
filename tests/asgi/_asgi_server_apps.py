"""Raw ASGI apps that tests/asgi/test_servers.py serves with uvicorn (``--app-dir`` here).

``raw_app``: in memory, one process.  ``sqlite_app()`` (a factory, one call per
worker): the same app on the SQLite file named by ``OBSERVABILIPY_TEST_DB``, its
runtime started in the lifespan so that every worker snapshots its registry.
"""

from __future__ import annotations

import os

from observabilipy.asgi import (
    ASGIApp,
    ObservabilityMiddleware,
    Receive,
    Scope,
    Send,
    create_asgi_app,
)
from observabilipy.core.http import ObservabilityAPI
from observabilipy.core.logs import get_logger
from observabilipy.core.metrics import default_registry
from observabilipy.core.ports import LogStoragePort
from observabilipy.core.runtime import EmbeddedRuntime

PREFIX = "/observability"


def _route(scope: Scope) -> str | None:
    """The app's route template: what a raw ASGI app passes as route_resolver."""
    path: str = scope["path"]
    if path.startswith("/items/") and path.count("/") == 2:
        return "/items/{id}"
    return None


def build(
    api: ObservabilityAPI,
    *,
    log_storage: LogStoragePort | None = None,
    runtime: EmbeddedRuntime | None = None,
) -> ASGIApp:
    """Items at ``/items/{id}``, observability under ``/observability``, all recorded."""
    endpoints = create_asgi_app(api)
    log = get_logger("items", sink=log_storage) if log_storage is not None else None

    async def router(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if runtime is not None:
                        await runtime.astart()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if runtime is not None:
                        await runtime.astop()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path: str = scope["path"]
        if path == PREFIX or path.startswith(PREFIX + "/"):
            root = scope.get("root_path", "") + PREFIX
            await endpoints({**scope, "root_path": root}, receive, send)
            return
        status = 200 if _route(scope) is not None else 404
        if log is not None:
            log.info("item served", status=status)
        headers = [(b"content-type", b"text/plain"), (b"x-pid", str(os.getpid()).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": path.encode()})

    return ObservabilityMiddleware(
        router,
        log_storage=log_storage,
        route_resolver=_route,
        exclude_paths=[PREFIX, PREFIX + "/*"],
    )


raw_app = build(ObservabilityAPI(registry=default_registry))


def sqlite_app() -> ASGIApp:
    """The app on the shared SQLite file: one per worker process (uvicorn --factory)."""
    from observabilipy.sqlite import SQLiteDatabase, SQLiteLogStorage, SQLiteMetricsStorage

    database = SQLiteDatabase(os.environ["OBSERVABILIPY_TEST_DB"])
    logs = SQLiteLogStorage(database)
    metrics = SQLiteMetricsStorage(database)
    runtime = EmbeddedRuntime(metrics_storage=metrics, snapshot_interval=0.2)
    api = ObservabilityAPI(log_storage=logs, metrics_storage=metrics, runtime=runtime)
    return build(api, log_storage=logs, runtime=runtime)
