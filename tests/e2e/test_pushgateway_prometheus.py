"""Metrics from a service to Prometheus through a Pushgateway, with every part real.

A registry is snapshotted by the runtime into a SQLite file; the runtime's
export loop reads it behind the exporter's cursor and a PushgatewayExporter pushes
it to Debian's prometheus-pushgateway; Debian's prometheus scrapes the Pushgateway
(``honor_labels: true``) and its query API returns the values.  Then the service
"restarts" on the same file: the new runtime resumes from the saved cursor and
Prometheus sees the new totals.

The binaries are required: without them the test fails naming the Debian package.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from observabilipy.core.metrics import Registry
from observabilipy.core.runtime import EmbeddedRuntime
from observabilipy.exporters import PushgatewayExporter

sqlite = pytest.importorskip("observabilipy.sqlite")

pytestmark = pytest.mark.slow

PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def binary(name: str, apt_package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} is not installed: apt-get install {apt_package}")
    return path


def http_get(port: int, target: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def running(argv: list[str], port: int, log: Path, ready: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server program until the block ends; fail with its output if it never gets ready."""
    with log.open("wb") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{argv[0]} did not start:\n{log.read_text()[-3000:]}")
                with contextlib.suppress(OSError):
                    if http_get(port, ready)[0] == 200:
                        break
                time.sleep(0.1)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def query(port: int, promql: str, until: float | None = None, timeout: float = 30) -> float:
    """The value of a one-series PromQL query, waiting for it to exist (and equal ``until``)."""
    target = "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    deadline = time.monotonic() + timeout
    seen: float | None = None
    while time.monotonic() < deadline:
        status, body = http_get(port, target)
        result = json.loads(body)["data"]["result"] if status == 200 else []
        if result:
            seen = float(result[0]["value"][1])
            if until is None or seen == until:
                return seen
        time.sleep(0.25)
    raise AssertionError(f"{promql}: Prometheus returned {seen!r}, expected {until!r}")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """(pushgateway port, prometheus port), both running."""
    gateway_port, prometheus_port = free_port(), free_port()
    gateway = [
        binary("prometheus-pushgateway", "prometheus-pushgateway"),
        f"--web.listen-address=127.0.0.1:{gateway_port}",
        "--persistence.file=",
        "--log.level=warn",
    ]
    config = tmp_path / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG.replace("{port}", str(gateway_port)))
    prometheus = [
        binary("prometheus", "prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
        "--log.level=warn",
    ]
    with (
        running(gateway, gateway_port, tmp_path / "pushgateway.log", "/-/ready"),
        running(prometheus, prometheus_port, tmp_path / "prometheus.log", "/-/ready"),
    ):
        yield gateway_port, prometheus_port


def service_run(
    database_path: Path, gateway_port: int, *, orders: int, latency: float
) -> dict[str, dict[str, int]]:
    """One life of the service: record, snapshot, export through the runtime, stop."""
    registry = Registry()
    orders_total = registry.counter("shop_orders", "Orders placed.", labelnames=("channel",))
    in_flight = registry.gauge("shop_checkouts_in_flight", "Checkouts in progress.")
    latency_seconds = registry.histogram("shop_checkout_seconds", "Checkout time.")
    database = sqlite.SQLiteDatabase(str(database_path))
    metrics = sqlite.SQLiteMetricsStorage(database)
    # A restarted service counts from its last stored total, as a cumulative counter must.
    previous = [s.value for s in metrics.read_sync(name="shop_orders_total")]
    orders_total.labels(channel="web").inc((previous[-1] if previous else 0) + orders)
    in_flight.set(orders % 3)
    latency_seconds.observe(latency)
    exporter = PushgatewayExporter(
        url=f"http://127.0.0.1:{gateway_port}",
        job="shop",
        grouping_key={"instance": "shop-1"},
    )
    runtime = EmbeddedRuntime(
        metrics_storage=metrics, registry=registry, exporters=[exporter], export_interval=3600
    )
    try:
        runtime.snapshot_now()
        return runtime.export_now()
    finally:
        runtime.stop()
        database.close()


def test_pushed_metrics_reach_prometheus_and_a_restart_resumes_from_the_cursor(
    tmp_path: Path, servers: tuple[int, int]
) -> None:
    gateway_port, prometheus_port = servers
    database = tmp_path / "shop.db"

    delivered = service_run(database, gateway_port, orders=5, latency=0.2)
    assert delivered["pushgateway"]["metrics"] > 0
    selector = '{job="shop",instance="shop-1"}'
    assert query(prometheus_port, f'shop_orders_total{{channel="web",{selector[1:]}') == 5
    assert query(prometheus_port, f"shop_checkouts_in_flight{selector}") == 2
    assert query(prometheus_port, f"shop_checkout_seconds_count{selector}") == 1
    assert query(prometheus_port, f"shop_checkout_seconds_sum{selector}") == pytest.approx(0.2)
    assert query(prometheus_port, f'shop_checkout_seconds_bucket{{le="0.25",{selector[1:]}') == 1

    # The next life of the service reads what the cursor has not passed yet: only
    # the new snapshot (the first one was delivered and is not sent again).
    again = service_run(database, gateway_port, orders=4, latency=3.0)
    assert 0 < again["pushgateway"]["metrics"] <= delivered["pushgateway"]["metrics"]
    assert query(prometheus_port, f'shop_orders_total{{channel="web",{selector[1:]}', 9) == 9
    assert query(prometheus_port, f"shop_checkout_seconds_sum{selector}", 3.0) == 3.0
