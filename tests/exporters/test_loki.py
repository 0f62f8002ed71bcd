"""LokiExporter against a loopback server that checks each request as Loki's push API documents it.

No Loki binary runs here, so the receiver validates what Loki would: ``POST
/loki/api/v1/push``, ``Content-Type: application/json``, a gzip body when
``Content-Encoding`` says so, ``{"streams": [{"stream": {label: value}, "values":
[[ns, line], [ns, line, {metadata}]]}]}`` with string label names Loki accepts,
string nanosecond timestamps, entries ordered by time within each stream, and
string-to-string structured metadata.  It answers 204 as Loki does, or 400 with
the problem, which fails the test.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.export import ExporterPort, PermanentExportError, RetryableExportError
from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry, MetricSample
from observabilipy.core.runtime import EmbeddedRuntime
from observabilipy.core.storage import InMemoryLogStorage
from observabilipy.exporters import LokiExporter

if TYPE_CHECKING:
    from tests.exporters._exporters_support import Answer, Receiver, Request, free_port
else:
    from _exporters_support import Answer, Receiver, Request, free_port

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
T0 = 1_700_000_000.0


def loki_problems(request: Request, *, tenant: str | None = None) -> list[str]:
    """What Loki would refuse in this push request (empty: it is valid)."""
    problems: list[str] = []
    if request.method != "POST" or request.path != "/loki/api/v1/push":
        problems.append(f"expected POST /loki/api/v1/push, got {request.method} {request.path}")
    if request.headers.get("content-type", "").split(";")[0] != "application/json":
        problems.append(f"content-type {request.headers.get('content-type')!r}")
    if tenant is not None and request.headers.get("x-scope-orgid") != tenant:
        problems.append(f"X-Scope-OrgID {request.headers.get('x-scope-orgid')!r}")
    body = request.body
    if request.headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    try:
        document = json.loads(body)
    except ValueError as exc:
        return [*problems, f"body is not JSON: {exc}"]
    streams = document.get("streams") if isinstance(document, dict) else None
    if not isinstance(streams, list) or not streams:
        return [*problems, "body must be {'streams': [...]} with at least one stream"]
    for stream in streams:
        labels = stream.get("stream")
        if not isinstance(labels, dict) or not labels:
            problems.append(f"stream labels must be a non-empty object, got {labels!r}")
            continue
        for name, value in labels.items():
            if not LABEL_NAME.match(name) or name.startswith("__"):
                problems.append(f"invalid label name {name!r}")
            if not isinstance(value, str) or not value:
                problems.append(f"label {name!r} value must be a non-empty string, got {value!r}")
        previous = -1
        for value in stream.get("values", []):
            if not isinstance(value, list) or len(value) not in (2, 3):
                problems.append(f"a value must be [ts, line] or [ts, line, metadata]: {value!r}")
                continue
            stamp, line = value[0], value[1]
            if not isinstance(stamp, str) or not stamp.isdigit():
                problems.append(f"timestamp must be a string of nanoseconds, got {stamp!r}")
                continue
            if int(stamp) < previous:
                problems.append(f"entries out of order in stream {labels}: {stamp} < {previous}")
            previous = int(stamp)
            if not isinstance(line, str):
                problems.append(f"line must be a string, got {line!r}")
            if len(value) == 3:
                metadata = value[2]
                if not isinstance(metadata, dict) or not all(
                    isinstance(k, str) and LABEL_NAME.match(k) and isinstance(v, str)
                    for k, v in metadata.items()
                ):
                    problems.append(f"structured metadata must map names to strings: {metadata!r}")
    return problems


class FakeLoki(Receiver):
    """A receiver that answers like Loki: 204 for a valid push, 400 naming the problem."""

    def __init__(self, *, tenant: str | None = None) -> None:
        self.problems: list[str] = []
        self.answers: list[Answer] = []  # answers to give first, in order, before the checks
        self.accepted: list[Request] = []

        def respond(request: Request) -> Answer:
            if self.answers:
                return self.answers.pop(0)
            problems = loki_problems(request, tenant=tenant)
            self.problems.extend(problems)
            if problems:
                return Answer(400, body="; ".join(problems).encode())
            self.accepted.append(request)
            return Answer(204)

        super().__init__(respond)

    def pushed(self) -> list[dict[str, Any]]:
        """Every stream of every push accepted (answered 204), decoded."""
        streams: list[dict[str, Any]] = []
        for request in self.accepted:
            body = request.body
            if request.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            streams.extend(json.loads(body)["streams"])
        return streams


@pytest.fixture
def loki() -> Iterator[FakeLoki]:
    with FakeLoki() as server:
        yield server
    assert server.problems == []


async def batch(entries: Iterable[LogEntry]) -> AsyncIterator[LogEntry]:
    """What the runtime hands an exporter: an async iterable of stored entries."""
    for entry in entries:
        yield entry


def stored(*entries: LogEntry) -> list[LogEntry]:
    """Entries as storage returns them: with increasing ids."""
    return [entry.with_id(index) for index, entry in enumerate(entries, start=1)]


def ns(seconds: float) -> str:
    return str(round(seconds * 1_000_000) * 1000)


async def test_a_batch_becomes_streams_per_level_with_metadata_and_nanosecond_strings(
    loki: FakeLoki,
) -> None:
    exporter = LokiExporter(url=loki.url(), labels={"service": "shop", "env": "test"})
    entries = stored(
        LogEntry(timestamp=T0 + 0.2, level="info", message="order placed", attributes={"order": 7}),
        LogEntry(timestamp=T0 + 0.1, level="warn", message="stock low", attributes={"sku": "A1"}),
        LogEntry(timestamp=T0 + 0.1, level="info", message="cart opened"),
    )
    await exporter.export_logs(batch(entries))
    await exporter.close()

    [request] = loki.requests
    assert request.headers["content-encoding"] == "gzip"
    streams = {stream["stream"]["level"]: stream for stream in loki.pushed()}
    assert streams["INFO"]["stream"] == {"service": "shop", "env": "test", "level": "INFO"}
    # Ordered by time within the stream, although the batch had them in id order.
    assert streams["INFO"]["values"] == [
        [ns(T0 + 0.1), "cart opened"],
        [ns(T0 + 0.2), "order placed", {"order": "7"}],
    ]
    assert streams["WARNING"]["values"] == [[ns(T0 + 0.1), "stock low", {"sku": "A1"}]]


async def test_label_attributes_promote_attributes_and_metadata_names_are_loki_names(
    loki: FakeLoki,
) -> None:
    exporter = LokiExporter(
        url=loki.url("/loki/api/v1/push"),
        labels={"service": "api"},
        label_attributes=("level", "region"),
    )
    entries = stored(
        LogEntry(
            timestamp=T0,
            level="error",
            message="timeout",
            attributes={"region": "eu", "http.route": "/pay", "retries": 2, "ok": False},
        ),
        LogEntry(timestamp=T0 + 1, level="error", message="no region"),
    )
    await exporter.export_logs(batch(entries))
    await exporter.close()

    labels = [stream["stream"] for stream in loki.pushed()]
    assert labels == [
        {"service": "api", "region": "eu", "level": "ERROR"},
        {"service": "api", "level": "ERROR"},  # the entry without the attribute: no label
    ]
    first = loki.pushed()[0]["values"][0]
    assert first[2] == {"http_route": "/pay", "retries": "2", "ok": "false"}


async def test_without_structured_metadata_attributes_are_folded_into_a_logfmt_line(
    loki: FakeLoki,
) -> None:
    exporter = LokiExporter(
        url=loki.url(), labels={"service": "api"}, structured_metadata=False, gzip=False
    )
    entries = stored(
        LogEntry(
            timestamp=T0,
            level="info",
            message='user "ada" logged in',
            attributes={"user": "ada", "path": "/a b"},
        ),
    )
    await exporter.export_logs(batch(entries))
    await exporter.close()

    [request] = loki.requests
    assert "content-encoding" not in request.headers
    [[_, line]] = loki.pushed()[0]["values"]
    assert line == 'msg="user \\"ada\\" logged in" user=ada path="/a b"'


async def test_entries_sharing_a_timestamp_stay_distinct_and_a_retry_sends_the_same_body(
    loki: FakeLoki,
) -> None:
    # Loki keeps one of several entries with equal timestamp and line: spread them 1 ns apart.
    exporter = LokiExporter(url=loki.url(), labels={"job": "poller"}, gzip=False)
    entries = stored(*[LogEntry(timestamp=T0, level="info", message="retry") for _ in range(3)])
    await exporter.export_logs(batch(entries))
    await exporter.export_logs(batch(entries))
    await exporter.close()

    first, second = loki.requests
    assert first.body == second.body
    stamps = [int(value[0]) for value in loki.pushed()[0]["values"]]
    base = int(ns(T0))
    assert stamps == [base, base + 1, base + 2]


async def test_tenant_and_basic_auth_headers() -> None:
    with FakeLoki(tenant="team-a") as loki:
        exporter = LokiExporter(
            url=loki.url(),
            labels={"service": "shop"},
            tenant_id="team-a",
            basic_auth=("12345", "glc_token"),
        )
        await exporter.export_logs(batch(stored(LogEntry(timestamp=T0, level="info", message="x"))))
        await exporter.close()
    assert loki.problems == []
    [request] = loki.requests
    scheme, _, credentials = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(credentials) == b"12345:glc_token"


async def test_bearer_token_header(loki: FakeLoki) -> None:
    exporter = LokiExporter(url=loki.url(), labels={"service": "shop"}, bearer_token="t0k3n")
    await exporter.export_logs(batch(stored(LogEntry(timestamp=T0, level="info", message="x"))))
    await exporter.close()
    assert loki.requests[0].headers["authorization"] == "Bearer t0k3n"


async def test_429_is_retryable_with_retry_after_and_the_retry_is_delivered(
    loki: FakeLoki,
) -> None:
    loki.answers.append(Answer(429, {"Retry-After": "3"}, b"Ingestion rate limit exceeded"))
    exporter = LokiExporter(url=loki.url(), labels={"service": "shop"})
    entries = stored(LogEntry(timestamp=T0, level="info", message="x"))
    with pytest.raises(RetryableExportError) as caught:
        await exporter.export_logs(batch(entries))
    assert (caught.value.status, caught.value.retry_after) == (429, 3.0)
    assert "Ingestion rate limit exceeded" in caught.value.reason
    await exporter.export_logs(batch(entries))
    await exporter.close()
    assert len(loki.pushed()) == 1


async def test_400_is_permanent_and_quotes_what_loki_said(loki: FakeLoki) -> None:
    loki.answers.append(Answer(400, body=b"entry for stream has timestamp too old"))
    exporter = LokiExporter(url=loki.url(), labels={"service": "shop"})
    with pytest.raises(PermanentExportError) as caught:
        await exporter.export_logs(
            batch(stored(LogEntry(timestamp=1.0, level="info", message="x")))
        )
    await exporter.close()
    assert caught.value.status == 400
    assert "timestamp too old" in str(caught.value)


async def test_5xx_is_retryable(loki: FakeLoki) -> None:
    loki.answers.append(Answer(503, body=b"ingester not ready"))
    exporter = LokiExporter(url=loki.url(), labels={"service": "shop"})
    with pytest.raises(RetryableExportError) as caught:
        await exporter.export_logs(batch(stored(LogEntry(timestamp=T0, level="info", message="x"))))
    await exporter.close()
    assert (caught.value.status, caught.value.retry_after) == (503, None)


async def test_unreachable_and_slow_loki_are_retryable_and_never_leak_httpx_errors() -> None:
    entries = stored(LogEntry(timestamp=T0, level="info", message="x"))
    down = LokiExporter(url=f"http://127.0.0.1:{free_port()}", labels={"service": "shop"})
    with pytest.raises(RetryableExportError, match="cannot reach"):
        await down.export_logs(batch(entries))
    await down.close()

    with FakeLoki() as slow:
        slow.answers.append(Answer(204, delay=1.0))
        exporter = LokiExporter(url=slow.url(), labels={"service": "shop"}, timeout=0.2)
        with pytest.raises(RetryableExportError, match=r"within 0\.2 s") as caught:
            await exporter.export_logs(batch(entries))
        await exporter.close()
    assert not isinstance(caught.value, httpx.HTTPError)


async def test_an_empty_batch_sends_nothing(loki: FakeLoki) -> None:
    exporter = LokiExporter(url=loki.url(), labels={"service": "shop"})
    await exporter.export_logs(batch([]))
    await exporter.close()
    assert loki.requests == []


async def test_metrics_are_refused_and_the_exporter_is_an_exporter_port() -> None:
    exporter = LokiExporter(url="http://loki:3100", labels={"service": "shop"})
    assert isinstance(exporter, ExporterPort)
    assert (exporter.name, exporter.signals) == ("loki", frozenset({"logs"}))

    async def samples() -> AsyncIterator[MetricSample]:
        yield MetricSample(name="up", timestamp=T0, value=1.0)

    with pytest.raises(PermanentExportError, match="sends logs only"):
        await exporter.export_metrics(samples())


async def test_a_borrowed_client_is_used_and_left_open(loki: FakeLoki) -> None:
    async with httpx.AsyncClient() as client:
        exporter = LokiExporter(url=loki.url(), labels={"service": "shop"}, client=client)
        await exporter.export_logs(batch(stored(LogEntry(timestamp=T0, level="info", message="x"))))
        await exporter.close()
        assert not client.is_closed
    assert len(loki.requests) == 1


def test_the_exporter_works_in_one_event_loop_after_another(loki: FakeLoki) -> None:
    # The runtime may restart its thread (and loop): the exporter opens a new client there.
    exporter = LokiExporter(url=loki.url(), labels={"service": "shop"})
    entries = stored(LogEntry(timestamp=T0, level="info", message="x"))
    asyncio.run(exporter.export_logs(batch(entries)))
    asyncio.run(exporter.export_logs(batch(entries)))
    asyncio.run(exporter.close())
    assert len(loki.requests) == 2


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"labels": {"service-name": "x"}}, "labels"),
        ({"labels": {"service": ""}}, "labels['service']"),
        ({"labels": {}, "label_attributes": ()}, "labels"),
        ({"label_attributes": "level"}, "label_attributes"),
        ({"label_attributes": ("service",)}, "label_attributes"),
        ({"url": "loki:3100"}, "url"),
        ({"basic_auth": ("u", "p"), "bearer_token": "t"}, "basic_auth, bearer_token"),
        ({"basic_auth": "u:p"}, "basic_auth"),
        ({"tenant_id": ""}, "tenant_id"),
        ({"gzip": "yes"}, "gzip"),
        ({"structured_metadata": 1}, "structured_metadata"),
        ({"timeout": 0}, "timeout"),
        ({"name": ""}, "name"),
    ],
)
def test_settings_are_checked_and_errors_name_the_argument(
    settings: dict[str, Any], field: str
) -> None:
    arguments: dict[str, Any] = {"url": "http://loki:3100", "labels": {"service": "shop"}}
    with pytest.raises(ConfigurationError) as caught:
        LokiExporter(**{**arguments, **settings})
    assert str(caught.value).startswith(field + ":")


def test_through_the_runtime_a_backlog_arrives_once_each_after_an_outage(loki: FakeLoki) -> None:
    logs = InMemoryLogStorage()
    logs.write_many_sync(
        LogEntry(timestamp=T0 + n / 1000, level="info", message=f"m{n}") for n in range(250)
    )
    exporter = LokiExporter(url=loki.url(), labels={"service": "shop"})
    runtime = EmbeddedRuntime(
        log_storage=logs, registry=Registry(), exporters=[exporter], export_batch_size=100
    )
    loki.answers.append(Answer(503, body=b"ingester not ready"))
    assert runtime.export_now() == {"loki": {"logs": 0}}
    assert "503" in str(runtime.status()["exporters"]["loki"]["last_error"])
    assert runtime.export_now() == {"loki": {"logs": 250}}
    assert runtime.stop()

    lines = [value[1] for stream in loki.pushed() for value in stream["values"]]
    assert lines == [f"m{n}" for n in range(250)]
    assert len(loki.accepted) == 3  # batches of at most 100
