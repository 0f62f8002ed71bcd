"""Request telemetry: the metrics, log entry, request id and log context of each request.

What every framework's middleware records goes through RequestTelemetry; these
tests hold its rules once (the adapters' tests check their wiring).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from observabilipy.core.context import clear_log_context, get_log_context, log_context
from observabilipy.core.errors import ConfigurationError
from observabilipy.core.http import RequestScope, RequestTelemetry
from observabilipy.core.http.telemetry import UNMATCHED_ROUTE, valid_request_id
from observabilipy.core.logs import get_logger
from observabilipy.core.metrics import Counter, Gauge, Histogram, Registry
from observabilipy.core.models import LogEntry
from observabilipy.core.storage import InMemoryLogStorage

pytestmark = pytest.mark.core


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def logs() -> InMemoryLogStorage:
    return InMemoryLogStorage()


@pytest.fixture
def telemetry(registry: Registry, logs: InMemoryLogStorage) -> RequestTelemetry:
    return RequestTelemetry(registry=registry, log_storage=logs)


def _start(
    telemetry: RequestTelemetry,
    method: str = "GET",
    path: str = "/users/7",
    headers: dict[str, str] | None = None,
) -> RequestScope:
    scope = telemetry.start(method=method, path=path, headers=headers or {})
    assert scope is not None
    return scope


def _requests(registry: Registry) -> dict[tuple[str, ...], float]:
    family = registry.get("http_requests")
    assert isinstance(family, Counter)
    return {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in registry.snapshot(timestamp=0.0)
        if s.name == "http_requests_total"
    }


def _in_flight(registry: Registry) -> float:
    family = registry.get("http_requests_in_flight")
    assert isinstance(family, Gauge)
    return family.value


def _durations(registry: Registry) -> dict[tuple[str, str], int]:
    family = registry.get("http_request_duration_seconds")
    assert isinstance(family, Histogram)
    return {
        (s.labels["method"], s.labels["route"]): int(s.value)
        for s in registry.snapshot(timestamp=0.0)
        if s.name == "http_request_duration_seconds_count"
    }


def _entries(logs: InMemoryLogStorage) -> list[LogEntry]:
    return list(logs.read_sync())


# -- metrics ------------------------------------------------------------------------------


def test_a_request_is_counted_timed_and_logged_once(
    telemetry: RequestTelemetry, registry: Registry, logs: InMemoryLogStorage
) -> None:
    scope = _start(telemetry, path="/users/7")
    assert _in_flight(registry) == 1
    scope.finish(status=200, route="/users/{id}")
    assert _requests(registry) == {("GET", "/users/{id}", "200"): 1.0}
    assert _durations(registry) == {("GET", "/users/{id}"): 1}
    assert _in_flight(registry) == 0
    (entry,) = _entries(logs)
    assert entry.level == "INFO"
    assert entry.message == "GET /users/{id} 200"
    attributes = dict(entry.attributes)
    duration = attributes.pop("duration_seconds")
    assert isinstance(duration, float)
    assert duration >= 0
    assert attributes == {
        "method": "GET",
        "route": "/users/{id}",
        "path": "/users/7",
        "status": 200,
        "request_id": scope.request_id,
    }


def test_the_raw_path_is_never_a_label(telemetry: RequestTelemetry, registry: Registry) -> None:
    for user in range(50):
        _start(telemetry, path=f"/users/{user}").finish(status=200, route="/users/{id}")
    assert _requests(registry) == {("GET", "/users/{id}", "200"): 50.0}
    exposed = {value for s in registry.snapshot(timestamp=0.0) for value in s.labels.values()}
    assert not any(value.startswith("/users/") and value[7:].isdigit() for value in exposed)


def test_unmatched_requests_share_one_label(
    telemetry: RequestTelemetry, registry: Registry, logs: InMemoryLogStorage
) -> None:
    for path in ("/nope", "/wp-admin.php", "/a/b/c/d"):
        _start(telemetry, path=path).finish(status=404, route=None)
    _start(telemetry, path="/x").finish(status=404, route="")
    assert _requests(registry) == {("GET", UNMATCHED_ROUTE, "404"): 4.0}
    assert {e.message for e in _entries(logs)} == {"GET <unmatched> 404"}
    assert [e.attributes["path"] for e in _entries(logs)] == [
        "/nope",
        "/wp-admin.php",
        "/a/b/c/d",
        "/x",
    ]


def test_unmatched_route_label_is_configurable(registry: Registry) -> None:
    telemetry = RequestTelemetry(registry=registry, logs=False, unmatched_route="none")
    _start(telemetry).finish(status=404, route=None)
    assert _requests(registry) == {("GET", "none", "404"): 1.0}


@pytest.mark.parametrize(
    ("method", "label"),
    [
        ("GET", "GET"),
        ("patch", "PATCH"),
        ("BREW", "OTHER"),
        ("PROPFIND", "OTHER"),
        ("x" * 300, "OTHER"),
    ],
)
def test_methods_are_bounded(registry: Registry, method: str, label: str) -> None:
    telemetry = RequestTelemetry(registry=registry, logs=False)
    scope = _start(telemetry, method=method)
    assert scope.method == label
    scope.finish(status=200, route="/")
    assert _requests(registry) == {(label, "/", "200"): 1.0}


def test_statuses_are_separate_series(telemetry: RequestTelemetry, registry: Registry) -> None:
    for status in (200, 200, 201, 500):
        _start(telemetry, method="POST").finish(status=status, route="/orders")
    assert _requests(registry) == {
        ("POST", "/orders", "200"): 2.0,
        ("POST", "/orders", "201"): 1.0,
        ("POST", "/orders", "500"): 1.0,
    }
    assert _durations(registry) == {("POST", "/orders"): 4}


def test_custom_buckets(registry: Registry) -> None:
    telemetry = RequestTelemetry(registry=registry, logs=False, buckets=(0.5, 60.0))
    _start(telemetry).finish(status=200, route="/")
    bounds = {
        s.labels["le"]
        for s in registry.snapshot(timestamp=0.0)
        if s.name == "http_request_duration_seconds_bucket"
    }
    assert bounds == {"0.5", "60.0", "+Inf"}


def test_in_flight_counts_concurrent_requests(
    telemetry: RequestTelemetry, registry: Registry
) -> None:
    scopes = [_start(telemetry) for _ in range(3)]
    assert _in_flight(registry) == 3
    for scope in reversed(scopes):  # one context: nested, so finished innermost first
        scope.finish(status=200, route="/")
    assert _in_flight(registry) == 0
    family = registry.get("http_requests_in_flight")
    assert isinstance(family, Gauge)
    assert family.multiprocess_mode == "sum"


def test_finish_twice_records_once(
    telemetry: RequestTelemetry, registry: Registry, logs: InMemoryLogStorage
) -> None:
    scope = _start(telemetry)
    scope.finish(status=200, route="/")
    scope.finish(status=500, route="/")
    assert _requests(registry) == {("GET", "/", "200"): 1.0}
    assert _in_flight(registry) == 0
    assert len(_entries(logs)) == 1


def test_two_instances_share_a_registry(registry: Registry) -> None:
    first = RequestTelemetry(registry=registry, logs=False)
    second = RequestTelemetry(registry=registry, logs=False)
    _start(first).finish(status=200, route="/")
    _start(second).finish(status=200, route="/")
    assert _requests(registry) == {("GET", "/", "200"): 2.0}


def test_default_registry_when_none_given() -> None:
    from observabilipy.core.metrics import default_registry

    assert RequestTelemetry(logs=False).registry is default_registry


# -- the log entry ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "level"),
    [
        (200, None, "INFO"),
        (204, None, "INFO"),
        (304, None, "INFO"),
        (399, None, "INFO"),
        (400, None, "WARNING"),
        (404, None, "WARNING"),
        (499, None, "WARNING"),
        (500, None, "ERROR"),
        (503, None, "ERROR"),
        (500, RuntimeError("boom"), "ERROR"),
        (200, RuntimeError("raised after the response began"), "ERROR"),
    ],
)
def test_level_follows_status(
    telemetry: RequestTelemetry,
    logs: InMemoryLogStorage,
    status: int,
    error: BaseException | None,
    level: str,
) -> None:
    _start(telemetry).finish(status=status, route="/r", error=error)
    (entry,) = _entries(logs)
    assert entry.level == level
    assert entry.message == f"GET /r {status}"
    if error is not None:
        assert entry.attributes["exception.type"] == "RuntimeError"
        assert entry.attributes["exception.message"] == str(error)
    else:
        assert "exception.type" not in entry.attributes


def test_long_path_is_cut_and_control_characters_escaped(
    telemetry: RequestTelemetry, logs: InMemoryLogStorage
) -> None:
    _start(telemetry, path="/" + "a" * 1000).finish(status=404, route=None)
    _start(telemetry, path="/x\nGET /admin 200\r\x1b[31m").finish(status=404, route=None)
    long, forged = _entries(logs)
    assert long.attributes["path"] == "/" + "a" * 255
    assert forged.attributes["path"] == "/x\\nGET /admin 200\\r\\x1b[31m"
    assert "\n" not in str(forged.attributes["path"])


def test_entry_keeps_the_outer_context(
    telemetry: RequestTelemetry, logs: InMemoryLogStorage
) -> None:
    with log_context(service="shop"):
        _start(telemetry).finish(status=200, route="/")
    assert _entries(logs)[0].attributes["service"] == "shop"


def test_stdlib_logger_when_no_storage(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    telemetry = RequestTelemetry(registry=registry)
    caplog.set_level(logging.INFO, logger="observabilipy.http")
    scope = _start(telemetry, headers={"x-request-id": "req-1"})
    scope.finish(status=503, route="/checkout")
    (record,) = [r for r in caplog.records if r.name == "observabilipy.http"]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "GET /checkout 503"
    fields: dict[str, Any] = record.__dict__
    assert (fields["method"], fields["route"], fields["path"], fields["status"]) == (
        "GET",
        "/checkout",
        "/users/7",
        503,
    )
    assert fields["request_id"] == "req-1"
    assert isinstance(fields["duration_seconds"], float)


def test_stdlib_logger_filtered_by_level_costs_nothing(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    telemetry = RequestTelemetry(registry=registry)
    caplog.set_level(logging.WARNING, logger="observabilipy.http")
    _start(telemetry).finish(status=200, route="/")
    _start(telemetry).finish(status=404, route=None)
    assert [r.getMessage() for r in caplog.records] == ["GET <unmatched> 404"]


# -- request ids --------------------------------------------------------------------------


def test_a_valid_request_id_is_kept_and_echoed(telemetry: RequestTelemetry) -> None:
    scope = _start(telemetry, headers={"x-request-id": "Abc.123_x:y-z"})
    assert scope.request_id == "Abc.123_x:y-z"
    assert scope.response_headers() == [("x-request-id", "Abc.123_x:y-z")]
    scope.finish(status=200, route="/")


def test_a_request_id_is_generated_without_header(telemetry: RequestTelemetry) -> None:
    first, second = _start(telemetry), _start(telemetry)
    assert first.request_id is not None
    assert second.request_id is not None
    assert len(first.request_id) == 32
    assert valid_request_id(first.request_id)
    assert first.request_id != second.request_id
    second.finish(status=200, route="/")
    first.finish(status=200, route="/")


@pytest.mark.parametrize(
    "bad",
    [
        "x" * 129,
        "",
        "abc def",
        "abc\nGET /admin 200",
        "abc\r\nset-cookie: a=b",
        "id;drop",
        "<script>",
        "ünïcode",
        "abc\n",
        "a/b",
    ],
    ids=repr,
)
def test_a_bad_request_id_is_replaced_and_never_logged(
    registry: Registry,
    logs: InMemoryLogStorage,
    caplog: pytest.LogCaptureFixture,
    bad: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    telemetry = RequestTelemetry(registry=registry, log_storage=logs)
    scope = _start(telemetry, headers={"x-request-id": bad})
    assert scope.request_id != bad
    assert valid_request_id(scope.request_id)
    assert scope.response_headers() == [("x-request-id", scope.request_id)]
    get_logger("app", sink=logs).info("handling")
    scope.finish(status=200, route="/")
    stored = repr([(e.message, e.attributes) for e in _entries(logs)])
    if bad:
        assert bad not in stored
        assert bad not in caplog.text
    assert all(e.attributes["request_id"] == scope.request_id for e in _entries(logs))


def test_128_characters_are_allowed() -> None:
    telemetry = RequestTelemetry(registry=Registry(), logs=False)
    scope = _start(telemetry, headers={"x-request-id": "a" * 128})
    assert scope.request_id == "a" * 128
    scope.finish(status=200, route="/")


def test_custom_request_id_header(registry: Registry) -> None:
    telemetry = RequestTelemetry(
        registry=registry, logs=False, request_id_header="X-Correlation-ID"
    )
    scope = _start(telemetry, headers={"x-correlation-id": "corr-1", "x-request-id": "other"})
    assert scope.request_id == "corr-1"
    assert scope.response_headers() == [("x-correlation-id", "corr-1")]
    scope.finish(status=200, route="/")


# -- the log context ----------------------------------------------------------------------


def test_the_handlers_logs_carry_the_request_id(
    telemetry: RequestTelemetry, logs: InMemoryLogStorage
) -> None:
    app_log = get_logger("app", sink=logs)
    scope = _start(telemetry, headers={"x-request-id": "req-42"})
    app_log.info("loading user")
    assert get_log_context() == {"request_id": "req-42", "method": "GET"}
    scope.finish(status=200, route="/users/{id}")
    assert get_log_context() == {}
    handler_entry, request_entry = _entries(logs)
    assert handler_entry.message == "loading user"
    assert handler_entry.attributes["request_id"] == "req-42"
    assert request_entry.attributes["request_id"] == "req-42"


def test_the_callers_context_is_merged_not_replaced(telemetry: RequestTelemetry) -> None:
    with log_context(tenant="acme"):
        scope = _start(telemetry, headers={"x-request-id": "r-1"})
        assert get_log_context() == {"tenant": "acme", "request_id": "r-1", "method": "GET"}
        scope.finish(status=200, route="/")
        assert get_log_context() == {"tenant": "acme"}
    assert get_log_context() == {}


def test_the_handlers_own_context_changes_are_undone(telemetry: RequestTelemetry) -> None:
    from observabilipy.core.context import update_log_context

    scope = _start(telemetry)
    update_log_context(user="ada")  # the handler forgot to reset its own change
    scope.finish(status=200, route="/")
    assert get_log_context() == {}


def test_finishing_in_another_context_restores(telemetry: RequestTelemetry) -> None:
    scope = _start(telemetry)
    # A copy of the context (as a server finishing elsewhere would have): the token
    # does not belong to it, yet the request's fields must not stay in it.
    copied = contextvars.copy_context()

    def finish_there() -> dict[str, object]:
        scope.finish(status=200, route="/")
        return get_log_context()

    leftover = copied.run(finish_there)
    assert leftover == {}
    clear_log_context()  # the original context is out of reach of a finish made elsewhere


def test_threads_see_their_own_request_id(registry: Registry, logs: InMemoryLogStorage) -> None:
    telemetry = RequestTelemetry(registry=registry, log_storage=logs)
    app_log = get_logger("app", sink=logs)
    barrier = threading.Barrier(8)
    seen: dict[str, object] = {}

    def handle(n: int) -> None:
        scope = _start(telemetry, headers={"x-request-id": f"thread-{n}"})
        barrier.wait()  # every request is in flight at once
        app_log.info("working", n=n)
        seen[f"thread-{n}"] = get_log_context().get("request_id")
        barrier.wait()
        scope.finish(status=200, route="/")
        seen[f"after-{n}"] = get_log_context().get("request_id")

    threads = [threading.Thread(target=handle, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    for n in range(8):
        assert seen[f"thread-{n}"] == f"thread-{n}"
        assert seen[f"after-{n}"] is None
    for entry in _entries(logs):
        if entry.message == "working":
            assert entry.attributes["request_id"] == f"thread-{entry.attributes['n']}"
    assert _in_flight(registry) == 0
    assert _requests(registry) == {("GET", "/", "200"): 8.0}


async def test_tasks_see_their_own_request_id(registry: Registry, logs: InMemoryLogStorage) -> None:
    telemetry = RequestTelemetry(registry=registry, log_storage=logs)
    app_log = get_logger("app", sink=logs)
    gate = asyncio.Event()

    async def handle(n: int) -> object:
        scope = _start(telemetry, headers={"x-request-id": f"task-{n}"})
        await gate.wait()
        app_log.info("working", n=n)
        seen = get_log_context().get("request_id")
        scope.finish(status=200, route="/")
        return seen

    tasks = [asyncio.create_task(handle(n)) for n in range(10)]
    await asyncio.sleep(0)
    assert _in_flight(registry) == 10
    gate.set()
    assert await asyncio.gather(*tasks) == [f"task-{n}" for n in range(10)]
    assert get_log_context() == {}
    for entry in _entries(logs):
        if entry.message == "working":
            assert entry.attributes["request_id"] == f"task-{entry.attributes['n']}"


# -- exclude paths and switches -----------------------------------------------------------


def test_exclude_paths_exact_and_prefix(registry: Registry, logs: InMemoryLogStorage) -> None:
    telemetry = RequestTelemetry(
        registry=registry, log_storage=logs, exclude_paths=["/health", "/static/*"]
    )
    for path in ("/health", "/static/app.css", "/static/", "/static/a/b.js"):
        assert telemetry.start(method="GET", path=path, headers={}) is None
    for path in ("/healthz", "/health/deep", "/staticfile", "/"):
        _start(telemetry, path=path).finish(status=200, route=path)
    assert set(_requests(registry)) == {
        ("GET", path, "200") for path in ("/healthz", "/health/deep", "/staticfile", "/")
    }
    assert len(_entries(logs)) == 4


def test_excluded_requests_leave_the_context_alone(registry: Registry) -> None:
    telemetry = RequestTelemetry(registry=registry, exclude_paths=["/*"])
    assert telemetry.start(method="GET", path="/x", headers={"x-request-id": "r"}) is None
    assert get_log_context() == {}


def test_metrics_off(registry: Registry, logs: InMemoryLogStorage) -> None:
    telemetry = RequestTelemetry(registry=registry, log_storage=logs, metrics=False)
    _start(telemetry).finish(status=200, route="/")
    assert _requests(registry) == {}
    assert _durations(registry) == {}
    assert len(_entries(logs)) == 1


def test_logs_off(registry: Registry, logs: InMemoryLogStorage) -> None:
    telemetry = RequestTelemetry(registry=registry, log_storage=logs, logs=False)
    _start(telemetry).finish(status=500, route="/")
    assert _entries(logs) == []
    assert _requests(registry) == {("GET", "/", "500"): 1.0}


def test_request_ids_off(registry: Registry, logs: InMemoryLogStorage) -> None:
    telemetry = RequestTelemetry(registry=registry, log_storage=logs, request_ids=False)
    scope = _start(telemetry, headers={"x-request-id": "given"})
    assert scope.request_id is None
    assert scope.response_headers() == []
    assert get_log_context() == {}
    scope.finish(status=200, route="/")
    (entry,) = _entries(logs)
    assert "request_id" not in entry.attributes


def test_in_flight_off(registry: Registry) -> None:
    telemetry = RequestTelemetry(registry=registry, logs=False, in_flight=False)
    _start(telemetry).finish(status=200, route="/")
    assert registry.get("http_requests_in_flight") is None


def test_everything_off_records_nothing(registry: Registry) -> None:
    telemetry = RequestTelemetry(
        registry=registry, metrics=False, logs=False, request_ids=False, in_flight=False
    )
    assert telemetry.start(method="GET", path="/", headers={}) is None


# -- never break the request --------------------------------------------------------------


class _FailingStorage(InMemoryLogStorage):
    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    def write_sync(self, entry: LogEntry) -> None:
        if self.fail:
            raise OSError("database is locked")
        super().write_sync(entry)


def _dropped(registry: Registry, reason: str) -> float:
    family = registry.get("observabilipy_dropped_total")
    assert isinstance(family, Counter)
    return family.labels(component="http_telemetry", reason=reason).value


def test_a_failing_log_storage_never_raises(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    storage = _FailingStorage()
    telemetry = RequestTelemetry(registry=registry, log_storage=storage)
    caplog.set_level(logging.WARNING, logger="observabilipy.http")
    for _ in range(3):
        _start(telemetry).finish(status=200, route="/")
    assert _dropped(registry, "storage_error") == 3
    assert _requests(registry) == {("GET", "/", "200"): 3.0}
    assert _in_flight(registry) == 0
    assert get_log_context() == {}
    warnings = [r for r in caplog.records if "request telemetry failed" in r.getMessage()]
    assert len(warnings) == 1  # once per failure streak
    assert "database is locked" in warnings[0].getMessage()
    storage.fail = False
    _start(telemetry).finish(status=200, route="/")
    storage.fail = True
    _start(telemetry).finish(status=200, route="/")
    assert len([r for r in caplog.records if "request telemetry failed" in r.getMessage()]) == 2
    assert len(list(storage.read_sync())) == 1


def test_a_broken_stdlib_handler_never_raises(registry: Registry) -> None:
    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise RuntimeError("handler down")

        def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802
            raise RuntimeError("and so is its error handling")

    logger = logging.getLogger("observabilipy.http")
    handler = Broken()
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        telemetry = RequestTelemetry(registry=registry)
        _start(telemetry).finish(status=200, route="/")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert _dropped(registry, "internal_error") == 1
    assert _in_flight(registry) == 0
    assert get_log_context() == {}


def test_odd_headers_mapping_never_raises(registry: Registry) -> None:
    class Exploding(dict[str, str]):
        def get(self, *args: Any) -> Any:
            raise KeyError("boom")

    telemetry = RequestTelemetry(registry=registry)
    assert telemetry.start(method="GET", path="/", headers=Exploding()) is None
    assert _dropped(registry, "internal_error") == 1


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"request_id_header": "bad header"}, "request_id_header"),
        ({"request_id_header": ""}, "request_id_header"),
        ({"exclude_paths": "/health"}, "exclude_paths"),
        ({"exclude_paths": [""]}, "exclude_paths"),
        ({"unmatched_route": ""}, "unmatched_route"),
        ({"log_storage": object()}, "log_storage"),
    ],
)
def test_bad_configuration(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError, match=field):
        RequestTelemetry(registry=Registry(), **options)


def test_repr_names_the_request(telemetry: RequestTelemetry) -> None:
    scope = _start(telemetry, headers={"x-request-id": "r-1"})
    assert repr(scope) == "<RequestScope GET '/users/7' id='r-1'>"
    scope.finish(status=200, route="/")


@pytest.fixture(autouse=True)
def _clean_context() -> Iterator[None]:
    yield
    leaked = get_log_context()
    clear_log_context()
    assert leaked == {}, "a test leaked log context"
