"""ASGI middleware recording every HTTP request with core's :class:`RequestTelemetry`.

Wrap any ASGI application (Starlette, FastAPI, Quart, Litestar, raw ASGI):
each HTTP request is counted and timed under its route template, logged once,
given a request id (echoed in the response and present in the log context of
the handler's own logs).  What is recorded and how is core's
:class:`~observabilipy.core.http.RequestTelemetry`; this module only finds the
method, path, headers, status and route in ASGI terms.

The route template comes from the app after routing: an app may set
``scope["observabilipy.route"]`` (:data:`ROUTE_KEY`) itself, as a raw ASGI app
does; Starlette and FastAPI leave the matched route in ``scope["route"]`` (its
``path_format``, with the prefixes of the mounts it sits under); for other
frameworks pass ``route_resolver``, a function of the scope.  Without a
template a request is labelled as unmatched, never by its raw path.

>>> import asyncio
>>> from observabilipy.core.metrics import Registry
>>> async def hello(scope, receive, send):
...     await send({"type": "http.response.start", "status": 200, "headers": []})
...     await send({"type": "http.response.body", "body": b"hi"})
>>> registry = Registry()
>>> app = ObservabilityMiddleware(hello, registry=registry, route_resolver=lambda scope: "/hello")
>>> sent = []
>>> async def send(message):
...     sent.append(message)
>>> scope = {"type": "http", "method": "GET", "path": "/hello", "headers": [(b"x-request-id", b"r-1")]}
>>> asyncio.run(app(scope, None, send))
>>> sent[0]["headers"]
[(b'x-request-id', b'r-1')]
>>> registry.get("http_requests").labels(method="GET", route="/hello", status="200").value
1.0
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final

from observabilipy.asgi.app import route_path
from observabilipy.asgi.types import ASGIApp, Message, Receive, Scope, Send
from observabilipy.core.errors import ConfigurationError
from observabilipy.core.http import RequestTelemetry
from observabilipy.core.metrics import Registry
from observabilipy.core.ports import LogStoragePort

__all__ = ["ROUTE_KEY", "ObservabilityMiddleware", "RouteResolver", "starlette_route"]

_NO_HEADERS: Final[Mapping[str, str]] = {}

#: The scope key where an app may put the route template it matched (as in observabilipy.wsgi).
ROUTE_KEY: Final = "observabilipy.route"

#: Finds the route template of a request from its scope, once the app has routed it.
RouteResolver = Callable[[Scope], "str | None"]


class ObservabilityMiddleware:
    """Record each HTTP request of ``app`` (see the module docstring).

    - ``telemetry``: the :class:`RequestTelemetry` to record with; or pass its
      options (``registry``, ``log_storage``, ``metrics``, ``logs``,
      ``request_ids``, ``in_flight``, ``request_id_header``, ``exclude_paths``,
      ``buckets``, ``unmatched_route``) here, None meaning its default;
    - ``route_resolver``: ``scope -> template or None``, called after the app
      handled the request; by default ``scope[ROUTE_KEY]`` when the app set
      it, else :func:`starlette_route`.

    Lifespan and websocket connections pass through untouched.  An exception
    raised by the app is recorded as a 500 and re-raised unchanged.  The
    request id header is added to the response unless the app set it.
    Paths for ``exclude_paths`` and the log entry are below ``root_path``.
    """

    __slots__ = ("_header", "_resolver", "app", "telemetry")

    def __init__(
        self,
        app: ASGIApp,
        *,
        telemetry: RequestTelemetry | None = None,
        route_resolver: RouteResolver | None = None,
        registry: Registry | None = None,
        log_storage: LogStoragePort | None = None,
        metrics: bool | None = None,
        logs: bool | None = None,
        request_ids: bool | None = None,
        in_flight: bool | None = None,
        request_id_header: str | None = None,
        exclude_paths: Collection[str] | None = None,
        buckets: Sequence[float] | None = None,
        unmatched_route: str | None = None,
    ) -> None:
        """Wrap ``app``; options left None take :class:`RequestTelemetry`'s defaults."""
        options: dict[str, Any] = {
            name: value
            for name, value in (
                ("registry", registry),
                ("log_storage", log_storage),
                ("metrics", metrics),
                ("logs", logs),
                ("request_ids", request_ids),
                ("in_flight", in_flight),
                ("request_id_header", request_id_header),
                ("exclude_paths", exclude_paths),
                ("buckets", buckets),
                ("unmatched_route", unmatched_route),
            )
            if value is not None
        }
        if telemetry is None:
            telemetry = RequestTelemetry(**options)
        elif options:
            raise ConfigurationError(
                "ObservabilityMiddleware: pass either telemetry or its options, not both "
                f"(got {', '.join(sorted(options))})"
            )
        if route_resolver is not None and not callable(route_resolver):
            raise ConfigurationError("route_resolver: must be callable, scope -> str | None")
        #: The wrapped application.
        self.app = app
        #: What records the requests.
        self.telemetry = telemetry
        self._resolver = route_resolver
        self._header = telemetry.request_id_header.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection, recording it when it is an HTTP request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = scope.get("root_path", "")
        header = self._header
        size = len(header)
        given: Mapping[str, str] = _NO_HEADERS
        for name, value in scope.get("headers", ()):
            # ASGI servers send lower-case names; compare the others only when the length fits.
            if len(name) == size and (name == header or name.lower() == header):
                given = {self.telemetry.request_id_header: value.decode("latin-1")}
                break
        request = self.telemetry.start(
            method=scope["method"], path=route_path(scope), headers=given
        )
        if request is None:
            await self.app(scope, receive, send)
            return
        echoed = None if request.request_id is None else request.request_id.encode("latin-1")
        status: int | None = None

        async def send_recorded(message: Message) -> None:
            nonlocal status
            if status is None and message["type"] == "http.response.start":
                status = message["status"]
                if echoed is not None:
                    headers = message.get("headers", ())
                    for name, _ in headers:
                        if len(name) == size and name.lower() == header:
                            break  # the app set its own
                    else:
                        message = {**message, "headers": [*headers, (header, echoed)]}
            await send(message)

        try:
            await self.app(scope, receive, send_recorded)
        except BaseException as error:
            request.finish(status=500, route=self._route(scope, root), error=error)
            raise
        # An app that never started a response: the server answers 500.
        request.finish(status=500 if status is None else status, route=self._route(scope, root))

    def _route(self, scope: Scope, root: str) -> str | None:
        """The route template, or None; a failing resolver counts as unmatched."""
        try:
            if self._resolver is not None:
                route = self._resolver(scope)
            else:
                route = scope.get(ROUTE_KEY)
                if route is None:
                    route = starlette_route(scope, root_path=root)
        except Exception:
            return None
        return route if isinstance(route, str) else None

    def __repr__(self) -> str:
        """Names the wrapped app."""
        return f"<ObservabilityMiddleware app={self.app!r}>"


def starlette_route(scope: Scope, *, root_path: str = "") -> str | None:
    """The template of the route Starlette or FastAPI matched, or None.

    Starlette's router leaves the matched route in ``scope["route"]`` and each
    mount it passed through in ``scope["root_path"]``; the template is the
    mounts' prefix (beyond ``root_path``, where the app itself is mounted)
    followed by the route's ``path_format``.  A route that is itself a mount
    of another app gives its own template (``/static/{path}``).  Note
    that a mount with parameters in its own path (``/{tenant}``) puts their
    values into the prefix.

    >>> class Route:
    ...     path_format = "/users/{id}"
    >>> starlette_route({"route": Route(), "root_path": "/api"})
    '/api/users/{id}'
    >>> starlette_route({"path": "/nope"}) is None
    True
    """
    route = scope.get("route")
    if route is None:
        return None
    template = getattr(route, "path_format", None)
    if not isinstance(template, str):
        template = getattr(route, "path", None)
        if not isinstance(template, str):
            return None
    if hasattr(route, "routes"):  # a Mount: its own match is in root_path already
        return template
    mounted: str = scope.get("root_path", "")
    if mounted != root_path and mounted.startswith(root_path):
        return mounted[len(root_path) :] + template
    return template
