"""Serve examples/chartjs_dashboard.html with its libraries and an app's observability API.

A small shop on a SQLite file: ``/orders`` places an order (logged and counted),
a background thread sends it traffic on 127.0.0.1, observabilipy's middleware
records every request and its endpoints answer under ``/observability``.  The
page is served at ``/`` and its three libraries from this folder's
``node_modules`` (``npm ci`` here first): the browser loads nothing from elsewhere.

    cd examples/chartjs_dashboard && npm ci && cd -
    python examples/chartjs_dashboard/serve.py                  # http://127.0.0.1:8000/
    python examples/chartjs_dashboard/serve.py --port 8001 --db shop.db --duration 60

The React example's dev server (``npm run dev`` in examples/react_dashboard)
proxies ``/observability`` to this app as well.  With a Prometheus scraping
``/observability/metrics/prometheus``, open
``/?prometheus=http://127.0.0.1:9090`` to see the chart drawn through it.

Needs ``pip install observabilipy uvicorn`` (core, sqlite and asgi).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import mimetypes
import random
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from observabilipy.asgi import (
    ROUTE_KEY,
    ObservabilityMiddleware,
    Receive,
    Scope,
    Send,
    create_asgi_app,
)
from observabilipy.core import EmbeddedRuntime, ObservabilipyHandler, Registry
from observabilipy.core.http import ObservabilityAPI
from observabilipy.core.ports import LogStoragePort
from observabilipy.sqlite import SQLiteDatabase, SQLiteLogStorage, SQLiteMetricsStorage

HOST = "127.0.0.1"  # the example never listens beyond this machine
PREFIX = "/observability"
HERE = Path(__file__).resolve().parent
PAGE = HERE.parent / "chartjs_dashboard.html"
#: The libraries the page loads, by the path it asks for them (below this folder).
LIBRARIES = (
    "chart.js/dist/chart.umd.js",
    "chartjs-adapter-date-fns/dist/chartjs-adapter-date-fns.bundle.min.js",
    "chartjs-plugin-datasource-prometheus/dist/chartjs-plugin-datasource-prometheus.umd.js",
)
logger = logging.getLogger("shop")


def page_files(node_modules: Path = HERE / "node_modules") -> dict[str, Path]:
    """What the page needs, by URL path: itself at ``/``, and its libraries.

    Raises FileNotFoundError naming the fix when a library is not installed.
    """
    missing = [name for name in LIBRARIES if not (node_modules / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{node_modules / missing[0]} is missing: run `npm ci` in {node_modules.parent}"
        )
    files = {"/": PAGE}
    for name in LIBRARIES:
        files[f"/chartjs_dashboard/node_modules/{name}"] = node_modules / name
    return files


def dashboard_app(
    api: ObservabilityAPI,
    *,
    files: Mapping[str, Path],
    registry: Registry,
    log_storage: LogStoragePort,
) -> Any:
    """An ASGI app: ``files`` by path, the API under ``/observability``, and ``/orders``.

    Requests for the page and ``/orders`` are recorded by observabilipy's middleware
    (not the API's nor the libraries'): on ``registry``, with one entry per request in
    ``log_storage``.
    """
    endpoints = create_asgi_app(api)
    orders = registry.counter("orders_total", "Orders placed.", labelnames=("size",))
    numbers = itertools.count(1)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path == PREFIX or path.startswith(PREFIX + "/"):
            await endpoints(
                {**scope, "root_path": scope.get("root_path", "") + PREFIX}, receive, send
            )
        elif path == "/orders":
            scope[ROUTE_KEY] = "/orders"
            number = next(numbers)
            size = "large" if number % 4 == 0 else "small"
            orders.labels(size=size).inc()
            logger.info("order %d placed", number, extra={"order": number, "size": size})
            await _respond(send, 200, b'{"placed": true}', "application/json")
        elif path in files:
            scope[ROUTE_KEY] = path
            content_type = mimetypes.guess_type(files[path].name)[0] or "text/plain"
            await _respond(send, 200, files[path].read_bytes(), content_type)
        else:
            await _respond(send, 404, b"not found", "text/plain")

    return ObservabilityMiddleware(
        app,
        registry=registry,
        log_storage=log_storage,
        exclude_paths=[PREFIX + "/*", "/chartjs_dashboard/*"],
    )


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def send_orders(server: Any, base_url: str, stop: threading.Event) -> None:
    """Traffic for the charts once ``server`` is up: an order every tenth of a second or so."""
    while not server.started:
        if stop.wait(0.05):
            return
    rng = random.Random(3)
    while not stop.wait(rng.uniform(0.05, 0.2)):
        try:
            urllib.request.urlopen(base_url + "/orders", timeout=5).close()
        except OSError:
            return  # the server is going away


def main(argv: list[str] | None = None) -> int:
    """Serve the page and the shop until Ctrl-C or ``--duration`` seconds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--db", help="the SQLite file (default: a new temporary one)")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument(
        "--node-modules", type=Path, default=HERE / "node_modules", help="where `npm ci` put them"
    )
    options = parser.parse_args(argv)
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - the message is the point
        sys.exit("this example needs uvicorn: pip install uvicorn")
    try:
        files = page_files(options.node_modules)
    except FileNotFoundError as missing:
        sys.exit(str(missing))

    path = options.db or str(Path(tempfile.mkdtemp(prefix="observabilipy-")) / "shop.db")
    database = SQLiteDatabase(path)
    registry = Registry()
    logs = SQLiteLogStorage(database)
    metrics = SQLiteMetricsStorage(database, registry=registry)
    runtime = EmbeddedRuntime(metrics_storage=metrics, registry=registry, snapshot_interval=1.0)
    api = ObservabilityAPI(log_storage=logs, metrics_storage=metrics, registry=registry)
    handler = ObservabilipyHandler(logs, registry=registry)
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)

    app = dashboard_app(api, files=files, registry=registry, log_storage=logs)
    server = uvicorn.Server(
        uvicorn.Config(app, host=HOST, port=options.port, log_level="warning", lifespan="off")
    )
    base_url = f"http://{HOST}:{options.port}"
    stop = threading.Event()
    threading.Thread(target=send_orders, args=(server, base_url, stop), daemon=True).start()
    if options.duration is not None:
        threading.Timer(options.duration, lambda: setattr(server, "should_exit", True)).start()
    print(f"the Chart.js dashboard: {base_url}/  (data in {path})", flush=True)
    with runtime:
        try:
            server.run()
        finally:
            stop.set()
            handler.close()
    database.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
