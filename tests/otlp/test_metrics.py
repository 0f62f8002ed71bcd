"""Metric samples reach the collector as ExportMetricsServiceRequest: sums, gauges, histograms."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

from observabilipy.core.export import RetryableExportError
from observabilipy.core.metrics import Registry
from observabilipy.core.models import MetricSample
from observabilipy.otlp import OTLPExporter

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.otlp._otlp_support import Answer, FakeCollector, aiter_of, attributes
else:
    from _otlp_support import Answer, FakeCollector, aiter_of, attributes

ENCODINGS = ["json", "protobuf"]
CUMULATIVE = 2
NS = 1_000_000_000


def sample(name: str, value: float, timestamp: float, kind: str, **labels: str) -> MetricSample:
    """A MetricSample as storage hands it over."""
    return MetricSample(name=name, timestamp=timestamp, value=value, labels=labels, kind=kind)


def by_name(request: ExportMetricsServiceRequest) -> dict[str, Metric]:
    """The metrics of a one-resource, one-scope request, by name."""
    [resource_metrics] = request.resource_metrics
    [scope_metrics] = resource_metrics.scope_metrics
    assert scope_metrics.scope.name == "observabilipy"
    return {metric.name: metric for metric in scope_metrics.metrics}


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_a_registry_snapshot_arrives_as_otlp_metrics(
    collector: FakeCollector, encoding: str
) -> None:
    registry = Registry()
    requests = registry.counter("http_requests", "Requests served.", labelnames=("method",))
    requests.labels(method="GET").inc(3)
    requests.labels(method="POST").inc()
    registry.gauge("queue_depth", "Jobs waiting.").set(7)
    latency = registry.histogram("latency_seconds", "Latency.", buckets=(0.1, 1.0))
    for seconds in (0.05, 0.5, 0.5, 3.0):
        latency.observe(seconds)
    before = time.time_ns()
    exporter = OTLPExporter(endpoint=collector.url, encoding=encoding, service_name="shop")  # type: ignore[arg-type]
    after = time.time_ns()
    taken = time.time() + 0.5  # after the exporter was made
    await exporter.export_metrics(aiter_of(registry.snapshot(timestamp=taken)))
    await exporter.close()

    [request] = collector.requests
    assert request.path == "/v1/metrics"
    decoded = request.metrics()
    resource = attributes(decoded.resource_metrics[0].resource.attributes)
    assert resource["service.name"] == ("string_value", "shop")
    metrics = by_name(decoded)
    assert sorted(metrics) == ["http_requests", "latency_seconds", "queue_depth"]
    taken_ns = round(taken * 1e6) * 1000

    counter = metrics["http_requests"]
    assert counter.WhichOneof("data") == "sum"
    assert counter.description == "Requests served."
    assert counter.sum.is_monotonic is True
    assert counter.sum.aggregation_temporality == CUMULATIVE
    points = {p.attributes[0].value.string_value: p for p in counter.sum.data_points}
    assert {method: p.as_double for method, p in points.items()} == {"GET": 3.0, "POST": 1.0}
    for point in points.values():
        assert attributes(point.attributes).keys() == {"method"}
        assert point.time_unix_nano == taken_ns
        # Series first seen after the exporter was made count from its creation.
        assert before <= point.start_time_unix_nano <= after

    gauge = metrics["queue_depth"]
    assert gauge.WhichOneof("data") == "gauge"
    [point] = gauge.gauge.data_points
    assert (point.as_double, point.time_unix_nano, point.start_time_unix_nano) == (7.0, taken_ns, 0)

    histogram = metrics["latency_seconds"]
    assert histogram.WhichOneof("data") == "histogram"
    assert histogram.histogram.aggregation_temporality == CUMULATIVE
    [bucketed] = histogram.histogram.data_points
    assert list(bucketed.explicit_bounds) == [0.1, 1.0]
    assert list(bucketed.bucket_counts) == [1, 2, 1]  # per bucket; the last one is +Inf's
    assert bucketed.count == 4
    assert bucketed.sum == pytest.approx(4.05)
    assert bucketed.time_unix_nano == taken_ns
    assert before <= bucketed.start_time_unix_nano <= after
    assert list(bucketed.attributes) == []


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_points_of_one_family_share_one_metric_in_order(
    collector: FakeCollector, encoding: str
) -> None:
    exporter = OTLPExporter(endpoint=collector.url, encoding=encoding)  # type: ignore[arg-type]
    await exporter.export_metrics(
        aiter_of(
            [
                sample("temperature", 20.5, 100.0, "gauge", room="a"),
                sample("temperature", 21.0, 100.0, "gauge", room="b"),
                sample("load", 0.7, 100.0, "untyped"),
                sample("temperature", 19.0, 160.0, "gauge", room="a"),
                sample("temperature", float("nan"), 160.0, "gauge", room="b"),
            ]
        )
    )
    await exporter.close()
    [request] = collector.requests
    if encoding == "json":  # proto3 JSON: a non-finite double is a string, never a bare NaN
        document = json.loads(request.body)
        metrics = document["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        assert metrics[0]["gauge"]["dataPoints"][-1]["asDouble"] == "NaN"
    metrics = by_name(request.metrics())
    # Untyped samples have no OTLP kind of their own: gauges, as a Prometheus receiver makes them.
    assert metrics["load"].WhichOneof("data") == "gauge"
    points = metrics["temperature"].gauge.data_points
    assert [(p.attributes[0].value.string_value, p.time_unix_nano) for p in points] == [
        ("a", 100 * NS),
        ("b", 100 * NS),
        ("a", 160 * NS),
        ("b", 160 * NS),
    ]
    assert [p.as_double for p in points[:3]] == [20.5, 21.0, 19.0]
    assert points[3].as_double != points[3].as_double  # NaN


async def test_backlog_series_start_at_their_first_point_and_restart_on_a_reset(
    collector: FakeCollector,
) -> None:
    # Samples older than the exporter (a backlog read from SQLite after a restart).
    exporter = OTLPExporter(endpoint=collector.url)
    await exporter.export_metrics(
        aiter_of(
            [
                sample("jobs_total", 5, 100.0, "counter"),
                sample("jobs_total", 9, 160.0, "counter"),
                sample("jobs_total", 2, 220.0, "counter"),  # went down: the process restarted
            ]
        )
    )
    await exporter.export_metrics(aiter_of([sample("jobs_total", 4, 280.0, "counter")]))
    await exporter.close()
    first = by_name(collector.requests[0].metrics())["jobs"].sum.data_points
    second = by_name(collector.requests[1].metrics())["jobs"].sum.data_points
    assert [(p.start_time_unix_nano, p.time_unix_nano) for p in [*first, *second]] == [
        (100 * NS, 100 * NS),
        (100 * NS, 160 * NS),
        (160 * NS + 1, 220 * NS),  # counted again since just after the last point before
        (160 * NS + 1, 280 * NS),  # the next batch remembers it
    ]


async def test_a_reset_across_the_exporters_creation_starts_at_the_creation(
    collector: FakeCollector,
) -> None:
    exporter = OTLPExporter(endpoint=collector.url)
    now = time.time()
    await exporter.export_metrics(
        aiter_of(
            [
                sample("jobs_total", 50, now - 600, "counter"),  # the previous run
                sample("jobs_total", 1, now + 1, "counter"),  # this one, counting from zero
            ]
        )
    )
    await exporter.close()
    old, new = by_name(collector.requests[0].metrics())["jobs"].sum.data_points
    assert old.start_time_unix_nano == old.time_unix_nano
    since_old = (new.start_time_unix_nano - old.time_unix_nano) / NS
    assert 590 < since_old < 610  # the exporter's creation, between the two points


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_a_histogram_split_between_batches_is_sent_whole(
    collector: FakeCollector, encoding: str
) -> None:
    registry = Registry()
    histogram = registry.histogram("size_bytes", buckets=(10.0, 100.0, 1000.0))
    for size in (5, 50, 50, 500, 5000):
        histogram.observe(size)
    samples = registry.snapshot(timestamp=time.time())
    assert [s.name for s in samples][:2] == ["size_bytes_bucket", "size_bytes_bucket"]
    exporter = OTLPExporter(endpoint=collector.url, encoding=encoding)  # type: ignore[arg-type]
    await exporter.export_metrics(aiter_of(samples[:2]))  # the batch ends after two buckets
    assert collector.requests == []  # nothing complete to send yet
    await exporter.export_metrics(aiter_of(samples[2:]))
    await exporter.close()
    [request] = collector.requests
    [point] = by_name(request.metrics())["size_bytes"].histogram.data_points
    assert list(point.explicit_bounds) == [10.0, 100.0, 1000.0]
    assert list(point.bucket_counts) == [1, 2, 1, 1]
    assert (point.count, point.sum) == (5, 5605.0)


async def test_an_incomplete_histogram_waits_one_batch_only(collector: FakeCollector) -> None:
    exporter = OTLPExporter(endpoint=collector.url)
    now = time.time()
    await exporter.export_metrics(
        aiter_of(
            [
                sample("size_bytes_bucket", 1, now, "histogram", le="10.0"),
                sample("size_bytes_bucket", 3, now, "histogram", le="+Inf"),
            ]
        )
    )
    await exporter.export_metrics(aiter_of([sample("up", 1, now, "gauge")]))
    await exporter.close()
    [request] = collector.requests
    metrics = by_name(request.metrics())
    [point] = metrics["size_bytes"].histogram.data_points
    # Its _count never came: the +Inf bucket says how many observations there were.
    assert (point.count, list(point.bucket_counts), point.HasField("sum")) == (3, [1, 2], False)
    assert metrics["up"].gauge.data_points[0].as_double == 1.0


async def test_a_failed_batch_sent_again_is_the_same_request(collector: FakeCollector) -> None:
    collector.answer(Answer(status=503))
    exporter = OTLPExporter(endpoint=collector.url)
    batch = [
        sample("jobs_total", 5, 100.0, "counter"),
        sample("jobs_total", 2, 160.0, "counter"),
        sample("wait_bucket", 1, 160.0, "histogram", le="+Inf"),
    ]
    with pytest.raises(RetryableExportError):
        await exporter.export_metrics(aiter_of(batch))
    await exporter.export_metrics(aiter_of(batch))
    await exporter.close()
    failed, delivered = (request.metrics() for request in collector.requests)
    # Start times are remembered only once delivered: the retry is not taken for a reset.
    assert failed == delivered
