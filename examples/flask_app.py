"""A Flask service with observabilipy: request metrics, logs with request ids, endpoints.

Every request is recorded by the WSGI middleware (``init_flask``):
``http_requests_total{method,route,status}`` labelled by Flask's route rule
(``/users/<int:user_id>``, never the raw path), a duration histogram, an
in-flight gauge, one log entry per request and a request id that the views'
own log entries carry.  Logs and metrics go to one SQLite file that every
worker shares; the observability endpoints are mounted under ``/observability``:

    gunicorn -w 4 --chdir examples flask_app:app
    curl localhost:8000/users/7
    curl localhost:8000/observability/metrics/prometheus   # summed over the 4 workers
    curl "localhost:8000/observability/logs?min_level=warning"
    curl localhost:8000/observability/health

Settings by environment: ``OBSERVABILIPY_DB`` (the SQLite file, default
``observability.db``), ``OBSERVABILIPY_SNAPSHOT_INTERVAL`` (seconds between
snapshots of each worker's metrics into the file, default 5).
Needs ``pip install observabilipy-wsgi observabilipy-sqlite flask``.
"""

from __future__ import annotations

import logging
import os

from flask import Flask, abort
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from observabilipy.core import EmbeddedRuntime, ObservabilipyHandler
from observabilipy.sqlite import SQLiteLogStorage, SQLiteMetricsStorage
from observabilipy.wsgi import create_wsgi_app, init_flask

DATABASE = os.environ.get("OBSERVABILIPY_DB", "observability.db")
logs = SQLiteLogStorage(DATABASE)
metrics = SQLiteMetricsStorage(DATABASE)  # its /metrics/prometheus sums every worker
runtime = EmbeddedRuntime(
    log_storage=logs,
    metrics_storage=metrics,
    snapshot_interval=float(os.environ.get("OBSERVABILIPY_SNAPSHOT_INTERVAL", "5")),
)
# gunicorn imports this module in each worker, so each starts its own runtime.  With
# --preload (imported once, before the fork) start it in gunicorn's post_fork hook instead.
runtime.start()

# The application's own logs go to the same storage, with the request's id.
logger = logging.getLogger("shop")
logger.setLevel(logging.INFO)
logger.addHandler(ObservabilipyHandler(logs))

app = Flask("shop")


@app.get("/")
def home() -> dict[str, str]:
    return {"service": "shop"}


@app.get("/users/<int:user_id>")
def user(user_id: int) -> dict[str, int]:
    logger.info("looking up user", extra={"user_id": user_id})
    if user_id > 1000:
        abort(404)
    return {"id": user_id}


@app.get("/fail")
def fail() -> str:
    raise RuntimeError("the database timed out")


# Requests to the app are recorded; the endpoints, mounted outside, are not.
init_flask(app, log_storage=logs)
app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
    app.wsgi_app,
    {"/observability": create_wsgi_app(log_storage=logs, metrics_storage=metrics, runtime=runtime)},
)

if __name__ == "__main__":
    app.run(port=8000)
