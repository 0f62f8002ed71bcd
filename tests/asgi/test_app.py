"""create_asgi_app: every conformance case, mounted under a prefix, byte for byte as core answers.

The cases run through a small ASGI driver (the app called directly, as a server
would) and through httpx's ASGITransport; then what the cases cannot show:
streaming in several messages, the client's disconnect, lifespan, websockets,
Starlette mounts.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.asgi._asgi_support import call, http_scope, lifespan
else:
    from _asgi_support import call, http_scope, lifespan

from observabilipy.asgi import Message, create_asgi_app, route_path
from observabilipy.core.errors import ConfigurationError
from observabilipy.core.http import ObservabilityAPI
from observabilipy.core.http.conformance import (
    BULK_LOGS,
    CASES,
    Answer,
    Case,
    build_api,
    core_answer,
)
from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry
from observabilipy.core.storage import InMemoryLogStorage

PREFIX = "/observability"

# httpx refuses to build a URL whose query holds a raw non-ASCII byte.
_HTTPX_CANNOT_SEND = {case.id for case in CASES if not case.query.isascii()}


def _same_as_core(case: Case, answer: Answer) -> None:
    """The case's own checks, then every header and byte equal to what core answers."""
    case.verify(answer)
    expected = core_answer(case)
    assert answer.status == expected.status
    assert dict(answer.headers) == dict(expected.headers)
    if expected.headers.get("content-encoding") == "gzip":
        # gzip streams are equal once decompressed (the compressor's chunks may differ).
        assert gzip.decompress(answer.body) == gzip.decompress(expected.body)
    else:
        assert answer.body == expected.body


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
async def test_conformance_direct(case: Case) -> None:
    app = create_asgi_app(build_api(case.api))
    exchange = await call(
        app, case.method, PREFIX + case.path, case.query, case.headers, root_path=PREFIX
    )
    _same_as_core(case, exchange.answer)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
async def test_conformance_httpx(case: Case) -> None:
    httpx = pytest.importorskip("httpx")
    if case.id in _HTTPX_CANNOT_SEND:
        pytest.skip("httpx cannot send a raw non-ASCII query byte (covered by the direct driver)")
    transport = httpx.ASGITransport(app=create_asgi_app(build_api(case.api)), root_path=PREFIX)
    url = httpx.URL("http://testserver" + PREFIX + case.path, query=case.query)
    # A bare Request: no default headers (httpx's client would add accept-encoding).
    response = await transport.handle_async_request(
        httpx.Request(case.method, url, headers=dict(case.headers))
    )
    body = b"".join([chunk async for chunk in response.stream])
    headers = {
        name.decode().lower(): value.decode("latin-1") for name, value in response.headers.raw
    }
    _same_as_core(case, Answer(response.status_code, headers, body))


async def test_mounted_by_old_convention_path_already_stripped() -> None:
    # Routers that strip the prefix from `path` themselves (ASGI before 2.3's clarification).
    app = create_asgi_app(build_api("default"))
    exchange = await call(app, "GET", "/logs", b"limit=1", root_path=PREFIX)
    assert exchange.status == 200
    assert exchange.body.count(b"\n") == 1


async def test_served_alone_at_the_root() -> None:
    app = create_asgi_app(build_api("default"))
    assert (await call(app, "GET", "/health")).status == 200
    assert (await call(app, "GET", "/")).status == 404


def test_route_path() -> None:
    assert route_path({"path": "/obs/logs", "root_path": "/obs"}) == "/logs"
    assert route_path({"path": "/obs", "root_path": "/obs"}) == ""
    assert route_path({"path": "/observe/logs", "root_path": "/obs"}) == "/observe/logs"
    assert route_path({"path": "/logs"}) == "/logs"


async def test_a_stream_goes_in_several_messages() -> None:
    app = create_asgi_app(build_api("bulk"))
    exchange = await call(app, "GET", "/logs", b"limit=3000")
    assert "content-length" not in exchange.headers
    bodies = exchange.messages[1:]
    assert len(bodies) > 2
    assert all(message["more_body"] for message in bodies[:-1])
    assert bodies[-1]["more_body"] is False
    assert exchange.body.count(b"\n") == BULK_LOGS


async def test_a_known_body_goes_in_one_message() -> None:
    app = create_asgi_app(build_api("default"))
    exchange = await call(app, "GET", "/logs")
    assert len(exchange.messages) == 2
    assert exchange.messages[1]["more_body"] is False
    assert int(exchange.headers["content-length"]) == len(exchange.body)


async def test_head_sends_headers_and_an_empty_body() -> None:
    app = create_asgi_app(build_api("bulk"))
    exchange = await call(app, "HEAD", "/logs", b"limit=3000")
    assert exchange.status == 200
    assert exchange.body == b""
    assert exchange.messages[-1]["more_body"] is False


class _TrackedStorage(InMemoryLogStorage):
    """Counts the reads it started and the ones closed (their cursor released)."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = 0
        self.closed = 0
        self.yielded = 0

    def read(self, **filters: Any) -> AsyncIterator[LogEntry]:
        inner = super().read(**filters)
        self.opened += 1

        async def tracked() -> AsyncIterator[LogEntry]:
            try:
                async for entry in inner:
                    self.yielded += 1
                    yield entry
            finally:
                self.closed += 1

        return tracked()


def _tracked_api(count: int) -> tuple[ObservabilityAPI, _TrackedStorage]:
    storage = _TrackedStorage()
    storage.write_many_sync(
        [LogEntry(timestamp=1.0 + n, level="INFO", message=f"entry {n}") for n in range(count)]
    )
    return ObservabilityAPI(log_storage=storage, gzip=False), storage


async def test_a_disconnect_stops_the_stream_and_releases_the_storage() -> None:
    api, storage = _tracked_api(10_000)
    app = create_asgi_app(api)
    exchange = await asyncio.wait_for(
        call(app, "GET", "/logs", b"limit=10000&q=entry", disconnect_after=3), timeout=10
    )
    assert exchange.status == 200
    assert storage.opened == storage.closed == 1
    assert storage.yielded < 10_000  # it stopped reading, not only sending
    assert exchange.messages[-1].get("more_body") is True  # the body never ended


async def test_the_body_is_released_when_send_fails() -> None:
    api, storage = _tracked_api(10_000)
    app = create_asgi_app(api)
    sent = 0

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        nonlocal sent
        sent += 1
        if sent == 3:
            raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        await app(http_scope("GET", "/logs", b"limit=10000&q=entry"), receive, send)
    assert storage.opened == storage.closed == 1


async def test_the_request_body_is_ignored_and_post_gets_405() -> None:
    app = create_asgi_app(build_api("default"))
    messages = [
        {"type": "http.request", "body": b"a" * 10, "more_body": True},
        {"type": "http.request", "body": b"b", "more_body": False},
    ]
    sent: list[Message] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(http_scope("POST", "/logs"), receive, send)
    assert sent[0]["status"] == 405
    assert (b"allow", b"GET, HEAD") in sent[0]["headers"]


async def test_lifespan_is_acknowledged() -> None:
    app = create_asgi_app(build_api("default"))
    assert await lifespan(app) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_websocket_is_refused() -> None:
    app = create_asgi_app(build_api("default"))
    sent: list[Message] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "websocket", "path": "/logs", "headers": []}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1000}]


def test_either_an_api_or_its_options() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        create_asgi_app(ObservabilityAPI(), registry=Registry())
    with pytest.raises(ConfigurationError, match="api must be an ObservabilityAPI"):
        create_asgi_app("api")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="default_limit"):
        create_asgi_app(default_limit=0)
    app = create_asgi_app(registry=Registry(), gzip=False)
    assert isinstance(app.api, ObservabilityAPI)
    assert "ObservabilityApp" in repr(app)


async def test_mounted_in_starlette() -> None:
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.routing import Mount

    api = build_api("default")
    starlette_app = Starlette(routes=[Mount(PREFIX, app=create_asgi_app(api))])
    exchange = await call(starlette_app, "GET", PREFIX + "/logs", b"level=warn")
    assert exchange.status == 200
    assert exchange.body.count(b"\n") == 1
    exchange = await call(starlette_app, "GET", PREFIX + "/logs", b"since=abc")
    assert exchange.status == 400
    assert exchange.answer.json()["parameter"] == "since"
