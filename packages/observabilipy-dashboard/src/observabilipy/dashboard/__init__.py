"""The built-in observabilipy dashboard: one page and its static files, fully offline.

Installed, it is served by core's :class:`~observabilipy.core.http.ObservabilityAPI`,
so by every adapter, at ``/dashboard`` below wherever the API is mounted (for
example ``/observability/dashboard``); nothing to configure.  The page shows
any metric over time (counters as rates, gauges as values, histograms as
p50/p95/p99), a live log viewer (level filter, text search, incremental
fetch by the ``after`` id cursor) and the ``/health`` status.  It is plain
JavaScript modules and a hand-written canvas chart: no CDN, no build step.

This module gives the API what it serves: :func:`page`, :func:`asset` and
:data:`CONTENT_SECURITY_POLICY`.

>>> page().content_type
'text/html; charset=utf-8'
>>> asset("app.js").content_type
'text/javascript; charset=utf-8'
>>> asset("../pyproject.toml") is None
True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final

__all__ = ["CONTENT_SECURITY_POLICY", "Asset", "asset", "asset_names", "page", "total_size"]

#: Sent with every dashboard answer: scripts, styles and requests only from the
#: server itself, no inline script, no plugins, no framing by other sites.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)

_PAGE: Final = "index.html"
_CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of the dashboard: its bytes, ``Content-Type`` and ``ETag``.

    >>> Asset.of("a.css", b"body {}").etag
    'W/"62368a1a29259b30bac235c0"'
    """

    name: str
    content_type: str
    body: bytes
    etag: str

    @classmethod
    def of(cls, name: str, body: bytes) -> Asset:
        """The asset ``name`` holding ``body``; its type comes from the name's suffix.

        The ETag is weak: the API may send the bytes gzip-compressed.
        """
        suffix = name[name.rfind(".") :]
        digest = hashlib.sha256(body).hexdigest()[:24]
        return cls(name, _CONTENT_TYPES[suffix], body, f'W/"{digest}"')


@cache
def _files() -> dict[str, Asset]:
    """Every file of ``static/``, read once."""
    folder = resources.files(__name__).joinpath("static")
    return {
        entry.name: Asset.of(entry.name, entry.read_bytes())
        for entry in folder.iterdir()
        if entry.is_file() and entry.name[entry.name.rfind(".") :] in _CONTENT_TYPES
    }


def page() -> Asset:
    """The dashboard page, served at ``/dashboard``.

    >>> b"Content-Security-Policy" in page().body, b"<script type=\\"module\\"" in page().body
    (False, True)
    """
    return _files()[_PAGE]


def asset(name: str) -> Asset | None:
    """The static file ``name`` (served at ``/dashboard/<name>``), or None when there is none.

    >>> asset("style.css").name, asset("missing.js")
    ('style.css', None)
    """
    if name == _PAGE:
        return None  # the page lives at /dashboard: its relative links resolve from there
    return _files().get(name)


def asset_names() -> list[str]:
    """The names :func:`asset` serves, sorted.

    >>> "app.js" in asset_names()
    True
    """
    return sorted(name for name in _files() if name != _PAGE)


def total_size() -> int:
    """Bytes of every file the dashboard ships, page included.

    >>> 0 < total_size() < 300_000
    True
    """
    return sum(len(file.body) for file in _files().values())
