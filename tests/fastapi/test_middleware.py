"""add_observability on a FastAPI app: what each request records, and how the options are wired."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import APIRouter, FastAPI, HTTPException

from observabilipy.core.context import get_log_context
from observabilipy.core.errors import ConfigurationError
from observabilipy.core.http import ObservabilityAPI, RequestTelemetry
from observabilipy.core.logs import get_logger
from observabilipy.core.metrics import Counter, Gauge, Registry
from observabilipy.core.models import LogEntry
from observabilipy.core.storage import InMemoryLogStorage
from observabilipy.fastapi import add_observability

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.fastapi._fastapi_support import lifespan, send
else:
    from _fastapi_support import lifespan, send


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def logs() -> InMemoryLogStorage:
    return InMemoryLogStorage()


def requests_total(registry: Registry) -> dict[tuple[str, str, str], float]:
    family = registry.get("http_requests")
    if family is None:
        return {}
    assert isinstance(family, Counter)
    return {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in registry.snapshot(timestamp=0.0)
        if s.name == "http_requests_total"
    }


def in_flight(registry: Registry) -> float:
    family = registry.get("http_requests_in_flight")
    assert isinstance(family, Gauge)
    return family.value


def entries(logs: InMemoryLogStorage) -> list[LogEntry]:
    return list(logs.read_sync())


@pytest.fixture
def app(registry: Registry, logs: InMemoryLogStorage) -> FastAPI:
    app = FastAPI()
    app_log = get_logger("shop", sink=logs)

    @app.get("/users/{user_id}")
    async def read_user(user_id: int) -> dict[str, Any]:
        app_log.info("reading user", user_id=user_id)
        return {"id": user_id, "request_id": get_log_context().get("request_id")}

    @app.get("/missing/{key}")
    def missing(key: str) -> None:  # a sync endpoint: runs in a worker thread
        app_log.info("looking up", key=key)
        raise HTTPException(status_code=404, detail="no such key")

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("handler crashed")

    items = APIRouter(prefix="/v1")

    @items.get("/items/{item_id}")
    async def read_item(item_id: str) -> str:
        return item_id

    app.include_router(items)
    sub = FastAPI()

    @sub.get("/orders/{order_id}")
    async def read_order(order_id: str) -> str:
        return order_id

    app.mount("/sub", sub)
    add_observability(app, registry=registry, log_storage=logs)
    return app


async def test_route_templates_never_raw_paths(app: FastAPI, registry: Registry) -> None:
    for path in ("/users/1", "/users/2", "/v1/items/a", "/sub/orders/9", "/nope", "/users/x"):
        await send(app, "GET", path)
    assert requests_total(registry) == {
        ("GET", "/users/{user_id}", "200"): 1.0 + 1.0,
        ("GET", "/users/{user_id}", "422"): 1.0,
        ("GET", "/v1/items/{item_id}", "200"): 1.0,
        ("GET", "/sub/orders/{order_id}", "200"): 1.0,
        ("GET", "<unmatched>", "404"): 1.0,
    }
    assert in_flight(registry) == 0


async def test_request_id_echoed_and_in_the_handlers_logs(
    app: FastAPI, logs: InMemoryLogStorage
) -> None:
    answer = await send(app, "GET", "/users/7", headers={"x-request-id": "abc.1"})
    assert answer.headers["x-request-id"] == "abc.1"
    assert answer.json() == {"id": 7, "request_id": "abc.1"}
    handler_entry, request_entry = entries(logs)
    assert handler_entry.attributes["request_id"] == "abc.1"
    assert (request_entry.message, request_entry.level) == ("GET /users/{user_id} 200", "INFO")
    assert request_entry.attributes["request_id"] == "abc.1"
    assert request_entry.attributes["path"] == "/users/7"


async def test_sync_endpoints_see_the_request_id_too(
    app: FastAPI, registry: Registry, logs: InMemoryLogStorage
) -> None:
    answer = await send(app, "GET", "/missing/k1", headers={"x-request-id": "sync-1"})
    assert answer.status == 404
    assert answer.headers["x-request-id"] == "sync-1"
    handler_entry, request_entry = entries(logs)
    assert handler_entry.attributes["request_id"] == "sync-1"  # logged on a worker thread
    assert (request_entry.level, request_entry.message) == ("WARNING", "GET /missing/{key} 404")
    assert requests_total(registry) == {("GET", "/missing/{key}", "404"): 1.0}


async def test_an_exception_is_a_500(
    app: FastAPI, registry: Registry, logs: InMemoryLogStorage
) -> None:
    with pytest.raises(RuntimeError, match="handler crashed"):
        await send(app, "GET", "/crash")
    assert requests_total(registry) == {("GET", "/crash", "500"): 1.0}
    assert in_flight(registry) == 0
    (entry,) = entries(logs)
    assert (entry.level, entry.attributes["exception.type"]) == ("ERROR", "RuntimeError")


async def test_the_endpoints_own_requests_are_not_recorded(
    app: FastAPI, registry: Registry
) -> None:
    await send(app, "GET", "/users/1")
    answer = await send(app, "GET", "/observability/metrics/prometheus")
    assert answer.status == 200
    assert "x-request-id" not in answer.headers
    assert 'http_requests_total{method="GET",route="/users/{user_id}",status="200"} 1.0' in (
        answer.text()
    )
    await send(app, "GET", "/observability")
    assert requests_total(registry) == {("GET", "/users/{user_id}", "200"): 1.0}


async def test_the_log_storage_serves_the_request_logs(app: FastAPI) -> None:
    await send(app, "GET", "/users/5", headers={"x-request-id": "r-5"})
    answer = await send(app, "GET", "/observability/logs/json", b"q=GET")
    (item,) = answer.json()["items"]
    assert item["message"] == "GET /users/{user_id} 200"
    assert item["attributes"]["request_id"] == "r-5"


async def test_exclude_paths_can_include_the_endpoints(registry: Registry) -> None:
    app = FastAPI()
    add_observability(app, registry=registry, exclude_paths=())
    await send(app, "GET", "/observability/health")
    assert requests_total(registry) == {("GET", "/observability/health", "200"): 1.0}


async def test_middleware_off(registry: Registry) -> None:
    app = FastAPI()

    @app.get("/")
    async def root() -> str:
        return "ok"

    add_observability(app, registry=registry, middleware=False)
    answer = await send(app, "GET", "/")
    assert "x-request-id" not in answer.headers
    assert requests_total(registry) == {}
    assert (await send(app, "GET", "/observability/health")).status == 200


async def test_an_api_given_records_into_its_registry_and_log_storage() -> None:
    registry, logs = Registry(), InMemoryLogStorage()
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> str:
        return "pong"

    api = ObservabilityAPI(registry=registry, log_storage=logs)
    assert add_observability(app, api=api, prefix="/ops") is api
    await send(app, "GET", "/ping")
    assert requests_total(registry) == {("GET", "/ping", "200"): 1.0}
    assert [e.message for e in entries(logs)] == ["GET /ping 200"]
    assert (await send(app, "GET", "/ops/logs")).status == 200


async def test_without_a_log_storage_entries_go_to_the_standard_logger(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> str:
        return "pong"

    add_observability(app, registry=registry)
    caplog.set_level(logging.INFO, logger="observabilipy.http")
    await send(app, "GET", "/ping")
    assert [r.getMessage() for r in caplog.records if r.name == "observabilipy.http"] == [
        "GET /ping 200"
    ]


async def test_lifespan_runs_with_the_middleware(registry: Registry) -> None:
    events: list[str] = []

    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def life(app: FastAPI) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    app = FastAPI(lifespan=life)
    add_observability(app, registry=registry)
    assert await lifespan(app) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["startup", "shutdown"]
    assert requests_total(registry) == {}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"colour": "blue"}, "unknown option colour"),
        ({"api": ObservabilityAPI(), "gzip": False}, "gzip configure the API"),
        ({"middleware": False, "exclude_paths": ["/x"]}, "middleware=False"),
        ({"middleware": False, "route_resolver": lambda scope: None}, "route_resolver"),
    ],
)
def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        add_observability(FastAPI(), **options)


def test_options_go_where_they_belong() -> None:
    registry, logs = Registry(), InMemoryLogStorage()
    app = FastAPI()
    api = add_observability(
        app, registry=registry, log_storage=logs, gzip=False, request_id_header="x-trace-id"
    )
    assert isinstance(api, ObservabilityAPI)
    (middleware,) = app.user_middleware
    telemetry = middleware.kwargs["telemetry"]
    assert isinstance(telemetry, RequestTelemetry)
    assert telemetry.registry is registry
    assert telemetry.request_id_header == "x-trace-id"
    assert telemetry.excluded("/observability/logs")
    assert telemetry.excluded("/observability")
    assert not telemetry.excluded("/observability-other")
