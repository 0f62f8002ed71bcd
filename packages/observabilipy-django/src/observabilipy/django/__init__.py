"""observabilipy-django: the observability endpoints, request middleware and settings wiring.

- :func:`observability_urls` (in :mod:`observabilipy.django.urls`): URL
  patterns serving ``/logs``, ``/logs/json``, ``/metrics``, ``/metrics/json``,
  ``/metrics/prometheus`` and ``/health`` (core's
  :class:`~observabilipy.core.http.ObservabilityAPI`) under any prefix, with
  sync or async views;
- :class:`~observabilipy.django.middleware.ObservabilityMiddleware`: request
  metrics by route template, one log entry and a request id per request;
- :func:`instrument_view`: the same for chosen views only;
- the ``OBSERVABILIPY`` setting (:mod:`observabilipy.django.conf`) describes
  the storages, access check, runtime and telemetry the defaults use;
- the app ``"observabilipy.django"`` (:mod:`observabilipy.django.apps`) starts
  the configured runtime;
- :func:`observabilipy.django.asgi.get_asgi_application`: Django's ASGI app,
  letting the API answer query strings that are not UTF-8 itself;
- :func:`observabilipy.django.admin.observability_admin_urls`: an Observability page
  in the Django admin, staff only (import it from its module: it loads
  ``django.contrib.admin``).

>>> from observabilipy.core.http import ObservabilityAPI
>>> observability_urls(ObservabilityAPI())[0].name
'observabilipy'
"""

from __future__ import annotations

from observabilipy.django.conf import get_api, get_runtime, get_telemetry
from observabilipy.django.decorators import instrument_view
from observabilipy.django.middleware import ObservabilityMiddleware
from observabilipy.django.urls import observability_urls
from observabilipy.django.views import async_view, sync_view

__all__ = [
    "ObservabilityMiddleware",
    "async_view",
    "get_api",
    "get_runtime",
    "get_telemetry",
    "instrument_view",
    "observability_urls",
    "sync_view",
]
