"""The ASGI application: ``uvicorn shop.asgi:application``.

observabilipy's ``get_asgi_application`` is Django's, except that a query
string that is not UTF-8 reaches the observability API (which answers with a
JSON 400 naming the parameter) instead of Django's own empty 400 page.
"""

from __future__ import annotations

import os

from observabilipy.django.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
application = get_asgi_application()
