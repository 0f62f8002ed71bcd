"""examples/otlp_export.py sends its logs and metrics to a loopback stand-in for a collector.

The stand-in decodes every body with opentelemetry-proto, as a collector would, so the
example is checked end to end: handler -> storage -> runtime -> OTLPExporter -> wire.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("observabilipy.otlp")
json_format = pytest.importorskip("google.protobuf.json_format")
logs_service = pytest.importorskip("opentelemetry.proto.collector.logs.v1.logs_service_pb2")
metrics_service = pytest.importorskip(
    "opentelemetry.proto.collector.metrics.v1.metrics_service_pb2"
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class _Collector(BaseHTTPRequestHandler):
    """Decodes each OTLP/HTTP request into the server's ``received`` list."""

    server: _Server

    def do_POST(self) -> None:  # http.server calls do_<METHOD>
        body = self.rfile.read(int(self.headers["Content-Length"]))
        content_type = self.headers["Content-Type"]
        message = (
            logs_service.ExportLogsServiceRequest()
            if self.path == "/v1/logs"
            else metrics_service.ExportMetricsServiceRequest()
        )
        if content_type == "application/json":
            json_format.Parse(body, message)
        else:
            message.ParseFromString(body)
        self.server.received.append((self.path, content_type, message))
        answer = b"{}" if content_type == "application/json" else b""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    received: list[tuple[str, str, Any]]


@pytest.fixture
def collector() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Collector)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_the_example_sends_logs_and_metrics(
    tmp_path: Path, collector: _Server, encoding: str
) -> None:
    url = f"http://127.0.0.1:{collector.server_address[1]}"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "otlp_export.py"), url, encoding],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == f"sent 4 log entries to {url}/v1/logs"
    assert re.fullmatch(rf"sent \d+ metric samples to {re.escape(url)}/v1/metrics", lines[1])
    assert lines[2] == "backlog 0"

    logs = [m for path, _, m in collector.received if path == "/v1/logs"]
    records = [
        r for m in logs for rl in m.resource_logs for s in rl.scope_logs for r in s.log_records
    ]
    assert [(r.body.string_value, r.severity_text) for r in records] == [
        ("order placed", "INFO"),
        ("order placed", "INFO"),
        ("order placed", "INFO"),
        ("stock low", "WARNING"),
    ]
    assert {c for _, c, _ in collector.received} == {
        "application/json" if encoding == "json" else "application/x-protobuf"
    }
    resource = {a.key: a.value.string_value for a in logs[0].resource_logs[0].resource.attributes}
    assert resource["service.name"] == "checkout"

    # The last metrics request holds the final snapshot: 3 orders, 3 checkouts.
    metrics = [m for path, _, m in collector.received if path == "/v1/metrics"]
    named = {
        metric.name: metric
        for rm in metrics[-1].resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }
    totals = {
        p.attributes[0].value.string_value: p.as_double for p in named["orders"].sum.data_points
    }
    assert totals == {"card": 2.0, "cash": 1.0}
    assert named["orders"].sum.is_monotonic
    [histogram] = named["checkout_seconds"].histogram.data_points
    assert (histogram.count, list(histogram.bucket_counts)) == (3, [1, 1, 1, 0])
    assert json.loads(json_format.MessageToJson(histogram))["explicitBounds"] == [0.1, 0.5, 1.0]
