"""Log entries reach the collector as ExportLogsServiceRequest, field by field, JSON and protobuf."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from observabilipy.core.models import AttributeValue, LogEntry
from observabilipy.otlp import OTLPExporter

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.otlp._otlp_support import FakeCollector, aiter_of, attributes
else:
    from _otlp_support import FakeCollector, aiter_of, attributes

ENCODINGS = ["json", "protobuf"]
CONTENT_TYPES = {"json": "application/json", "protobuf": "application/x-protobuf"}


def entry(
    message: str = "hello",
    level: str = "INFO",
    timestamp: float = 1700000000.25,
    **attrs: AttributeValue,
) -> LogEntry:
    """A LogEntry as storage hands it over (with an id)."""
    return LogEntry(timestamp=timestamp, level=level, message=message, attributes=attrs).with_id(1)


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_entries_arrive_field_by_field(collector: FakeCollector, encoding: str) -> None:
    exporter = OTLPExporter(
        endpoint=collector.url,
        encoding=encoding,  # type: ignore[arg-type]
        service_name="shop",
        resource_attributes={"deployment.environment": "test", "replica": 3, "canary": True},
    )
    entries = [
        entry("payment accepted", "INFO", 1700000000.123456, request_id="r-1", amount=12.5),
        entry("retrying", "warn", 1700000001.5, attempt=2, cached=False, note=None),
        entry('débit refusé "quoted"\nsecond line 🚀', "ERROR", 1700000002.0),
        entry("verbose", "DEBUG", 1700000003.0),
        entry("disk gone", "CRITICAL", 1700000004.0, huge=2**70),
    ]
    await exporter.export_logs(aiter_of(entries))
    await exporter.close()

    [request] = collector.requests
    assert request.path == "/v1/logs"
    assert request.content_type == CONTENT_TYPES[encoding]
    assert request.headers["user-agent"].startswith("observabilipy-otlp/")
    decoded = request.logs()
    [resource_logs] = decoded.resource_logs
    resource = attributes(resource_logs.resource.attributes)
    assert resource["service.name"] == ("string_value", "shop")
    assert resource["deployment.environment"] == ("string_value", "test")
    assert resource["replica"] == ("int_value", 3)
    assert resource["canary"] == ("bool_value", True)
    assert resource["telemetry.sdk.name"] == ("string_value", "observabilipy")
    assert resource["telemetry.sdk.language"] == ("string_value", "python")
    assert resource["telemetry.sdk.version"][1]  # the installed version, whatever it is
    [scope_logs] = resource_logs.scope_logs
    assert scope_logs.scope.name == "observabilipy"
    records = scope_logs.log_records
    assert [r.body.string_value for r in records] == [e.message for e in entries]
    assert [r.time_unix_nano for r in records] == [
        1700000000123456000,
        1700000001500000000,
        1700000002000000000,
        1700000003000000000,
        1700000004000000000,
    ]
    assert [r.observed_time_unix_nano for r in records] == [r.time_unix_nano for r in records]
    assert [(r.severity_number, r.severity_text) for r in records] == [
        (9, "INFO"),
        (13, "WARNING"),
        (17, "ERROR"),
        (5, "DEBUG"),
        (21, "CRITICAL"),
    ]
    assert attributes(records[0].attributes) == {
        "request_id": ("string_value", "r-1"),
        "amount": ("double_value", 12.5),
    }
    # bool is not an int; None is the empty AnyValue.
    assert attributes(records[1].attributes) == {
        "attempt": ("int_value", 2),
        "cached": ("bool_value", False),
        "note": (None, None),
    }
    assert list(records[2].attributes) == []
    # Beyond int64, the number is kept whole as text rather than wrapped or refused.
    assert attributes(records[4].attributes) == {"huge": ("string_value", str(2**70))}
    assert (records[0].trace_id, records[0].span_id) == (b"", b"")


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_trace_context_goes_in_the_record_ids(
    collector: FakeCollector, encoding: str
) -> None:
    exporter = OTLPExporter(endpoint=collector.url, encoding=encoding)  # type: ignore[arg-type]
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    await exporter.export_logs(
        aiter_of(
            [
                entry("traced", trace_id=trace_id, span_id=span_id, user="ada"),
                entry("malformed", trace_id="xyz", span_id=span_id),
            ]
        )
    )
    await exporter.close()
    traced, malformed = collector.requests[0].logs().resource_logs[0].scope_logs[0].log_records
    assert (traced.trace_id.hex(), traced.span_id.hex()) == (trace_id, span_id)
    assert attributes(traced.attributes) == {"user": ("string_value", "ada")}
    # An id that is not valid hex stays an ordinary attribute; the valid one is used.
    assert (malformed.trace_id, malformed.span_id.hex()) == (b"", span_id)
    assert attributes(malformed.attributes) == {"trace_id": ("string_value", "xyz")}


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_gzip_bodies_are_marked_and_decompress(
    collector: FakeCollector, encoding: str
) -> None:
    exporter = OTLPExporter(
        endpoint=collector.url,
        encoding=encoding,  # type: ignore[arg-type]
        compression="gzip",
    )
    await exporter.export_logs(aiter_of([entry(f"line {n}", n=n) for n in range(200)]))
    await exporter.close()
    [request] = collector.requests
    assert request.headers["content-encoding"] == "gzip"
    assert len(request.raw) < len(request.body) / 5  # repetitive log lines compress well
    records = request.logs().resource_logs[0].scope_logs[0].log_records
    assert [r.body.string_value for r in records] == [f"line {n}" for n in range(200)]


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_a_large_batch_is_one_request(collector: FakeCollector, encoding: str) -> None:
    exporter = OTLPExporter(endpoint=collector.url, encoding=encoding)  # type: ignore[arg-type]
    batch = [entry(f"event {n}", timestamp=1700000000.0 + n / 1000, n=n) for n in range(20_000)]
    await exporter.export_logs(aiter_of(batch))
    await exporter.close()
    [request] = collector.requests
    records = request.logs().resource_logs[0].scope_logs[0].log_records
    assert len(records) == 20_000
    assert [r.attributes[0].value.int_value for r in records] == list(range(20_000))
    assert records[-1].time_unix_nano == 1700000019999000000


async def test_an_empty_batch_sends_nothing(collector: FakeCollector) -> None:
    exporter = OTLPExporter(endpoint=collector.url)
    await exporter.export_logs(aiter_of([]))
    await exporter.export_metrics(aiter_of([]))
    await exporter.close()
    assert collector.requests == []


async def test_headers_are_sent_and_ours_set_the_content_type(collector: FakeCollector) -> None:
    exporter = OTLPExporter(
        endpoint=collector.url,
        headers={"Authorization": "Bearer s3cret", "Content-Type": "text/plain"},
    )
    await exporter.export_logs(aiter_of([entry()]))
    await exporter.close()
    [request] = collector.requests
    assert request.headers["authorization"] == "Bearer s3cret"
    assert request.content_type == "application/json"


async def test_an_endpoint_with_a_path_keeps_it(collector: FakeCollector) -> None:
    exporter = OTLPExporter(endpoint=collector.url + "/tenant-a/", signals=["logs"])
    await exporter.export_logs(aiter_of([entry()]))
    await exporter.close()
    assert [r.path for r in collector.requests] == ["/tenant-a/v1/logs"]


async def test_a_lone_surrogate_is_replaced_not_fatal(collector: FakeCollector) -> None:
    # Undecodable bytes read with surrogateescape end up in messages; JSON cannot carry them.
    message = b"caf\xe9".decode("utf-8", "surrogateescape")
    exporter = OTLPExporter(endpoint=collector.url)
    await exporter.export_logs(aiter_of([entry(message)]))
    await exporter.close()
    record = collector.requests[0].logs().resource_logs[0].scope_logs[0].log_records[0]
    assert record.body.string_value == "caf?"


def test_the_default_service_name_follows_the_semantic_conventions() -> None:
    exporter = OTLPExporter()
    executable = sys.executable.rsplit("/", 1)[-1]
    assert exporter.resource["service.name"] == f"unknown_service:{executable}"
    assert exporter.logs_url == "http://localhost:4318/v1/logs"
