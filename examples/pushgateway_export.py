"""A batch job that pushes its metrics to a Prometheus Pushgateway when it ends.

Prometheus cannot scrape a job that lives for a minute at 3 a.m.; the Pushgateway
keeps the job's last values for it.  The job records metrics as usual; the
runtime snapshots them into local storage and, when it stops, pushes the latest
values to the group ``job="nightly_report", instance=<host>`` (PUT: the group
holds exactly this run's values).

    python examples/pushgateway_export.py [http://localhost:9091]

Start a Pushgateway first (``prometheus-pushgateway`` on Debian, or
``docker run -p 9091:9091 prom/pushgateway``), then look at its page or /metrics.
Needs ``pip install observabilipy-exporters``.
"""

from __future__ import annotations

import socket
import sys

from observabilipy.core import EmbeddedRuntime, InMemoryMetricsStorage, Registry
from observabilipy.exporters import PushgatewayExporter


def main(url: str) -> None:
    """Run the job inside the runtime; the push happens when the runtime stops."""
    registry = Registry()
    rows = registry.counter("report_rows", "Rows written.", labelnames=("table",))
    duration = registry.histogram("report_step_seconds", "Step duration.", buckets=(0.1, 1, 10))
    succeeded = registry.gauge("report_last_success", "1 when the last run succeeded.")

    exporter = PushgatewayExporter(
        url=url, job="nightly_report", grouping_key={"instance": socket.gethostname()}
    )
    runtime = EmbeddedRuntime(
        metrics_storage=InMemoryMetricsStorage(),
        registry=registry,
        exporters=[exporter],
        export_timeout=10,
    )
    with runtime:  # on exit: a last snapshot, a last export, the exporter closed
        for table, count, seconds in (("orders", 1200, 0.4), ("refunds", 35, 0.05)):
            rows.labels(table=table).inc(count)
            duration.observe(seconds)
        succeeded.set(1)
    # The runtime has stopped: its status holds the outcome of the last push.
    status = runtime.status()["exporters"]["pushgateway"]
    if status["last_error"]:
        print(f"push failed: {status['last_error']}")
        sys.exit(1)
    print(f"pushed to {exporter.group_url}")
    print(f"samples delivered up to id {status['cursor']['metrics']}, backlog {status['backlog']}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://localhost:9091")
