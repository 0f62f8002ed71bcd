"""The framework-neutral HTTP API: every conformance case through both entry points.

``handle_sync`` runs on a worker thread without an event loop (as under a WSGI
server) and ``handle`` on the test's event loop (as under an ASGI server); both
must answer every case of :mod:`observabilipy.core.http.conformance`, byte for
byte the same.  Scenarios spanning several requests (polling with the cursor,
following ``next``) and what a single case cannot show (closing, memory,
logging) follow.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.http import ObservabilityAPI, Request, bearer_token
from observabilipy.core.http.conformance import (
    APIS,
    CASES,
    PROMETHEUS_ACCEPT,
    Answer,
    Case,
    build_api,
    core_answer,
)
from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry, MetricSample
from observabilipy.core.runtime import EmbeddedRuntime
from observabilipy.core.storage import InMemoryLogStorage, InMemoryMetricsStorage

pytestmark = pytest.mark.core

Raw = tuple[int, list[tuple[str, str]], bytes]
Call = Callable[[ObservabilityAPI, Request], Awaitable[Answer]]


def _sync_raw(api: ObservabilityAPI, request: Request) -> Raw:
    response = api.handle_sync(request)
    return response.status, response.headers, b"".join(response.body)


async def _async_raw(api: ObservabilityAPI, request: Request) -> Raw:
    response = await api.handle(request)
    return response.status, response.headers, b"".join([chunk async for chunk in response.body])


async def _sync_answer(api: ObservabilityAPI, request: Request) -> Answer:
    # A worker thread with no event loop: where a WSGI server runs handle_sync.
    status, headers, body = await asyncio.to_thread(_sync_raw, api, request)
    return Answer(status, dict(headers), body)


async def _async_answer(api: ObservabilityAPI, request: Request) -> Answer:
    status, headers, body = await _async_raw(api, request)
    return Answer(status, dict(headers), body)


@pytest.fixture(params=["handle_sync", "handle"])
def call(request: pytest.FixtureRequest) -> Call:
    """Sends a request through one of the two entry points; answers an Answer."""
    return _sync_answer if request.param == "handle_sync" else _async_answer


def _get(path: str, query: bytes = b"", headers: dict[str, str] | None = None) -> Request:
    return Request("GET", path, query, headers or {})


# -- the conformance table --------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
async def test_case(case: Case, call: Call) -> None:
    case.verify(await call(build_api(case.api), case.request))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
async def test_both_entry_points_answer_the_same_bytes(case: Case) -> None:
    api = build_api(case.api)
    from_sync = await asyncio.to_thread(_sync_raw, api, case.request)
    from_async = await _async_raw(api, case.request)
    assert from_sync == from_async


def test_the_table_is_sound() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), "case ids are unique"
    assert {case.api for case in CASES} == set(APIS), "every API is used by some case"
    covered = {case.path.rstrip("/") for case in CASES if case.status == 200}
    assert {
        "/logs",
        "/logs/json",
        "/metrics",
        "/metrics/json",
        "/metrics/prometheus",
        "/health",
    } <= covered
    bad = {case.query.split(b"=")[0] for case in CASES if case.status == 400}
    assert {b"since", b"after", b"limit", b"offset", b"level", b"min_level", b"name", b"q"} <= bad


def test_core_answer_is_what_handle_sync_gives() -> None:
    case = next(case for case in CASES if case.id == "logs-json-first-page")
    status, headers, body = _sync_raw(build_api(case.api), case.request)
    assert core_answer(case) == Answer(status, dict(headers), body)


# -- scenarios over several requests ----------------------------------------------------


async def test_polling_with_next_after_never_skips_nor_repeats(call: Call) -> None:
    storage = InMemoryLogStorage()
    api = ObservabilityAPI(log_storage=storage)
    seen: list[int] = []
    cursor: int | None = None
    written = 0
    # Entries arrive between polls, many with one timestamp: since= would skip them.
    for batch in (5, 0, 3, 7, 1, 0, 4):
        storage.write_many_sync(
            LogEntry(timestamp=500.0, level="info", message=f"m{written + n}") for n in range(batch)
        )
        written += batch
        query = b"limit=3" + (b"" if cursor is None else f"&after={cursor}".encode())
        while True:
            document = (await call(api, _get("/logs/json", query))).json()
            seen.extend(item["id"] for item in document["items"])
            cursor = document["next_after"]
            if document["next"] is None:
                break
            query = document["next"].removeprefix("?").encode()
    assert seen == list(range(1, written + 1))


async def test_following_next_reads_every_page_once(call: Call) -> None:
    storage = InMemoryMetricsStorage()
    storage.write_many_sync(
        MetricSample(name="up", timestamp=float(n // 4), value=n, labels={"n": str(n)})
        for n in range(23)
    )
    api = ObservabilityAPI(metrics_storage=storage, max_limit=5, default_limit=5)
    values: list[float] = []
    query = b"since=0"  # skips the four samples at timestamp 0
    pages = 0
    while True:
        document = (await call(api, _get("/metrics/json", query))).json()
        values.extend(item["value"] for item in document["items"])
        pages += 1
        if document["next"] is None:
            break
        assert document["next"].startswith("?since=0&after=")
        query = document["next"][1:].encode()
    assert values == [float(n) for n in range(4, 23)]
    assert pages == 4  # 5 + 5 + 5 + 4


async def test_exposition_parses_with_prometheus_client(call: Call) -> None:
    api = build_api("default")
    text = (await call(api, _get("/metrics/prometheus"))).text()
    families = {family.name: family for family in parse_text(text)}
    assert [(s.labels, s.value) for s in families["jobs"].samples] == [({"queue": "mail"}, 3.0)]
    latency = {(s.name, s.labels.get("le")): s.value for s in families["latency_seconds"].samples}
    assert latency[("latency_seconds_count", None)] == 3.0
    assert latency[("latency_seconds_bucket", "0.5")] == 2.0

    openmetrics = (await call(api, _get("/metrics", headers={"accept": PROMETHEUS_ACCEPT}))).text()
    assert openmetrics.endswith("# EOF\n")
    families = {family.name: family for family in parse_openmetrics(openmetrics)}  # type: ignore[no-untyped-call]
    assert families["jobs"].type == "counter"
    assert families["temperature_celsius"].samples[0].value == 21.5


async def test_health_reports_a_running_runtime(call: Call) -> None:
    registry = Registry()
    metrics = InMemoryMetricsStorage()
    runtime = EmbeddedRuntime(metrics_storage=metrics, registry=registry, snapshot_interval=60)
    runtime.snapshot_now()
    runtime.start()
    try:
        answer = await call(
            ObservabilityAPI(metrics_storage=metrics, runtime=runtime), _get("/health")
        )
    finally:
        runtime.stop()
    assert answer.status == 200
    component = answer.json()["components"]["runtime"]
    assert component["status"] == "pass"
    assert component["running"] is True
    assert isinstance(component["last_snapshot"], float)
    assert component["last_error"] is None


async def test_health_reports_the_runtime_last_error(call: Call) -> None:
    class Failing(InMemoryMetricsStorage):
        def write_many_sync(self, samples: Any) -> None:
            raise OSError("database is locked")

    runtime = EmbeddedRuntime(metrics_storage=Failing(), registry=Registry(), snapshot_interval=60)
    runtime.start()
    try:
        runtime._attempt("snapshot", runtime.snapshot_now)  # one failed iteration, now
        answer = await call(ObservabilityAPI(runtime=runtime), _get("/health"))
    finally:
        runtime.stop()
    assert answer.status == 503
    component = answer.json()["components"]["runtime"]
    assert component["status"] == "fail"
    assert "database is locked" in component["error"]
    assert component["consecutive_failures"] >= 1


# -- streaming: failures, closing, memory -----------------------------------------------


async def test_a_midstream_failure_ends_the_body_and_is_logged(
    call: Call, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="observabilipy.http"):
        answer = await call(build_api("midstream"), _get("/logs", b"limit=3000"))
    assert answer.status == 200
    assert 0 < len(answer.ndjson()) < 2000
    assert "ended early" in caplog.text
    assert "OSError: disk I/O error" in caplog.text


async def test_a_storage_failure_before_the_body_is_logged(
    call: Call, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="observabilipy.http"):
        answer = await call(build_api("broken"), _get("/logs"))
    assert answer.status == 503
    assert "OSError: disk I/O error" in caplog.text


class _Tracked(InMemoryLogStorage):
    """Notes whether each read stream was finished or closed."""

    def __init__(self) -> None:
        super().__init__()
        self.open_streams = 0

    def read_sync(self, **filters: Any) -> Iterator[LogEntry]:
        entries = super().read_sync(**filters)

        def tracked() -> Iterator[LogEntry]:
            self.open_streams += 1
            try:
                yield from entries
            finally:
                self.open_streams -= 1

        return tracked()

    def read(self, **filters: Any) -> AsyncIterator[LogEntry]:
        entries = super().read_sync(**filters)

        async def tracked() -> AsyncIterator[LogEntry]:
            self.open_streams += 1
            try:
                for entry in entries:
                    yield entry
            finally:
                self.open_streams -= 1

        return tracked()


def _tracked_api(**options: Any) -> tuple[ObservabilityAPI, _Tracked]:
    storage = _Tracked()
    storage.write_many_sync(
        LogEntry(timestamp=float(n), level="info", message="x" * 100) for n in range(5000)
    )
    return ObservabilityAPI(log_storage=storage, max_limit=5000, **options), storage


@pytest.mark.parametrize("gzip", [False, True])
def test_closing_a_sync_body_early_closes_the_storage_stream(gzip: bool) -> None:
    api, storage = _tracked_api()
    headers = {"accept-encoding": "gzip"} if gzip else {}
    response = api.handle_sync(Request("GET", "/logs", b"limit=5000", headers))
    first = next(response.body)
    assert first
    assert storage.open_streams == 1
    response.body.close()  # type: ignore[attr-defined]
    gc.collect()
    assert storage.open_streams == 0


@pytest.mark.parametrize("gzip", [False, True])
async def test_closing_an_async_body_early_closes_the_storage_stream(gzip: bool) -> None:
    api, storage = _tracked_api()
    headers = {"accept-encoding": "gzip"} if gzip else {}
    response = await api.handle(Request("GET", "/logs", b"limit=5000", headers))
    assert await anext(response.body)
    assert storage.open_streams == 1
    await response.body.aclose()  # type: ignore[attr-defined]
    assert storage.open_streams == 0


async def test_head_reads_nothing_more_and_closes_the_stream(call: Call) -> None:
    api, storage = _tracked_api()
    answer = await call(api, Request("HEAD", "/logs", b"limit=5000"))
    assert answer.status == 200
    assert answer.body == b""
    assert storage.open_streams == 0


@pytest.mark.parametrize("accept_encoding", ["", "gzip"], ids=["identity", "gzip"])
def test_a_large_body_streams_in_bounded_memory(accept_encoding: str) -> None:
    storage = InMemoryLogStorage()
    storage.write_many_sync(
        LogEntry(timestamp=float(n), level="info", message=f"entry {n} " + "x" * 80)
        for n in range(30_000)
    )
    api = ObservabilityAPI(log_storage=storage, max_limit=30_000)
    request = Request("GET", "/logs", b"limit=30000", {"accept-encoding": accept_encoding})
    tracemalloc.start()
    try:
        size = 0
        for chunk in api.handle_sync(request).body:
            size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if not accept_encoding:
        assert size > 3_000_000
    # A few 64 KiB chunks and the compressor's window, never the body.
    assert peak < 1_500_000


# -- access checks: how they run ----------------------------------------------------------


async def test_handle_sync_runs_an_async_check_inside_a_running_loop() -> None:
    async def allow(request: Request) -> bool:
        await asyncio.sleep(0)
        return request.headers.get("x-api-key") == "k"

    api = ObservabilityAPI(registry=Registry(), access=allow)
    # Called on the loop's own thread, as a sync view under an async server may be.
    assert api.handle_sync(_get("/metrics/prometheus", headers={"x-api-key": "k"})).status == 200
    assert api.handle_sync(_get("/metrics/prometheus")).status == 401


def test_the_check_sees_the_request() -> None:
    seen: list[Request] = []

    def record(request: Request) -> bool:
        seen.append(request)
        return True

    request = Request("GET", "/metrics/prometheus", b"x=1", {"authorization": "Bearer t"})
    ObservabilityAPI(registry=Registry(), access=record).handle_sync(request)
    assert seen == [request]


def test_a_check_returning_a_truthy_non_bool_does_not_let_through() -> None:
    api = ObservabilityAPI(registry=Registry(), access=lambda request: "yes")  # type: ignore[arg-type]
    assert api.handle_sync(_get("/metrics/prometheus")).status == 401


def test_bearer_token_hides_its_secret() -> None:
    assert "s3cret" not in repr(bearer_token("s3cret"))


# -- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_limit": 0}, "max_limit"),
        ({"max_limit": 2.5}, "max_limit"),
        ({"default_limit": 0}, "default_limit"),
        ({"max_limit": 10, "default_limit": 11}, "default_limit"),
        ({"gzip_min_size": -1}, "gzip_min_size"),
        ({"health_checks": {"runtime": lambda: True}}, "health_checks"),
        ({"health_checks": {"db": "not callable"}}, "health_checks['db']"),
        ({"access": "s3cret"}, "access"),
        ({"log_storage": InMemoryMetricsStorage()}, "log_storage"),
        ({"metrics_storage": object()}, "metrics_storage"),
    ],
)
def test_bad_configuration_names_the_option(options: dict[str, Any], field: str) -> None:
    with pytest.raises(
        ConfigurationError, match=rf"^{field.replace('[', '.').replace(']', '.')}: "
    ):
        ObservabilityAPI(**options)


async def test_answers_are_json_documents_a_client_can_rely_on(call: Call) -> None:
    answer = await call(build_api("default"), _get("/logs", b"limit=99999"))
    assert answer.status == 400
    assert json.loads(answer.body) == {
        "error": "invalid_parameter",
        "parameter": "limit",
        "message": "limit: 99999 is above the maximum 10000",
        "allowed": "a whole number from 0 to 10000; fetch more with the next page's after",
    }
