"""OTLPExporter under the real runtime: a collector outage loses nothing and repeats nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from observabilipy.core import EmbeddedRuntime, InMemoryLogStorage, InMemoryMetricsStorage
from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry
from observabilipy.otlp import OTLPExporter

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.otlp._otlp_support import Answer, FakeCollector
else:
    from _otlp_support import Answer, FakeCollector


def test_a_collector_outage_then_recovery_delivers_every_entry_once(
    collector: FakeCollector,
) -> None:
    logs = InMemoryLogStorage()
    logs.write_many_sync(
        [
            LogEntry(timestamp=1700000000.0 + n, level="INFO", message=f"event {n}")
            for n in range(2500)
        ]
    )
    registry = Registry()
    histogram = registry.histogram("wait_seconds", "Wait.", buckets=(0.5, 1.0, 2.0))
    for n in range(40):
        registry.counter("jobs", "Jobs.", labelnames=("queue",)).labels(queue=f"q{n}").inc(n)
        histogram.observe(n / 10)
    metrics = InMemoryMetricsStorage()
    exporter = OTLPExporter(endpoint=collector.url, encoding="protobuf")
    runtime = EmbeddedRuntime(
        log_storage=logs,
        metrics_storage=metrics,
        registry=registry,
        exporters=[exporter],
        export_batch_size=1000,
    )
    runtime.snapshot_now()
    # Down: the collector answers 503 to the first three requests, whatever they carry.
    collector.answer(*(Answer(status=503, headers={"Retry-After": "1"}) for _ in range(3)))
    for _ in range(10):
        runtime.export_now()
        if runtime.status()["exporters"]["otlp"]["backlog"] == 0:
            break
    runtime.stop()

    delivered = [r for r in collector.requests if r.status == 200]
    assert len(collector.requests) - len(delivered) == 3
    messages = [
        record.body.string_value
        for request in delivered
        if request.path == "/v1/logs"
        for rl in request.logs().resource_logs
        for sl in rl.scope_logs
        for record in sl.log_records
    ]
    assert messages == [f"event {n}" for n in range(2500)]  # each once, in order
    # The last values the collector holds for each series are the registry's.
    last: dict[tuple[str, str], float] = {}
    for request in delivered:
        if request.path != "/v1/metrics":
            continue
        for rm in request.metrics().resource_metrics:
            for metric in rm.scope_metrics[0].metrics:
                if metric.name == "jobs":
                    for point in metric.sum.data_points:
                        last[("jobs", point.attributes[0].value.string_value)] = point.as_double
                elif metric.name == "wait_seconds":
                    [bucketed] = metric.histogram.data_points
                    last[("wait_seconds", "count")] = bucketed.count
                    last[("wait_seconds", "<=0.5")] = bucketed.bucket_counts[0]
    assert {k: v for k, v in last.items() if k[0] == "jobs"} == {
        ("jobs", f"q{n}"): float(n) for n in range(40)
    }
    assert (last[("wait_seconds", "count")], last[("wait_seconds", "<=0.5")]) == (40, 6)
