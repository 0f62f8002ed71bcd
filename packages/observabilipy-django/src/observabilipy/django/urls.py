"""URL patterns for the observability endpoints.

Two ways to mount them:

- ``path("observability", include(observability_urls(api)))``: the patterns
  of :func:`observability_urls` included under any prefix; give the prefix
  **without** a trailing slash, so ``/observability/logs`` reaches the view as
  ``/logs`` and ``/observability`` itself reaches it too;
- ``path("", include("observabilipy.django.urls"))``: this module's
  ``urlpatterns``, serving the API the ``OBSERVABILIPY`` setting describes
  under its ``prefix`` (default ``observability``), with sync or async views
  per ``async_views`` (see :mod:`observabilipy.django.conf`).

One pattern catches every path below the prefix, so the API itself answers
unknown routes (404) and wrong methods (405) with its JSON errors, exactly as
every other adapter does.  It also means Django's ``CommonMiddleware`` never
redirects them: ``APPEND_SLASH`` only redirects URLs that do not match, and
these all match (``/observability/logs/`` is the API's ``/logs``).  Leave out
``GZipMiddleware`` for these URLs' sake: the API compresses large bodies itself
and leaves small ones plain.

>>> from observabilipy.core.http import ObservabilityAPI
>>> observability_urls(ObservabilityAPI())
[<URLPattern '^(?P<path>(?:/.*)?)\\Z' [name='observabilipy']>]
>>> observability_urls(ObservabilityAPI(), prefix="/ops/observability/", async_views=True)
[<URLPattern '^ops/observability(?P<path>(?:/.*)?)\\Z' [name='observabilipy']>]
"""

from __future__ import annotations

import re
from typing import Any

from django.urls import re_path
from observabilipy.core.errors import ConfigurationError
from observabilipy.core.http import ObservabilityAPI
from observabilipy.django import conf
from observabilipy.django.views import async_view, sync_view

__all__ = ["observability_urls"]


def observability_urls(
    api: ObservabilityAPI | None = None,
    *,
    prefix: str = "",
    async_views: bool = False,
    name: str = "observabilipy",
    **api_options: Any,
) -> list[Any]:
    """URL patterns serving ``api``: include them under any prefix (see the module docstring).

    - ``api``: the :class:`~observabilipy.core.http.ObservabilityAPI` to serve;
      or ``api_options`` to build one (its keyword arguments); with neither,
      the API the ``OBSERVABILIPY`` setting describes, built at first request;
    - ``prefix``: a path the patterns match first (``""``: include them where
      they should answer);
    - ``async_views``: async views (``await api.handle``), for Django served by
      ASGI; sync views (``api.handle_sync``) otherwise;
    - ``name``: the URL name, with the ``path`` argument: ``reverse("observabilipy",
      kwargs={"path": "/logs"})``.

    >>> observability_urls(ObservabilityAPI(), gzip=False)
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: observability_urls: give an api or its options (gzip), not both
    """
    if api is not None and api_options:
        raise ConfigurationError(
            f"observability_urls: give an api or its options ({', '.join(sorted(api_options))}), "
            "not both"
        )
    if api is None and api_options:
        api = ObservabilityAPI(**api_options)
    view = async_view(api) if async_views else sync_view(api)
    # The path below the prefix: empty or from a "/" on, so "/observability-admin"
    # never reaches the API included at "observability".
    pattern = rf"^{re.escape(prefix.strip('/'))}(?P<path>(?:/.*)?)\Z"
    return [re_path(pattern, view, name=name)]


def __getattr__(attribute: str) -> Any:
    """``urlpatterns``, from the settings, when Django includes this module."""
    if attribute == "urlpatterns":
        return observability_urls(prefix=conf.prefix(), async_views=conf.async_views())
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
