"""The observabilipy demo: a small simulated service that records logs and metrics.

It serves a few fake requests with the standard library's logging, a metrics
registry and the embedded runtime, storing everything in a SQLite file, then
prints what each HTTP endpoint serves.  Run it with ``hatch run demo``; the file
(``observabilipy-demo.db`` unless ``--db`` names another) stays for you to look at.
"""

from __future__ import annotations

import argparse
import logging
import random
import time

from observabilipy.core import (
    EmbeddedRuntime,
    ObservabilipyHandler,
    Registry,
    RetentionPolicy,
    encode_metrics_ndjson,
    log_context,
)
from observabilipy.sqlite import SQLiteDatabase, SQLiteLogStorage, SQLiteMetricsStorage

ROUTES = ("/", "/users/{id}", "/orders/{id}")


def serve_fake_traffic(
    registry: Registry, logger: logging.Logger, *, requests: int, seed: int = 7
) -> None:
    """Record what a web service would record for ``requests`` requests."""
    rng = random.Random(seed)
    total = registry.counter(
        "http_requests", "Requests served.", labelnames=("method", "route", "status")
    )
    duration = registry.histogram(
        "http_request_duration_seconds", "Time to serve a request.", labelnames=("method", "route")
    )
    in_flight = registry.gauge("http_requests_in_flight", "Requests being served.")
    for number in range(requests):
        route = rng.choice(ROUTES)
        status = rng.choices(("200", "404", "500"), weights=(90, 7, 3))[0]
        with log_context(request_id=f"req-{number:04d}", route=route):
            in_flight.inc()
            elapsed = rng.lognormvariate(-3.5, 0.8)
            total.labels(method="GET", route=route, status=status).inc()
            duration.labels(method="GET", route=route).observe(elapsed)
            if status == "500":
                try:
                    raise RuntimeError("database timed out")
                except RuntimeError:
                    logger.exception("request failed")
            elif status == "404":
                logger.warning("not found", extra={"status": int(status)})
            else:
                logger.info("served", extra={"status": int(status), "elapsed": round(elapsed, 4)})
            in_flight.dec()


def show(title: str, body: str, *, lines: int = 12) -> None:
    """Print the first ``lines`` lines of what an endpoint would answer."""
    print(f"\n=== {title} ===")
    shown = body.splitlines()
    print("\n".join(shown[:lines]))
    if len(shown) > lines:
        print(f"... ({len(shown) - lines} more lines)")


def main(requests: int = 200, db: str = "observabilipy-demo.db") -> None:
    """Run the demo on the SQLite file ``db`` and print each endpoint's answer."""
    registry = Registry()
    database = SQLiteDatabase(db)
    logs = SQLiteLogStorage(database)
    metrics = SQLiteMetricsStorage(database, registry=registry)
    handler = ObservabilipyHandler(logs)
    logger = logging.getLogger("demo.shop")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False

    runtime = EmbeddedRuntime(
        log_storage=logs,
        metrics_storage=metrics,
        registry=registry,
        snapshot_interval=0.05,
        log_retention=RetentionPolicy(max_age_seconds=7 * 86400, max_count=100_000),
    )
    started = time.perf_counter()
    with runtime:
        serve_fake_traffic(registry, logger, requests=requests)
        handler.flush()
    database.flush()
    elapsed = time.perf_counter() - started

    # What every worker sharing the file would answer: its live values plus the others'.
    show("GET /metrics/prometheus", metrics.exposition(registry=registry), lines=20)
    history = encode_metrics_ndjson(metrics.read_sync(name="http_requests", limit=6))
    show("GET /metrics?name=http_requests (NDJSON history)", b"".join(history).decode())
    warnings = logs.read_ndjson_sync(min_level="warning", limit=4)
    show("GET /logs?min_level=warning (NDJSON)", b"".join(warnings).decode())
    print(
        f"\n{requests} requests, {logs.count_sync()} log entries and "
        f"{metrics.count_sync()} stored metric points in {elapsed * 1000:.0f} ms, in {db}"
    )
    handler.close()
    database.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requests", nargs="?", type=int, default=200)
    parser.add_argument("--db", default="observabilipy-demo.db", help="the SQLite file to use")
    arguments = parser.parse_args()
    main(arguments.requests, arguments.db)
