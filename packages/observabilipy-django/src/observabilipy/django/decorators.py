"""``instrument_view``: request metrics, a log entry and a request id for chosen views.

For projects that record only some views instead of installing
:class:`~observabilipy.django.middleware.ObservabilityMiddleware`: the
decorated view is recorded exactly as the middleware would record it (same
metrics, labels, log entry and request id).  Under the middleware it records
nothing more, so a request is never counted twice.

>>> import inspect
>>> from observabilipy.core.http.telemetry import RequestTelemetry
>>> from observabilipy.core.metrics import Registry
>>> @instrument_view(telemetry=RequestTelemetry(registry=Registry()))
... async def order(request, order_id):
...     ...
>>> inspect.iscoroutinefunction(order), order.__name__
(True, 'order')
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, overload

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.http.telemetry import RequestTelemetry
from observabilipy.django import conf
from observabilipy.django.middleware import arecorded, recorded

__all__ = ["instrument_view"]

_View = TypeVar("_View", bound=Callable[..., Any])


@overload
def instrument_view(view: _View, /) -> _View: ...


@overload
def instrument_view(
    *, route: str | None = None, telemetry: RequestTelemetry | None = None
) -> Callable[[_View], _View]: ...


def instrument_view(
    view: Any = None,
    /,
    *,
    route: str | None = None,
    telemetry: RequestTelemetry | None = None,
) -> Any:
    """Record each request of a sync or async Django view: ``@instrument_view`` or
    ``@instrument_view(route=..., telemetry=...)``.

    - ``route``: the route label; default: the URL pattern the request matched
      (``request.resolver_match.route``), or ``<unmatched>`` when the view is
      called without one;
    - ``telemetry``: the :class:`~observabilipy.core.http.RequestTelemetry` to
      record with; default: the one the ``OBSERVABILIPY`` setting describes.

    An exception the view raises is recorded with the status Django will
    answer it with (``Http404``: 404, ``PermissionDenied``: 403, others: 500)
    and raised again.

    >>> instrument_view(route=7)
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: instrument_view: route must be a str such as '/orders/<int:order_id>', got 7
    """
    if route is not None and not isinstance(route, str):
        raise ConfigurationError(
            f"instrument_view: route must be a str such as '/orders/<int:order_id>', got {route!r}"
        )
    if telemetry is not None and not isinstance(telemetry, RequestTelemetry):
        raise ConfigurationError("instrument_view: telemetry must be a RequestTelemetry")

    def decorate(view: Any) -> Any:
        if not callable(view):
            raise ConfigurationError(f"instrument_view: {view!r} is not a view")

        def get_telemetry() -> RequestTelemetry:
            return conf.get_telemetry() if telemetry is None else telemetry

        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def instrumented_async(request: Any, *args: Any, **kwargs: Any) -> Any:
                return await arecorded(
                    get_telemetry(), request, route, lambda: view(request, *args, **kwargs)
                )

            return markcoroutinefunction(instrumented_async)

        @functools.wraps(view)
        def instrumented(request: Any, *args: Any, **kwargs: Any) -> Any:
            return recorded(get_telemetry(), request, route, lambda: view(request, *args, **kwargs))

        return instrumented

    if view is None:
        return decorate
    return decorate(view)
