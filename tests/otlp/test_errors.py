"""How the collector's answers and failures become the runtime's retry-or-drop decision."""

from __future__ import annotations

import json
import logging
import socket
from typing import TYPE_CHECKING

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)

from observabilipy.core.export import PermanentExportError, RetryableExportError
from observabilipy.core.models import LogEntry, MetricSample
from observabilipy.otlp import OTLPExporter

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.otlp._otlp_support import Answer, FakeCollector, aiter_of
else:
    from _otlp_support import Answer, FakeCollector, aiter_of

ENTRIES = [LogEntry(timestamp=1.0 + n, level="INFO", message=f"m{n}") for n in range(5)]
SAMPLES = [MetricSample(name="up", timestamp=1.0, value=1.0, kind="gauge")]


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"), [(429, "7", 7.0), (503, "2", 2.0), (502, None, None)]
)
async def test_overload_and_outage_answers_are_retryable(
    collector: FakeCollector, status: int, retry_after: str | None, expected: float | None
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    collector.answer(Answer(status=status, body=b"", headers=headers))
    exporter = OTLPExporter(endpoint=collector.url)
    with pytest.raises(RetryableExportError) as caught:
        await exporter.export_logs(aiter_of(ENTRIES))
    await exporter.close()
    assert caught.value.status == status
    assert caught.value.retry_after == expected


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
async def test_a_400_is_permanent_and_carries_the_collectors_reason(
    collector: FakeCollector, encoding: str
) -> None:
    # A collector answers a failure with a google.rpc.Status in the request's encoding.
    if encoding == "json":
        status_body = json.dumps({"code": 3, "message": "timestamp out of range"}).encode()
        content_type = "application/json"
    else:
        message = b"timestamp out of range"
        status_body = bytes([0x08, 0x03, 0x12, len(message)]) + message
        content_type = "application/x-protobuf"
    collector.answer(Answer(status=400, body=status_body, headers={"Content-Type": content_type}))
    exporter = OTLPExporter(endpoint=collector.url, encoding=encoding)  # type: ignore[arg-type]
    with pytest.raises(PermanentExportError, match="timestamp out of range") as caught:
        await exporter.export_logs(aiter_of(ENTRIES))
    await exporter.close()
    assert caught.value.status == 400
    assert "/v1/logs" in str(caught.value)


async def test_connection_refused_is_retryable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exporter = OTLPExporter(endpoint=f"http://127.0.0.1:{port}")
    with pytest.raises(RetryableExportError, match="ConnectError"):
        await exporter.export_logs(aiter_of(ENTRIES))
    await exporter.close()


async def test_a_slow_collector_hits_the_timeout_and_is_retryable(
    collector: FakeCollector,
) -> None:
    collector.answer(Answer(delay=5.0))
    exporter = OTLPExporter(endpoint=collector.url, timeout=1.0)
    with pytest.raises(RetryableExportError, match=r"no answer within 1 s"):
        await exporter.export_logs(aiter_of(ENTRIES))
    # The next attempt, to a collector that answers in time, delivers.
    await exporter.export_logs(aiter_of(ENTRIES))
    await exporter.close()
    assert len(collector.requests) == 2


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html>Welcome to the proxy</html>", "text/html"),
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
    ],
)
async def test_an_answer_that_is_not_otlp_is_retryable(
    collector: FakeCollector, body: bytes, content_type: str
) -> None:
    collector.answer(Answer(body=body, headers={"Content-Type": content_type}))
    exporter = OTLPExporter(endpoint=collector.url)
    with pytest.raises(RetryableExportError, match="not an OTLP response"):
        await exporter.export_logs(aiter_of(ENTRIES))
    await exporter.close()


async def test_a_protobuf_answer_that_is_not_a_response_is_retryable(
    collector: FakeCollector,
) -> None:
    collector.answer(
        Answer(body=b"\xff\xff\xff", headers={"Content-Type": "application/x-protobuf"})
    )
    exporter = OTLPExporter(endpoint=collector.url, encoding="protobuf")
    with pytest.raises(RetryableExportError, match="not an OTLP response"):
        await exporter.export_logs(aiter_of(ENTRIES))
    await exporter.close()


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
async def test_a_partial_success_is_counted_and_logged_not_retried(
    collector: FakeCollector, encoding: str, caplog: pytest.LogCaptureFixture
) -> None:
    logs_answer = ExportLogsServiceResponse()
    logs_answer.partial_success.rejected_log_records = 2
    logs_answer.partial_success.error_message = "2 records too old"
    metrics_answer = ExportMetricsServiceResponse()
    metrics_answer.partial_success.rejected_data_points = 1
    answers = []
    for message in (logs_answer, metrics_answer):
        if encoding == "json":
            body = json_format.MessageToJson(message).encode()
            content_type = "application/json"
        else:
            body, content_type = message.SerializeToString(), "application/x-protobuf"
        answers.append(Answer(body=body, headers={"Content-Type": content_type}))
    collector.answer(*answers)
    exporter = OTLPExporter(endpoint=collector.url, encoding=encoding)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="observabilipy.otlp"):
        await exporter.export_logs(aiter_of(ENTRIES))
        await exporter.export_metrics(aiter_of(SAMPLES))
    await exporter.close()
    assert (exporter.rejected_log_records, exporter.rejected_data_points) == (2, 1)
    assert len(collector.requests) == 2  # nothing sent again
    messages = [record.getMessage() for record in caplog.records]
    assert any("rejected 2 of 5 log records: 2 records too old" in m for m in messages)
    assert any("rejected 1 of 1 data points" in m for m in messages)


async def test_a_client_passed_in_is_used_and_left_open(collector: FakeCollector) -> None:
    async with httpx.AsyncClient(headers={"X-Proxy-Auth": "yes"}) as client:
        exporter = OTLPExporter(endpoint=collector.url, client=client)
        await exporter.export_logs(aiter_of(ENTRIES))
        await exporter.close()
        await exporter.close()
        assert not client.is_closed
    assert collector.requests[0].headers["x-proxy-auth"] == "yes"


async def test_close_then_export_again_works(collector: FakeCollector) -> None:
    exporter = OTLPExporter(endpoint=collector.url)
    await exporter.close()  # never used: nothing to close
    await exporter.export_logs(aiter_of(ENTRIES))
    await exporter.close()
    await exporter.export_logs(aiter_of(ENTRIES))
    await exporter.close()
    assert len(collector.requests) == 2


async def test_a_signal_not_chosen_is_refused_for_good(collector: FakeCollector) -> None:
    exporter = OTLPExporter(endpoint=collector.url, signals=["logs"])
    assert (exporter.signals, exporter.metrics_url) == (frozenset({"logs"}), None)
    with pytest.raises(PermanentExportError, match="add it to signals="):
        await exporter.export_metrics(aiter_of(SAMPLES))
    await exporter.close()
    assert collector.requests == []
