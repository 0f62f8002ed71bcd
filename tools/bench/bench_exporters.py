"""Pushing to a real Pushgateway: PushgatewayExporter vs prometheus_client.push_to_gateway.

Run with ``hatch run bench:python tools/bench/bench_exporters.py`` (needs Debian's
``prometheus-pushgateway`` on PATH; the benchmark starts it on a free loopback port).

Both push the same series to the same Pushgateway with PUT, over loopback, so each
time is a whole push as a user pays it: build the body, send it, the Pushgateway
parses and stores it, the answer comes back.  Ours is given the batch the runtime
would hand it (one stored snapshot of the registry, with ids) and folds it into its
latest-value map first; the peer renders its registry with generate_latest.  Each
client keeps its connection open between pushes (httpx's pool; urllib reconnects,
as push_to_gateway always does).  Goal: not slower than the peer.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry, push_to_gateway
from prometheus_client import Counter as PeerCounter
from prometheus_client import Histogram as PeerHistogram

from observabilipy.core.metrics import Registry
from observabilipy.core.models import MetricSample
from observabilipy.exporters import PushgatewayExporter

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.bench._common import Row, per_call_ns, report

COUNTER_SERIES = 1_000
HISTOGRAM_SERIES = 100


@contextmanager
def pushgateway() -> Iterator[str]:
    """A Pushgateway on a free loopback port, memory only; yields its URL."""
    binary = shutil.which("prometheus-pushgateway")
    if binary is None:
        raise SystemExit("apt-get install prometheus-pushgateway: the benchmark pushes to it")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    with urllib.request.urlopen(url + "/-/ready", timeout=1):
                        break
                except OSError:
                    time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def counters() -> tuple[Registry, CollectorRegistry]:
    """The same 1,000 counter series (two labels) in our registry and the peer's."""
    ours, peer = Registry(), CollectorRegistry()
    our_family = ours.counter("requests", "Requests.", labelnames=("method", "route"))
    peer_family = PeerCounter(
        "requests", "Requests.", labelnames=("method", "route"), registry=peer
    )
    for index in range(COUNTER_SERIES):
        method, route = ("GET", "POST")[index % 2], f"/items/{index}"
        our_family.labels(method=method, route=route).inc(index)
        peer_family.labels(method=method, route=route).inc(index)
    return ours, peer


def histograms() -> tuple[Registry, CollectorRegistry]:
    """The same 100 histogram series (default buckets) in both registries."""
    ours, peer = Registry(), CollectorRegistry()
    our_family = ours.histogram("latency_seconds", "Latency.", labelnames=("route",))
    peer_family = PeerHistogram("latency_seconds", "Latency.", labelnames=("route",), registry=peer)
    for index in range(HISTOGRAM_SERIES):
        for value in (0.003, 0.04, 0.3, 2.0):
            our_family.labels(route=f"/r/{index}").observe(value)
            peer_family.labels(route=f"/r/{index}").observe(value)
    return ours, peer


async def as_batch(samples: list[MetricSample]) -> AsyncIterator[MetricSample]:
    for sample in samples:
        yield sample


def compare(operation: str, url: str, ours: Registry, peer: CollectorRegistry, n: int) -> Row:
    """Time one PUT of ``ours`` (through the exporter) and of ``peer``, to separate jobs."""
    batch = [s.with_id(i) for i, s in enumerate(ours.snapshot(timestamp=time.time()), 1)]
    exporter = PushgatewayExporter(url=url, job=f"ours_{operation.split()[1]}")
    loop = asyncio.new_event_loop()

    def push_ours() -> None:
        loop.run_until_complete(exporter.export_metrics(as_batch(batch)))

    def push_peer() -> None:
        push_to_gateway(
            url.removeprefix("http://"), job=f"peer_{operation.split()[1]}", registry=peer
        )

    push_ours()
    push_peer()  # warm: connections, the Pushgateway's first group
    row = Row(operation, per_call_ns(push_ours, n), per_call_ns(push_peer, n), goal=1.0)
    loop.run_until_complete(exporter.close())
    loop.close()
    return row


def main() -> int:
    """Print the table; exit 1 if a goal is missed."""
    with pushgateway() as url:
        rows = [
            compare(f"push {COUNTER_SERIES} counter series", url, *counters(), n=40),
            compare(f"push {HISTOGRAM_SERIES} histogram series", url, *histograms(), n=40),
        ]
    return 0 if report(rows, peer="prometheus_client") else 1


if __name__ == "__main__":
    sys.exit(main())
