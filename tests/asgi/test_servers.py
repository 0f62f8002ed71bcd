"""A raw ASGI app under a real uvicorn on loopback: one worker, then four on one SQLite file.

After N requests, ``/metrics/prometheus`` reports ``http_requests_total``
summing to N, under route templates; with four workers sharing a SQLite file,
any worker's answer sums every worker's requests.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.asgi._asgi_support import get, sum_samples, uvicorn
else:
    from _asgi_support import get, sum_samples, uvicorn

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("uvicorn") is None, reason="needs uvicorn (pip install uvicorn)"
)

PROMETHEUS = "/observability/metrics/prometheus"


def _series(exposition: str, name: str) -> dict[str, float]:
    """{label text: value} of the samples ``name``."""
    found = {}
    for line in exposition.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) :].rsplit(" ", 1)
            found[labels] = float(value)
    return found


def test_uvicorn_raw_asgi_counts_every_request() -> None:
    with uvicorn("_asgi_server_apps:raw_app", ready_path="/observability/health") as port:
        for n in range(40):
            status, headers, body = get(port, f"/items/{n}", {"x-request-id": f"req-{n}"})
            assert (status, body) == (200, f"/items/{n}".encode())
            assert headers["x-request-id"] == f"req-{n}"
        for n in range(10):
            assert get(port, f"/nope/{n}")[0] == 404
        status, headers, body = get(port, PROMETHEUS)
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert sum_samples(text, "http_requests_total") == 50
    assert _series(text, "http_requests_total") == {
        '{method="GET",route="/items/{id}",status="200"}': 40.0,
        '{method="GET",route="<unmatched>",status="404"}': 10.0,
    }
    assert sum_samples(text, "http_request_duration_seconds_count") == 50
    assert sum_samples(text, "http_requests_in_flight") == 0


@pytest.mark.slow
def test_uvicorn_four_workers_on_one_sqlite_file(tmp_path: Path) -> None:
    pytest.importorskip("observabilipy.sqlite", reason="needs observabilipy-sqlite")
    requests = 60
    env = {"OBSERVABILIPY_TEST_DB": str(tmp_path / "obs.db")}
    with uvicorn(
        "_asgi_server_apps:sqlite_app",
        env=env,
        workers=4,
        factory=True,
        ready_path="/observability/health",
    ) as port:
        pids = set()
        for n in range(requests):
            status, headers, _ = get(port, f"/items/{n}")
            assert status == 200
            pids.add(headers["x-pid"])
        # Every worker snapshots every 0.2 s: wait until the file holds them all.
        # Each scrape is answered by one worker (its live counts plus the others' last
        # snapshots): wait until several scrapes in a row agree, not one lucky one.
        deadline = time.monotonic() + 30
        agreeing = 0
        while agreeing < 8 and time.monotonic() < deadline:
            total = sum_samples(get(port, PROMETHEUS)[2].decode(), "http_requests_total")
            agreeing = agreeing + 1 if total == requests else 0
            if agreeing == 0:
                time.sleep(0.2)
        # From any worker (each scrape is a new connection): the same total.
        totals = [
            sum_samples(get(port, PROMETHEUS)[2].decode(), "http_requests_total") for _ in range(12)
        ]
        assert totals == [requests] * 12, f"served by {len(pids)} workers"
        # The per-request log entries of every worker are in the file too.
        deadline = time.monotonic() + 30
        while True:
            status, _, body = get(port, "/observability/logs?q=GET+%2Fitems&limit=1000")
            rows = [json.loads(line) for line in body.splitlines()]
            if len(rows) == requests or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status == 200
        assert len(rows) == requests
        assert {row["attributes"]["route"] for row in rows} == {"/items/{id}"}
        assert len({row["attributes"]["request_id"] for row in rows}) == requests
