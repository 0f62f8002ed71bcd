"""Django's ASGI application, accepting query strings that are not UTF-8.

Under ASGI, Django decodes the query string as UTF-8 while it builds the
request, and answers a request whose query is not valid UTF-8 with its own
400 page before any middleware or view runs.  Under WSGI the same request
reaches the views (PEP 3333 passes the bytes as latin-1), so the observability
API can answer it with its JSON error naming the parameter, as every other
adapter does.  :func:`get_asgi_application` is Django's, with that one
difference: such a query string is passed on as latin-1 text (as under WSGI),
and the observability views read the raw bytes from the ASGI scope.  Use it in
``asgi.py`` instead of ``django.core.asgi.get_asgi_application``::

    import os
    from observabilipy.django.asgi import get_asgi_application

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    application = get_asgi_application()

>>> issubclass(ASGIHandler.request_class, ASGIRequest)
True
"""

from __future__ import annotations

from typing import Any

import django
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.core.handlers.asgi import ASGIRequest as DjangoASGIRequest

__all__ = ["ASGIHandler", "ASGIRequest", "get_asgi_application"]


class ASGIRequest(DjangoASGIRequest):  # type: ignore[misc]
    """Django's ASGI request; a query string that is not UTF-8 is kept as latin-1 text."""

    def __init__(self, scope: dict[str, Any], body_file: Any) -> None:
        query = scope.get("query_string", b"")
        if isinstance(query, bytes):
            try:
                query.decode()
            except UnicodeDecodeError:
                scope = {**scope, "query_string": query.decode("latin-1")}
        super().__init__(scope, body_file)


class ASGIHandler(DjangoASGIHandler):  # type: ignore[misc]
    """Django's ASGI handler making :class:`ASGIRequest` requests."""

    request_class = ASGIRequest


def get_asgi_application() -> ASGIHandler:
    """Set Django up and return its ASGI application (see the module docstring).

    >>> callable(get_asgi_application)
    True
    """
    django.setup(set_prefix=False)
    return ASGIHandler()
