"""Settings of the example project: observabilipy is the ``OBSERVABILIPY`` dict below.

Logs and metrics go to one SQLite file every worker shares (``OBSERVABILIPY_DB``,
default ``observability.db``); the app config starts the embedded runtime,
which snapshots each worker's metrics into it every
``OBSERVABILIPY_SNAPSHOT_INTERVAL`` seconds (default 5).  The views' own logs
go to the same file through the ``LOGGING`` handler, carrying the request id.
"""

from __future__ import annotations

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"
USE_TZ = True
DATABASES: dict[str, object] = {}

INSTALLED_APPS = ["observabilipy.django"]
MIDDLEWARE = [
    # First, so that it times the whole stack and every response gets the request id.
    "observabilipy.django.middleware.ObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

OBSERVABILIPY = {
    # Dotted paths to factories: built once, at first use, in each worker.
    "log_storage": "shop.observability.log_storage",
    "metrics_storage": "shop.observability.metrics_storage",
    "runtime": {
        "snapshot_interval": float(os.environ.get("OBSERVABILIPY_SNAPSHOT_INTERVAL", "5")),
    },
    "prefix": "observability",  # where include("observabilipy.django.urls") serves
    # "access": "shop.observability.check_token",  # protect the endpoints
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"observabilipy": {"()": "shop.observability.log_handler"}},
    "loggers": {"shop": {"handlers": ["observabilipy"], "level": "INFO"}},
}
