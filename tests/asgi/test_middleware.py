"""ObservabilityMiddleware: what each HTTP request records, under raw ASGI and Starlette.

The telemetry's own rules (levels, request-id validation, switches) are tested
in core; these tests check the ASGI wiring: the route template after routing,
the status sent, the request id header, the log context inside the handler,
exceptions, and that lifespan and websockets pass through untouched.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from observabilipy.asgi import (
    ROUTE_KEY,
    ASGIApp,
    Message,
    ObservabilityMiddleware,
    Receive,
    Scope,
    Send,
)
from observabilipy.core.context import get_log_context
from observabilipy.core.errors import ConfigurationError
from observabilipy.core.http import RequestTelemetry
from observabilipy.core.logs import get_logger
from observabilipy.core.metrics import Counter, Gauge, Registry
from observabilipy.core.models import LogEntry
from observabilipy.core.storage import InMemoryLogStorage

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.asgi._asgi_support import call, lifespan
else:
    from _asgi_support import call, lifespan


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


def respond(
    status: int = 200, body: bytes = b"ok", headers: list[tuple[bytes, bytes]] | None = None
) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers or []})
        await send({"type": "http.response.body", "body": body})

    return app


# -- raw ASGI ---------------------------------------------------------------------------------


async def test_route_from_the_resolver_never_the_raw_path(
    registry: Registry, logs: InMemoryLogStorage
) -> None:
    def resolver(scope: Scope) -> str | None:
        return "/users/{id}" if scope["path"].startswith("/users/") else None

    app = ObservabilityMiddleware(
        respond(), registry=registry, log_storage=logs, route_resolver=resolver
    )
    for user in range(5):
        assert (await call(app, "GET", f"/users/{user}")).status == 200
    assert requests_total(registry) == {("GET", "/users/{id}", "200"): 5.0}
    assert [e.attributes["path"] for e in entries(logs)] == [f"/users/{n}" for n in range(5)]
    assert {e.message for e in entries(logs)} == {"GET /users/{id} 200"}


async def test_route_set_by_the_app_in_the_scope(registry: Registry) -> None:
    async def routed(scope: Scope, receive: Receive, send: Send) -> None:
        scope[ROUTE_KEY] = "/hello/{name}"
        await respond()(scope, receive, send)

    app = ObservabilityMiddleware(routed, registry=registry, logs=False)
    await call(app, "GET", "/hello/ada")
    await call(app, "GET", "/hello/bob")
    assert requests_total(registry) == {("GET", "/hello/{name}", "200"): 2.0}


async def test_unmatched_requests_share_one_label(registry: Registry) -> None:
    app = ObservabilityMiddleware(respond(404), registry=registry, logs=False)
    for path in ("/a", "/b/c", "/wp-login.php"):
        await call(app, "GET", path)
    assert requests_total(registry) == {("GET", "<unmatched>", "404"): 3.0}


async def test_a_failing_resolver_counts_as_unmatched(registry: Registry) -> None:
    def resolver(scope: Scope) -> str | None:
        raise KeyError("route")

    app = ObservabilityMiddleware(respond(), registry=registry, logs=False, route_resolver=resolver)
    assert (await call(app, "GET", "/x")).status == 200
    assert requests_total(registry) == {("GET", "<unmatched>", "200"): 1.0}


async def test_the_status_sent_is_recorded(registry: Registry, logs: InMemoryLogStorage) -> None:
    for status in (201, 302, 404, 503):
        app = ObservabilityMiddleware(
            respond(status), registry=registry, log_storage=logs, route_resolver=lambda s: "/r"
        )
        await call(app, "POST", "/r")
    assert requests_total(registry) == {("POST", "/r", str(s)): 1.0 for s in (201, 302, 404, 503)}
    assert [e.level for e in entries(logs)] == ["INFO", "INFO", "WARNING", "ERROR"]


async def test_request_id_is_echoed_and_in_the_handlers_logs(
    registry: Registry, logs: InMemoryLogStorage
) -> None:
    app_log = get_logger("app", sink=logs)
    seen: list[object] = []

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(get_log_context().get("request_id"))
        app_log.info("loading the user")
        await respond()(scope, receive, send)

    app = ObservabilityMiddleware(handler, registry=registry, log_storage=logs)
    exchange = await call(app, "GET", "/users/1", headers={"X-Request-ID": "abc-123"})
    assert exchange.headers["x-request-id"] == "abc-123"
    assert seen == ["abc-123"]
    handler_entry, request_entry = entries(logs)
    assert handler_entry.message == "loading the user"
    assert handler_entry.attributes["request_id"] == "abc-123"
    assert request_entry.attributes["request_id"] == "abc-123"
    assert get_log_context() == {}


async def test_a_bad_request_id_is_replaced(registry: Registry, logs: InMemoryLogStorage) -> None:
    app = ObservabilityMiddleware(respond(), registry=registry, log_storage=logs)
    exchange = await call(app, "GET", "/", headers={"x-request-id": "x" * 200})
    echoed = exchange.headers["x-request-id"]
    assert echoed != "x" * 200
    assert len(echoed) == 32
    assert entries(logs)[0].attributes["request_id"] == echoed
    assert "x" * 200 not in repr(entries(logs))


async def test_a_request_id_is_generated(registry: Registry) -> None:
    app = ObservabilityMiddleware(respond(), registry=registry, logs=False)
    first = (await call(app, "GET", "/")).headers["x-request-id"]
    second = (await call(app, "GET", "/")).headers["x-request-id"]
    assert len(first) == 32
    assert first != second


async def test_the_apps_own_request_id_header_is_kept(registry: Registry) -> None:
    app = ObservabilityMiddleware(
        respond(headers=[(b"x-request-id", b"from-app")]), registry=registry, logs=False
    )
    exchange = await call(app, "GET", "/", headers={"x-request-id": "from-client"})
    assert exchange.header_list.count(("x-request-id", "from-app")) == 1
    assert ("x-request-id", "from-client") not in exchange.header_list


async def test_request_ids_off_adds_no_header(registry: Registry) -> None:
    app = ObservabilityMiddleware(respond(), registry=registry, logs=False, request_ids=False)
    exchange = await call(app, "GET", "/", headers={"x-request-id": "abc"})
    assert "x-request-id" not in exchange.headers


async def test_custom_request_id_header(registry: Registry) -> None:
    app = ObservabilityMiddleware(
        respond(), registry=registry, logs=False, request_id_header="X-Correlation-Id"
    )
    exchange = await call(app, "GET", "/", headers={"x-correlation-id": "c-1"})
    assert exchange.headers["x-correlation-id"] == "c-1"


async def test_in_flight_during_and_after(registry: Registry) -> None:
    during: list[float] = []

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        during.append(in_flight(registry))
        await respond()(scope, receive, send)

    app = ObservabilityMiddleware(handler, registry=registry, logs=False)
    await call(app, "GET", "/")
    assert during == [1.0]
    assert in_flight(registry) == 0


async def test_concurrent_requests_keep_their_own_request_id(
    registry: Registry, logs: InMemoryLogStorage
) -> None:
    gate = asyncio.Event()
    app_log = get_logger("app", sink=logs)
    peak: list[float] = []

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        await gate.wait()
        peak.append(in_flight(registry))
        app_log.info("working", expected=dict(scope["headers"])[b"x-request-id"].decode())
        await respond()(scope, receive, send)

    app = ObservabilityMiddleware(handler, registry=registry, log_storage=logs)
    tasks = [
        asyncio.create_task(call(app, "GET", "/", headers={"x-request-id": f"r-{n}"}))
        for n in range(20)
    ]
    await asyncio.sleep(0.01)
    gate.set()
    exchanges = await asyncio.gather(*tasks)
    assert [e.headers["x-request-id"] for e in exchanges] == [f"r-{n}" for n in range(20)]
    assert max(peak) == 20
    for entry in entries(logs):
        if entry.message == "working":
            assert entry.attributes["request_id"] == entry.attributes["expected"]
    assert in_flight(registry) == 0


async def test_an_exception_is_recorded_as_500_and_reraised_unchanged(
    registry: Registry, logs: InMemoryLogStorage
) -> None:
    error = ValueError("bad state")

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise error

    app = ObservabilityMiddleware(
        broken, registry=registry, log_storage=logs, route_resolver=lambda s: "/boom"
    )
    with pytest.raises(ValueError, match="bad state") as raised:
        await call(app, "GET", "/boom")
    assert raised.value is error
    assert requests_total(registry) == {("GET", "/boom", "500"): 1.0}
    assert in_flight(registry) == 0
    (entry,) = entries(logs)
    assert (entry.level, entry.message) == ("ERROR", "GET /boom 500")
    assert entry.attributes["exception.type"] == "ValueError"
    assert get_log_context() == {}


async def test_an_exception_after_the_response_began_is_a_500(registry: Registry) -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("mid-stream")

    app = ObservabilityMiddleware(broken, registry=registry, logs=False)
    with pytest.raises(RuntimeError, match="mid-stream"):
        await call(app, "GET", "/")
    assert requests_total(registry) == {("GET", "<unmatched>", "500"): 1.0}


async def test_an_app_that_never_answers_is_a_500(registry: Registry) -> None:
    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        return

    app = ObservabilityMiddleware(silent, registry=registry, logs=False)
    exchange = await call(app, "GET", "/")
    assert exchange.messages == []
    assert requests_total(registry) == {("GET", "<unmatched>", "500"): 1.0}


async def test_a_failing_log_storage_never_reaches_the_client(registry: Registry) -> None:
    class Broken(InMemoryLogStorage):
        def write_sync(self, entry: LogEntry) -> None:
            raise OSError("disk full")

    app = ObservabilityMiddleware(respond(), registry=registry, log_storage=Broken())
    exchange = await call(app, "GET", "/")
    assert exchange.status == 200
    assert exchange.body == b"ok"
    dropped = registry.get("observabilipy_dropped_total")
    assert isinstance(dropped, Counter)
    assert dropped.labels(component="http_telemetry", reason="storage_error").value == 1


async def test_exclude_paths(registry: Registry) -> None:
    app = ObservabilityMiddleware(
        respond(), registry=registry, logs=False, exclude_paths=["/health", "/static/*"]
    )
    for path in ("/health", "/static/app.js", "/static/x/y.css", "/page"):
        exchange = await call(app, "GET", path)
        assert exchange.status == 200
        assert ("x-request-id" in exchange.headers) == (path == "/page")
    assert requests_total(registry) == {("GET", "<unmatched>", "200"): 1.0}


async def test_paths_are_below_root_path(registry: Registry, logs: InMemoryLogStorage) -> None:
    app = ObservabilityMiddleware(
        respond(), registry=registry, log_storage=logs, exclude_paths=["/health"]
    )
    await call(app, "GET", "/svc/health", root_path="/svc")
    await call(app, "GET", "/svc/page", root_path="/svc")
    assert [e.attributes["path"] for e in entries(logs)] == ["/page"]


async def test_lifespan_passes_through(registry: Registry) -> None:
    seen: list[str] = []

    async def app_with_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return

    app = ObservabilityMiddleware(app_with_lifespan, registry=registry)
    assert await lifespan(app) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert seen == ["lifespan"]
    assert requests_total(registry) == {}
    assert in_flight(registry) == 0


async def test_websocket_passes_through(registry: Registry) -> None:
    received: list[Scope] = []

    async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
        received.append(scope)
        await send({"type": "websocket.accept"})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    app = ObservabilityMiddleware(ws_app, registry=registry)
    scope = {"type": "websocket", "path": "/ws", "headers": []}
    await app(scope, receive, send)
    assert received == [scope]
    assert sent == [{"type": "websocket.accept"}]
    assert requests_total(registry) == {}


def test_configuration() -> None:
    telemetry = RequestTelemetry(registry=Registry())
    with pytest.raises(ConfigurationError, match="not both"):
        ObservabilityMiddleware(respond(), telemetry=telemetry, logs=False)
    with pytest.raises(ConfigurationError, match="route_resolver"):
        ObservabilityMiddleware(respond(), telemetry=telemetry, route_resolver="/x")  # type: ignore[arg-type]
    middleware = ObservabilityMiddleware(respond(), telemetry=telemetry)
    assert middleware.telemetry is telemetry
    assert "ObservabilityMiddleware" in repr(middleware)


# -- Starlette: the matched route's template -----------------------------------------------


@pytest.fixture
def starlette_app(registry: Registry, logs: InMemoryLogStorage) -> Any:
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    async def user(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"user {request.path_params['user_id']}")

    async def item(request: Request) -> PlainTextResponse:
        return PlainTextResponse("item")

    async def fail(request: Request) -> PlainTextResponse:
        raise RuntimeError("handler failed")

    app = Starlette(
        routes=[
            Route("/users/{user_id:int}", user),
            Route("/fail", fail),
            Mount("/api", routes=[Route("/items/{item_id}", item, methods=["GET"])]),
            Mount("/static", app=respond(body=b"file")),
        ]
    )
    app.add_middleware(ObservabilityMiddleware, registry=registry, log_storage=logs)
    return app


async def test_starlette_route_templates(starlette_app: Any, registry: Registry) -> None:
    for path in ("/users/1", "/users/2", "/api/items/a", "/api/items/b", "/static/x.css", "/nope"):
        await call(starlette_app, "GET", path)
    await call(starlette_app, "POST", "/api/items/a")
    assert requests_total(registry) == {
        ("GET", "/users/{user_id}", "200"): 2.0,
        ("GET", "/api/items/{item_id}", "200"): 2.0,
        ("GET", "/static/{path}", "200"): 1.0,
        ("GET", "<unmatched>", "404"): 1.0,
        ("POST", "/api/items/{item_id}", "405"): 1.0,
    }


async def test_starlette_exception_is_a_500(starlette_app: Any, registry: Registry) -> None:
    with pytest.raises(RuntimeError, match="handler failed"):
        await call(starlette_app, "GET", "/fail")
    assert requests_total(registry) == {("GET", "/fail", "500"): 1.0}
    assert in_flight(registry) == 0


async def test_starlette_request_id(starlette_app: Any, logs: InMemoryLogStorage) -> None:
    exchange = await call(starlette_app, "GET", "/users/9", headers={"x-request-id": "s-1"})
    assert exchange.headers["x-request-id"] == "s-1"
    assert entries(logs)[-1].attributes["request_id"] == "s-1"


async def test_starlette_app_under_a_root_path(registry: Registry) -> None:
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def user(request: Any) -> PlainTextResponse:
        return PlainTextResponse("user")

    app = Starlette(routes=[Route("/users/{id}", user)])
    app.add_middleware(ObservabilityMiddleware, registry=registry, logs=False)
    # Served behind a proxy at /svc (uvicorn --root-path /svc): the template is the app's own.
    exchange = await call(app, "GET", "/svc/users/3", root_path="/svc")
    assert exchange.status == 200
    assert requests_total(registry) == {("GET", "/users/{id}", "200"): 1.0}
