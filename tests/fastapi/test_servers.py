"""A FastAPI app under a real uvicorn on loopback: one worker, then four on one SQLite file.

After N requests, ``/observability/metrics/prometheus`` reports
``http_requests_total`` summing to N under the route template; with four
workers sharing a SQLite file, any worker's answer sums every worker's requests.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.fastapi._fastapi_support import get, sum_samples, uvicorn
else:
    from _fastapi_support import get, sum_samples, uvicorn

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("uvicorn") is None, reason="needs uvicorn (pip install uvicorn)"
)

PROMETHEUS = "/observability/metrics/prometheus"


def test_uvicorn_fastapi_counts_every_request() -> None:
    with uvicorn("_fastapi_server_apps:app", ready_path="/observability/health") as port:
        for n in range(1, 46):
            status, headers, body = get(port, f"/items/{n}", {"x-request-id": f"id-{n}"})
            assert (status, body) == (200, f'{{"id":{n}}}'.encode())
            assert headers["x-request-id"] == f"id-{n}"
        for _ in range(5):
            assert get(port, "/items/0")[0] == 404
        status, _, body = get(port, PROMETHEUS)
        docs = get(port, "/openapi.json")
    assert status == 200
    text = body.decode()
    assert sum_samples(text, "http_requests_total") == 50
    assert 'http_requests_total{method="GET",route="/items/{item_id}",status="200"} 45.0' in text
    assert 'http_requests_total{method="GET",route="/items/{item_id}",status="404"} 5.0' in text
    assert sum_samples(text, "http_requests_in_flight") == 0
    assert b'"/observability/logs"' in docs[2]


@pytest.mark.slow
def test_uvicorn_four_workers_on_one_sqlite_file(tmp_path: Path) -> None:
    pytest.importorskip("observabilipy.sqlite", reason="needs observabilipy-sqlite")
    requests = 60
    env = {"OBSERVABILIPY_TEST_DB": str(tmp_path / "obs.db")}
    with uvicorn(
        "_fastapi_server_apps:sqlite_app",
        env=env,
        workers=4,
        factory=True,
        ready_path="/observability/health",
    ) as port:
        pids = set()
        for n in range(1, requests + 1):
            status, headers, _ = get(port, f"/items/{n}")
            assert status == 200
            pids.add(headers["x-pid"])
        # Each scrape is answered by one worker: its live counts plus the others' last
        # snapshots.  Wait until every worker has snapshotted (several scrapes in a
        # row agree), not merely until one lucky scrape adds up.
        deadline = time.monotonic() + 30
        agreeing = 0
        while agreeing < 8 and time.monotonic() < deadline:
            total = sum_samples(get(port, PROMETHEUS)[2].decode(), "http_requests_total")
            agreeing = agreeing + 1 if total == requests else 0
            if agreeing == 0:
                time.sleep(0.2)
        totals = [
            sum_samples(get(port, PROMETHEUS)[2].decode(), "http_requests_total") for _ in range(12)
        ]
        assert totals == [requests] * 12, f"served by {len(pids)} workers"
        status, _, body = get(port, "/observability/health")
        assert status == 200, body
