"""Request metrics, one log entry and a request id per request, for Django.

Add :class:`ObservabilityMiddleware` to ``MIDDLEWARE`` (near the top, so that
it times the others too)::

    MIDDLEWARE = [
        "observabilipy.django.middleware.ObservabilityMiddleware",
        "django.middleware.security.SecurityMiddleware",
        ...
    ]

It records every request through core's
:class:`~observabilipy.core.http.RequestTelemetry` (the one the ``OBSERVABILIPY``
setting's ``telemetry`` key describes): ``http_requests_total{method,route,status}``,
``http_request_duration_seconds{method,route}``, ``http_requests_in_flight``,
one log entry per request, and a request id echoed in the response and present
in the log context while the view runs (its own log entries carry it).

- ``route`` is the URL pattern the request matched, as Django spells it
  (``request.resolver_match.route``): ``/users/<int:user_id>``, never the raw
  path; a request no pattern matched is labelled ``<unmatched>``;
- it works under WSGI and ASGI (sync and async capable: Django runs it in the
  mode of the stack, without a thread switch);
- a streamed response counts as in flight until Django closes it; any other
  is recorded when the view has answered;
- an exception a view raises is what Django turns into a 500 response: it is
  recorded with that status and logged at ERROR with the exception's type.

Nothing the telemetry does (a failing log storage, say) reaches the client.

>>> ObservabilityMiddleware.sync_capable, ObservabilityMiddleware.async_capable
(True, True)
>>> route_of(None)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from observabilipy.core.http.telemetry import RequestScope, RequestTelemetry
from observabilipy.django import conf

__all__ = ["ObservabilityMiddleware", "route_of"]

# Attributes set on the request: the scope recording it, and the exception its view raised.
_SCOPE: Final = "_observabilipy_scope"
_ERROR: Final = "_observabilipy_error"


class ObservabilityMiddleware:
    """Django middleware recording every request (see the module docstring).

    ``telemetry``: a :class:`~observabilipy.core.http.RequestTelemetry` to record
    with (Django passes only ``get_response``: then the settings' one).
    """

    sync_capable = True
    async_capable = True

    def __init__(
        self, get_response: Callable[[Any], Any], telemetry: RequestTelemetry | None = None
    ) -> None:
        self.get_response = get_response
        self.telemetry = conf.get_telemetry() if telemetry is None else telemetry
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        """Record ``request`` while the rest of the stack answers it."""
        if self.async_mode:
            return self.__acall__(request)
        scope = start(self.telemetry, request)
        if scope is None:
            return self.get_response(request)
        try:
            response = self.get_response(request)
        except BaseException as error:
            scope.finish(status=500, route=route_of(request), error=error)
            raise
        return respond(scope, request, response, route_of(request))

    async def __acall__(self, request: Any) -> Any:
        """The async twin of ``__call__`` (Django served by ASGI)."""
        scope = start(self.telemetry, request)
        if scope is None:
            return await self.get_response(request)
        try:
            response = await self.get_response(request)
        except BaseException as error:
            scope.finish(status=500, route=route_of(request), error=error)
            raise
        return respond(scope, request, response, route_of(request))

    def process_exception(self, request: Any, exception: Exception) -> None:
        """Note the exception a view raised (for the log entry); Django answers it."""
        setattr(request, _ERROR, exception)


def route_of(request: Any) -> str | None:
    """The route template ``request`` matched, with a leading ``/`` (None: unmatched).

    >>> class Match:
    ...     route = "users/<int:user_id>"
    >>> class DjangoRequest:
    ...     resolver_match = Match()
    >>> route_of(DjangoRequest())
    '/users/<int:user_id>'
    """
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    if not isinstance(route, str):
        return None
    return "/" + route.removeprefix("^").removeprefix("/")


def start(telemetry: RequestTelemetry, request: Any) -> RequestScope | None:
    """Begin recording ``request`` (None: not recorded, or already recorded by the middleware)."""
    if getattr(request, _SCOPE, None) is not None:
        return None
    scope = telemetry.start(method=request.method, path=request.path, headers=request.headers)
    if scope is not None:
        setattr(request, _SCOPE, scope)
    return scope


def respond(scope: RequestScope, request: Any, response: Any, route: str | None) -> Any:
    """Echo the request id in ``response`` and end the recording (a streamed one when closed)."""
    for name, value in scope.response_headers():
        if name not in response:
            response[name] = value
    status: int = response.status_code
    error = getattr(request, _ERROR, None) if status >= 500 else None
    if not getattr(response, "streaming", False):
        scope.finish(status=status, route=route, error=error)
        return response
    close = response.close

    def close_and_finish() -> None:
        """Close the streamed response, then end its recording."""
        try:
            close()
        finally:
            scope.finish(status=status, route=route, error=error)

    response.close = close_and_finish
    return response


def recorded(
    telemetry: RequestTelemetry,
    request: Any,
    route: str | None,
    call: Callable[[], Any],
) -> Any:
    """Run ``call`` (a view) recording ``request``; for :func:`~.decorators.instrument_view`."""
    scope = start(telemetry, request)
    if scope is None:
        return call()
    try:
        response = call()
    except BaseException as error:
        status = status_of(error)
        scope.finish(
            status=status, route=route or route_of(request), error=_if_failure(status, error)
        )
        raise
    return respond(scope, request, response, route or route_of(request))


async def arecorded(
    telemetry: RequestTelemetry,
    request: Any,
    route: str | None,
    call: Callable[[], Any],
) -> Any:
    """Async twin of :func:`recorded`."""
    scope = start(telemetry, request)
    if scope is None:
        return await call()
    try:
        response = await call()
    except BaseException as error:
        status = status_of(error)
        scope.finish(
            status=status, route=route or route_of(request), error=_if_failure(status, error)
        )
        raise
    return respond(scope, request, response, route or route_of(request))


def status_of(error: BaseException) -> int:
    """The status Django answers an exception raised by a view with.

    >>> from django.http import Http404
    >>> status_of(Http404()), status_of(KeyError("x"))
    (404, 500)
    """
    from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
    from django.http import Http404

    if isinstance(error, Http404):
        return 404
    if isinstance(error, PermissionDenied):
        return 403
    if isinstance(error, (BadRequest, SuspiciousOperation)):
        return 400
    return 500


def _if_failure(status: int, error: BaseException) -> BaseException | None:
    return error if status >= 500 else None
