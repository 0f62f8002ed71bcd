"""Real servers on loopback: gunicorn serving a Flask app, and Prometheus scraping it.

- one gunicorn worker: N requests, then ``/observability/metrics/prometheus``
  counts exactly N in ``http_requests_total``, labelled by route template;
- ``gunicorn -w 4`` on one SQLite file: every worker snapshots its registry
  into the file, and whichever worker answers ``/metrics/prometheus`` reports
  the N requests of all of them;
- Debian's ``prometheus`` scrapes the plain ``/observability/metrics`` (it
  sends an Accept header preferring the exposition) and its query API returns
  the counter's value.

Servers are started on a free loopback port and always stopped.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.wsgi._wsgi_support import (
        Server,
        counter_total,
        free_port,
        gunicorn,
        http_get,
        serve,
    )
else:
    from _wsgi_support import Server, counter_total, free_port, gunicorn, http_get, serve

pytest.importorskip("flask")
pytest.importorskip("gunicorn")

pytestmark = pytest.mark.slow

N = 40


@pytest.fixture
def flask_server(tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    with serve(
        gunicorn("_wsgi_server_apps:flask_app", port, "-w", "1"),
        port,
        tmp_path / "gunicorn.log",
        "/observability/health",
    ) as server:
        yield server


def _send_traffic(port: int, n: int) -> dict[str, int]:
    """``n`` requests over the app's routes; how many got each status."""
    statuses: dict[str, int] = {}
    for index in range(n):
        target = ("/hello", f"/users/{index}", "/missing", "/boom")[index % 4]
        status, _, _ = http_get(port, target)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return statuses


def test_gunicorn_flask_counts_every_request_by_route(flask_server: Server) -> None:
    statuses = _send_traffic(flask_server.port, N)
    assert statuses == {"200": N // 2, "404": N // 4, "500": N // 4}
    status, headers, body = http_get(flask_server.port, "/observability/metrics/prometheus")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    exposition = body.decode()
    assert counter_total(exposition, "http_requests_total") == N
    assert (
        f'http_requests_total{{method="GET",route="/users/<int:user_id>",status="200"}} {N // 4}.0'
        in exposition
    )
    assert (
        f'http_requests_total{{method="GET",route="<unmatched>",status="404"}} {N // 4}.0'
        in exposition
    )
    assert (
        f'http_requests_total{{method="GET",route="/boom",status="500"}} {N // 4}.0' in exposition
    )
    assert "/users/1" not in exposition.replace("/users/<int:user_id>", "")
    assert "http_requests_in_flight 0.0" in exposition


def test_gunicorn_echoes_the_request_id(flask_server: Server) -> None:
    status, headers, _ = http_get(flask_server.port, "/hello", {"X-Request-ID": "from-client-1"})
    assert (status, headers["x-request-id"]) == (200, "from-client-1")


def test_gunicorn_workers_sharing_one_sqlite_file_report_one_total(tmp_path: Path) -> None:
    pytest.importorskip(
        "observabilipy.sqlite", reason="the multi-worker truth needs observabilipy-sqlite"
    )
    port = free_port()
    database = tmp_path / "shared.db"
    with serve(
        gunicorn(
            "_wsgi_server_apps:flask_app",
            port,
            "-w",
            "4",
            "-c",
            str(Path(__file__).parent / "_wsgi_gunicorn_conf.py"),
        ),
        port,
        tmp_path / "gunicorn.log",
        "/observability/health",
        env={"OBSERVABILIPY_TEST_DB": str(database)},
    ) as server:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda n: http_get(port, f"/slow/{n}"), range(N)))
        assert [status for status, _, _ in answers] == [200] * N
        pids = {json.loads(body)["pid"] for _, _, body in answers}
        assert len(pids) >= 2, "concurrent requests are served by several workers"
        # Every worker snapshots every 0.1 s: poll until the file has them all,
        # asking on fresh connections, so different workers answer.
        totals: list[float] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            _, _, body = http_get(port, "/observability/metrics/prometheus")
            totals.append(counter_total(body.decode(), "http_requests_total"))
            if totals[-1] == N and len(totals) >= 8 and all(t == N for t in totals[-8:]):
                break
            time.sleep(0.05)
        assert totals[-1] == N, f"totals seen: {totals[-10:]}\n{server.output()}"
        assert all(t <= N for t in totals), "a total never exceeds the requests sent"


PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: flask
    metrics_path: /observability/metrics
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


def test_prometheus_scrapes_the_plain_metrics_endpoint(
    flask_server: Server, tmp_path: Path
) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus binary is not installed (Debian package: prometheus)")
    _send_traffic(flask_server.port, N)
    config = tmp_path / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG.replace("{port}", str(flask_server.port)))
    port = free_port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with serve(argv, port, tmp_path / "prometheus.log", "/-/ready") as prometheus:
        query = urllib.parse.urlencode({"query": "sum(http_requests_total)"})
        result: list[dict[str, object]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, _, body = http_get(port, f"/api/v1/query?{query}")
            # Ready can still answer a plain-text 503 while the TSDB finishes starting.
            result = json.loads(body)["data"]["result"] if status == 200 else []
            if result:
                break
            time.sleep(0.25)
        assert result, f"Prometheus never scraped the app:\n{prometheus.output()}"
        assert float(result[0]["value"][1]) == N  # type: ignore[index]
        query = urllib.parse.urlencode({"query": 'up{job="flask"}'})
        _, _, body = http_get(port, f"/api/v1/query?{query}")
        assert json.loads(body)["data"]["result"][0]["value"][1] == "1"
