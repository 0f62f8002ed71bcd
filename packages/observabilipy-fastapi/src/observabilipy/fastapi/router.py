"""The observability endpoints as a FastAPI router, documented in the app's OpenAPI.

:func:`create_observability_router` gives an :class:`~fastapi.APIRouter`
whose routes and query parameters appear in ``/docs``; every request is
answered by core's :class:`~observabilipy.core.http.ObservabilityAPI` from
the raw query string, so parameter checks, errors (a JSON 400 naming the
parameter, never FastAPI's 422), 404 and 405 are exactly those of the other
adapters.  The parameters are declared as optional strings for the
documentation only: FastAPI never validates them.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from observabilipy.asgi import Receive, Scope, Send, core_request, send_response
from observabilipy.asgi.app import _api
from observabilipy.core.http import ROUTES, AsyncResponse, ObservabilityAPI
from observabilipy.core.http.api import DASHBOARD as DASHBOARD_ROUTE

__all__ = ["create_observability_router"]

_DOCUMENTED: Final = ("GET",)
#: Methods answered by the API (HEAD) or refused by it (405), outside the documentation.
_OTHER_METHODS: Final = ["HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

_PARAMETERS: Final[dict[str, tuple[str, list[str]]]] = {
    "since": (
        "Only entries with a timestamp strictly after this Unix time in seconds "
        "(a finite number >= 0; exclusive).",
        ["1700000000.5"],
    ),
    "after": (
        "Id cursor: only entries with a larger id. Pass the last id received "
        "(`next_after` of the JSON document) to page on without skipping or repeating "
        "(a whole number >= 0).",
        ["1200"],
    ),
    "level": (
        "Only this level: DEBUG, INFO, WARNING (or WARN), ERROR or CRITICAL, in any case.",
        ["warning"],
    ),
    "min_level": (
        "This level and the more severe ones: DEBUG, INFO, WARNING (or WARN), ERROR or CRITICAL.",
        ["error"],
    ),
    "q": ("Only entries whose message contains this text, ignoring case.", ["timeout"]),
    "name": (
        "Only this metric: a sample name (`jobs_total`, `latency_seconds_bucket`) or a "
        "family name (`jobs`, `latency_seconds`).",
        ["http_requests_total"],
    ),
    "limit": (
        "At most this many items (a whole number from 0 to the API's max_limit, "
        "10000 unless configured; default: its default_limit, 1000 unless configured).",
        ["100"],
    ),
    "offset": (
        "Skip this many matching items first (a whole number >= 0); `after` pages more cheaply.",
        ["0"],
    ),
}

_LOG_PARAMETERS: Final = ("since", "after", "level", "min_level", "q", "limit", "offset")
_METRICS_PARAMETERS: Final = ("since", "after", "name", "limit", "offset")

_ERROR: Final[dict[str, Any]] = {"content": {"application/json": {}}}
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: {
        "description": "A bad parameter: `{error, parameter, message, allowed}`.",
        "content": {
            "application/json": {
                "example": {
                    "error": "invalid_parameter",
                    "parameter": "since",
                    "message": "since: 'abc' is not a number",
                    "allowed": "a Unix timestamp in seconds, a finite number >= 0",
                }
            }
        },
    },
    401: {"description": "Missing or wrong credentials (when an access check is set).", **_ERROR},
    404: {"description": "Not served: the API has no such storage.", **_ERROR},
    503: {"description": "The storage or the access check failed.", **_ERROR},
    # Also keeps FastAPI from documenting a 422, which these routes never answer.
    "4XX": {"description": "Another refusal, such as 405 for a method other than GET.", **_ERROR},
}
_NDJSON: Final[dict[str, Any]] = {"application/x-ndjson": {}}
_JSON: Final[dict[str, Any]] = {"application/json": {}}
_EXPOSITION: Final[dict[str, Any]] = {"text/plain": {}, "application/openmetrics-text": {}}

#: route -> (summary, description, parameters, 200 content types)
_ROUTE_DOCS: Final[dict[str, tuple[str, str, Sequence[str], dict[str, Any]]]] = {
    "/logs": (
        "Log entries (NDJSON)",
        "Stored log entries, oldest first, one JSON object per line.",
        _LOG_PARAMETERS,
        _NDJSON,
    ),
    "/logs/json": (
        "Log entries (JSON page)",
        "The same entries as one document: `items`, `count`, `next_after` and `next`, "
        "the query of the following page.",
        _LOG_PARAMETERS,
        _JSON,
    ),
    "/metrics": (
        "Metric history (NDJSON), or the exposition for scrapers",
        "Stored metric samples, oldest first, one JSON object per line; when the Accept "
        "header prefers text/plain or OpenMetrics (a Prometheus scraper), the current "
        "exposition instead.",
        _METRICS_PARAMETERS,
        {**_NDJSON, **_EXPOSITION},
    ),
    "/metrics/json": (
        "Metric history (JSON page)",
        "The same samples as one document: `items`, `count`, `next_after` and `next`.",
        _METRICS_PARAMETERS,
        _JSON,
    ),
    "/metrics/prometheus": (
        "Prometheus exposition",
        "Current values: Prometheus text 0.0.4, or OpenMetrics 1.0 when the Accept header "
        "asks for it. Summed over every process sharing a SQLite file.",
        (),
        _EXPOSITION,
    ),
    "/health": (
        "Health",
        "Storage reachability, runtime liveness and custom checks: 200 when all pass, 503 "
        "otherwise.",
        (),
        _JSON,
    ),
}


class _CoreResponse(Response):
    """Sends a core :class:`AsyncResponse` as it is: status, headers and body bytes."""

    def __init__(self, response: AsyncResponse, *, head: bool) -> None:
        # Not Response.__init__: the body is streamed by send_response, never rendered.
        self.status_code = response.status
        self.background = None
        self.raw_headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
        self._core = response
        self._head = head

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send_response(self._core, receive, send, head=self._head)
        finally:
            if self.background is not None:
                await self.background()


def create_observability_router(
    api: ObservabilityAPI | None = None,
    *,
    prefix: str = "",
    tags: Sequence[str] = ("observability",),
    include_in_schema: bool = True,
    **api_options: Any,
) -> APIRouter:
    """A router serving ``api`` (or an :class:`ObservabilityAPI` built from ``api_options``).

    Include it with ``app.include_router(router)``.  Give ``prefix`` here (not
    to ``include_router``) so that the router also answers below it what
    the other adapters answer: the prefix itself, unknown paths (404 JSON)
    and trailing slashes, from core.  ``tags`` and ``include_in_schema`` go
    to the OpenAPI documentation.

    >>> from fastapi import FastAPI
    >>> from fastapi.testclient import TestClient
    >>> from observabilipy.core.metrics import Registry
    >>> app = FastAPI()
    >>> app.include_router(create_observability_router(registry=Registry(), prefix="/obs"))
    >>> client = TestClient(app)
    >>> client.get("/obs/health").json()
    {'status': 'pass', 'components': {}}
    >>> response = client.get("/obs/logs?since=abc")
    >>> response.status_code, response.json()["error"]
    (404, 'not_found')
    """
    served = _api(api, api_options, "create_observability_router")
    router = APIRouter(prefix=prefix, tags=list(tags))
    for route in ROUTES:
        summary, description, parameters, content = _ROUTE_DOCS[route]
        router.add_api_route(
            route,
            _endpoint(served, route, parameters),
            methods=list(_DOCUMENTED),
            summary=summary,
            description=description,
            response_class=Response,
            responses={200: {"description": summary, "content": content}, **_ERRORS},
            include_in_schema=include_in_schema,
            name=f"observability{route.replace('/', '_')}",
        )
        router.add_api_route(
            route,
            _endpoint(served, route, ()),
            methods=_OTHER_METHODS,
            include_in_schema=False,
            name=f"observability{route.replace('/', '_')}_other_methods",
        )
    every = ["GET", *_OTHER_METHODS]
    if prefix:
        # Below the prefix, core answers everything (404 JSON, trailing slashes, 405).
        for path in ("", "/{path:path}"):
            router.add_api_route(
                path,
                _endpoint(served, None, ()),
                methods=every,
                include_in_schema=False,
                name="observability_other" if path else "observability_root",
            )
    else:
        # Without a prefix the app owns every other path; the dashboard's are ours.
        for path in (DASHBOARD_ROUTE, DASHBOARD_ROUTE + "/{path:path}"):
            router.add_api_route(
                path,
                _endpoint(served, None, (), base=DASHBOARD_ROUTE),
                methods=every,
                include_in_schema=False,
                name="observability_dashboard" + ("_files" if "{" in path else ""),
            )
    return router


def _endpoint(
    api: ObservabilityAPI, route: str | None, parameters: Sequence[str], *, base: str = ""
) -> Any:
    """An endpoint answering from ``api``; ``route`` None: ``base`` + the path below it.

    Its signature declares ``parameters`` as optional strings (for OpenAPI); it
    ignores their values and hands the raw query string to the API.
    """

    async def endpoint(request: Request, **_documented: Any) -> Response:
        if route is not None:
            path = route
        else:
            below = request.path_params.get("path")
            path = base if below is None else f"{base}/{below}"
        core = core_request(request.scope, path)
        return _CoreResponse(await api.handle(core), head=core.method == "HEAD")

    declared = [inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)]
    for name in parameters:
        description, examples = _PARAMETERS[name]
        declared.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[str | None, Query(description=description, examples=examples)],
            )
        )
    endpoint.__signature__ = inspect.Signature(declared)  # type: ignore[attr-defined]
    return endpoint
