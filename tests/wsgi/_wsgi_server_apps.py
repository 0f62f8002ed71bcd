"""The Flask app that tests/wsgi/test_servers.py serves with gunicorn.

``flask_app`` answers ``/hello``, ``/users/<int:user_id>``, ``/slow/<int:n>`` and ``/boom`` (recorded by
the request middleware) and serves the observability endpoints under
``/observability`` (not recorded: mounted outside the middleware).

With ``OBSERVABILIPY_TEST_DB`` set, logs and metrics go to that SQLite file,
shared by every worker: :func:`start_runtime` (called by gunicorn's
``post_fork`` hook in ``_wsgi_gunicorn_conf.py``) starts each worker's runtime, which
snapshots its registry into the file every 0.1 s, and ``/metrics/prometheus``
shows the sum over all workers.  Without it everything stays in memory.
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from observabilipy.core.http import ObservabilityAPI
from observabilipy.core.metrics import Registry
from observabilipy.core.ports import LogStoragePort, MetricsStoragePort
from observabilipy.core.runtime import EmbeddedRuntime
from observabilipy.wsgi import create_wsgi_app, init_flask

registry = Registry()
log_storage: LogStoragePort | None = None
metrics_storage: MetricsStoragePort | None = None
runtime: EmbeddedRuntime | None = None

_database = os.environ.get("OBSERVABILIPY_TEST_DB")
if _database:
    from observabilipy.sqlite import SQLiteLogStorage, SQLiteMetricsStorage

    log_storage = SQLiteLogStorage(_database)
    metrics_storage = SQLiteMetricsStorage(_database, registry=registry)
    runtime = EmbeddedRuntime(
        metrics_storage=metrics_storage, registry=registry, snapshot_interval=0.1
    )

flask_app = Flask("served")


@flask_app.get("/hello")
def hello() -> str:
    return "hello"


@flask_app.get("/users/<int:user_id>")
def user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "pid": os.getpid()}


@flask_app.get("/slow/<int:n>")
def slow(n: int) -> dict[str, Any]:
    time.sleep(0.05)  # keeps this worker busy: concurrent requests spread over the others
    return {"n": n, "pid": os.getpid()}


@flask_app.get("/boom")
def boom() -> str:
    raise RuntimeError("the view failed")


init_flask(flask_app, registry=registry, log_storage=log_storage)
flask_app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
    flask_app.wsgi_app,
    {
        "/observability": create_wsgi_app(
            ObservabilityAPI(
                log_storage=log_storage,
                metrics_storage=metrics_storage,
                registry=registry,
                runtime=runtime,
            )
        )
    },
)


def start_runtime() -> None:
    """Start this worker's runtime (when there is a SQLite file to snapshot into)."""
    if runtime is not None:
        runtime.start()
