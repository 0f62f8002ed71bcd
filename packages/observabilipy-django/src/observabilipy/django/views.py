"""Django views serving the observability API: a sync view and an async one.

Each view hands the request (method, the path below where the view is
included, the raw query string and the headers) to core's
:class:`~observabilipy.core.http.ObservabilityAPI` and sends its answer back:
status, headers and bytes unchanged.  A complete body becomes an
``HttpResponse``; a long one streams as a ``StreamingHttpResponse``, closed (and
with it the storage's cursor) when Django closes the response.

- :func:`sync_view` uses ``handle_sync``: for Django served by WSGI (gunicorn,
  uWSGI, mod_wsgi, ``runserver``);
- :func:`async_view` uses ``await handle``: for Django served by ASGI (uvicorn,
  daphne, hypercorn), where it streams without a thread.

Both are exempt from the CSRF check: the API only reads, and answers other
methods with its own 405.

Use them through :func:`observabilipy.django.urls.observability_urls`.

>>> import inspect
>>> from observabilipy.core.http import ObservabilityAPI
>>> api = ObservabilityAPI()
>>> inspect.iscoroutinefunction(sync_view(api)), inspect.iscoroutinefunction(async_view(api))
(False, True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.http import HttpResponse, StreamingHttpResponse
from observabilipy.core.http import ObservabilityAPI, Request
from observabilipy.django import conf

__all__ = ["api_request", "async_view", "sync_view"]

View = Callable[..., Any]


def sync_view(api: ObservabilityAPI | None = None) -> View:
    """A sync view answering with ``api`` (None: the one the settings describe, at first use).

    The URL pattern passes ``path``, the part of the URL below the include.
    """
    get_api = _api_getter(api)

    def observability(request: Any, path: str = "") -> Any:
        """Answer one request with the observability API (``handle_sync``)."""
        response = get_api().handle_sync(api_request(request, path))
        headers = dict(response.headers)
        if "content-length" in headers:
            # Complete: the content-length the API gave is kept (also for HEAD).
            return HttpResponse(b"".join(response.body), status=response.status, headers=headers)
        return StreamingHttpResponse(response.body, status=response.status, headers=headers)

    return _exempt(observability)


def async_view(api: ObservabilityAPI | None = None) -> View:
    """An async view answering with ``api`` (None: the one the settings describe).

    Serve it under ASGI: under WSGI Django would first read a streamed body
    whole into memory (use :func:`sync_view` there).
    """
    get_api = _api_getter(api)

    async def observability(request: Any, path: str = "") -> Any:
        """Answer one request with the observability API (``await handle``)."""
        response = await get_api().handle(api_request(request, path))
        headers = dict(response.headers)
        if "content-length" in headers:
            body = b"".join([chunk async for chunk in response.body])
            return HttpResponse(body, status=response.status, headers=headers)
        return StreamingHttpResponse(response.body, status=response.status, headers=headers)

    return _exempt(observability)


def api_request(request: Any, path: str) -> Request:
    """The core :class:`~observabilipy.core.http.Request` for a Django ``request``.

    ``path`` is what the URL pattern captured below the include (given a
    leading ``/`` when the include ended with one); the query string is the raw
    bytes the client sent: from the ASGI scope, or ``QUERY_STRING`` encoded
    back with latin-1 as WSGI requires.

    >>> class DjangoRequest:
    ...     method = "GET"
    ...     META = {"QUERY_STRING": "q=caf\\xc3\\xa9", "HTTP_ACCEPT": "text/plain"}
    ...     headers = {"Accept": "text/plain"}
    >>> api_request(DjangoRequest(), "/logs")
    Request(method='GET', path='/logs', query_string=b'q=caf\\xc3\\xa9', headers={'accept': 'text/plain'})
    """
    scope = getattr(request, "scope", None)
    query: Any = scope.get("query_string", b"") if isinstance(scope, dict) else None
    if query is None:
        query = request.META.get("QUERY_STRING", "")
    if isinstance(query, str):
        query = query.encode("latin-1")
    if path and not path.startswith("/"):
        path = "/" + path
    headers = {name.lower(): value for name, value in request.headers.items()}
    return Request(request.method, path, query, headers)


def _exempt(view: View) -> View:
    """Exempt ``view`` from Django's CSRF check: the API only reads, and answers any
    other method with its own 405 (``CsrfViewMiddleware`` would answer 403 first)."""
    view.csrf_exempt = True  # type: ignore[attr-defined]  # as csrf_exempt() does; async too
    return view


def _api_getter(api: ObservabilityAPI | None) -> Callable[[], ObservabilityAPI]:
    if api is None:
        return conf.get_api
    if not isinstance(cast(object, api), ObservabilityAPI):
        from observabilipy.core.errors import ConfigurationError

        raise ConfigurationError(f"api: must be an ObservabilityAPI, got {type(api).__name__}")
    return lambda: api
