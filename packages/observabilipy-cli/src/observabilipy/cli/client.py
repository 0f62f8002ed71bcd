"""Reading a running application's observabilipy HTTP API: log pages and the exposition.

:class:`Endpoint` knows the API's base URL (where it is mounted, such as
``http://127.0.0.1:8000/observability``; a route's URL is accepted too) and
the credentials the API's access check wants.  Every failure a user meets is
a :class:`~observabilipy.cli.errors.CLIError` with one line that says what to
do: an unreachable server, a refused token, an answer that is not from an
observabilipy API (an HTML page, a 404, someone else's JSON).

>>> api_base("http://127.0.0.1:8000/observability/logs?limit=5")
'http://127.0.0.1:8000/observability'
>>> api_base("localhost:8000")
'http://localhost:8000'
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import httpx

from observabilipy.cli.errors import CLIError
from observabilipy.cli.exposition import ExpositionError, Sample, parse_exposition

__all__ = ["Endpoint", "LogLine", "TransientError", "api_base"]

# Routes of the API (and the dashboard) that a given URL may end with.
_ROUTE_SUFFIXES: Final = (
    "/logs/json",
    "/logs",
    "/metrics/json",
    "/metrics/prometheus",
    "/metrics",
    "/health",
    "/dashboard",
)
_AUTH_HINT: Final = "pass --token TOKEN or --user NAME:PASSWORD (or set OBSERVABILIPY_TOKEN)"


class TransientError(CLIError):
    """The server could not answer now (unreachable, restarting, 5xx): worth retrying."""


@dataclass(frozen=True, slots=True)
class LogLine:
    """One entry of a ``/logs`` page: its fields, and the NDJSON line as the server sent it."""

    id: int
    timestamp: float
    level: str
    message: str
    attributes: dict[str, Any]
    raw: str


def api_base(url: str) -> str:
    """The API's base URL from what the user typed: scheme added, route and query dropped.

    >>> api_base("https://example.com/obs/metrics/prometheus/")
    'https://example.com/obs'
    >>> api_base("ftp://example.com")
    Traceback (most recent call last):
    ...
    observabilipy.cli.errors.CLIError: ftp://example.com: the URL must start with http:// or https://
    """
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CLIError(f"{url}: the URL must start with http:// or https://")
    path = parts.path.rstrip("/")
    for suffix in _ROUTE_SUFFIXES:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class Endpoint:
    """The observabilipy HTTP API at ``url``, reached with ``token`` (bearer) or ``user``.

    ``user`` is ``NAME:PASSWORD`` for HTTP basic authentication.  Close it
    (or use ``with``) to release its connections.

    >>> Endpoint("127.0.0.1:8000/observability/logs").base
    'http://127.0.0.1:8000/observability'
    >>> Endpoint("http://x", user="ops")
    Traceback (most recent call last):
    ...
    observabilipy.cli.errors.CLIError: --user: expected NAME:PASSWORD, got no ':'
    """

    def __init__(
        self, url: str, *, token: str | None = None, user: str | None = None, timeout: float = 10.0
    ) -> None:
        self.base = api_base(url)
        auth: tuple[str, str] | None = None
        if user:
            name, colon, password = user.partition(":")
            if not colon:
                raise CLIError("--user: expected NAME:PASSWORD, got no ':'")
            auth = (name, password)
        headers = {"user-agent": "observabilipy-cli"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=True,
        )

    def __enter__(self) -> Endpoint:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connections."""
        self._client.close()

    def logs(
        self,
        *,
        after: int | None = None,
        since: float | None = None,
        level: str | None = None,
        min_level: str | None = None,
        q: str | None = None,
    ) -> Iterator[LogLine]:
        """One page of ``/logs`` (the server's default size), oldest first, as it streams in.

        Page on with ``after`` set to the last id received: no entry is skipped
        or repeated.
        """
        params: dict[str, str] = {}
        for name, value in (
            ("after", after),
            ("since", None if since is None else repr(max(since, 0.0))),
            ("level", level),
            ("min_level", min_level),
            ("q", q),
        ):
            if value is not None:
                params[name] = str(value)
        url = self.base + "/logs"
        try:
            with self._client.stream("GET", url, params=params) as response:
                self._check(response, url, "application/x-ndjson")
                for line in response.iter_lines():
                    if line:
                        yield _log_line(line, url)
        except httpx.TransportError as error:
            raise _unreachable(url, error) from None

    def samples(self) -> list[Sample]:
        """The current metrics, from ``/metrics/prometheus``."""
        url = self.base + "/metrics/prometheus"
        try:
            response = self._client.get(url, headers={"accept": "text/plain; version=0.0.4"})
            self._check(response, url, "text/plain")
        except httpx.TransportError as error:
            raise _unreachable(url, error) from None
        try:
            return parse_exposition(response.text)
        except ExpositionError as error:
            raise CLIError(f"{url} is not an observabilipy metrics endpoint: {error}") from None

    def _check(self, response: httpx.Response, url: str, content_type: str) -> None:
        """Refuse an answer that is not a success of an observabilipy API, saying why."""
        status = response.status_code
        if status == 200:
            given = response.headers.get("content-type", "")
            if not given.startswith(content_type):
                raise CLIError(
                    f"{url} is not an observabilipy endpoint: it answered "
                    f"{given or 'no content type'}, not {content_type}; pass the URL the API "
                    "is mounted at, such as http://127.0.0.1:8000/observability"
                )
            return
        response.read()
        if status in (401, 403):
            raise CLIError(f"{url} refused access ({status}): {_AUTH_HINT}")
        message = _error_message(response)
        if status >= 500:
            raise TransientError(f"{url} failed ({status}): {message or response.reason_phrase}")
        if message is None or status == 404:
            raise CLIError(
                f"{url} is not an observabilipy endpoint (HTTP {status}"
                + (f": {message}" if message else "")
                + "); pass the URL the API is mounted at, such as "
                "http://127.0.0.1:8000/observability"
            )
        raise CLIError(f"{url} refused the request ({status}): {message}")


def _error_message(response: httpx.Response) -> str | None:
    """The ``message`` of the API's JSON error body, or None when the body is not one."""
    try:
        document = response.json()
    except ValueError:
        return None
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        return str(document.get("message") or document["error"])
    return None


def _log_line(line: str, url: str) -> LogLine:
    try:
        item = json.loads(line)
        return LogLine(
            int(item["id"]),
            float(item["timestamp"]),
            str(item["level"]),
            str(item["message"]),
            dict(item.get("attributes") or {}),
            line,
        )
    except (ValueError, TypeError, KeyError):
        shown = line if len(line) <= 60 else line[:60] + "..."
        raise CLIError(
            f"{url} is not an observabilipy endpoint: {shown!r} is not a log entry"
        ) from None


def _unreachable(url: str, error: httpx.TransportError) -> TransientError:
    reason = str(error) or type(error).__name__
    return TransientError(f"cannot reach {url}: {reason}")
