"""Request metrics, one log entry and a request id per request, for any WSGI app.

:class:`ObservabilityMiddleware` wraps a WSGI application and records every
request through core's :class:`~observabilipy.core.http.RequestTelemetry`:
``http_requests_total{method,route,status}``, ``http_request_duration_seconds``,
``http_requests_in_flight``, one log entry, and a request id that is echoed in
the response and present in the log context while the application runs (so
its own log entries carry it).

``route`` is the framework's route template, never the raw path; WSGI has no
routing of its own, so a ``route_resolver(environ) -> str | None`` supplies it:

- :func:`environ_route` (the default) reads ``environ["observabilipy.route"]``,
  which any application or framework hook may set;
- :func:`flask_route` reads Flask's matched rule (``/users/<int:id>``); use
  :func:`init_flask`, which also installs the hook that makes it exact;
- :func:`bottle_route` reads Bottle's matched route.

A request no route matched is labelled ``<unmatched>`` (all of them share it).
An application that answers an exception with a 5xx itself may put it in
``environ["observabilipy.error"]`` so that the log entry names it (:func:`init_flask`
does this for Flask).
The request counts as in flight until the server closes the response, so a
streamed body is included; an exception raised by the application (or while
its body streams) is recorded as status 500 and raised again, untouched.
Nothing the telemetry does (a failing log storage, say) reaches the client.

>>> from observabilipy.core.metrics import Registry
>>> def hello(environ, start_response):
...     start_response("200 OK", [("content-type", "text/plain")])
...     return [b"hello"]
>>> registry = Registry()
>>> app = ObservabilityMiddleware(hello, registry=registry, route_resolver=lambda e: "/hello")
>>> def start_response(status, headers, exc_info=None):
...     print(status, headers)
>>> body = app({"REQUEST_METHOD": "GET", "PATH_INFO": "/hello",
...             "HTTP_X_REQUEST_ID": "r-1"}, start_response)
200 OK [('content-type', 'text/plain'), ('x-request-id', 'r-1')]
>>> b"".join(body), body.close()
(b'hello', None)
>>> registry.get("http_requests").labels(method="GET", route="/hello", status="200").value
1.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.http.telemetry import RequestScope, RequestTelemetry
from observabilipy.wsgi.app import _text

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "ERROR_KEY",
    "ROUTE_KEY",
    "ObservabilityMiddleware",
    "RouteResolver",
    "bottle_route",
    "environ_route",
    "flask_route",
    "init_flask",
]

#: The environ key a WSGI application (or a framework hook) may set to its route template.
ROUTE_KEY: Final = "observabilipy.route"

#: The environ key an application may set to the exception it answered with a 5xx itself
#: (as Flask does with a view's exception), so that the log entry names it.
ERROR_KEY: Final = "observabilipy.error"

#: Gives the route template a request matched, from its environ (None: no route matched).
RouteResolver = Callable[["WSGIEnvironment"], "str | None"]

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]


def environ_route(environ: WSGIEnvironment) -> str | None:
    """The route template stored in ``environ["observabilipy.route"]``, if any.

    >>> environ_route({ROUTE_KEY: "/users/{id}"}), environ_route({})
    ('/users/{id}', None)
    """
    route = environ.get(ROUTE_KEY)
    return route if isinstance(route, str) else None


def flask_route(environ: WSGIEnvironment) -> str | None:
    """The Flask rule the request matched, such as ``/users/<int:id>`` (None: unmatched).

    Reads what :func:`init_flask`'s hook stored, else the rule of the Flask
    request still bound to ``environ``.  It never imports Flask.

    >>> class Rule:
    ...     rule = "/users/<int:id>"
    >>> class FlaskRequest:
    ...     url_rule = Rule()
    >>> flask_route({"werkzeug.request": FlaskRequest()}), flask_route({})
    ('/users/<int:id>', None)
    """
    route = environ.get(ROUTE_KEY)
    if isinstance(route, str):
        return route
    rule = getattr(environ.get("werkzeug.request"), "url_rule", None)
    template = getattr(rule, "rule", None)
    return template if isinstance(template, str) else None


def bottle_route(environ: WSGIEnvironment) -> str | None:
    """The Bottle route the request matched, such as ``/hello/<name>`` (None: unmatched).

    Bottle keeps the matched route in ``environ["bottle.route"]``; this never imports Bottle.

    >>> class Route:
    ...     rule = "/hello/<name>"
    >>> bottle_route({"bottle.route": Route()}), bottle_route({})
    ('/hello/<name>', None)
    """
    route = environ.get(ROUTE_KEY)
    if isinstance(route, str):
        return route
    template = getattr(environ.get("bottle.route"), "rule", None)
    return template if isinstance(template, str) else None


class ObservabilityMiddleware:
    """Record every request of the wrapped WSGI ``app`` (see the module docstring).

    - ``telemetry``: a :class:`~observabilipy.core.http.RequestTelemetry`, or
      ``telemetry_options`` to build one (``registry``, ``log_storage``,
      ``metrics``, ``logs``, ``request_ids``, ``in_flight``,
      ``request_id_header``, ``exclude_paths``, ``buckets``, ``unmatched_route``);
      give one or the other;
    - ``route_resolver``: gives the route template from the environ; it is asked
      when the application starts its response, and again when the response
      ends if it had no answer then.

    The path the telemetry sees (for ``exclude_paths`` and the log entry) is
    ``SCRIPT_NAME + PATH_INFO``: the whole path of the request.

    >>> ObservabilityMiddleware(lambda e, s: [], telemetry=RequestTelemetry(), logs=False)
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: ObservabilityMiddleware: give a telemetry or its options (logs), not both
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        telemetry: RequestTelemetry | None = None,
        route_resolver: RouteResolver | None = None,
        **telemetry_options: Any,
    ) -> None:
        if telemetry is None:
            telemetry = RequestTelemetry(**telemetry_options)
        elif telemetry_options:
            raise ConfigurationError(
                f"ObservabilityMiddleware: give a telemetry or its options "
                f"({', '.join(sorted(telemetry_options))}), not both"
            )
        elif not isinstance(telemetry, RequestTelemetry):
            raise ConfigurationError(
                "ObservabilityMiddleware: telemetry must be a RequestTelemetry, "
                f"got {type(telemetry).__name__}"
            )
        if route_resolver is not None and not callable(route_resolver):
            raise ConfigurationError("route_resolver: must be callable, such as flask_route")
        self.app = app
        self.telemetry = telemetry
        self.route_resolver: RouteResolver = route_resolver or environ_route

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request through the wrapped app, recording it."""
        path = _text(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
        scope = self.telemetry.start(
            method=environ.get("REQUEST_METHOD", "GET"),
            path=path,
            headers=_EnvironHeaders(environ),
        )
        if scope is None:
            return self.app(environ, start_response)
        request = _Request(scope, environ, self.route_resolver, start_response)
        try:
            result = self.app(environ, request.start_response)
        except BaseException as error:
            request.finish(error, failed=True)
            raise
        return _Response(result, request)


def init_flask(app: Any, **options: Any) -> ObservabilityMiddleware:
    """Record every request of the Flask ``app``, labelled by its route rules.

    Wraps ``app.wsgi_app`` in :class:`ObservabilityMiddleware` with
    :func:`flask_route`, and adds a first ``before_request`` hook that stores
    the matched rule in the environ (so the label is right even when a view
    raises).  An exception Flask answers with its 500 page is noted (Flask's
    ``got_request_exception`` signal), so the request's log entry names it.
    ``options`` go to the middleware (``telemetry`` or the telemetry options).
    Returns the middleware.  Call it once per app.

    >>> from observabilipy.core.metrics import Registry
    >>> from flask import Flask
    >>> flask_app = Flask("shop")
    >>> @flask_app.get("/items/<int:item_id>")
    ... def item(item_id):
    ...     return {"id": item_id}
    >>> middleware = init_flask(flask_app, registry=Registry())
    >>> response = flask_app.test_client().get("/items/3")
    >>> response.json, len(response.headers["x-request-id"])
    ({'id': 3}, 32)
    >>> response.close()  # the server closes the response: the request is recorded
    >>> middleware.telemetry.registry.get("http_requests").labels(
    ...     method="GET", route="/items/<int:item_id>", status="200").value
    1.0
    """
    middleware = ObservabilityMiddleware(app.wsgi_app, route_resolver=flask_route, **options)

    def store_flask_route() -> None:
        """Put the rule Flask matched into the environ, for :func:`flask_route`."""
        from flask import request  # Flask is installed: it is calling this hook.

        rule = request.url_rule
        if rule is not None:
            request.environ[ROUTE_KEY] = rule.rule

    def note_exception(sender: Any, exception: BaseException, **extra: Any) -> None:
        """Keep the exception Flask answers with a 500, for the request's log entry."""
        from flask import request

        request.environ[ERROR_KEY] = exception

    from flask import got_request_exception  # Flask is installed: app is a Flask app.

    got_request_exception.connect(note_exception, app, weak=False)
    app.before_request_funcs.setdefault(None, []).insert(0, store_flask_route)
    app.wsgi_app = middleware
    return middleware


class _EnvironHeaders(Mapping[str, str]):
    """The request headers of a WSGI environ, read in place (lower-case names)."""

    __slots__ = ("_environ",)

    def __init__(self, environ: WSGIEnvironment) -> None:
        self._environ = environ

    def __getitem__(self, name: str) -> str:
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        value = self._environ[key]
        if not isinstance(value, str):
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        for key in self._environ:
            if key.startswith("HTTP_"):
                yield key[5:].lower().replace("_", "-")
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                yield key.lower().replace("_", "-")

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Request:
    """What the middleware knows of one recorded request while it is served."""

    __slots__ = ("_start_response", "environ", "resolver", "route", "scope", "status")

    def __init__(
        self,
        scope: RequestScope,
        environ: WSGIEnvironment,
        resolver: RouteResolver,
        start_response: StartResponse,
    ) -> None:
        self.scope = scope
        self.environ = environ
        self.resolver = resolver
        self._start_response = start_response
        self.status: int | None = None
        self.route: str | None = None

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: _ExcInfo | None = None,
        /,
    ) -> Callable[[bytes], object]:
        """The app's start_response: notes the status and route, adds the request id."""
        try:
            self.status = int(status[:3])
        except ValueError:
            self.status = None
        if self.route is None:
            self.route = self._resolve()
        extra = self.scope.response_headers()
        if extra:
            present = {name.lower() for name, _ in headers}
            headers = [*headers, *(item for item in extra if item[0] not in present)]
        return self._start_response(status, headers, exc_info)

    def finish(self, error: BaseException | None, *, failed: bool = False) -> None:
        """End the recording (once): status 500 when the app raised or never started a response."""
        if self.route is None:
            self.route = self._resolve()
        status = 500 if failed or self.status is None else self.status
        if error is None and status >= 500:
            handled = self.environ.get(ERROR_KEY)
            if isinstance(handled, BaseException):
                error = handled
        self.scope.finish(status=status, route=self.route, error=error)

    def _resolve(self) -> str | None:
        try:
            return self.resolver(self.environ)
        except Exception:
            return None


class _Response:
    """The app's response iterable, ending the recording when the server closes it."""

    __slots__ = ("_iterator", "_request", "_result")

    def __init__(self, result: Iterable[bytes], request: _Request) -> None:
        self._result = result
        self._request = request
        self._iterator: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        iterator = self._iterator
        if iterator is None:
            iterator = self._iterator = iter(self._result)
        try:
            return next(iterator)
        except StopIteration:
            raise
        except BaseException as error:
            self._request.finish(error, failed=True)
            raise

    def close(self) -> None:
        """Close the app's response (always), then end the recording."""
        error: BaseException | None = None
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._request.finish(error, failed=error is not None)
