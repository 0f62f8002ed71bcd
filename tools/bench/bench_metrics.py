"""Metrics recording and exposition: observabilipy vs prometheus_client, in one run.

Run with ``python tools/bench/bench_metrics.py`` (prometheus_client installed,
e.g. ``hatch run bench:python tools/bench/bench_metrics.py``).  Prints a table
of per-operation times, the ratio ours/peer and the goal; exits 1 if a goal
is missed.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

import prometheus_client
from prometheus_client import CollectorRegistry

from observabilipy.core.exposition import encode_current
from observabilipy.core.metrics import Registry, counter

# Run as a script: make the repository root importable for the shared timing helpers.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.bench._common import Row, per_call_ns, report

CALLS = 200_000
SERIES = 10_000


def bench_recording() -> list[Row]:
    """Labelled increments, the helper, bound children and histogram observations."""
    ours = Registry()
    peer = CollectorRegistry()
    requests = ours.counter("requests", "Requests", labelnames=("method", "status"))
    peer_requests = prometheus_client.Counter(
        "requests", "Requests", ["method", "status"], registry=peer
    )
    child = requests.labels(method="GET", status="200")
    peer_child = peer_requests.labels(method="GET", status="200")
    latency = ours.histogram("latency_seconds", "Latency")
    peer_latency = prometheus_client.Histogram("latency_seconds", "Latency", registry=peer)
    helper_registry = Registry()

    def labelled() -> None:
        requests.labels(method="GET", status="200").inc()

    def peer_labelled() -> None:
        peer_requests.labels(method="GET", status="200").inc()

    def helper() -> None:
        counter("requests", registry=helper_registry, method="GET", status="200")

    def observe() -> None:
        latency.observe(0.3)

    def peer_observe() -> None:
        peer_latency.observe(0.3)

    peer_labelled_ns = per_call_ns(peer_labelled, CALLS)
    return [
        Row("labels(method=, status=).inc()", per_call_ns(labelled, CALLS), peer_labelled_ns, 1.0),
        Row("counter() helper, 2 labels", per_call_ns(helper, CALLS), peer_labelled_ns, 1.0),
        Row(
            "bound child.inc()",
            per_call_ns(child.inc, CALLS),
            per_call_ns(peer_child.inc, CALLS),
            1.0,
        ),
        Row(
            "Histogram.observe()",
            per_call_ns(observe, CALLS),
            per_call_ns(peer_observe, CALLS),
            1.0,
        ),
    ]


def bench_exposition() -> Row:
    """Text exposition of 10,000 labelled counter series."""
    ours = Registry(max_series_per_family=SERIES)
    peer = CollectorRegistry()
    requests = ours.counter("requests", "Requests", labelnames=("method", "route"))
    peer_requests = prometheus_client.Counter(
        "requests", "Requests", ["method", "route"], registry=peer
    )
    for i in range(SERIES):
        method, route = ("GET", "POST")[i % 2], f"/items/{i}"
        requests.labels(method=method, route=route).inc(i)
        peer_requests.labels(method=method, route=route).inc(i)
    assert encode_current(ours).encode() == prometheus_client.generate_latest(peer)
    return Row(
        f"exposition, {SERIES:,} counter series",
        per_call_ns(lambda: encode_current(ours), 3),
        per_call_ns(lambda: prometheus_client.generate_latest(peer), 3),
        0.5,
    )


def main() -> int:
    """Run every comparison and print the table."""
    print(f"Python {sys.version.split()[0]}, prometheus_client {version('prometheus_client')}")
    # We write no `_created` series; neither should the peer, so both render the same text.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    rows = [*bench_recording(), bench_exposition()]
    return 0 if report(rows, peer="prometheus_client") else 1


if __name__ == "__main__":
    sys.exit(main())
