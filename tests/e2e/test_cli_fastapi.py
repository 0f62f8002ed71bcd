"""The CLI against a FastAPI application under uvicorn: the URL users type, the answers they get."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi", reason="needs observabilipy-fastapi")
uvicorn = pytest.importorskip("uvicorn", reason="needs uvicorn")

from fastapi import FastAPI  # noqa: E402

from observabilipy.cli.app import main  # noqa: E402
from observabilipy.core.http import bearer_token  # noqa: E402
from observabilipy.core.metrics import Registry  # noqa: E402
from observabilipy.core.storage import InMemoryLogStorage  # noqa: E402
from observabilipy.fastapi import add_observability  # noqa: E402


@dataclass
class App:
    """A FastAPI app served by uvicorn on loopback, its endpoints under /observability."""

    url: str
    registry: Registry


def _serve(token: str | None) -> Iterator[App]:
    registry = Registry()
    app = FastAPI()

    @app.get("/users/{user_id}")
    async def read_user(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    @app.get("/api/{rest:path}")
    async def anything(rest: str) -> dict[str, str]:
        return {"path": rest}

    add_observability(
        app,
        registry=registry,
        log_storage=InMemoryLogStorage(),
        access=bearer_token(token) if token else None,
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield App(f"http://127.0.0.1:{port}", registry)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def fastapi_app() -> Iterator[App]:
    yield from _serve(token=None)


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_tail_and_metrics_read_what_the_app_recorded(fastapi_app: App) -> None:
    with httpx.Client(base_url=fastapi_app.url) as client:
        for user in (1, 2, 2):
            assert (
                client.get(f"/users/{user}", headers={"x-request-id": f"r-{user}"}).status_code
                == 200
            )
        assert client.get("/users/x").status_code == 422

    base = fastapi_app.url + "/observability"
    status, out, err = cli("tail", base, "--format", "json")
    assert (status, err) == (0, "")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["message"] for row in rows] == [
        "GET /users/{user_id} 200",
        "GET /users/{user_id} 200",
        "GET /users/{user_id} 200",
        "GET /users/{user_id} 422",
    ]
    assert (
        cli("tail", base + "/logs", "--min-level", "warning", "--format", "json")[1].count("\n")
        == 1
    )

    status, out, _ = cli(
        "metrics", base, "--filter", "http_requests_total", "--filter", "route=/users/{user_id}"
    )
    assert status == 0
    table = {tuple(line.split()) for line in out.splitlines()[1:]}
    assert table == {
        (
            "http_requests_total",
            '{method="GET",route="/users/{user_id}",status="200"}',
            "3",
            "counter",
        ),
        (
            "http_requests_total",
            '{method="GET",route="/users/{user_id}",status="422"}',
            "1",
            "counter",
        ),
    }


def test_the_apps_own_pages_are_not_an_observabilipy_endpoint(fastapi_app: App) -> None:
    status, _, err = cli("tail", fastapi_app.url + "/users")
    assert status == 1
    assert err.startswith(
        f"Error: {fastapi_app.url}/users/logs is not an observabilipy endpoint (HTTP 4"
    )
    status, _, err = cli("metrics", fastapi_app.url + "/api")
    assert status == 1
    assert "answered application/json, not text/plain" in err


def test_a_guarded_api_needs_the_token() -> None:
    for app in _serve(token="s3cret"):
        status, _, err = cli("metrics", app.url + "/observability")
        assert status == 1
        assert err.endswith(
            "refused access (401): pass --token TOKEN or --user NAME:PASSWORD (or set OBSERVABILIPY_TOKEN)\n"
        )
        assert cli("metrics", app.url + "/observability", "--token", "s3cret")[0] == 0
