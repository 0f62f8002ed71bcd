"""The Django project tests/django/test_servers.py serves: gunicorn (WSGI) and uvicorn (ASGI).

Settings are configured here, in code (``_django_site`` is the URL conf):
``wsgi_application`` and ``asgi_application`` are the two entry points.  With
``OBSERVABILIPY_TEST_DB`` set, the ``OBSERVABILIPY`` setting puts logs and
metrics in that SQLite file and asks for a runtime snapshotting every 0.1 s:
the app config starts it in each process (again in each worker forked by a
``--preload`` master), so ``/observability/metrics/prometheus`` shows the sum
over all workers.
"""

from __future__ import annotations

import os
from typing import Any

import django
from django.conf import settings

DATABASE = os.environ.get("OBSERVABILIPY_TEST_DB")


def log_storage() -> Any:
    """The SQLite log storage (a factory named by the settings)."""
    from observabilipy.sqlite import SQLiteLogStorage

    return SQLiteLogStorage(DATABASE)  # type: ignore[arg-type]


def metrics_storage() -> Any:
    """The SQLite metrics storage (a factory named by the settings)."""
    from observabilipy.sqlite import SQLiteMetricsStorage

    return SQLiteMetricsStorage(DATABASE)  # type: ignore[arg-type]


OBSERVABILIPY: dict[str, Any] = {}
if DATABASE:
    OBSERVABILIPY = {
        "log_storage": "_django_server.log_storage",
        "metrics_storage": "_django_server.metrics_storage",
        "runtime": {"snapshot_interval": 0.1},
    }

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="only-for-tests",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="_django_site",
        INSTALLED_APPS=["observabilipy.django"],
        MIDDLEWARE=[
            "observabilipy.django.middleware.ObservabilityMiddleware",
            "django.middleware.security.SecurityMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
        ],
        USE_TZ=True,
        DATABASES={},
        OBSERVABILIPY=OBSERVABILIPY,
    )

from django.core.wsgi import get_wsgi_application  # noqa: E402

from observabilipy.django.asgi import get_asgi_application  # noqa: E402

django.setup()
wsgi_application = get_wsgi_application()
asgi_application = get_asgi_application()
