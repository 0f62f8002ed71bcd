"""The observability endpoints as an ASGI application: core's HTTP API, translated.

:func:`create_asgi_app` answers ``/logs``, ``/logs/json``, ``/metrics``,
``/metrics/json``, ``/metrics/prometheus`` and ``/health`` below wherever it is
mounted, exactly as :class:`~observabilipy.core.http.ObservabilityAPI` does:
this module only turns an ASGI scope into a core
:class:`~observabilipy.core.http.Request` (:func:`core_request`) and a core
response into ASGI messages (:func:`send_response`).

>>> import asyncio
>>> from observabilipy.core.metrics import Registry
>>> registry = Registry()
>>> registry.counter("jobs", "Jobs run.").inc()
>>> app = create_asgi_app(registry=registry)
>>> sent = []
>>> async def receive():
...     return {"type": "http.disconnect"}
>>> async def send(message):
...     sent.append(message)
>>> scope = {"type": "http", "method": "GET", "path": "/obs/metrics/prometheus",
...          "root_path": "/obs", "query_string": b"", "headers": []}
>>> asyncio.run(app(scope, receive, send))
>>> sent[0]["status"], sent[1]["body"].decode().splitlines()[-1]
(200, 'jobs_total 1.0')
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

from observabilipy.asgi.types import Receive, Scope, Send
from observabilipy.core.errors import ConfigurationError
from observabilipy.core.http import AsyncResponse, ObservabilityAPI, Request

__all__ = ["ObservabilityApp", "core_request", "create_asgi_app", "route_path", "send_response"]

_LIFESPAN_EVENTS: Final = {
    "lifespan.startup": "lifespan.startup.complete",
    "lifespan.shutdown": "lifespan.shutdown.complete",
}


def create_asgi_app(api: ObservabilityAPI | None = None, **api_options: Any) -> ObservabilityApp:
    """An ASGI app serving ``api``, or an :class:`ObservabilityAPI` built from ``api_options``.

    Mount it under any prefix (``Mount("/observability", app)`` in Starlette,
    ``app.mount(...)`` in FastAPI, or as the whole application): the routes are
    relative to the mount, read from ``scope["root_path"]``.

    >>> from observabilipy.core.storage import InMemoryLogStorage
    >>> app = create_asgi_app(log_storage=InMemoryLogStorage(), gzip=False)
    >>> create_asgi_app(ObservabilityAPI(), gzip=False)
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: create_asgi_app: pass either an api or the options to build one, not both (got gzip)
    """
    return ObservabilityApp(_api(api, api_options, "create_asgi_app"))


class ObservabilityApp:
    """The ASGI application :func:`create_asgi_app` returns; ``api`` is what it serves.

    HTTP requests go to the API; lifespan events are acknowledged (so it can
    run alone under a server) and websocket connections are refused.
    """

    __slots__ = ("api",)

    def __init__(self, api: ObservabilityAPI) -> None:
        """Serve ``api``; prefer :func:`create_asgi_app`."""
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI connection."""
        kind = scope["type"]
        if kind == "http":
            request = core_request(scope, route_path(scope))
            response = await self.api.handle(request)
            await send_response(response, receive, send, head=request.method == "HEAD")
        elif kind == "lifespan":
            while True:
                message = await receive()
                reply = _LIFESPAN_EVENTS.get(message["type"])
                if reply is not None:
                    await send({"type": reply})
                if message["type"] == "lifespan.shutdown":
                    return
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    def __repr__(self) -> str:
        """Names the API served."""
        return f"<ObservabilityApp {self.api!r}>"


def route_path(scope: Scope) -> str:
    """The request's path below the mount prefix, ``scope["root_path"]``.

    ASGI servers and Starlette give ``path`` with the prefix included; older
    routers give it already stripped: both work.

    >>> route_path({"path": "/obs/logs", "root_path": "/obs"})
    '/logs'
    >>> route_path({"path": "/obs", "root_path": "/obs"}), route_path({"path": "/logs", "root_path": "/obs"})
    ('', '/logs')
    """
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if not root or not path.startswith(root):
        return path
    if len(path) == len(root):
        return ""
    return path[len(root) :] if path[len(root)] == "/" else path


def core_request(scope: Scope, path: str) -> Request:
    """The core API's request for an ASGI HTTP ``scope``, ``path`` being below the mount.

    Header names are lower-cased and repeated headers joined with ``", "``;
    the query string is passed raw, so core parses and refuses it.

    >>> core_request({"method": "GET", "query_string": b"limit=1",
    ...               "headers": [(b"Accept", b"text/plain"), (b"x-a", b"1"), (b"x-a", b"2")]}, "/logs")
    Request(method='GET', path='/logs', query_string=b'limit=1', headers={'accept': 'text/plain', 'x-a': '1, 2'})
    """
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return Request(scope["method"], path, scope.get("query_string", b""), headers)


async def send_response(
    response: AsyncResponse, receive: Receive, send: Send, *, head: bool = False
) -> None:
    """Send a core ``response`` as ASGI messages; close its body however this ends.

    A body of known length (``content-length``) goes in one message.  A
    streamed body goes chunk by chunk (``more_body=True``) while a watcher
    reads ``receive()``: once the client disconnects (``http.disconnect``) the
    stream stops and the storage's cursor is released at once.  ``head``: a
    HEAD request (its body is empty).

    >>> import asyncio
    >>> from observabilipy.core.http import ObservabilityAPI, Request
    >>> sent = []
    >>> async def send(message):
    ...     sent.append(message)
    >>> async def main():
    ...     response = await ObservabilityAPI().handle(Request("GET", "/nope"))
    ...     await send_response(response, None, send)
    >>> asyncio.run(main())
    >>> sent[0]["status"], sent[1]["more_body"], sent[1]["body"][:21]
    (404, False, b'{"error":"not_found",')
    """
    body = response.body
    try:
        headers = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers
        ]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if head or any(name == b"content-length" for name, _ in headers):
            content = b"".join([chunk async for chunk in body])
            await send({"type": "http.response.body", "body": content, "more_body": False})
            return
        await _stream(body, receive, send)
    finally:
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            await aclose()


async def _stream(body: Any, receive: Receive, send: Send) -> None:
    """Send ``body`` chunk by chunk until its end or the client's disconnect."""
    disconnected = asyncio.Event()
    watcher = asyncio.ensure_future(_watch(receive, disconnected))
    try:
        pending: bytes | None = None
        async for chunk in body:
            if pending is not None:
                await send({"type": "http.response.body", "body": pending, "more_body": True})
                # Let the watcher run: a server may accept sends after a disconnect
                # without ever pausing this task.
                await asyncio.sleep(0)
            if disconnected.is_set():
                return
            pending = chunk
        await send({"type": "http.response.body", "body": pending or b"", "more_body": False})
    finally:
        watcher.cancel()
        with contextlib.suppress(BaseException):
            await watcher


async def _watch(receive: Receive, disconnected: asyncio.Event) -> None:
    """Read events until ``http.disconnect``; the request body is discarded."""
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except Exception:  # a server that fails here: stop watching, keep streaming
        return
    disconnected.set()


def _api(api: ObservabilityAPI | None, options: dict[str, Any], who: str) -> ObservabilityAPI:
    """``api`` or one built from ``options``; both given is a configuration error."""
    if api is None:
        return ObservabilityAPI(**options)
    if options:
        raise ConfigurationError(
            f"{who}: pass either an api or the options to build one, not both "
            f"(got {', '.join(sorted(options))})"
        )
    if not isinstance(api, ObservabilityAPI):
        raise ConfigurationError(
            f"{who}: api must be an ObservabilityAPI, got {type(api).__name__}"
        )
    return api
