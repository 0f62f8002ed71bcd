"""A service's logs and metrics sent to an OpenTelemetry collector over OTLP/HTTP.

``logging`` records go through ObservabilipyHandler into local storage and the
registry's counters and histograms are snapshotted there (both in memory here;
SQLite keeps them across restarts); the runtime forwards both to the collector's
``/v1/logs`` and ``/v1/metrics``.  Nothing in the application's code knows about OTLP.

    python examples/otlp_export.py [http://localhost:4318] [json|protobuf]

Start a collector first, e.g. ``docker run -p 4318:4318 otel/opentelemetry-collector``
(its default configuration prints what arrives).  Without arguments the standard
``OTEL_EXPORTER_OTLP_*`` variables decide, then http://localhost:4318.
Needs ``pip install observabilipy-otlp`` (and its ``[proto]`` extra for protobuf).
"""

from __future__ import annotations

import logging
import sys

from observabilipy.core import (
    EmbeddedRuntime,
    InMemoryLogStorage,
    InMemoryMetricsStorage,
    ObservabilipyHandler,
    Registry,
)
from observabilipy.otlp import OTLPExporter


def main(endpoint: str | None, encoding: str | None) -> None:
    """Serve three orders, let the runtime send what they left behind, report what happened."""
    registry = Registry()
    orders = registry.counter("orders", "Orders placed.", labelnames=("payment",))
    checkout = registry.histogram("checkout_seconds", "Checkout time.", buckets=(0.1, 0.5, 1.0))
    logs, metrics = InMemoryLogStorage(), InMemoryMetricsStorage()
    handler = ObservabilipyHandler(logs, exclude={"pathname", "process", "threadName"})
    logger = logging.getLogger("checkout")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False

    exporter = OTLPExporter(
        endpoint=endpoint,
        encoding=encoding,  # type: ignore[arg-type]
        service_name="checkout",
        resource_attributes={"deployment.environment": "dev"},
    )
    runtime = EmbeddedRuntime(
        log_storage=logs,
        metrics_storage=metrics,
        registry=registry,
        exporters=[exporter],
        export_timeout=10,
    )
    with runtime:  # at exit: a last snapshot, a last export
        for order, payment, seconds in (
            ("A-17", "card", 0.3),
            ("A-18", "card", 0.7),
            ("A-19", "cash", 0.05),
        ):
            orders.labels(payment=payment).inc()
            checkout.observe(seconds)
            logger.info("order placed", extra={"order": order, "payment": payment})
        logger.warning("stock low", extra={"sku": "KB-1", "left": 2})
        handler.flush()  # in storage before the runtime's last export
    logger.removeHandler(handler)
    handler.close()

    status = runtime.status()["exporters"]["otlp"]
    if status["last_error"]:
        print(f"export failed: {status['last_error']}")
        sys.exit(1)
    print(f"sent {logs.count_sync()} log entries to {exporter.logs_url}")
    print(f"sent {metrics.count_sync()} metric samples to {exporter.metrics_url}")
    print(f"backlog {status['backlog']}")


if __name__ == "__main__":
    main(
        sys.argv[1] if len(sys.argv) > 1 else None,
        sys.argv[2] if len(sys.argv) > 2 else None,
    )
