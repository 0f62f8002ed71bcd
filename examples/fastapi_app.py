"""A FastAPI service recording into a SQLite file: request metrics and logs, endpoints, runtime.

``add_observability`` mounts the endpoints under ``/observability`` (documented
in ``/docs``) and records every request: ``http_requests_total`` and
``http_request_duration_seconds`` by route template, one log entry per
request, a request id echoed in ``x-request-id`` and carried by the handlers'
own logs.  The runtime, started in the lifespan, snapshots the metrics into
the file; several workers may share it, and any worker's
``/observability/metrics/prometheus`` then shows the totals of all.

    OBSERVABILIPY_DB=shop.db uvicorn --app-dir examples fastapi_app:app --workers 2
    curl localhost:8000/orders/42
    curl localhost:8000/observability/metrics/prometheus
    curl 'localhost:8000/observability/logs?min_level=warning'

Needs ``pip install observabilipy-fastapi observabilipy-sqlite uvicorn``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException

from observabilipy.core import EmbeddedRuntime, ObservabilipyHandler, RetentionPolicy
from observabilipy.fastapi import add_observability, instrument_dependency
from observabilipy.sqlite import SQLiteDatabase, SQLiteLogStorage, SQLiteMetricsStorage

database = SQLiteDatabase(os.environ.get("OBSERVABILIPY_DB", "observability.db"))
logs = SQLiteLogStorage(database)
metrics = SQLiteMetricsStorage(database)
runtime = EmbeddedRuntime(
    log_storage=logs,
    metrics_storage=metrics,
    snapshot_interval=float(os.environ.get("OBSERVABILIPY_SNAPSHOT_INTERVAL", "5")),
    log_retention=RetentionPolicy(max_age_seconds=7 * 24 * 3600),
)

logger = logging.getLogger("shop")
logger.setLevel(logging.INFO)
handler = ObservabilipyHandler(logs)
logger.addHandler(handler)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with runtime:  # snapshots while serving, a last one at shutdown
        yield
    handler.close()
    database.close()


app = FastAPI(title="shop", lifespan=lifespan)
ORDERS = {42: "espresso machine", 7: "grinder"}


@app.get("/")
async def index() -> dict[str, str]:
    return {"docs": "/docs", "metrics": "/observability/metrics/prometheus"}


@app.get("/orders/{order_id}")
async def read_order(order_id: int) -> dict[str, object]:
    if order_id not in ORDERS:
        logger.warning("order not found", extra={"order_id": order_id})  # has the request id
        raise HTTPException(status_code=404, detail="no such order")
    logger.info("order read", extra={"order_id": order_id})
    return {"id": order_id, "item": ORDERS[order_id]}


@app.post("/orders/{order_id}/pay", dependencies=[instrument_dependency("payment")])
async def pay(order_id: int) -> dict[str, object]:
    """Counted and timed as ``payment_calls_total`` and ``payment_duration_seconds``."""
    if order_id not in ORDERS:
        raise HTTPException(status_code=404, detail="no such order")
    return {"id": order_id, "paid": True}


add_observability(app, log_storage=logs, metrics_storage=metrics, runtime=runtime)
