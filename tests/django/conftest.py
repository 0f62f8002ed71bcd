"""Django settings for these tests, configured in-process (no project needed).

``ROOT_URLCONF`` is ``_django_site`` (next to this file, made importable here).
The middleware stack is a usual one: observabilipy's middleware first, then
security, common (with ``APPEND_SLASH``), CSRF and clickjacking, to show that
none of them changes the observability API's answers.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import django
from django.conf import settings

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by the sys.path above
    from tests.django._django_support import MIDDLEWARE
else:
    from _django_support import MIDDLEWARE

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="only-for-tests",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="_django_site",
        INSTALLED_APPS=["observabilipy.django"],
        MIDDLEWARE=MIDDLEWARE,  # observabilipy's, then Django's usual ones
        APPEND_SLASH=True,
        USE_TZ=True,
        DATABASES={},
        OBSERVABILIPY={},
        # Leave logging alone: configuring it would close every handler of the process.
        LOGGING_CONFIG=None,
    )
    django.setup()

# Loaded by the servers the tests start, not test modules (no doctests to collect).
collect_ignore = ["_django_server.py"]
