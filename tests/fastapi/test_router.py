"""create_observability_router: every conformance case through FastAPI, and the OpenAPI it documents.

The router is mounted under a prefix (alone, and through add_observability with
the request middleware on): each case must get what core answers, byte for byte
(FastAPI's own 422, 404 and 405 never answer for these routes).
"""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import Depends, FastAPI, Header, HTTPException

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.http import ROUTES, ObservabilityAPI, Request
from observabilipy.core.http.conformance import CASES, Answer, Case, build_api, core_answer
from observabilipy.core.metrics import Registry
from observabilipy.fastapi import add_observability, create_observability_router

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.fastapi._fastapi_support import send, send_raw
else:
    from _fastapi_support import send, send_raw

PREFIX = "/observability"

# httpx refuses to build a URL whose query holds a raw non-ASCII byte.
_HTTPX_CANNOT_SEND = {case.id for case in CASES if not case.query.isascii()}


def _same_as_core(case: Case, answer: Answer) -> None:
    case.verify(answer)
    expected = core_answer(case)
    assert answer.status == expected.status
    assert dict(answer.headers) == dict(expected.headers)
    if expected.headers.get("content-encoding") == "gzip":
        assert gzip.decompress(answer.body) == gzip.decompress(expected.body)
    else:
        assert answer.body == expected.body


def _router_app(api: ObservabilityAPI) -> FastAPI:
    app = FastAPI()
    app.include_router(create_observability_router(api, prefix=PREFIX))
    return app


def _wired_app(api: ObservabilityAPI) -> FastAPI:
    app = FastAPI()
    add_observability(app, api=api, prefix=PREFIX, registry=Registry())
    return app


@pytest.mark.parametrize("build", [_router_app, _wired_app], ids=["router", "add_observability"])
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
async def test_conformance(case: Case, build: Any) -> None:
    app = build(build_api(case.api))
    # httpx cannot send a raw non-ASCII query byte: those go to the app directly.
    through = send_raw if case.id in _HTTPX_CANNOT_SEND else send
    answer = await through(app, case.method, PREFIX + case.path, case.query, case.headers)
    _same_as_core(case, answer)


async def test_fastapi_never_answers_422_404_or_405_for_our_routes() -> None:
    app = _router_app(build_api("default"))
    for query in (b"since=abc", b"limit=ten", b"limit=1&limit=2", b"level=bogus", b"q=%FF"):
        answer = await send(app, "GET", PREFIX + "/logs", query)
        assert answer.status == 400
        assert answer.json()["error"] == "invalid_parameter"
    answer = await send(app, "GET", PREFIX + "/nope")
    assert (answer.status, answer.json()["error"]) == (404, "not_found")
    answer = await send(app, "DELETE", PREFIX + "/logs")
    assert (answer.status, answer.json()["error"]) == (405, "method_not_allowed")


async def test_the_apps_own_routes_still_answer() -> None:
    app = FastAPI()

    @app.get("/users/{user_id}")
    async def read_user(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    app.include_router(create_observability_router(build_api("default"), prefix=PREFIX))

    @app.get("/after")
    async def declared_after() -> str:
        return "after"

    assert (await send(app, "GET", "/users/3")).json() == {"id": 3}
    assert (await send(app, "GET", "/after")).json() == "after"
    # FastAPI's own answers outside the prefix.
    assert (await send(app, "GET", "/users/x")).status == 422
    assert (await send(app, "GET", "/nothing")).json() == {"detail": "Not Found"}


async def test_without_prefix_the_router_claims_only_its_routes() -> None:
    app = FastAPI()
    app.include_router(create_observability_router(build_api("default")))

    @app.get("/users")
    async def users() -> list[str]:
        return ["ada"]

    assert (await send(app, "GET", "/logs", b"limit=1")).status == 200
    assert (await send(app, "GET", "/users")).json() == ["ada"]
    assert (await send(app, "GET", "/nothing")).json() == {"detail": "Not Found"}
    assert (await send(app, "POST", "/logs")).json()["error"] == "method_not_allowed"


async def test_without_a_prefix_the_dashboard_paths_are_answered_by_core() -> None:
    api = build_api("default")
    app = FastAPI()
    app.include_router(create_observability_router(api))
    for path in ("/dashboard", "/dashboard/style.css", "/dashboard/missing.js"):
        # Core's own answer: the page or file, or a 404 naming the pip command.
        ours = api.handle_sync(Request("GET", path))
        answer = await send(app, "GET", path)
        assert answer.status == ours.status, path
        assert answer.body == b"".join(ours.body), path


async def test_included_with_another_prefix() -> None:
    app = FastAPI()
    app.include_router(
        create_observability_router(build_api("default"), prefix="/obs"), prefix="/v1"
    )
    answer = await send(app, "GET", "/v1/obs/logs", b"level=warn")
    assert answer.status == 200
    assert len(answer.ndjson()) == 1
    assert (await send(app, "GET", "/v1/obs/nope")).json()["error"] == "not_found"


async def test_router_dependencies_are_honoured() -> None:
    async def api_key(x_api_key: str = Header(default="")) -> None:
        if x_api_key != "k":
            raise HTTPException(status_code=403, detail="forbidden")

    app = FastAPI()
    app.include_router(
        create_observability_router(build_api("default"), prefix=PREFIX),
        dependencies=[Depends(api_key)],
    )
    assert (await send(app, "GET", PREFIX + "/logs")).status == 403
    assert (await send(app, "GET", PREFIX + "/logs", headers={"x-api-key": "k"})).status == 200


async def test_head_and_trailing_slash() -> None:
    app = _router_app(build_api("bulk"))
    answer = await send(app, "HEAD", PREFIX + "/logs", b"limit=3000")
    assert (answer.status, answer.body) == (200, b"")
    answer = await send(app, "GET", PREFIX + "/logs/", b"limit=2")
    assert len(answer.ndjson()) == 2


def test_openapi_documents_every_route_and_parameter() -> None:
    app = _router_app(build_api("default"))
    schema = app.openapi()
    paths = schema["paths"]
    assert sorted(paths) == sorted(PREFIX + route for route in ROUTES)
    expected = {
        "/logs": {"since", "after", "level", "min_level", "q", "limit", "offset"},
        "/logs/json": {"since", "after", "level", "min_level", "q", "limit", "offset"},
        "/metrics": {"since", "after", "name", "limit", "offset"},
        "/metrics/json": {"since", "after", "name", "limit", "offset"},
        "/metrics/prometheus": set(),
        "/health": set(),
    }
    for route, names in expected.items():
        operations = paths[PREFIX + route]
        assert list(operations) == ["get"]
        operation = operations["get"]
        parameters = operation.get("parameters", [])
        assert {p["name"] for p in parameters} == names
        for parameter in parameters:
            assert parameter["in"] == "query"
            assert parameter["required"] is False
            assert parameter["description"]
        assert "422" not in operation["responses"]
        assert {"200", "400", "401", "404", "503"} <= set(operation["responses"])
        assert operation["tags"] == ["observability"]
    levels = next(p for p in paths[PREFIX + "/logs"]["get"]["parameters"] if p["name"] == "level")
    assert "WARN" in levels["description"]
    content = paths[PREFIX + "/metrics/prometheus"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"text/plain", "application/openmetrics-text"}


async def test_docs_page_is_served() -> None:
    app = _router_app(build_api("default"))
    assert (await send(app, "GET", "/docs")).status == 200
    assert PREFIX + "/logs" in (await send(app, "GET", "/openapi.json")).text()


def test_hidden_from_the_schema() -> None:
    app = FastAPI()
    app.include_router(
        create_observability_router(build_api("default"), prefix=PREFIX, include_in_schema=False)
    )
    assert app.openapi()["paths"] == {}


def test_either_an_api_or_its_options() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        create_observability_router(ObservabilityAPI(), gzip=False)
    router = create_observability_router(registry=Registry(), gzip=False, tags=["ops"])
    assert router.tags == ["ops"]
