"""The project's URLs: its views, and the observability endpoints under ``/observability``."""

from __future__ import annotations

from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home),
    path("users/<int:user_id>", views.user),
    path("orders/<int:order_id>", views.order),
    path("fail", views.fail),
    # The API the OBSERVABILIPY setting describes, under its "prefix".
    path("", include("observabilipy.django.urls")),
]
