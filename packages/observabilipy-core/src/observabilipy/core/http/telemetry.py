"""Request telemetry for web middleware: metrics, one log entry and a request id per request.

Every framework's middleware (ASGI, WSGI, Django) records requests through this
one class, so each gets the same metrics, labels, log entries and request-id
rules.  The middleware calls :meth:`RequestTelemetry.start` when a request
arrives and :meth:`RequestScope.finish` once its status is known:

- ``http_requests_total{method,route,status}`` (counter),
  ``http_request_duration_seconds{method,route}`` (histogram) and
  ``http_requests_in_flight`` (gauge; processes sharing a storage add up);
- ``route`` is the framework's route template (``/users/{id}``), never the raw
  path: a request no route matched is labelled ``unmatched_route``, and methods
  outside the standard ones are labelled ``OTHER``, so no label grows with
  the traffic;
- one log entry per request: ``"GET /users/{id} 200"`` at INFO below 400,
  WARNING for 4xx, ERROR for 5xx or an exception, with the attributes
  ``method``, ``route``, ``path`` (the raw path, at most 256 characters, only
  here, never a label), ``status``, ``duration_seconds`` and ``request_id``;
- a request id taken from the ``x-request-id`` header when it is 1 to 128
  characters of ``A-Z a-z 0-9 . _ : -`` (anything else is replaced by a new
  id, never logged), otherwise a new 32-hex-digit id; it is merged into the log
  context (``request_id`` and ``method``, the caller's fields kept) for the
  handler's own logs until the request finishes, and echoed in the response.

Nothing here raises into the request: a failing log storage or any other
failure is counted in ``observabilipy_dropped_total{component="http_telemetry",
reason=...}`` and reported once per failure streak on the ``observabilipy.http``
logger.

>>> from observabilipy.core.context import get_log_context
>>> from observabilipy.core.metrics import Registry
>>> from observabilipy.core.storage import InMemoryLogStorage
>>> registry, logs = Registry(), InMemoryLogStorage()
>>> telemetry = RequestTelemetry(registry=registry, log_storage=logs)
>>> scope = telemetry.start(method="GET", path="/users/7", headers={"x-request-id": "abc-1"})
>>> get_log_context()["request_id"], scope.response_headers()
('abc-1', [('x-request-id', 'abc-1')])
>>> scope.finish(status=200, route="/users/{id}")
>>> get_log_context()
{}
>>> registry.get("http_requests").labels(method="GET", route="/users/{id}", status="200").value
1.0
>>> [(e.level, e.message, e.attributes["path"]) for e in logs.read_sync()]
[('INFO', 'GET /users/{id} 200', '/users/7')]
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from contextvars import Token
from typing import Final

from observabilipy.core.context import _LOG_CONTEXT
from observabilipy.core.errors import ConfigurationError
from observabilipy.core.metrics import (
    DEFAULT_HISTOGRAM_BUCKETS,
    CounterChild,
    GaugeChild,
    HistogramChild,
    Registry,
    default_registry,
)
from observabilipy.core.models import AttributeValue, _trusted_log_entry
from observabilipy.core.ports import LogStoragePort

__all__ = [
    "REQUEST_ID_HEADER",
    "STANDARD_METHODS",
    "UNMATCHED_ROUTE",
    "RequestScope",
    "RequestTelemetry",
    "valid_request_id",
]

_logger = logging.getLogger("observabilipy.http")

#: The header a request id is read from and echoed in, unless told otherwise.
REQUEST_ID_HEADER: Final = "x-request-id"
#: The route label of requests no route matched.
UNMATCHED_ROUTE: Final = "<unmatched>"
#: Methods labelled as themselves; any other is labelled ``OTHER``.
STANDARD_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)

_MAX_PATH: Final = 256
_MAX_CACHED_SERIES: Final = 10_000  # the cache of bound series; the registry guard bounds the rest
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_COMPONENT: Final = "http_telemetry"
_REASONS: Final = ("storage_error", "internal_error")
_LEVEL_NUMBERS: Final = {"INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}


def valid_request_id(value: str | None) -> bool:
    """True when ``value`` may be used as a request id: 1 to 128 of ``A-Za-z0-9._:-``.

    >>> valid_request_id("7f3a-01:b.c_d"), valid_request_id("x" * 129)
    (True, False)
    >>> valid_request_id("abc\\nforged log line"), valid_request_id("")
    (False, False)
    """
    return value is not None and _REQUEST_ID.fullmatch(value) is not None


class RequestTelemetry:
    """Records HTTP requests: metrics, a log entry and a request id each (see the module docstring).

    - ``registry``: where the metrics live (the default registry if None);
    - ``log_storage``: where the per-request entries go (``write_sync``, which
      queues in the SQLite storage); None: the standard logger
      ``observabilipy.http``, so whatever logging is configured gets them;
    - ``metrics``, ``logs``, ``request_ids``, ``in_flight``: switch each part
      off; with ``request_ids`` off nothing is read, echoed or put in the log context;
    - ``request_id_header``: the header the id is read from and echoed in;
    - ``exclude_paths``: paths not recorded at all: exact paths, or prefixes
      ending in ``*`` (``"/static/*"``);
    - ``buckets``: the duration histogram's upper bounds, in seconds;
    - ``unmatched_route``: the route label of requests no route matched.

    One instance serves every thread and task of a process.

    >>> telemetry = RequestTelemetry(registry=Registry(), exclude_paths=("/health", "/static/*"))
    >>> telemetry.start(method="GET", path="/static/app.css", headers={}) is None
    True
    >>> RequestTelemetry(request_id_header="x request id")
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: request_id_header: 'x request id' is not a header name
    """

    def __init__(
        self,
        *,
        registry: Registry | None = None,
        log_storage: LogStoragePort | None = None,
        metrics: bool = True,
        logs: bool = True,
        request_ids: bool = True,
        in_flight: bool = True,
        request_id_header: str = REQUEST_ID_HEADER,
        exclude_paths: Collection[str] = (),
        buckets: Sequence[float] = DEFAULT_HISTOGRAM_BUCKETS,
        unmatched_route: str = UNMATCHED_ROUTE,
    ) -> None:
        if log_storage is not None and not isinstance(log_storage, LogStoragePort):
            raise ConfigurationError("log_storage: must implement LogStoragePort")
        if not isinstance(request_id_header, str) or not re.fullmatch(
            r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", request_id_header
        ):
            raise ConfigurationError(
                f"request_id_header: {request_id_header!r} is not a header name"
            )
        if isinstance(exclude_paths, str):
            raise ConfigurationError(
                f"exclude_paths: must be a collection of paths such as ({exclude_paths!r},)"
            )
        if not isinstance(unmatched_route, str) or not unmatched_route:
            raise ConfigurationError("unmatched_route: must be a non-empty str")
        for path in exclude_paths:
            if not isinstance(path, str) or not path:
                raise ConfigurationError(f"exclude_paths: {path!r} is not a path")
        self._registry = default_registry if registry is None else registry
        self._log_storage = log_storage
        self._metrics = bool(metrics)
        self._logs = bool(logs)
        self._request_ids = bool(request_ids)
        self._in_flight_on = bool(in_flight)
        #: The header (lower-case) the request id is read from and echoed in.
        self.request_id_header = request_id_header.lower()
        self._exact = frozenset(path for path in exclude_paths if not path.endswith("*"))
        self._prefixes = tuple(path[:-1] for path in exclude_paths if path.endswith("*"))
        self._unmatched = unmatched_route
        self._active = self._metrics or self._logs or self._request_ids or self._in_flight_on

        registry = self._registry
        dropped = registry.counter(
            "observabilipy_dropped_total",
            "Items observabilipy could not keep (queue full, invalid, storage failure).",
            labelnames=("component", "reason"),
        )
        self._dropped = {
            reason: dropped.labels(component=_COMPONENT, reason=reason) for reason in _REASONS
        }
        self._requests = registry.counter(
            "http_requests",
            "HTTP requests served, by method, route template and status code.",
            labelnames=("method", "route", "status"),
        )
        self._durations = registry.histogram(
            "http_request_duration_seconds",
            "Time from receiving an HTTP request to its response, by method and route template.",
            labelnames=("method", "route"),
            buckets=buckets,
        )
        self._in_flight: GaugeChild | None = None
        if self._in_flight_on:
            self._in_flight = registry.gauge(
                "http_requests_in_flight",
                "HTTP requests being served now.",
                multiprocess_mode="sum",
            ).labels()
        self._request_series: dict[tuple[str, str, int], CounterChild] = {}
        self._duration_series: dict[tuple[str, str], HistogramChild] = {}
        self._failing = False
        self._failing_lock = threading.Lock()

    @property
    def registry(self) -> Registry:
        """The registry holding the request metrics."""
        return self._registry

    def excluded(self, path: str) -> bool:
        """True when requests to ``path`` are not recorded (see ``exclude_paths``).

        >>> RequestTelemetry(registry=Registry(), exclude_paths=("/static/*",)).excluded("/static/a")
        True
        """
        return path in self._exact or (bool(self._prefixes) and path.startswith(self._prefixes))

    def start(self, *, method: str, path: str, headers: Mapping[str, str]) -> RequestScope | None:
        """Begin recording a request; None when it is not recorded (excluded, or all parts off).

        ``path`` is the request's path as the framework received it (for
        ``exclude_paths`` and the log entry); ``headers`` have lower-case names.
        Never raises: a failure is counted and the request goes unrecorded.

        >>> telemetry = RequestTelemetry(registry=Registry())
        >>> scope = telemetry.start(method="BREW", path="/pot", headers={"x-request-id": "a b"})
        >>> scope.method, len(scope.request_id)
        ('OTHER', 32)
        >>> scope.finish(status=418, route=None)
        """
        try:
            if not self._active or self.excluded(path):
                return None
            return RequestScope(self, method, path, headers)
        except Exception:
            self._failed("internal_error")
            return None

    # -- used by RequestScope ------------------------------------------------------------

    def _record(
        self,
        scope: RequestScope,
        status: int,
        route: str | None,
        error: BaseException | None,
        duration: float,
    ) -> None:
        method = scope.method
        label = route if route else self._unmatched
        if self._metrics:
            key = (method, label, status)
            requests = self._request_series.get(key)
            if requests is None:
                requests = self._requests.labels(method, label, str(status))
                if len(self._request_series) < _MAX_CACHED_SERIES:
                    self._request_series[key] = requests
            requests.inc()
            pair = (method, label)
            durations = self._duration_series.get(pair)
            if durations is None:
                durations = self._durations.labels(method, label)
                if len(self._duration_series) < _MAX_CACHED_SERIES:
                    self._duration_series[pair] = durations
            durations.observe(duration)
        if self._logs:
            self._log(scope, status, label, error, duration)

    def _log(
        self,
        scope: RequestScope,
        status: int,
        route: str,
        error: BaseException | None,
        duration: float,
    ) -> None:
        if error is not None or status >= 500:
            level = "ERROR"
        elif status >= 400:
            level = "WARNING"
        else:
            level = "INFO"
        storage = self._log_storage
        if storage is None and not _logger.isEnabledFor(_LEVEL_NUMBERS[level]):
            return
        method = scope.method
        attributes: dict[str, AttributeValue] = {
            "method": method,
            "route": route,
            "path": _loggable_path(scope.path),
            "status": status,
            "duration_seconds": duration,
        }
        if scope.request_id is not None:
            attributes["request_id"] = scope.request_id
        if error is not None:
            attributes["exception.type"] = type(error).__name__
            attributes["exception.message"] = _short(str(error))
        message = f"{method} {route} {status}"
        if storage is None:
            _logger.log(_LEVEL_NUMBERS[level], message, extra=attributes)
            return
        # The request's own context is already restored: this is the caller's, usually empty.
        context = _LOG_CONTEXT.get()
        if context:
            attributes = {**context, **attributes}
        try:
            storage.write_sync(_trusted_log_entry(time.time(), level, message, attributes))
        except Exception as exc:
            self._failed("storage_error", exc)
            return
        if self._failing:
            with self._failing_lock:
                self._failing = False

    def _failed(self, reason: str, exc: BaseException | None = None) -> None:
        """Count a loss; warn once per streak of failures.  Never raises."""
        try:
            self._dropped[reason].inc()
            with self._failing_lock:
                first, self._failing = not self._failing, True
            if first:
                _logger.warning(
                    "request telemetry failed (%s); what it could not record is counted in "
                    'observabilipy_dropped_total{component="%s", reason="%s"}',
                    reason if exc is None else f"{type(exc).__name__}: {exc}",
                    _COMPONENT,
                    reason,
                    exc_info=exc is None,
                )
        except Exception:
            pass


class RequestScope:
    """One request being recorded: made by :meth:`RequestTelemetry.start`, ended by :meth:`finish`.

    ``request_id`` is the request's id (None when request ids are off) and
    ``method`` the method label (``OTHER`` for non-standard methods).
    """

    __slots__ = (
        "_context",
        "_done",
        "_started",
        "_telemetry",
        "_token",
        "method",
        "path",
        "request_id",
    )

    def __init__(
        self,
        telemetry: RequestTelemetry,
        method: str,
        path: str,
        headers: Mapping[str, str],
    ) -> None:
        """Start recording; prefer :meth:`RequestTelemetry.start`."""
        self._telemetry = telemetry
        if method not in STANDARD_METHODS:
            method = method.upper() if method.upper() in STANDARD_METHODS else "OTHER"
        self.method: str = method
        self.path: str = path
        self._done = False
        if telemetry._request_ids:
            given = headers.get(telemetry.request_id_header)
            if given is None or _REQUEST_ID.fullmatch(given) is None:
                given = _new_request_id()
            self.request_id: str | None = given
            current = _LOG_CONTEXT.get()
            context: dict[str, AttributeValue] = {**current, "request_id": given, "method": method}
            self._context: dict[str, AttributeValue] | None = context
            self._token: Token[dict[str, AttributeValue]] | None = _LOG_CONTEXT.set(context)
        else:
            self.request_id = None
            self._context = None
            self._token = None
        in_flight = telemetry._in_flight
        if in_flight is not None:
            in_flight.inc()
        self._started = time.perf_counter()

    def response_headers(self) -> list[tuple[str, str]]:
        """The headers to add to the response: the request id, when request ids are on.

        >>> scope = RequestTelemetry(registry=Registry()).start(
        ...     method="GET", path="/", headers={"x-request-id": "r-9"}
        ... )
        >>> scope.response_headers()
        [('x-request-id', 'r-9')]
        >>> scope.finish(status=200, route="/")
        """
        if self.request_id is None:
            return []
        return [(self._telemetry.request_id_header, self.request_id)]

    def finish(self, *, status: int, route: str | None, error: BaseException | None = None) -> None:
        """Record the request's outcome and restore the log context.  Never raises.

        ``route`` is the route template the framework matched (None: unmatched);
        ``error`` the exception the application raised, if any (the request is
        then logged at ERROR).  Calling it again does nothing.
        """
        if self._done:
            return
        self._done = True
        telemetry = self._telemetry
        try:
            duration = time.perf_counter() - self._started
            in_flight = telemetry._in_flight
            if in_flight is not None:
                in_flight.dec()
            self._restore_context()
            telemetry._record(self, status, route, error, duration)
        except Exception:
            telemetry._failed("internal_error")
            self._restore_context()

    def _restore_context(self) -> None:
        token = self._token
        if token is None:
            return
        self._token = None
        try:
            _LOG_CONTEXT.reset(token)
        except ValueError:
            # Finished in another context than it started in (a server that closes a
            # WSGI body elsewhere): restore by value, and only our own change.
            if _LOG_CONTEXT.get() is self._context:
                previous = token.old_value
                _LOG_CONTEXT.set({} if previous is Token.MISSING else previous)

    def __repr__(self) -> str:
        """Method, path and request id."""
        return f"<RequestScope {self.method} {self.path[:_MAX_PATH]!r} id={self.request_id!r}>"


# New request ids: a random per-process prefix and a counter, 32 hex digits like a
# uuid4 hex but without a urandom call per request (ids need to be unique, not secret).
_id_prefix = os.urandom(8).hex()
_id_counter = itertools.count(1)


def _new_request_id() -> str:
    return f"{_id_prefix}{next(_id_counter):016x}"


def _after_fork_in_child() -> None:
    global _id_prefix, _id_counter
    _id_prefix = os.urandom(8).hex()
    _id_counter = itertools.count(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _loggable_path(path: str) -> str:
    """``path`` cut to 256 characters, control characters escaped (no forged log lines)."""
    if len(path) > _MAX_PATH:
        path = path[:_MAX_PATH]
    if not path.isprintable():
        path = "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)
    return path


def _short(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
