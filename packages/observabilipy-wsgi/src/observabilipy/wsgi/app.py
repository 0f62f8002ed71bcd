"""The observability endpoints as a WSGI application (PEP 3333).

:func:`create_wsgi_app` serves core's :class:`~observabilipy.core.http.ObservabilityAPI`
(``/logs``, ``/logs/json``, ``/metrics``, ``/metrics/json``, ``/metrics/prometheus``,
``/health``) to any WSGI server (gunicorn, uWSGI, waitress, mod_wsgi, wsgiref).
It only translates: the request's method, ``PATH_INFO`` (the path below where
the app is mounted: the mount point is in ``SCRIPT_NAME``), the raw query string
and the headers go to :meth:`~observabilipy.core.http.ObservabilityAPI.handle_sync`;
its status, headers and streamed body come back unchanged.

Mount it under a prefix with :func:`mount` (or werkzeug's ``DispatcherMiddleware``,
Bottle's ``app.mount``, a server's own mount option): it sees only the rest of the path.

>>> from observabilipy.core.metrics import Registry
>>> registry = Registry()
>>> registry.counter("jobs", "Jobs run.").inc(2)
>>> app = create_wsgi_app(registry=registry)
>>> def start_response(status, headers, exc_info=None):
...     print(status, dict(headers)["content-type"])
>>> environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics/prometheus", "QUERY_STRING": ""}
>>> print(b"".join(app(environ, start_response)).decode(), end="")
200 OK text/plain; version=0.0.4; charset=utf-8
# HELP jobs_total Jobs run.
# TYPE jobs_total counter
jobs_total 2.0
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.http import ObservabilityAPI, Request

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["create_wsgi_app", "environ_headers", "mount", "request_path"]

# "404 Not Found" for every status the API can answer, built once.
_STATUS_LINES: Final = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


def create_wsgi_app(api: ObservabilityAPI | None = None, **api_options: Any) -> WSGIApplication:
    """A WSGI application serving ``api``, or an API built from ``api_options``.

    ``api_options`` are :class:`~observabilipy.core.http.ObservabilityAPI`'s
    keyword arguments (``log_storage``, ``metrics_storage``, ``registry``,
    ``runtime``, ``health_checks``, ``access``, ``gzip``, ...); give either an
    ``api`` or options, not both.

    The response body streams: the server sends it chunk by chunk, and closing
    the response (as every WSGI server does, also when the client went away)
    closes the storage's cursor at once.

    >>> create_wsgi_app(ObservabilityAPI(), gzip=False)
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: create_wsgi_app: give an api or its options (gzip), not both
    """
    if api is None:
        api = ObservabilityAPI(**api_options)
    elif api_options:
        raise ConfigurationError(
            f"create_wsgi_app: give an api or its options ({', '.join(sorted(api_options))}), "
            "not both"
        )
    elif not isinstance(api, ObservabilityAPI):
        raise ConfigurationError(
            f"create_wsgi_app: api must be an ObservabilityAPI, got {type(api).__name__}"
        )
    handle = api.handle_sync

    def observability_app(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Answer one request with the observability API."""
        response = handle(
            Request(
                environ.get("REQUEST_METHOD", "GET"),
                request_path(environ),
                # PEP 3333: native strings hold the raw bytes as latin-1.
                environ.get("QUERY_STRING", "").encode("latin-1"),
                environ_headers(environ),
            )
        )
        status = _STATUS_LINES.get(response.status) or f"{response.status} Unknown"
        start_response(status, response.headers)
        # The body as it is: a generator's close() (called by the server when the
        # response ends or the client goes away) releases the storage's cursor.
        return response.body

    return observability_app


def request_path(environ: WSGIEnvironment) -> str:
    """``PATH_INFO`` as text: the path below the mount point, percent-decoded.

    WSGI gives it as bytes decoded with latin-1; URLs carry UTF-8, so the bytes
    are decoded again as UTF-8 (an invalid sequence becomes U+FFFD, as ASGI servers do).

    >>> request_path({"PATH_INFO": "/caf\\xc3\\xa9"})
    '/café'
    >>> request_path({})
    ''
    """
    return _text(environ.get("PATH_INFO", ""))


def _text(raw: str) -> str:
    """A WSGI native string (bytes as latin-1) as the UTF-8 text it carries."""
    if raw.isascii():
        return raw
    try:
        return raw.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a server that decoded the bytes already
        return raw


def environ_headers(environ: WSGIEnvironment) -> dict[str, str]:
    """The request headers in ``environ``: lower-case names with dashes.

    ``HTTP_*`` keys, plus ``CONTENT_TYPE`` and ``CONTENT_LENGTH`` (which WSGI
    keeps without the prefix).  A server joins repeated headers with ``", "``
    already, as the API expects.

    >>> environ_headers({"HTTP_ACCEPT_ENCODING": "gzip", "CONTENT_TYPE": "text/plain",
    ...                  "PATH_INFO": "/logs"})
    {'accept-encoding': 'gzip', 'content-type': 'text/plain'}
    """
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].lower().replace("_", "-")] = value
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers[key.lower().replace("_", "-")] = value
    return headers


def mount(app: WSGIApplication, prefix: str, mounted: WSGIApplication) -> WSGIApplication:
    """``app``, with requests under ``prefix`` sent to ``mounted`` instead.

    For plain WSGI apps (and any framework without a mount option of its own):
    a request for ``prefix`` or a path below it goes to ``mounted``, with the
    prefix moved from ``PATH_INFO`` to the end of ``SCRIPT_NAME``, as PEP 3333
    describes; every other request goes to ``app`` untouched.

    >>> def site(environ, start_response):
    ...     start_response("200 OK", [])
    ...     return [b"site"]
    >>> def where(environ, start_response):
    ...     start_response("200 OK", [])
    ...     return [f"{environ['SCRIPT_NAME']}|{environ['PATH_INFO']}".encode()]
    >>> app = mount(site, "/observability", where)
    >>> def call(path):
    ...     return b"".join(app({"PATH_INFO": path, "SCRIPT_NAME": ""}, lambda *a: None))
    >>> call("/observability/logs"), call("/observability"), call("/observabilityx"), call("/")
    (b'/observability|/logs', b'/observability|', b'site', b'site')
    """
    prefix = "/" + prefix.strip("/")
    if prefix == "/":
        raise ConfigurationError(
            "mount: the prefix must name a path below /, such as '/observability'"
        )
    below = prefix + "/"

    def mounting_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Send requests under the prefix to the mounted app."""
        path: str = environ.get("PATH_INFO", "")
        if path == prefix or path.startswith(below):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
            environ["PATH_INFO"] = path[len(prefix) :]
            return mounted(environ, start_response)
        return app(environ, start_response)

    return mounting_app
