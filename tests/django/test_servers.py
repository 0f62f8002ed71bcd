"""Real servers on loopback: Django under gunicorn (WSGI) and uvicorn (ASGI).

- gunicorn, one worker: N requests, then ``/observability/metrics/prometheus``
  counts exactly N in ``http_requests_total``, by route pattern;
- uvicorn serving Django's ASGI application: the same, through async and sync views;
- ``gunicorn -w 4 --preload`` on one SQLite file, the runtime started by the
  app config (and again in each forked worker): whichever worker answers
  reports the N requests of all of them.

Servers are started on a free loopback port and always stopped.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.django._django_support import (
        HERE,
        Server,
        counter_total,
        free_port,
        http_get,
        serve,
    )
else:
    from _django_support import HERE, Server, counter_total, free_port, http_get, serve

pytestmark = pytest.mark.slow

N = 40


def _gunicorn(port: int, *options: str) -> list[str]:
    pytest.importorskip("gunicorn")
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "5",
        "--pythonpath",
        HERE,
        *options,
        "_django_server:wsgi_application",
    ]


def _uvicorn(port: int) -> list[str]:
    pytest.importorskip("uvicorn")
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--app-dir",
        HERE,
        "--lifespan",
        "off",
        "--no-access-log",
        "_django_server:asgi_application",
    ]


def _send_traffic(port: int, n: int, prefix: str = "") -> dict[int, int]:
    """``n`` requests over the project's routes; how many got each status."""
    statuses: dict[int, int] = {}
    for index in range(n):
        target = (f"/{prefix}users/{index}", "/missing/thing", "/nowhere", "/boom")[index % 4]
        status, headers, _ = http_get(port, target)
        assert "x-request-id" in headers
        statuses[status] = statuses.get(status, 0) + 1
    return statuses


def _check_exposition(port: int, user_route: str) -> None:
    status, headers, body = http_get(port, "/observability/metrics/prometheus")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    exposition = body.decode()
    assert counter_total(exposition, "http_requests_total") == N
    for labels in (
        f'method="GET",route="{user_route}",status="200"',
        'method="GET",route="/missing/<slug:name>",status="404"',
        'method="GET",route="<unmatched>",status="404"',
        'method="GET",route="/boom",status="500"',
    ):
        assert f"http_requests_total{{{labels}}} {N // 4}.0" in exposition, labels


@pytest.fixture
def gunicorn_server(tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    with serve(
        _gunicorn(port, "-w", "1"), port, tmp_path / "gunicorn.log", "/observability/health"
    ) as server:
        yield server


def test_gunicorn_django_wsgi_counts_every_request_by_route(gunicorn_server: Server) -> None:
    statuses = _send_traffic(gunicorn_server.port, N)
    assert statuses == {200: N // 4, 404: N // 2, 500: N // 4}
    _check_exposition(gunicorn_server.port, "/users/<int:user_id>")
    status, _, body = http_get(gunicorn_server.port, "/sync/default/logs/json", {})
    assert (status, json.loads(body)["count"]) == (200, 7)


def test_uvicorn_django_asgi_counts_every_request_by_route(tmp_path: Path) -> None:
    port = free_port()
    with serve(_uvicorn(port), port, tmp_path / "uvicorn.log", "/observability/health"):
        statuses = _send_traffic(port, N, prefix="async-")
        assert statuses == {200: N // 4, 404: N // 2, 500: N // 4}
        _check_exposition(port, "/async-users/<int:user_id>")
        status, _, body = http_get(
            port, "/async/bulk/logs?limit=3000", {"accept-encoding": "identity"}
        )
        assert status == 200
        assert body.count(b"\n") == 3000, "a long body streams whole through the async view"


def test_gunicorn_workers_sharing_one_sqlite_file_report_one_total(tmp_path: Path) -> None:
    pytest.importorskip(
        "observabilipy.sqlite", reason="the multi-worker truth needs observabilipy-sqlite"
    )
    port = free_port()
    with serve(
        _gunicorn(port, "-w", "4", "--preload"),
        port,
        tmp_path / "gunicorn.log",
        "/observability/health",
        env={"OBSERVABILIPY_TEST_DB": str(tmp_path / "shared.db")},
    ) as server:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda n: http_get(port, f"/slow/{n}"), range(N)))
        assert [status for status, _, _ in answers] == [200] * N
        pids = {json.loads(body)["pid"] for _, _, body in answers}
        assert len(pids) >= 2, "concurrent requests are served by several workers"
        totals: list[float] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            _, _, body = http_get(port, "/observability/metrics/prometheus")
            totals.append(counter_total(body.decode(), "http_requests_total"))
            if len(totals) >= 8 and all(t == N for t in totals[-8:]):
                break
            time.sleep(0.05)
        assert totals[-1] == N, f"totals seen: {totals[-10:]}\n{server.output()}"
        assert all(t <= N for t in totals), "a total never exceeds the requests sent"
        _, _, body = http_get(port, "/observability/health")
        assert json.loads(body)["components"]["runtime"]["running"] is True
