"""HTTPJSONExporter posting to a loopback HTTP server: bodies parse and equal what was exported.

The wire format is the HTTP API's own (GET /logs NDJSON, GET /logs/json document),
so the tests compare the bytes received with core's encoders and the parsed items
with the exported entries and samples.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from observabilipy.core.encoding import (
    encode_logs_ndjson,
    encode_metrics_ndjson,
    log_entry_to_dict,
    metric_sample_to_dict,
)
from observabilipy.core.errors import ConfigurationError
from observabilipy.core.export import PermanentExportError, RetryableExportError
from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry, MetricSample
from observabilipy.exporters import SIGNAL_HEADER, HTTPJSONExporter

if TYPE_CHECKING:
    from tests.exporters._exporters_support import Answer, Receiver, Request
else:
    from _exporters_support import Answer, Receiver, Request

T = TypeVar("T")
T0 = 1_700_000_000.0


async def batch(items: Iterable[T]) -> AsyncIterator[T]:
    """What the runtime hands an exporter: an async iterable read from storage."""
    for item in items:
        yield item


def body_of(request: Request) -> bytes:
    if request.headers.get("content-encoding") == "gzip":
        return gzip.decompress(request.body)
    return request.body


@pytest.fixture
def sink() -> Iterator[Receiver]:
    with Receiver(lambda request: Answer(202)) as server:
        yield server


def log_batch() -> list[LogEntry]:
    return [
        LogEntry(
            timestamp=T0 + n,
            level=level,
            message=f"event {n}: ünïcode ✓",
            attributes={"n": n, "ok": n % 2 == 0, "ratio": 0.5},
        ).with_id(n + 1)
        for n, level in enumerate(["info", "warn", "error"])
    ]


def metric_batch() -> list[MetricSample]:
    registry = Registry()
    registry.counter("jobs", "Jobs.", labelnames=("queue",)).labels(queue="mail").inc(3)
    registry.gauge("ratio", "A ratio.").set(math.nan)
    registry.histogram("latency_seconds", "Latency.", buckets=(0.1, 1.0)).observe(0.3)
    return [sample.with_id(n) for n, sample in enumerate(registry.snapshot(timestamp=T0), start=1)]


async def test_ndjson_logs_equal_what_get_logs_serves_and_parse_to_the_entries(
    sink: Receiver,
) -> None:
    entries = log_batch()
    exporter = HTTPJSONExporter(url=sink.url("/ingest/{signal}"))
    await exporter.export_logs(batch(entries))
    await exporter.close()

    [request] = sink.requests
    assert (request.method, request.path) == ("POST", "/ingest/logs")
    assert request.headers["content-type"] == "application/x-ndjson"
    assert request.headers[SIGNAL_HEADER.lower()] == "logs"
    assert request.body == b"".join(encode_logs_ndjson(entries))
    rows = [json.loads(line) for line in request.body.decode().splitlines()]
    assert rows == [log_entry_to_dict(entry) for entry in entries]


async def test_json_metrics_document_holds_every_sample_count_and_cursor(sink: Receiver) -> None:
    samples = metric_batch()
    exporter = HTTPJSONExporter(url=sink.url("/ingest/{signal}"), body="json", gzip=True)
    await exporter.export_metrics(batch(samples))
    await exporter.close()

    [request] = sink.requests
    assert request.path == "/ingest/metrics"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-encoding"] == "gzip"
    document = json.loads(body_of(request))
    assert document["items"] == [metric_sample_to_dict(sample) for sample in samples]
    assert (document["count"], document["next_after"]) == (len(samples), samples[-1].id)
    assert {"jobs_total", "ratio", "latency_seconds_bucket"} <= {
        item["name"] for item in document["items"]
    }


async def test_without_a_placeholder_both_signals_share_the_url_and_the_header_tells_them_apart(
    sink: Receiver,
) -> None:
    exporter = HTTPJSONExporter(url=sink.url("/events"), bearer_token="s3cret")
    await exporter.export_logs(batch(log_batch()))
    await exporter.export_metrics(batch(metric_batch()))
    await exporter.close()

    assert [(r.path, r.headers[SIGNAL_HEADER.lower()]) for r in sink.requests] == [
        ("/events", "logs"),
        ("/events", "metrics"),
    ]
    assert {r.headers["authorization"] for r in sink.requests} == {"Bearer s3cret"}
    assert sink.requests[1].body == b"".join(encode_metrics_ndjson(metric_batch()))


async def test_an_empty_batch_posts_nothing(sink: Receiver) -> None:
    exporter = HTTPJSONExporter(url=sink.url(), body="json")
    await exporter.export_logs(batch([]))
    await exporter.export_metrics(batch([]))
    await exporter.close()
    assert sink.requests == []


async def test_a_signal_not_configured_is_refused() -> None:
    exporter = HTTPJSONExporter(url="http://sink:8080/metrics", signals=("metrics",))
    assert exporter.signals == frozenset({"metrics"})
    with pytest.raises(PermanentExportError, match="sends metrics only, not logs"):
        await exporter.export_logs(batch(log_batch()))


@pytest.mark.parametrize(
    ("answer", "error", "retry_after"),
    [
        (Answer(503, {"Retry-After": "12"}, b"overloaded"), RetryableExportError, 12.0),
        (Answer(500, body=b"boom"), RetryableExportError, None),
        (Answer(401, body=b"bad token"), RetryableExportError, None),
        (Answer(413, body=b"too large"), PermanentExportError, None),
    ],
)
async def test_answers_are_classified_like_every_exporter(
    answer: Answer, error: type[Exception], retry_after: float | None
) -> None:
    with Receiver(lambda request: answer) as server:
        exporter = HTTPJSONExporter(url=server.url())
        with pytest.raises(error) as caught:
            await exporter.export_logs(batch(log_batch()))
        await exporter.close()
    assert caught.value.status == answer.status  # type: ignore[attr-defined]
    assert answer.body.decode() in str(caught.value)
    assert getattr(caught.value, "retry_after", None) == retry_after


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"url": "ftp://sink/in"}, "url"),
        ({"url": "http:///{signal}"}, "url"),
        ({"body": "xml"}, "body"),
        ({"signals": ()}, "signals"),
        ({"signals": "logs"}, "signals"),
        ({"headers": {"X-Bad": "a\nb"}}, "headers['X-Bad']"),
        ({"headers": {"Authorization": "Basic x"}, "bearer_token": "t"}, "headers"),
        ({"client": object()}, "client"),
        ({"timeout": float("inf")}, "timeout"),
    ],
)
def test_settings_are_checked_and_errors_name_the_argument(
    settings: dict[str, Any], field: str
) -> None:
    arguments: dict[str, Any] = {"url": "http://sink:8080/in"}
    with pytest.raises(ConfigurationError) as caught:
        HTTPJSONExporter(**{**arguments, **settings})
    assert str(caught.value).startswith(field + ":")
