"""Access control for the HTTP API: one check, run before every route.

An access check is any callable that takes the :class:`~observabilipy.core.http.Request`
and returns True to let it through, sync or async::

    ObservabilityAPI(access=bearer_token("s3cret"))
    ObservabilityAPI(access=basic_auth("ops", "hunter2"))
    ObservabilityAPI(access=lambda request: request.headers.get("x-api-key") == KEY)

A refused request gets 401 with a ``WWW-Authenticate`` challenge: the check's
``challenge`` attribute when it has one (the builders here do), else
``Bearer realm="observabilipy"``.  Secrets are compared in constant time.

>>> from observabilipy.core.http.api import Request
>>> check = bearer_token("s3cret")
>>> check(Request("GET", "/logs", headers={"authorization": "Bearer s3cret"}))
True
>>> check(Request("GET", "/logs", headers={"authorization": "Bearer guess"}))
False
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Final, Protocol

from observabilipy.core.errors import ConfigurationError

if TYPE_CHECKING:
    from observabilipy.core.http.api import Request

__all__ = [
    "DEFAULT_CHALLENGE",
    "AccessCheck",
    "BasicAuth",
    "BearerToken",
    "basic_auth",
    "bearer_token",
]

REALM: Final = "observabilipy"
#: The WWW-Authenticate value of a 401 when the check has no ``challenge`` of its own.
DEFAULT_CHALLENGE: Final = f'Bearer realm="{REALM}"'


class AccessCheck(Protocol):
    """Decides whether a request may be answered: True lets it through.

    May return an awaitable (an ``async def`` check); ``handle_sync`` then
    runs it on a private event loop.  An exception counts as a failure of the
    check itself: the API answers 503, never letting the request through.
    """

    def __call__(self, request: Request, /) -> bool | Awaitable[bool]:
        """Return True when ``request`` may be answered."""
        ...


def _credentials(request: Request, scheme: str) -> str | None:
    """The credentials after ``scheme`` in the Authorization header, or None."""
    header = request.headers.get("authorization", "")
    given_scheme, _, credentials = header.strip().partition(" ")
    if given_scheme.lower() != scheme:
        return None
    return credentials.strip()


class BearerToken:
    """Let through requests carrying ``Authorization: Bearer <token>``; see :func:`bearer_token`."""

    __slots__ = ("_token",)

    challenge: Final = DEFAULT_CHALLENGE

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not token.strip():
            raise ConfigurationError("token: must be a non-empty string")
        self._token = token.encode()

    def __call__(self, request: Request, /) -> bool:
        """True when the request carries the token."""
        given = _credentials(request, "bearer")
        return given is not None and hmac.compare_digest(given.encode(), self._token)

    def __repr__(self) -> str:
        return "BearerToken(<hidden>)"


class BasicAuth:
    """Let through requests with HTTP Basic credentials; see :func:`basic_auth`."""

    __slots__ = ("_password", "_username")

    challenge: Final = f'Basic realm="{REALM}", charset="UTF-8"'

    def __init__(self, username: str, password: str) -> None:
        if not isinstance(username, str) or not username or ":" in username:
            raise ConfigurationError("username: must be a non-empty string without ':'")
        if not isinstance(password, str) or not password:
            raise ConfigurationError("password: must be a non-empty string")
        self._username = username.encode()
        self._password = password.encode()

    def __call__(self, request: Request, /) -> bool:
        """True when the request carries this username and password."""
        given = _credentials(request, "basic")
        if given is None:
            return False
        try:
            username, _, password = base64.b64decode(given, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # Both comparisons always run, so timing does not tell which one failed.
        user_ok = hmac.compare_digest(username, self._username)
        password_ok = hmac.compare_digest(password, self._password)
        return user_ok & password_ok

    def __repr__(self) -> str:
        return f"BasicAuth({self._username.decode()!r}, <hidden>)"


def bearer_token(token: str) -> BearerToken:
    """An access check accepting ``Authorization: Bearer <token>`` (scheme in any case).

    >>> from observabilipy.core.http.api import Request
    >>> bearer_token("t0ken")(Request("GET", "/health", headers={"authorization": "bearer t0ken"}))
    True
    >>> bearer_token("")
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: token: must be a non-empty string
    """
    return BearerToken(token)


def basic_auth(username: str, password: str) -> BasicAuth:
    """An access check accepting HTTP Basic credentials (UTF-8) for one user.

    >>> import base64
    >>> from observabilipy.core.http.api import Request
    >>> check = basic_auth("ops", "hunter2")
    >>> good = "Basic " + base64.b64encode(b"ops:hunter2").decode()
    >>> check(Request("GET", "/logs", headers={"authorization": good}))
    True
    >>> check(Request("GET", "/logs", headers={"authorization": "Basic !!"}))
    False
    """
    return BasicAuth(username, password)
