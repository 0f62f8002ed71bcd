"""Observability in the Django admin: a staff-only page with metrics, health and recent logs.

:func:`observability_admin_urls` gives two URL patterns to include under the
admin's prefix, **before** ``admin.site.urls`` (whose catch-all would answer
them with 404 otherwise)::

    from django.contrib import admin
    from django.urls import include, path

    from observabilipy.django.admin import observability_admin_urls

    urlpatterns = [
        path("admin/observability/", include(observability_admin_urls())),
        path("admin/", admin.site.urls),
    ]

- ``admin/observability/``: the page, in the admin's look (it extends
  ``admin/base_site.html``): health status, a chart of any metric present
  (counters as rates per second, gauges as values, histograms as observations
  per second) and the recent logs, with a level filter and a text search, new
  entries fetched with the ``after`` id cursor (none skipped or repeated);
- ``admin/observability/api/...``: the observability API (``/logs``,
  ``/metrics``, ``/health``, ...) the page reads, answering exactly as the
  endpoints of :func:`~observabilipy.django.urls.observability_urls`.

Both go through the admin site's ``admin_view``: an anonymous visitor or a user
who is not staff is redirected to the admin login, and the page and its data
are never cached.  The page's script renders log text as text, never as HTML.

Needs ``django.contrib.admin`` (with auth, sessions and messages, as the admin
itself does) and ``"observabilipy.django"`` in ``INSTALLED_APPS`` (for the
templates).  The API defaults to the one the ``OBSERVABILIPY`` setting describes;
when that one has an access check for machines (a scraper's token), pass an
``api`` without one: the admin login protects these routes.

>>> from observabilipy.core.http import ObservabilityAPI
>>> from django.contrib.admin import AdminSite
>>> [p.name for p in observability_admin_urls(AdminSite(), api=ObservabilityAPI())]
['observabilipy-admin', 'observabilipy-admin-api']
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.template.response import TemplateResponse
from django.urls import re_path, reverse
from observabilipy.core.http import ObservabilityAPI
from observabilipy.django.views import sync_view

__all__ = ["TEMPLATE", "observability_admin_urls"]

#: The page's template; ``observabilipy/admin/widget.html`` is the widget it includes.
TEMPLATE = "observabilipy/admin/dashboard.html"


def observability_admin_urls(
    site: AdminSite | None = None,
    *,
    api: ObservabilityAPI | None = None,
    title: str = "Observability",
    metric: str = "http_requests_total",
    window_minutes: int = 15,
) -> list[Any]:
    """The admin page and its API, staff-only (see the module docstring).

    - ``site``: the admin site whose login and look they use (default
      ``django.contrib.admin.site``);
    - ``api``: the :class:`~observabilipy.core.http.ObservabilityAPI` the page
      reads (default: the one the ``OBSERVABILIPY`` setting describes);
    - ``title``: the page's title;
    - ``metric``: the metric charted first (any other present can be chosen);
    - ``window_minutes``: how much history the chart shows.

    >>> from django.contrib.admin import AdminSite
    >>> observability_admin_urls(AdminSite(), window_minutes=0)
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: window_minutes: must be a positive int such as 15, got 0
    """
    from observabilipy.core.errors import ConfigurationError

    if (
        isinstance(window_minutes, bool)
        or not isinstance(window_minutes, int)
        or window_minutes <= 0
    ):
        raise ConfigurationError(
            f"window_minutes: must be a positive int such as 15, got {window_minutes!r}"
        )
    if site is None:
        from django.contrib import admin

        site = admin.site  # lazy: set up at first use, when the admin app is ready
    admin_site = site

    def page(request: Any) -> TemplateResponse:
        """The observability page, in the admin's look."""
        context = {
            **admin_site.each_context(request),
            "title": title,
            "admin_index_url": reverse(f"{admin_site.name}:index"),
            # The API is served just below the page, wherever the patterns are included.
            "observability_api_url": request.path.rstrip("/") + "/api",
            "observability_metric": metric,
            "observability_window_seconds": window_minutes * 60,
        }
        return TemplateResponse(request, TEMPLATE, context)

    return [
        re_path(r"^/?\Z", admin_site.admin_view(page), name="observabilipy-admin"),
        re_path(
            r"^/?api(?P<path>(?:/.*)?)\Z",
            admin_site.admin_view(sync_view(api)),
            name="observabilipy-admin-api",
        ),
    ]
