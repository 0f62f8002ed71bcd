"""The OTEL_* environment variables, as the OTLP exporter specification defines them."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.export import RetryableExportError
from observabilipy.core.models import LogEntry, MetricSample
from observabilipy.otlp import OTLPExporter

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.otlp._otlp_support import Answer, FakeCollector, aiter_of, attributes
else:
    from _otlp_support import Answer, FakeCollector, aiter_of, attributes

ENTRY = LogEntry(timestamp=1.0, level="INFO", message="configured")
SAMPLE = MetricSample(name="up", timestamp=1.0, value=1.0, kind="gauge")


async def test_every_setting_from_the_environment_reaches_the_wire(
    collector: FakeCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url + "/base")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%3Db%2Cc, x-tenant = blue")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=pay%20ments,service.name=overridden")
    exporter = OTLPExporter()
    await exporter.export_logs(aiter_of([ENTRY]))
    await exporter.export_metrics(aiter_of([SAMPLE]))
    await exporter.close()
    logs, metrics = collector.requests
    assert (logs.path, metrics.path) == ("/base/v1/logs", "/base/v1/metrics")
    for request in (logs, metrics):
        assert request.headers["api-key"] == "a=b,c"  # URL-decoded after the split
        assert request.headers["x-tenant"] == "blue"
        assert request.headers["content-encoding"] == "gzip"
        assert request.content_type == "application/x-protobuf"
    resource = attributes(logs.logs().resource_logs[0].resource.attributes)
    # OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES.
    assert resource["service.name"] == ("string_value", "billing")
    assert resource["team"] == ("string_value", "pay ments")
    assert metrics.metrics().resource_metrics[0].scope_metrics[0].metrics[0].name == "up"


async def test_per_signal_variables_win_and_their_endpoints_are_used_as_is(
    collector: FakeCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # nothing there
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", collector.url + "/custom/logs")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", collector.url + "/m")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "who=generic")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "who=logs")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1500")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "250")
    exporter = OTLPExporter()
    collector.answer(Answer(delay=0.3), Answer(delay=1.0))
    await exporter.export_logs(aiter_of([ENTRY]))  # within its 1.5 s
    with pytest.raises(RetryableExportError, match=r"no answer within 0\.25 s"):
        await exporter.export_metrics(aiter_of([SAMPLE]))
    await exporter.close()
    logs, metrics = collector.requests
    assert (logs.path, metrics.path) == ("/custom/logs", "/m")
    assert (logs.headers["who"], metrics.headers["who"]) == ("logs", "generic")
    assert (logs.content_type, metrics.content_type) == (
        "application/x-protobuf",
        "application/json",
    )
    assert logs.logs().resource_logs[0].scope_logs[0].log_records[0].body.string_value == (
        "configured"
    )
    assert metrics.metrics().resource_metrics[0].scope_metrics[0].metrics[0].name == "up"


async def test_explicit_arguments_win_over_the_environment(
    collector: FakeCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://127.0.0.1:9/v1/logs")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "who=environment")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "region=eu,zone=a")
    exporter = OTLPExporter(
        endpoint=collector.url,
        encoding="json",
        headers={"who": "argument"},
        compression="none",
        timeout=4,
        service_name="from-argument",
        resource_attributes={"zone": "b"},
    )
    collector.answer(Answer(delay=0.2))  # far beyond the environment's 1 ms
    await exporter.export_logs(aiter_of([ENTRY]))
    await exporter.close()
    [request] = collector.requests
    assert request.path == "/v1/logs"
    assert request.headers["who"] == "argument"
    assert request.content_type == "application/json"
    assert "content-encoding" not in request.headers
    resource = attributes(request.logs().resource_logs[0].resource.attributes)
    assert resource["service.name"] == ("string_value", "from-argument")
    # Resource attributes merge: the environment's, with the argument's on top.
    assert (resource["region"], resource["zone"]) == (("string_value", "eu"), ("string_value", "b"))


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "ftp://x", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "novalue", "OTEL_EXPORTER_OTLP_HEADERS"),
        ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "=x", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "ten", "OTEL_EXPORTER_OTLP_TIMEOUT"),
        ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "-5", "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "OTEL_EXPORTER_OTLP_COMPRESSION"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ("OTEL_RESOURCE_ATTRIBUTES", "a=1,broken", "OTEL_RESOURCE_ATTRIBUTES"),
    ],
)
def test_a_bad_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=f"^{named}: "):
        OTLPExporter()


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"endpoint": "localhost:4318"}, "endpoint"),
        ({"encoding": "xml"}, "encoding"),
        ({"compression": "br"}, "compression"),
        ({"timeout": 0}, "timeout"),
        ({"headers": {"x": 1}}, "headers"),
        ({"service_name": ""}, "service_name"),
        ({"resource_attributes": {"tags": ["a"]}}, "resource_attributes"),
        ({"name": ""}, "name"),
        ({"signals": ["traces"]}, "signals"),
        ({"client": object()}, "client"),
    ],
)
def test_a_bad_argument_is_named(arguments: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^{named}"):
        OTLPExporter(**arguments)  # type: ignore[arg-type]


def test_protobuf_without_the_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if opentelemetry-proto were not installed: its import fails.
    monkeypatch.setitem(sys.modules, "opentelemetry.proto.collector.logs.v1.logs_service_pb2", None)
    monkeypatch.delitem(sys.modules, "observabilipy.otlp._protobuf", raising=False)
    with pytest.raises(ImportError, match=r'pip install "observabilipy-otlp\[proto\]"'):
        OTLPExporter(encoding="protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    with pytest.raises(ImportError, match=r'pip install "observabilipy-otlp\[proto\]"'):
        OTLPExporter()
    # JSON needs nothing more.
    assert OTLPExporter(encoding="json").logs_url == "http://localhost:4318/v1/logs"
