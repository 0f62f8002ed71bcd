"""The export examples run on their own against what they push to, and say what they delivered.

- pushgateway_export.py pushes to Debian's prometheus-pushgateway, started here;
- loki_export.py pushes to a loopback server standing in for Loki's push API;
- http_json_export.py runs its own receiver.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import http.server
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

pytest.importorskip("observabilipy.exporters")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(script: str, cwd: Path, *args: str) -> list[str]:
    """Run an example as a user would; it must end by itself, cleanly, printing only to stdout."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    return result.stdout.splitlines()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(port: int, target: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def pushgateway(log: Path) -> Iterator[int]:
    """Debian's prometheus-pushgateway on a free loopback port; yields the port."""
    binary = shutil.which("prometheus-pushgateway")
    if binary is None:
        raise AssertionError("apt-get install prometheus-pushgateway: the example pushes to it")
    port = free_port()
    argv = [binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="]
    with log.open("wb") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(OSError):
                    if http_get(port, "/-/ready")[0] == 200:
                        break
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            yield port
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_pushgateway_example_pushes_the_jobs_final_values(tmp_path: Path) -> None:
    with pushgateway(tmp_path / "pushgateway.log") as port:
        lines = run("pushgateway_export.py", tmp_path, f"http://127.0.0.1:{port}")
        _, body = http_get(port, "/metrics")
    host = socket.gethostname()
    assert lines[0] == (
        f"pushed to http://127.0.0.1:{port}/metrics/job/nightly_report/instance/{host}"
    )
    assert lines[1].endswith("backlog 0")
    exposition = body.decode()
    labels = f'instance="{host}",job="nightly_report"'
    assert f'report_rows_total{{{labels},table="orders"}} 1200' in exposition
    assert f"report_step_seconds_count{{{labels}}} 2" in exposition
    assert f"report_last_success{{{labels}}} 1" in exposition


class LokiStandIn(http.server.BaseHTTPRequestHandler):
    """Takes Loki pushes: keeps each decoded body and its tenant header, answers 204."""

    pushes: ClassVar[list[tuple[str | None, dict[str, Any]]]] = []

    def do_POST(self) -> None:  # http.server calls do_<METHOD>
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        ok = self.path == "/loki/api/v1/push" and self.headers["Content-Type"] == "application/json"
        if ok:
            self.pushes.append((self.headers.get("X-Scope-OrgID"), json.loads(body)))
        self.send_response(204 if ok else 400)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def test_loki_example_ships_the_services_logs(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), LokiStandIn)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        lines = run("loki_export.py", tmp_path, url, "team-a")
    finally:
        server.shutdown()
        server.server_close()
    assert lines == [f"pushed 3 entries to {url}/loki/api/v1/push", "cursor 3, backlog 0"]
    [(tenant, document)] = LokiStandIn.pushes
    assert tenant == "team-a"
    streams = {stream["stream"]["level"]: stream for stream in document["streams"]}
    assert streams["INFO"]["stream"] == {"service": "checkout", "env": "dev", "level": "INFO"}
    assert [value[1] for value in streams["INFO"]["values"]] == ["cart opened", "order placed"]
    [[_, line, metadata]] = streams["WARNING"]["values"]
    assert (line, metadata["coupon"], metadata["cart"]) == ("coupon expired", "SPRING", "A-17")


def test_http_json_example_posts_ndjson_to_its_own_receiver(tmp_path: Path) -> None:
    lines = run("http_json_export.py", tmp_path)
    assert lines[0].startswith("receiving at http://127.0.0.1:")
    assert "  /ingest/logs     #1 INFO import started {'file': 'a.csv'}" in lines
    assert "  /ingest/logs     #2 WARNING row skipped {'row': 7}" in lines
    assert any(line.endswith("import_rows_total{} = 41.0") for line in lines)
    # Every stored sample arrived once: as many metric lines as the cursor's last id.
    summary = re.fullmatch(
        r"delivered up to \{'logs': 2, 'metrics': (\d+)\}; last error: None", lines[-1]
    )
    assert summary is not None, lines[-1]
    assert sum("/ingest/metrics" in line for line in lines) == int(summary[1])
