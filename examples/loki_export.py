"""A service's logs shipped to Grafana Loki, with stdlib logging unchanged.

``logging`` records go through ObservabilipyHandler into local storage (here in
memory; SQLite keeps them across restarts); the runtime forwards them to Loki's
push API.  Streams are labelled ``service``/``env`` and ``level``; the other
attributes travel as structured metadata (LogQL: ``{service="checkout"} | order="A-17"``).

    python examples/loki_export.py [http://localhost:3100] [tenant]

Start Loki first (``docker run -p 3100:3100 grafana/loki``), then query it in
Grafana's Explore with ``{service="checkout"}``.  Pass ``structured_metadata=False``
to LokiExporter for a Loki older than 3.0.
Needs ``pip install observabilipy-exporters``.
"""

from __future__ import annotations

import logging
import sys

from observabilipy.core import EmbeddedRuntime, InMemoryLogStorage, ObservabilipyHandler
from observabilipy.exporters import LokiExporter


def main(url: str, tenant: str | None) -> None:
    """Log a checkout, let the runtime push it, report what happened."""
    storage = InMemoryLogStorage()
    handler = ObservabilipyHandler(storage, exclude={"pathname", "process", "threadName"})
    logger = logging.getLogger("checkout")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False

    exporter = LokiExporter(
        url=url,
        labels={"service": "checkout", "env": "dev"},
        tenant_id=tenant,  # X-Scope-OrgID, for a multi-tenant Loki
    )
    runtime = EmbeddedRuntime(log_storage=storage, exporters=[exporter], export_timeout=10)
    with runtime:
        logger.info("cart opened", extra={"cart": "A-17", "items": 3})
        logger.warning("coupon expired", extra={"cart": "A-17", "coupon": "SPRING"})
        logger.info("order placed", extra={"order": "A-17", "total": 59.9})
        handler.flush()  # in storage before the runtime's last export
    logger.removeHandler(handler)
    handler.close()

    status = runtime.status()["exporters"]["loki"]
    if status["last_error"]:
        print(f"push failed: {status['last_error']}")
        sys.exit(1)
    print(f"pushed {storage.count_sync()} entries to {exporter.push_url}")
    print(f"cursor {status['cursor']['logs']}, backlog {status['backlog']}")


if __name__ == "__main__":
    main(
        sys.argv[1] if len(sys.argv) > 1 else "http://localhost:3100",
        sys.argv[2] if len(sys.argv) > 2 else None,
    )
