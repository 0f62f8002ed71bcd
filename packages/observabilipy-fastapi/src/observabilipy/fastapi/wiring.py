"""``add_observability``: the endpoints and the request middleware on a FastAPI app in one call."""

from __future__ import annotations

import inspect
from typing import Any, Final

from fastapi import FastAPI
from observabilipy.asgi import ObservabilityMiddleware, RouteResolver
from observabilipy.core.errors import ConfigurationError
from observabilipy.core.http import ObservabilityAPI, RequestTelemetry
from observabilipy.fastapi.router import create_observability_router

__all__ = ["add_observability"]

_API_OPTIONS: Final = frozenset(inspect.signature(ObservabilityAPI).parameters)
_TELEMETRY_OPTIONS: Final = frozenset(inspect.signature(RequestTelemetry).parameters)


def add_observability(
    app: FastAPI,
    *,
    prefix: str = "/observability",
    api: ObservabilityAPI | None = None,
    middleware: bool = True,
    route_resolver: RouteResolver | None = None,
    **options: Any,
) -> ObservabilityAPI:
    """Serve the observability endpoints under ``prefix`` and record every request.

    ``options`` are those of :class:`~observabilipy.core.http.ObservabilityAPI`
    (``log_storage``, ``metrics_storage``, ``registry``, ``runtime``,
    ``health_checks``, ``access``, ``gzip``...) and of
    :class:`~observabilipy.core.http.RequestTelemetry` (``exclude_paths``,
    ``metrics``, ``logs``, ``request_ids``, ``in_flight``, ``buckets``...);
    ``registry`` and ``log_storage`` serve both, so the requests are recorded
    where the endpoints read.  With ``api`` given, the middleware records into
    that API's registry and log storage unless told otherwise.  The endpoints'
    own requests (``prefix`` and below) are not recorded unless
    ``exclude_paths`` says otherwise.  ``middleware=False`` adds the endpoints only.
    Call it before the app starts; returns the API served.

    >>> from fastapi import FastAPI
    >>> from fastapi.testclient import TestClient
    >>> from observabilipy.core.metrics import Registry
    >>> from observabilipy.core.storage import InMemoryLogStorage
    >>> app = FastAPI()
    >>> @app.get("/users/{user_id}")
    ... async def read_user(user_id: int) -> dict[str, int]:
    ...     return {"id": user_id}
    >>> api = add_observability(app, registry=Registry(), log_storage=InMemoryLogStorage())
    >>> client = TestClient(app)
    >>> client.get("/users/7", headers={"x-request-id": "r-1"}).headers["x-request-id"]
    'r-1'
    >>> import json
    >>> rows = [json.loads(line) for line in client.get("/observability/logs").text.splitlines()]
    >>> [(row["message"], row["attributes"]["request_id"]) for row in rows]
    [('GET /users/{user_id} 200', 'r-1')]
    """
    unknown = sorted(set(options) - _API_OPTIONS - _TELEMETRY_OPTIONS)
    if unknown:
        raise ConfigurationError(
            f"add_observability: unknown option {', '.join(unknown)}; options are those of "
            "ObservabilityAPI and RequestTelemetry"
        )
    api_options = {k: v for k, v in options.items() if k in _API_OPTIONS}
    telemetry_options = {k: v for k, v in options.items() if k in _TELEMETRY_OPTIONS}
    if api is None:
        api = ObservabilityAPI(**api_options)
    else:
        only_api = sorted(set(api_options) - _TELEMETRY_OPTIONS)
        if only_api:
            raise ConfigurationError(
                f"add_observability: {', '.join(only_api)} configure the API; with api= given, "
                "set them on that ObservabilityAPI"
            )
        # Record where the API reads (its registry and log storage), unless told otherwise.
        for option in ("registry", "log_storage"):
            served = getattr(api, f"_{option}", None)
            if served is not None:
                telemetry_options.setdefault(option, served)
    app.include_router(create_observability_router(api, prefix=prefix))
    if not middleware:
        only_telemetry = sorted(set(telemetry_options) - _API_OPTIONS)
        if only_telemetry or route_resolver is not None:
            raise ConfigurationError(
                "add_observability: middleware=False, yet middleware options were given: "
                + ", ".join(only_telemetry or ["route_resolver"])
            )
        return api
    telemetry_options.setdefault("exclude_paths", (prefix, prefix + "/*") if prefix else ())
    app.add_middleware(
        ObservabilityMiddleware,
        telemetry=RequestTelemetry(**telemetry_options),
        route_resolver=route_resolver,
    )
    return api
