"""The framework-neutral HTTP API: one handler that every web adapter translates to.

An adapter (ASGI, WSGI, FastAPI, Django) builds a :class:`Request` (method,
path below the mount prefix, raw query string, lower-case headers), calls
:meth:`ObservabilityAPI.handle` (async servers) or
:meth:`ObservabilityAPI.handle_sync` (threaded servers), and sends the
:class:`AsyncResponse` / :class:`Response` back.  Both methods give the same
status, headers and bytes for the same request and data: routing, parameters,
errors and encoding are written once, here.

Routes (``GET`` and ``HEAD``; any other method gets 405 with ``Allow``):

==========================  ===========================================================
``/logs``                   NDJSON log entries: ``since after level min_level q limit offset``
``/logs/json``              the same page as one JSON document with ``next_after`` and ``next``
``/metrics``                NDJSON samples: ``since after name limit offset``; the exposition
                            instead when Accept prefers ``text/plain`` or OpenMetrics over
                            JSON (what a Prometheus scraper sends)
``/metrics/json``           the same page as one JSON document
``/metrics/prometheus``     Prometheus text 0.0.4, or OpenMetrics 1.0 by Accept
``/health``                 component status as JSON; 200 or 503 (see :mod:`.health`)
``/dashboard``              the built-in dashboard page, and its files below ``/dashboard/``,
                            when observabilipy-dashboard is installed (see below)
==========================  ===========================================================

Reads return entries oldest first, at most ``limit`` (``default_limit`` when not
given, at most ``max_limit``); page on with ``after=<last id>`` (the JSON
documents give it as ``next_after`` and ``next``).  ``q`` keeps entries whose
message contains the text, ignoring case (only the message, not attributes).
Parameter rules are in :mod:`.params`; every refusal is 400 with
``{"error": "invalid_parameter", "parameter", "message", "allowed"}``.

Errors are JSON ``{"error": <code>, "message": ...}`` and never 500: 404
``not_found`` (also for logs or metrics routes when the API has no such storage),
405 ``method_not_allowed``, 401 ``unauthorized``, 503 ``storage_unavailable`` when a
storage fails before the first byte of the body, 503 ``access_check_failed`` when
the access check raises.  A storage failing mid-stream ends the body early and is
logged (``observabilipy.http`` logger): NDJSON clients resume with ``after`` set
to the last id they received; a JSON document is then left incomplete, which a
parser reports.

Bodies stream in constant memory.  The start of a body (two encoder chunks,
and at least ``gzip_min_size`` bytes when compressing) is read before the status
is chosen; a body that ends within it is complete and gets a ``content-length``.
gzip is used when the API allows it and the client's Accept-Encoding accepts
it, for bodies of at least ``gzip_min_size`` bytes.  Every response has
``cache-control: no-store`` and ``x-content-type-options: nosniff`` (log text is
client-supplied data, never to be sniffed as HTML).

A streamed body is a generator: an adapter that stops early should ``close()``
(``aclose()``) it, so the storage's cursor is released at once.

The dashboard is found on the first request for it (core does not depend on
it): without observabilipy-dashboard, or with ``dashboard=False``, its paths
answer 404 with the ``pip install`` command.  Its links are relative, so it
works below any mount prefix.  The page passes the access check; a refused
request gets 401 with the challenge and the page itself, whose script asks
for a bearer token (kept in the tab's ``sessionStorage``, sent as an
``Authorization`` header, never in a URL), while a ``Basic`` challenge makes
the browser prompt.  Its static files (scripts, style, icon: code shipped in
the wheel, no data) skip the check, so that the sign-in can run.  Dashboard
answers carry an ``etag`` (``If-None-Match`` gets 304), ``cache-control:
no-cache`` and a strict ``content-security-policy``.

>>> from observabilipy.core.models import LogEntry
>>> from observabilipy.core.storage import InMemoryLogStorage
>>> storage = InMemoryLogStorage()
>>> storage.write_sync(LogEntry(timestamp=1.0, level="warn", message="disk low"))
>>> api = ObservabilityAPI(log_storage=storage)
>>> response = api.handle_sync(Request("GET", "/logs", b"level=warning"))
>>> response.status, b"".join(response.body)
(200, b'{"id":1,"timestamp":1.0,"level":"WARNING","message":"disk low","attributes":{}}\\n')
>>> import json
>>> response = api.handle_sync(Request("GET", "/logs", b"limit=-1"))
>>> response.status, json.loads(b"".join(response.body))["parameter"]
(400, 'limit')
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Final, cast

from observabilipy.core.encoding import (
    aencode_logs_ndjson,
    aencode_metrics_ndjson,
    encode_logs_ndjson,
    encode_metrics_ndjson,
)
from observabilipy.core.errors import ConfigurationError
from observabilipy.core.exposition import _quality, choose_exposition, encode_current
from observabilipy.core.http.access import DEFAULT_CHALLENGE, AccessCheck
from observabilipy.core.http.compression import accepts_gzip, agzip_chunks, gzip_bytes, gzip_chunks
from observabilipy.core.http.health import (
    BUILTIN_COMPONENTS,
    HealthCheck,
    health,
    health_sync,
    wait_sync,
)
from observabilipy.core.http.params import (
    MAX_INTEGER,
    ParameterError,
    parse_log_query,
    parse_metrics_query,
    parse_query,
)
from observabilipy.core.http.responses import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_NDJSON,
    ajson_document,
    json_bytes,
    json_document,
)
from observabilipy.core.metrics import Registry, default_registry
from observabilipy.core.ports import LogStoragePort, MetricsStoragePort
from observabilipy.core.runtime import EmbeddedRuntime

__all__ = ["DASHBOARD", "ROUTES", "AsyncResponse", "ObservabilityAPI", "Request", "Response"]

_logger = logging.getLogger("observabilipy.http")

#: The routes the API answers, relative to where it is mounted.
ROUTES: Final = (
    "/logs",
    "/logs/json",
    "/metrics",
    "/metrics/json",
    "/metrics/prometheus",
    "/health",
)
#: Where the dashboard (observabilipy-dashboard) is served, relative to the mount.
DASHBOARD: Final = "/dashboard"
_METHODS: Final = ("GET", "HEAD")
_NOT_LOOKED_UP: Final = object()
_ALLOW: Final = ", ".join(_METHODS)


@dataclass(frozen=True, slots=True)
class Request:
    """What the API needs of an HTTP request.

    ``path`` is below the mount prefix (the adapter strips it) and already
    percent-decoded; ``query_string`` is raw, as sent (a WSGI adapter encodes
    ``QUERY_STRING`` back to bytes with latin-1); ``headers`` have lower-case
    names, repeated headers joined with ``", "``.

    >>> Request("GET", "/logs", b"limit=10", {"accept": "application/json"}).path
    '/logs'
    """

    method: str
    path: str
    query_string: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Response:
    """The answer of :meth:`ObservabilityAPI.handle_sync`: header names are lower-case.

    ``body`` yields the byte chunks; when it has ``close()`` (a streamed body is a
    generator), call it if you stop before the end, as WSGI servers do.
    """

    status: int
    headers: list[tuple[str, str]]
    body: Iterator[bytes]


@dataclass(frozen=True, slots=True)
class AsyncResponse:
    """The answer of :meth:`ObservabilityAPI.handle`; ``body`` is an async generator:
    ``aclose()`` it if you stop before the end."""

    status: int
    headers: list[tuple[str, str]]
    body: AsyncIterator[bytes]


class _HTTPError(Exception):
    """A request answered with a small JSON error instead of data."""

    def __init__(
        self, status: int, document: Mapping[str, object], headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = json_bytes(document)
        self.headers = list(headers)


@dataclass(frozen=True, slots=True)
class _Read:
    """A page of log entries or metric samples to stream."""

    logs: bool
    document: bool  # one JSON document rather than NDJSON
    negotiated: bool  # chosen by the Accept header (/metrics), so `vary: accept`
    filters: dict[str, Any]  # what the storage's read methods take
    keep: Callable[[Any], bool] | None  # filtering the storage cannot do (q)
    offset: int
    limit: int
    after: int | None
    carry: tuple[tuple[str, str], ...]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPE_JSON if self.document else CONTENT_TYPE_NDJSON


@dataclass(frozen=True, slots=True)
class _Exposition:
    content_type: str
    openmetrics: bool


class _Health:
    """``/health``: no parameters."""


@dataclass(frozen=True, slots=True)
class _Dashboard:
    """``/dashboard`` (``name`` None), ``/dashboard/`` (``""``) or a dashboard file."""

    name: str | None
    if_none_match: str | None
    refused: bool  # the access check said no: the page is the sign-in, with a 401


_Plan = _Read | _Exposition | _Health | _Dashboard


@dataclass(frozen=True, slots=True)
class _Answer:
    """What a route produced: a complete body (``rest`` None) or the start of a stream."""

    status: int
    content_type: str
    head: list[bytes]
    rest: Iterator[bytes] | AsyncIterator[bytes] | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    vary_accept: bool = False
    cache_control: str = "no-store"

    @classmethod
    def error(cls, error: _HTTPError) -> _Answer:
        return cls(error.status, CONTENT_TYPE_JSON, [error.body], None, error.headers)


class ObservabilityAPI:
    """Serve logs, metrics and health over HTTP, for any framework (see the module docstring).

    - ``log_storage`` / ``metrics_storage``: what ``/logs`` and ``/metrics`` read
      (their routes answer 404 without them).  A storage with
      ``read_ndjson_sync(**filters)`` / ``read_ndjson(**filters)`` methods (the
      SQLite ones) streams NDJSON built by the storage itself whenever no ``q``
      or ``offset`` needs filtering here.
    - ``registry``: whose live values ``/metrics/prometheus`` shows (default:
      the default registry), unless ``metrics_storage`` has an
      ``exposition(*, registry, openmetrics)`` method (the SQLite storage merges
      every process sharing its file): then that answers.
    - ``runtime`` and ``health_checks`` (name -> sync or async callable): what
      ``/health`` reports besides the storages (see :mod:`.health`).
    - ``access``: the check every route passes, except ``/health`` while
      ``health_public`` (see :mod:`.access`).
    - ``dashboard``: serve ``/dashboard`` when observabilipy-dashboard is installed.
    - ``gzip``, ``gzip_min_size``: compression; ``max_limit``, ``default_limit``:
      page sizes.

    One instance serves any number of threads and tasks at once: it keeps no
    state between requests.

    >>> ObservabilityAPI(default_limit=20_000)
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: default_limit: must be a whole number from 1 to max_limit (10000), got 20000
    """

    def __init__(
        self,
        *,
        log_storage: LogStoragePort | None = None,
        metrics_storage: MetricsStoragePort | None = None,
        registry: Registry | None = None,
        runtime: EmbeddedRuntime | None = None,
        health_checks: Mapping[str, HealthCheck] | None = None,
        access: AccessCheck | None = None,
        health_public: bool = True,
        dashboard: bool = True,
        gzip: bool = True,
        gzip_min_size: int = 1024,
        max_limit: int = 10_000,
        default_limit: int = 1_000,
    ) -> None:
        if log_storage is not None and not isinstance(log_storage, LogStoragePort):
            raise ConfigurationError("log_storage: must implement LogStoragePort")
        if metrics_storage is not None and not isinstance(metrics_storage, MetricsStoragePort):
            raise ConfigurationError("metrics_storage: must implement MetricsStoragePort")
        if access is not None and not callable(access):
            raise ConfigurationError("access: must be callable, such as bearer_token('...')")
        self._max_limit = _whole(max_limit, "max_limit", minimum=1, maximum=MAX_INTEGER)
        self._default_limit = _whole(
            default_limit, "default_limit", minimum=1, maximum=self._max_limit, bound="max_limit"
        )
        self._gzip_min_size = _whole(gzip_min_size, "gzip_min_size", minimum=0)
        self._checks = dict(health_checks or {})
        for name, check in self._checks.items():
            if not isinstance(name, str) or not name or name in BUILTIN_COMPONENTS:
                raise ConfigurationError(
                    f"health_checks: {name!r} cannot name a check; use a non-empty name "
                    f"other than {', '.join(sorted(BUILTIN_COMPONENTS))}"
                )
            if not callable(check):
                raise ConfigurationError(f"health_checks[{name!r}]: must be callable")
        self._log_storage = log_storage
        self._metrics_storage = metrics_storage
        self._registry = default_registry if registry is None else registry
        self._runtime = runtime
        self._access = access
        self._challenge: str = getattr(access, "challenge", DEFAULT_CHALLENGE)
        self._health_public = health_public
        self._dashboard_on = dashboard
        self._dashboard_files: Any = _NOT_LOOKED_UP
        self._gzip = gzip

    # -- the two entry points ----------------------------------------------------------

    def handle_sync(self, request: Request) -> Response:
        """Answer ``request`` using the storages' ``*_sync`` methods (WSGI, sync views).

        >>> response = ObservabilityAPI().handle_sync(Request("DELETE", "/logs"))
        >>> response.status, dict(response.headers)["allow"]
        (405, 'GET, HEAD')
        """
        gzip = self._gzip and accepts_gzip(request.headers.get("accept-encoding"))
        try:
            answer = self._run_sync(self._accept_sync(request), gzip)
        except _HTTPError as error:
            answer = _Answer.error(error)
        status, headers, head, compress = self._frame(answer, gzip)
        rest = cast(Iterator[bytes] | None, answer.rest)
        if request.method == "HEAD":
            if rest is not None:
                _close(rest)
            return Response(status, headers, iter(()))
        if rest is None:
            return Response(status, headers, iter(head))
        body = _stream(head, rest)
        return Response(status, headers, gzip_chunks(body) if compress else body)

    async def handle(self, request: Request) -> AsyncResponse:
        """Answer ``request`` using the storages' async methods (ASGI).

        >>> import asyncio
        >>> response = asyncio.run(ObservabilityAPI().handle(Request("GET", "/nowhere")))
        >>> response.status
        404
        """
        gzip = self._gzip and accepts_gzip(request.headers.get("accept-encoding"))
        try:
            answer = await self._run_async(await self._accept_async(request), gzip)
        except _HTTPError as error:
            answer = _Answer.error(error)
        status, headers, head, compress = self._frame(answer, gzip)
        rest = cast(AsyncIterator[bytes] | None, answer.rest)
        if request.method == "HEAD":
            if rest is not None:
                await _aclose(rest)
            return AsyncResponse(status, headers, _achunks([]))
        if rest is None:
            return AsyncResponse(status, headers, _achunks(head))
        body = _astream(head, rest)
        return AsyncResponse(status, headers, agzip_chunks(body) if compress else body)

    # -- routing, access and parameters: shared by both paths ---------------------------

    def _route(self, request: Request) -> str:
        """The route ``request`` names; refuses unknown paths (404) and methods (405)."""
        path = request.path
        if path == DASHBOARD or path.startswith(DASHBOARD + "/"):
            self._dashboard()  # 404 when it is not served
        else:
            if len(path) > 1 and path.endswith("/"):
                path = path[:-1]
            if path not in ROUTES:
                raise _HTTPError(
                    404, {"error": "not_found", "message": f"no route {path!r}", "routes": ROUTES}
                )
        if request.method not in _METHODS:
            raise _HTTPError(
                405,
                {
                    "error": "method_not_allowed",
                    "message": f"{path} answers {_ALLOW}, not {request.method!r}",
                    "allowed": _METHODS,
                },
                [("allow", _ALLOW)],
            )
        return path

    def _needs_access_check(self, route: str) -> bool:
        if route.startswith(DASHBOARD + "/"):
            return False  # the dashboard's own files: code, no data (see the module docstring)
        return self._access is not None and not (route == "/health" and self._health_public)

    def _dashboard(self) -> Any:
        """The dashboard module, looked up once; 404 when it is not served."""
        if self._dashboard_files is _NOT_LOOKED_UP:
            self._dashboard_files = _find_dashboard() if self._dashboard_on else None
        if self._dashboard_files is None:
            why = (
                "is not installed: pip install observabilipy-dashboard"
                if self._dashboard_on
                else "is turned off (ObservabilityAPI(dashboard=False))"
            )
            raise _HTTPError(404, {"error": "not_found", "message": f"the dashboard {why}"})
        return self._dashboard_files

    def _judge(self, allowed: object) -> None:
        if allowed is not True:
            raise _HTTPError(
                401,
                {"error": "unauthorized", "message": "missing or wrong credentials"},
                [("www-authenticate", self._challenge)],
            )

    def _accept_sync(self, request: Request) -> _Plan:
        route = self._route(request)
        if self._access is not None and self._needs_access_check(route):
            try:
                allowed = wait_sync(self._access(request))
            except Exception:
                raise _access_failed() from None
            if route == DASHBOARD and allowed is not True:
                return _Dashboard(None, None, refused=True)
            self._judge(allowed)
        return self._plan(route, request)

    async def _accept_async(self, request: Request) -> _Plan:
        route = self._route(request)
        if self._access is not None and self._needs_access_check(route):
            try:
                allowed = self._access(request)
                if inspect.isawaitable(allowed):
                    allowed = await allowed
            except Exception:
                raise _access_failed() from None
            if route == DASHBOARD and allowed is not True:
                return _Dashboard(None, None, refused=True)
            self._judge(allowed)
        return self._plan(route, request)

    def _plan(self, route: str, request: Request) -> _Plan:
        """What to answer: refuses bad parameters (400) and routes without storage (404)."""
        if route == "/health":
            return _Health()
        if route == DASHBOARD or route.startswith(DASHBOARD + "/"):
            name = None if route == DASHBOARD else route[len(DASHBOARD) + 1 :]
            return _Dashboard(name, request.headers.get("if-none-match"), refused=False)
        accept = request.headers.get("accept")
        if route == "/metrics/prometheus" or (route == "/metrics" and _prefers_exposition(accept)):
            return _Exposition(*choose_exposition(accept))
        logs = route.startswith("/logs")
        if (self._log_storage if logs else self._metrics_storage) is None:
            what = "log_storage" if logs else "metrics_storage"
            raise _HTTPError(
                404,
                {
                    "error": "not_found",
                    "message": f"{route} is not served: the API was created without {what}",
                },
            )
        try:
            params = parse_query(request.query_string)
            if logs:
                return self._log_read(route, params)
            return self._metrics_read(route, params)
        except ParameterError as error:
            raise _HTTPError(400, error.to_json()) from None

    def _log_read(self, route: str, params: dict[str, list[str]]) -> _Read:
        query = parse_log_query(
            params, default_limit=self._default_limit, max_limit=self._max_limit
        )
        # With q the storage cannot count matches: it streams until enough are found.
        stop = query.offset + query.limit
        return _Read(
            logs=True,
            document=route == "/logs/json",
            negotiated=False,
            filters={
                "since": query.since,
                "after": query.after,
                "level": query.level,
                "min_level": query.min_level,
                "limit": None if query.q is not None else min(stop, MAX_INTEGER),
            },
            keep=None if query.q is None else _message_contains(query.q),
            offset=query.offset,
            limit=query.limit,
            after=query.after,
            carry=query.carry,
        )

    def _metrics_read(self, route: str, params: dict[str, list[str]]) -> _Read:
        query = parse_metrics_query(
            params, default_limit=self._default_limit, max_limit=self._max_limit
        )
        return _Read(
            logs=False,
            document=route == "/metrics/json",
            negotiated=route == "/metrics",
            filters={
                "since": query.since,
                "after": query.after,
                "name": query.name,
                "limit": min(query.offset + query.limit, MAX_INTEGER),
            },
            keep=None,
            offset=query.offset,
            limit=query.limit,
            after=query.after,
            carry=query.carry,
        )

    def _threshold(self, gzip: bool) -> int:
        """Body bytes to read before answering: enough to decide on gzip."""
        return self._gzip_min_size if gzip else 0

    def _frame(
        self, answer: _Answer, gzip: bool
    ) -> tuple[int, list[tuple[str, str]], list[bytes], bool]:
        """(status, headers, head, compress the rest?); a complete body is compressed here."""
        headers = [
            ("content-type", answer.content_type),
            ("cache-control", answer.cache_control),
            ("x-content-type-options", "nosniff"),
            *answer.headers,
        ]
        vary = [
            name
            for name, on in (("accept", answer.vary_accept), ("accept-encoding", self._gzip))
            if on
        ]
        if vary:
            headers.append(("vary", ", ".join(vary)))
        head = answer.head
        size = sum(map(len, head))
        compress = gzip and size >= self._gzip_min_size
        if compress:
            headers.append(("content-encoding", "gzip"))
        if answer.rest is not None:
            return answer.status, headers, head, compress
        if compress:
            head = [gzip_bytes(b"".join(head))]
            size = len(head[0])
        if answer.status != 304:  # a 304's length would be the unsent 200 body's
            headers.append(("content-length", str(size)))
        return answer.status, headers, head, False

    def _dashboard_answer(self, plan: _Dashboard) -> _Answer:
        """The dashboard page or one of its files (no I/O once the files are loaded)."""
        files = self._dashboard()
        if plan.name == "":
            # The page's relative links resolve from /dashboard, not from /dashboard/.
            return _Answer(
                308, "text/plain; charset=utf-8", [], None, [("location", "../dashboard")]
            )
        served = files.page() if plan.name is None else files.asset(plan.name)
        if served is None:
            raise _HTTPError(
                404, {"error": "not_found", "message": f"the dashboard has no file {plan.name!r}"}
            )
        headers = [
            ("etag", served.etag),
            ("content-security-policy", files.CONTENT_SECURITY_POLICY),
        ]
        if plan.refused:
            headers.append(("www-authenticate", self._challenge))
            return _Answer(401, served.content_type, [served.body], None, headers)
        if _etag_matches(plan.if_none_match, served.etag):
            return _Answer(304, served.content_type, [], None, headers, cache_control="no-cache")
        return _Answer(
            200, served.content_type, [served.body], None, headers, cache_control="no-cache"
        )

    # -- running a plan: the sync path --------------------------------------------------

    def _run_sync(self, plan: _Plan, gzip: bool) -> _Answer:
        if isinstance(plan, _Dashboard):
            return self._dashboard_answer(plan)
        if isinstance(plan, _Health):
            status, body = health_sync(
                log_storage=self._log_storage,
                metrics_storage=self._metrics_storage,
                runtime=self._runtime,
                checks=self._checks,
            )
            return _Answer(status, CONTENT_TYPE_JSON, [body])
        try:
            if isinstance(plan, _Exposition):
                text = self._exposition_sync(plan.openmetrics)
                return _Answer(200, plan.content_type, [text.encode()], vary_accept=True)
            chunks = self._chunks_sync(plan)
            if plan.document:
                chunks = json_document(chunks, after=plan.after, limit=plan.limit, carry=plan.carry)
            head, rest = _prime(chunks, self._threshold(gzip))
        except Exception:
            raise _storage_failed(plan) from None
        return _Answer(200, plan.content_type, head, rest, vary_accept=plan.negotiated)

    def _exposition_sync(self, openmetrics: bool) -> str:
        merged = getattr(self._metrics_storage, "exposition", None)
        if callable(merged):
            return str(merged(registry=self._registry, openmetrics=openmetrics))
        return encode_current(self._registry, openmetrics=openmetrics)

    def _chunks_sync(self, plan: _Read) -> Iterator[bytes]:
        storage: Any = self._log_storage if plan.logs else self._metrics_storage
        if plan.keep is None and plan.offset == 0:
            fast = _ndjson_reader(storage, "read_ndjson_sync")
            if fast is not None:
                source = iter(fast(**plan.filters))
                return _owning(source, source)
        source = storage.read_sync(**plan.filters)
        items: Iterator[Any] = source
        if plan.keep is not None:
            items = filter(plan.keep, items)
        if plan.keep is not None or plan.offset:
            items = islice(items, plan.offset, plan.offset + plan.limit)
        return _owning((encode_logs_ndjson if plan.logs else encode_metrics_ndjson)(items), source)

    # -- running a plan: the async path -------------------------------------------------

    async def _run_async(self, plan: _Plan, gzip: bool) -> _Answer:
        if isinstance(plan, _Dashboard):
            return self._dashboard_answer(plan)
        if isinstance(plan, _Health):
            status, body = await health(
                log_storage=self._log_storage,
                metrics_storage=self._metrics_storage,
                runtime=self._runtime,
                checks=self._checks,
            )
            return _Answer(status, CONTENT_TYPE_JSON, [body])
        try:
            if isinstance(plan, _Exposition):
                text = await self._exposition_async(plan.openmetrics)
                return _Answer(200, plan.content_type, [text.encode()], vary_accept=True)
            chunks = self._chunks_async(plan)
            if plan.document:
                chunks = ajson_document(
                    chunks, after=plan.after, limit=plan.limit, carry=plan.carry
                )
            head, rest = await _aprime(chunks, self._threshold(gzip))
        except Exception:
            raise _storage_failed(plan) from None
        return _Answer(200, plan.content_type, head, rest, vary_accept=plan.negotiated)

    async def _exposition_async(self, openmetrics: bool) -> str:
        merged = getattr(self._metrics_storage, "exposition", None)
        if callable(merged):
            # A storage's exposition reads its file: off the event loop.
            text = await asyncio.to_thread(merged, registry=self._registry, openmetrics=openmetrics)
            return str(text)
        return encode_current(self._registry, openmetrics=openmetrics)

    def _chunks_async(self, plan: _Read) -> AsyncIterator[bytes]:
        storage: Any = self._log_storage if plan.logs else self._metrics_storage
        if plan.keep is None and plan.offset == 0:
            fast = _ndjson_reader(storage, "read_ndjson")
            if fast is not None:
                source = aiter(fast(**plan.filters))
                return _aowning(source, source)
        source = storage.read(**plan.filters)
        items: AsyncIterator[Any] = source
        if plan.keep is not None or plan.offset:
            items = _apage(items, plan.keep, plan.offset, plan.offset + plan.limit)
        encode = aencode_logs_ndjson if plan.logs else aencode_metrics_ndjson
        return _aowning(encode(items), source)


def _whole(
    value: object, field: str, *, minimum: int, maximum: int | None = None, bound: str = ""
) -> int:
    """``value`` if it is a whole number in range, else a ConfigurationError naming ``field``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        if maximum is None:
            allowed = f"{minimum} or more"
        else:
            allowed = f"from {minimum} to {bound + ' (' + str(maximum) + ')' if bound else maximum}"
        raise ConfigurationError(f"{field}: must be a whole number {allowed}, got {value!r}")
    return value


def _find_dashboard() -> Any:
    """The ``observabilipy.dashboard`` module, or None when it is not installed."""
    try:
        return importlib.import_module("observabilipy.dashboard")
    except ModuleNotFoundError as error:
        if error.name in ("observabilipy", "observabilipy.dashboard"):
            return None
        raise


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether If-None-Match names ``etag`` (weak comparison, as RFC 9110 asks) or is ``*``."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    return any(
        tag == "*" or tag.removeprefix("W/") == wanted
        for tag in (part.strip() for part in if_none_match.split(","))
    )


def _prefers_exposition(accept: str | None) -> bool:
    """True when Accept ranks an exposition format above JSON and NDJSON (a scraper)."""
    if not accept:
        return False
    exposition = max(
        _quality(accept, "text", "plain"), _quality(accept, "application", "openmetrics-text")
    )
    data = max(_quality(accept, "application", "x-ndjson"), _quality(accept, "application", "json"))
    return exposition > data


def _message_contains(text: str) -> Callable[[Any], bool]:
    """The ``q`` filter: the entry's message contains ``text``, ignoring case."""
    needle = text.casefold()

    def keep(entry: Any) -> bool:
        return needle in entry.message.casefold()

    return keep


def _ndjson_reader(storage: object, name: str) -> Callable[..., Any] | None:
    """The storage's own NDJSON reader ``name`` (SQLite builds rows in SQL), if it has one."""
    reader = getattr(storage, name, None)
    return reader if callable(reader) else None


def _access_failed() -> _HTTPError:
    _logger.exception("the access check of the observability API raised")
    return _HTTPError(
        503,
        {
            "error": "access_check_failed",
            "message": "the access check failed; the server log has the details",
        },
    )


def _storage_failed(plan: _Plan) -> _HTTPError:
    what = "log" if isinstance(plan, _Read) and plan.logs else "metrics"
    _logger.warning("the %s storage failed before the response started: 503", what, exc_info=True)
    return _HTTPError(
        503,
        {
            "error": "storage_unavailable",
            "message": f"reading the {what} storage failed; the server log has the details",
        },
    )


# -- streaming helpers ----------------------------------------------------------------


def _prime(chunks: Iterator[bytes], threshold: int) -> tuple[list[bytes], Iterator[bytes] | None]:
    """Read the start of a body: (its chunks, the rest or None when that was all of it).

    Reads until ``threshold`` bytes and two chunks, or the end: a body of one
    encoder chunk, the usual page, is then known whole and gets a content-length.
    """
    head: list[bytes] = []
    size = 0
    for chunk in chunks:
        if chunk:
            head.append(chunk)
            size += len(chunk)
            if size >= threshold and len(head) > 1:
                return head, chunks
    return head, None


async def _aprime(
    chunks: AsyncIterator[bytes], threshold: int
) -> tuple[list[bytes], AsyncIterator[bytes] | None]:
    """Async twin of :func:`_prime`."""
    head: list[bytes] = []
    size = 0
    async for chunk in chunks:
        if chunk:
            head.append(chunk)
            size += len(chunk)
            if size >= threshold and len(head) > 1:
                return head, chunks
    return head, None


def _owning(chunks: Iterator[bytes], source: Iterator[Any]) -> Iterator[bytes]:
    """``chunks``, closing ``source`` (the storage's stream they are made from) at the end.

    The encoders between the two do not close what they read: without this, a
    body closed early would leave the storage's cursor open until garbage collection.
    """
    try:
        yield from chunks
    finally:
        _close(source)


async def _aowning(
    chunks: AsyncIterator[bytes], source: AsyncIterator[Any]
) -> AsyncIterator[bytes]:
    """Async twin of :func:`_owning`."""
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        await _aclose(chunks)
        await _aclose(source)


def _stream(head: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    """``head`` then ``rest``; a failure of ``rest`` ends the body (see the module docstring).

    Closing this generator closes ``rest``, and through it the storage's stream.
    """
    try:
        yield from head
        yield from rest
    except Exception:
        _logger.warning("a storage failed while a response streamed; it ended early", exc_info=True)
    finally:
        _close(rest)


async def _astream(head: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Async twin of :func:`_stream`."""
    try:
        for chunk in head:
            yield chunk
        async for chunk in rest:
            yield chunk
    except Exception:
        _logger.warning("a storage failed while a response streamed; it ended early", exc_info=True)
    finally:
        await _aclose(rest)


async def _achunks(chunks: list[bytes]) -> AsyncIterator[bytes]:
    """A complete body, as an async generator."""
    for chunk in chunks:
        yield chunk


async def _apage(
    items: AsyncIterator[Any], keep: Callable[[Any], bool] | None, start: int, stop: int
) -> AsyncIterator[Any]:
    """``islice(filter(keep, items), start, stop)`` for an async iterator."""
    if start >= stop:
        return
    seen = 0
    async for item in items:
        if keep is not None and not keep(item):
            continue
        seen += 1
        if seen > start:
            yield item
            if seen >= stop:
                return


def _close(iterator: Iterator[Any]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


async def _aclose(iterator: AsyncIterator[Any]) -> None:
    # An async generator left suspended keeps its storage cursor until the event loop
    # finalises it; closing it here releases the cursor at once.
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()
