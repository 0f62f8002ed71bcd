"""Logs and metrics posted as NDJSON to any HTTP endpoint: a webhook, a shipper, your service.

Each batch arrives as the HTTP API's own ``GET /logs`` and ``GET /metrics``
would serve it (one JSON object per line), at ``<url>/logs`` and ``<url>/metrics``.
Without a URL, the example starts a small receiver on 127.0.0.1 and prints
what it gets, so it runs anywhere.

    python examples/http_json_export.py [http://collector:8080/ingest]

Needs ``pip install observabilipy-exporters``.
"""

from __future__ import annotations

import http.server
import json
import sys
import threading

from observabilipy.core import (
    EmbeddedRuntime,
    InMemoryLogStorage,
    InMemoryMetricsStorage,
    Registry,
    info,
    warning,
)
from observabilipy.exporters import HTTPJSONExporter


class Receiver(http.server.BaseHTTPRequestHandler):
    """Prints each line it receives: what your endpoint would parse."""

    def do_POST(self) -> None:  # http.server calls do_<METHOD>
        """Read one NDJSON batch and answer 204."""
        body = self.rfile.read(int(self.headers["Content-Length"]))
        for line in body.decode().splitlines():
            item = json.loads(line)
            if "message" in item:
                what = f"{item['level']} {item['message']} {item['attributes']}"
            else:
                what = f"{item['name']}{item['labels']} = {item['value']}"
            print(f"  {self.path:<16} #{item['id']} {what}")
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the lines above say what arrived."""


def main(url: str | None) -> None:
    """Record logs and metrics; the runtime posts them when it stops."""
    server = None
    if url is None:
        server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/ingest"
        print(f"receiving at {url}/{{signal}}:")

    registry = Registry()
    logs, metrics = InMemoryLogStorage(), InMemoryMetricsStorage()
    exporter = HTTPJSONExporter(url=url + "/{signal}", body="ndjson")
    runtime = EmbeddedRuntime(
        log_storage=logs, metrics_storage=metrics, registry=registry, exporters=[exporter]
    )
    with runtime:
        logs.write_many_sync([info("import started", file="a.csv"), warning("row skipped", row=7)])
        registry.counter("import_rows", "Rows imported.").inc(41)
    if server is not None:
        server.shutdown()
        server.server_close()

    status = runtime.status()["exporters"]["http"]
    print(f"delivered up to {status['cursor']}; last error: {status['last_error']}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
