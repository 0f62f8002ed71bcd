"""The observabilipy demo: a live FastAPI service recording into a SQLite file.

It starts a small shop API under uvicorn with observabilipy's request
middleware, the endpoints under ``/observability`` and the embedded runtime,
sends itself some synthetic traffic (on 127.0.0.1 only, with the odd 404 and
500), prints its URLs and serves until Ctrl-C, or for ``--duration`` seconds.

    hatch run demo                                   # http://127.0.0.1:8000
    hatch run demo -- --port 0 --duration 30 --db demo.db

Needs ``pip install observabilipy-fastapi observabilipy-sqlite uvicorn``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import socket
import sys
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException

from observabilipy.core import EmbeddedRuntime, ObservabilipyHandler, Registry, RetentionPolicy
from observabilipy.fastapi import add_observability
from observabilipy.sqlite import SQLiteDatabase, SQLiteLogStorage, SQLiteMetricsStorage

try:
    import uvicorn
except ImportError:  # pragma: no cover - the message is the point
    sys.exit("the demo server needs uvicorn: pip install uvicorn")

HOST = "127.0.0.1"  # the demo never listens beyond this machine
ENDPOINTS = ("logs", "metrics/prometheus", "health", "dashboard")
logger = logging.getLogger("demo.shop")


def create_app(database: SQLiteDatabase, registry: Registry) -> FastAPI:
    """The shop: ``/``, ``/users/{user_id}``, ``/orders/{order_id}``, and the observability."""
    logs = SQLiteLogStorage(database)
    metrics = SQLiteMetricsStorage(database, registry=registry)
    runtime = EmbeddedRuntime(
        log_storage=logs,
        metrics_storage=metrics,
        registry=registry,
        snapshot_interval=1.0,
        log_retention=RetentionPolicy(max_age_seconds=7 * 86400, max_count=100_000),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Added here, not at import: configuring logging (uvicorn does) closes existing handlers.
        handler = ObservabilipyHandler(logs, registry=registry)
        logger.addHandler(handler)
        try:
            async with runtime:  # snapshots while serving, a last one at shutdown
                yield
        finally:
            logger.removeHandler(handler)
            handler.close()

    app = FastAPI(title="observabilipy demo shop", lifespan=lifespan)

    @app.get("/")
    async def index() -> dict[str, str]:
        return {"docs": "/docs", "logs": "/observability/logs"}

    @app.get("/users/{user_id}")
    async def read_user(user_id: int) -> dict[str, object]:
        if user_id > 90:
            logger.warning("unknown user", extra={"user_id": user_id})  # carries the request id
            raise HTTPException(status_code=404, detail="no such user")
        return {"id": user_id, "name": f"user-{user_id}"}

    @app.get("/orders/{order_id}")
    async def read_order(order_id: int) -> dict[str, object]:
        if order_id % 17 == 0:
            logger.error("order database timed out", extra={"order_id": order_id})
            raise HTTPException(status_code=500, detail="try again later")
        logger.info("order read", extra={"order_id": order_id})
        return {"id": order_id, "items": order_id % 5 + 1}

    add_observability(
        app, log_storage=logs, metrics_storage=metrics, registry=registry, runtime=runtime
    )
    return app


def send_traffic(base_url: str, stop: threading.Event, *, requests: int = 500) -> None:
    """Send at most ``requests`` GETs to the demo itself, a few per tenth of a second."""
    rng = random.Random(7)
    for number in range(requests):
        path = rng.choice(("/", f"/users/{rng.randint(1, 100)}", f"/orders/{rng.randint(1, 200)}"))
        request = urllib.request.Request(
            base_url + path, headers={"x-request-id": f"demo-{number}"}
        )
        try:
            urllib.request.urlopen(request, timeout=5).close()
        except urllib.error.HTTPError:
            pass  # the 404s and 500s are part of the show
        except OSError:
            return  # the server is going away
        if stop.wait(rng.uniform(0.01, 0.05)):
            return


async def serve(app: FastAPI, sock: socket.socket, duration: float | None) -> None:
    """Serve on ``sock`` with traffic, until Ctrl-C or ``duration`` seconds have passed."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():  # noqa: ASYNC110 - a flag, no event
        await asyncio.sleep(0.05)
    if serving.done():  # it could not start; uvicorn said why
        await serving
        return
    base_url = f"http://{HOST}:{sock.getsockname()[1]}"
    print(f"observabilipy demo serving at {base_url}/ (API docs: {base_url}/docs)")
    for endpoint in ENDPOINTS:
        print(f"  {base_url}/observability/{endpoint}")
    print(
        "sending synthetic traffic; press Ctrl-C to stop"
        if duration is None
        else f"sending synthetic traffic; stopping in {duration:g} s",
        flush=True,
    )
    stop = threading.Event()
    traffic = threading.Thread(target=send_traffic, args=(base_url, stop), daemon=True)
    traffic.start()
    try:
        if duration is not None:
            await asyncio.wait({serving}, timeout=duration)
            server.should_exit = True
        await serving
    finally:
        stop.set()
        traffic.join(timeout=5)


def summary(registry: Registry, database: SQLiteDatabase) -> str:
    """One line: the requests served by status class and what the file holds."""
    classes: Counter[str] = Counter()
    for sample in registry.snapshot():
        if sample.name == "http_requests_total":
            classes[sample.labels["status"][0] + "xx"] += int(sample.value)
    logs, metrics = SQLiteLogStorage(database), SQLiteMetricsStorage(database, registry=registry)
    by_class = ", ".join(f"{count} {name}" for name, count in sorted(classes.items()))
    return (
        f"served {sum(classes.values())} requests ({by_class or 'none'}); "
        f"{logs.count_sync()} log entries and {metrics.count_sync()} metric points "
        f"in {database.path}"
    )


def main() -> None:
    """Parse the options, serve, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--db", default="observabilipy-demo.db", help="the SQLite file to use")
    parser.add_argument("--duration", type=float, help="seconds to serve (default: until Ctrl-C)")
    options = parser.parse_args()

    registry = Registry()
    database = SQLiteDatabase(options.db)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, options.port))
    except OSError as exc:
        sys.exit(f"--port {options.port}: {exc.strerror}; pick another (0: any free port)")
    try:
        asyncio.run(serve(create_app(database, registry), sock, options.duration))
    except KeyboardInterrupt:
        pass  # Ctrl-C is how the demo ends
    finally:
        sock.close()
        print(summary(registry, database))
        database.close()


if __name__ == "__main__":
    main()
