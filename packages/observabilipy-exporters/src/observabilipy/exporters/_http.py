"""What every exporter of this package shares: settings checks and one HTTP request per batch.

:class:`HTTPExporter` owns an ``httpx.AsyncClient`` (or borrows the caller's), adds
auth and headers, compresses bodies, and turns every outcome into the answer the
runtime understands: return (delivered) or an :class:`~observabilipy.core.export.ExportError`
(connection failures and timeouts retryable, HTTP answers classified by
:func:`~observabilipy.core.export.export_error_for_status`).  No httpx exception
ever reaches the caller.
"""

from __future__ import annotations

import asyncio
import base64
import gzip as gzip_module
import math
from collections.abc import Mapping
from typing import Final

import httpx

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.export import (
    PermanentExportError,
    RetryableExportError,
    Signal,
    export_error_for_status,
)

# Level 6 (zlib's default) compresses log text about as well as 9 at a fraction of the cost.
GZIP_LEVEL: Final = 6

# An answer's body is quoted in the error (Loki and Pushgateway say there what was wrong),
# cut to this many characters so one log line carries it.
_REASON_CHARS: Final = 300


def check_url(url: object, *, field: str = "url") -> httpx.URL:
    """``url`` parsed, if it is an absolute http(s) URL; else a ConfigurationError.

    >>> check_url("http://127.0.0.1:9091").host
    '127.0.0.1'
    >>> check_url("127.0.0.1:9091")
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: url: must be an http:// or https:// URL with a host, got '127.0.0.1:9091'
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"{field}: must be a str URL, got {type(url).__name__}")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"{field}: {url!r} is not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            f"{field}: must be an http:// or https:// URL with a host, got {url!r}"
        )
    return parsed


def check_name(name: object) -> str:
    """``name`` if it is a non-empty str (it names the exporter's cursor and metrics)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"name: must be a non-empty str, got {name!r}")
    return name


def check_timeout(timeout: object) -> float:
    """``timeout`` as a float if it is a positive, finite number of seconds."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ConfigurationError(f"timeout: must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def check_text(value: object, field: str) -> str:
    """``value`` if it is a non-empty str fit for an HTTP header (no line breaks)."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{field}: must be a non-empty str, got {value!r}")
    if any(ch in value for ch in "\r\n\0"):
        raise ConfigurationError(f"{field}: must not contain line breaks or NUL, got {value!r}")
    return value


def auth_headers(
    *,
    headers: Mapping[str, str] | None,
    basic_auth: tuple[str, str] | None,
    bearer_token: str | None,
) -> dict[str, str]:
    """The headers every request carries: the caller's, plus Authorization when asked.

    >>> auth_headers(headers={"X-Team": "ops"}, basic_auth=("ada", "s3cret"), bearer_token=None)
    {'X-Team': 'ops', 'Authorization': 'Basic YWRhOnMzY3JldA=='}
    >>> auth_headers(headers=None, basic_auth=None, bearer_token="t0ken")
    {'Authorization': 'Bearer t0ken'}
    """
    merged: dict[str, str] = {}
    if headers is not None:
        if not isinstance(headers, Mapping):
            raise ConfigurationError(f"headers: must be a mapping, got {type(headers).__name__}")
        for key, value in headers.items():
            merged[check_text(key, "headers")] = check_text(value, f"headers[{key!r}]")
    has_authorization = any(key.lower() == "authorization" for key in merged)
    if basic_auth is not None and bearer_token is not None:
        raise ConfigurationError("basic_auth, bearer_token: give one of them, not both")
    if (basic_auth is not None or bearer_token is not None) and has_authorization:
        raise ConfigurationError(
            "headers: holds Authorization and basic_auth/bearer_token is given too; keep one"
        )
    if basic_auth is not None:
        if (
            not isinstance(basic_auth, tuple)
            or len(basic_auth) != 2
            or not all(isinstance(part, str) for part in basic_auth)
        ):
            raise ConfigurationError(
                f"basic_auth: must be a (username, password) tuple of str, got {basic_auth!r}"
            )
        token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode("ascii")
        merged["Authorization"] = f"Basic {token}"
    if bearer_token is not None:
        merged["Authorization"] = f"Bearer {check_text(bearer_token, 'bearer_token')}"
    return merged


def check_gzip(value: object) -> bool:
    """``value`` if it is a bool (a truthy string would hide a typo)."""
    if not isinstance(value, bool):
        raise ConfigurationError(f"gzip: must be True or False, got {value!r}")
    return value


def check_client(client: object) -> httpx.AsyncClient | None:
    """``client`` if it is None or an ``httpx.AsyncClient``."""
    if client is not None and not isinstance(client, httpx.AsyncClient):
        raise ConfigurationError(
            f"client: must be an httpx.AsyncClient or None, got {type(client).__name__}"
        )
    return client


class HTTPExporter:
    """Base of the exporters here: sends one request per batch and classifies the answer.

    A client passed as ``client`` is used as is and never closed (its owner closes
    it); otherwise the exporter makes its own on first use, in the event loop that
    exports, and :meth:`close` closes it.

    >>> import asyncio
    >>> exporter = HTTPExporter(name="demo", signals=frozenset({"logs"}), headers=None,
    ...     basic_auth=None, bearer_token=None, timeout=2.0, client=None)
    >>> asyncio.run(exporter.close())  # nothing was opened: nothing to do
    """

    name: str
    signals: frozenset[Signal]

    def __init__(
        self,
        *,
        name: str,
        signals: frozenset[Signal],
        headers: Mapping[str, str] | None,
        basic_auth: tuple[str, str] | None,
        bearer_token: str | None,
        timeout: float,
        client: httpx.AsyncClient | None,
    ) -> None:
        self.name = check_name(name)
        self.signals = signals
        self.timeout = check_timeout(timeout)
        self._headers = auth_headers(
            headers=headers, basic_auth=basic_auth, bearer_token=bearer_token
        )
        self._borrowed = check_client(client)
        self._own: httpx.AsyncClient | None = None
        self._own_loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._borrowed is not None:
            return self._borrowed
        loop = asyncio.get_running_loop()
        # A client's connections belong to the loop that opened them: a new loop
        # (the runtime restarted its thread) gets a new client.
        if self._own is None or self._own_loop is not loop:
            self._own = httpx.AsyncClient(follow_redirects=False)
            self._own_loop = loop
        return self._own

    async def send(
        self,
        method: str,
        url: str,
        body: bytes,
        *,
        content_type: str,
        gzip: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send one batch; return once delivered, else raise an ExportError.

        Connection failures and timeouts raise RetryableExportError; an HTTP
        answer other than 2xx raises what ``export_error_for_status`` says, its
        body quoted in the reason.
        """
        request_headers = {**self._headers, **(headers or {}), "Content-Type": content_type}
        if gzip:
            body = gzip_module.compress(body, compresslevel=GZIP_LEVEL)
            request_headers["Content-Encoding"] = "gzip"
        try:
            response = await self._client().request(
                method, url, content=body, headers=request_headers, timeout=self.timeout
            )
        except httpx.TimeoutException as exc:
            raise RetryableExportError(
                f"{self.name}: no answer from {url} within {self.timeout:g} s "
                f"({type(exc).__name__}); raise timeout= if the collector is slow"
            ) from exc
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise RetryableExportError(
                f"{self.name}: cannot reach {url}: {exc or type(exc).__name__}"
            ) from exc
        error = export_error_for_status(
            response.status_code,
            reason=f"{self.name}: {method} {url}: {_answer_text(response)}",
            retry_after=response.headers.get("retry-after"),
        )
        if error is not None:
            raise error

    def refuse(self, signal: Signal) -> PermanentExportError:
        """The error for a batch of a signal this exporter does not send."""
        sends = ", ".join(sorted(self.signals))
        return PermanentExportError(
            f"{self.name}: {type(self).__name__} sends {sends} only, not {signal}; "
            "give the runtime an exporter whose signals include it"
        )

    async def close(self) -> None:
        """Close the client this exporter opened (a borrowed one stays open)."""
        own, loop, self._own, self._own_loop = self._own, self._own_loop, None, None
        # Connections opened in another (maybe closed) loop cannot be closed from this
        # one; dropped, the sockets are closed when collected.
        if own is not None and loop is asyncio.get_running_loop():
            await own.aclose()


def _answer_text(response: httpx.Response) -> str:
    try:
        text = " ".join(response.text.split())
    except (UnicodeDecodeError, LookupError):
        text = ""
    if len(text) > _REASON_CHARS:
        text = text[:_REASON_CHARS] + "..."
    return text or response.reason_phrase or "(no body)"
