"""Observability widgets in the Django admin: a one-file Django project.

The admin gets an "Observability" page (``/admin/observability/``): health, a
chart of any metric (request rates from the middleware, the jobs a background
worker runs) and the recent logs, with a level filter and a search, refreshed
every two seconds.  Only staff see it: anyone else is sent to the admin login.
The observability endpoints are also served, for machines, under
``/observability`` (a Prometheus scrape at ``/observability/metrics/prometheus``).

    python examples/django_admin_integration.py            # http://127.0.0.1:8000/admin/
    python examples/django_admin_integration.py --port 8001 --password s3cret --db admin.db

It creates the database (``--db``, default ``django_admin_example.sqlite3`` in the
current directory) and a superuser ``admin`` with the password given, or a new
one printed at start.  Logs and metrics stay in memory, in this process, for the
example's sake: a project with several workers gives ``OBSERVABILIPY`` SQLite
storages instead (see the observabilipy-django README).

Needs ``pip install observabilipy-django``.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
import threading

import django
from django.conf import settings

from observabilipy.core import (
    InMemoryLogStorage,
    ObservabilipyHandler,
    Registry,
    RingBufferMetricsStorage,
)

HOST = "127.0.0.1"  # the example never listens beyond this machine

registry = Registry()
logs = InMemoryLogStorage()
metrics = RingBufferMetricsStorage(100_000)
jobs = registry.counter("jobs_total", "Jobs the background worker ran.", labelnames=("outcome",))
queue_depth = registry.gauge("job_queue_depth", "Jobs waiting.")
logger = logging.getLogger("shop.worker")


def configure(database: str) -> None:
    """Django's settings for this one-file project: the admin, and observabilipy's app."""
    settings.configure(
        DEBUG=True,  # runserver serves the admin's CSS only in debug mode
        SECRET_KEY=secrets.token_urlsafe(32),
        ALLOWED_HOSTS=[HOST, "localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "observabilipy.django",  # the admin page's templates, the runtime
        ],
        MIDDLEWARE=[
            "observabilipy.django.middleware.ObservabilityMiddleware",
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": database}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        STATIC_URL="static/",
        USE_TZ=True,
        OBSERVABILIPY={
            "log_storage": logs,
            "metrics_storage": metrics,
            "registry": registry,
            "runtime": {"snapshot_interval": 1.0},  # started by the app, in this process
        },
    )
    django.setup()


def urls() -> list[object]:
    """The URL conf: the observability page first, then the admin, then the endpoints."""
    from django.contrib import admin
    from django.urls import include, path

    from observabilipy.django import observability_urls
    from observabilipy.django.admin import observability_admin_urls

    urlpatterns = [
        # Before the admin's own patterns: its catch-all would answer 404 first.
        path("admin/observability/", include(observability_admin_urls(metric="jobs_total"))),
        path("admin/", admin.site.urls),
        path("observability", include(observability_urls())),  # for machines: scrapes, CLI
    ]
    return urlpatterns  # noqa: RET504 - named as in a urls.py (the guide shows this part)


def __getattr__(name: str) -> object:
    """``urlpatterns``, asked by Django (``ROOT_URLCONF`` is this module) once it is set up."""
    if name == "urlpatterns":
        return urls()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create_superuser(password: str) -> None:
    """Create the tables and the superuser ``admin`` (its password set anew each start)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    user, _ = get_user_model().objects.get_or_create(
        username="admin", defaults={"is_staff": True, "is_superuser": True}
    )
    user.set_password(password)
    user.save()


def work(stop: threading.Event) -> None:
    """A background worker: runs a job every half second, logs it, counts it."""
    number = 0
    while not stop.wait(0.5):
        number += 1
        queue_depth.set(number % 7)
        if number % 5 == 0:
            jobs.labels(outcome="failed").inc()
            logger.warning("job %d failed, will retry", number, extra={"job": number})
        else:
            jobs.labels(outcome="done").inc()
            logger.info("job %d done", number, extra={"job": number})


def main(argv: list[str] | None = None) -> int:
    """Configure, migrate, start the worker and serve with Django's development server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--db", default="django_admin_example.sqlite3")
    parser.add_argument("--password", help="the admin's password (default: a new one, printed)")
    options = parser.parse_args(argv)
    password = options.password or secrets.token_urlsafe(9)

    configure(options.db)
    create_superuser(password)
    logger.setLevel(logging.INFO)
    logger.addHandler(ObservabilipyHandler(logs, registry=registry))
    stop = threading.Event()
    threading.Thread(target=work, args=(stop,), daemon=True).start()
    print(f"observability in the admin: http://{HOST}:{options.port}/admin/observability/")
    print(f"log in as admin, password {password}", flush=True)

    from django.core.management import call_command

    try:
        call_command("runserver", f"{HOST}:{options.port}", use_reloader=False, verbosity=0)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
