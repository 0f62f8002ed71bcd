"""observabilipy-fastapi: the observability endpoints, request metrics and logs for FastAPI.

- :func:`add_observability`: one call wiring the endpoints (under
  ``/observability``) and the request middleware;
- :func:`create_observability_router`: the endpoints as an ``APIRouter``,
  every route and parameter in the app's OpenAPI;
- :func:`instrument_dependency`: a ``Depends`` counting and timing an endpoint;
- :class:`ObservabilityMiddleware` (from observabilipy-asgi): the request middleware.

Everything answers and records as the other adapters do: this package only
translates between FastAPI and :mod:`observabilipy.core.http`.

>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> from observabilipy.core.metrics import Registry
>>> app = FastAPI()
>>> @app.get("/hello")
... async def hello() -> str:
...     return "hi"
>>> _ = add_observability(app, registry=Registry())
>>> client = TestClient(app)
>>> client.get("/hello").status_code
200
>>> print(next(line for line in client.get("/observability/metrics/prometheus").text.splitlines()
...            if line.startswith("http_requests_total")))
http_requests_total{method="GET",route="/hello",status="200"} 1.0
"""

from __future__ import annotations

try:
    import fastapi as _fastapi  # noqa: F401
except ImportError as error:  # pragma: no cover - fastapi is a dependency of this distribution
    raise ImportError(
        "observabilipy.fastapi needs FastAPI: pip install observabilipy-fastapi"
    ) from error

from observabilipy.asgi import ObservabilityMiddleware
from observabilipy.fastapi.dependencies import instrument_dependency
from observabilipy.fastapi.router import create_observability_router
from observabilipy.fastapi.wiring import add_observability

__all__ = [
    "ObservabilityMiddleware",
    "add_observability",
    "create_observability_router",
    "instrument_dependency",
]
