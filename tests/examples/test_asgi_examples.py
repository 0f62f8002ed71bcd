"""The ASGI examples run under a real uvicorn on loopback and serve what their docstrings say."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

EXAMPLES = str(Path(__file__).resolve().parents[2] / "examples")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asgi"))

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by the line above
    from tests.asgi._asgi_support import get, sum_samples, uvicorn
else:
    from _asgi_support import get, sum_samples, uvicorn

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("uvicorn") is None, reason="needs uvicorn (pip install uvicorn)"
)


def _ndjson(body: bytes) -> list[Any]:
    return [json.loads(line) for line in body.splitlines()]


def test_asgi_example() -> None:
    with uvicorn("asgi_app:app", app_dir=EXAMPLES, ready_path="/observability/health") as port:
        assert get(port, "/")[0] == 200
        status, headers, body = get(port, "/hello/ada", {"x-request-id": "demo-1"})
        assert (status, json.loads(body)) == (200, {"hello": "ada"})
        assert headers["x-request-id"] == "demo-1"
        assert get(port, "/hello/bob")[0] == 200
        assert get(port, "/missing")[0] == 404
        exposition = get(port, "/observability/metrics/prometheus")[2].decode()
        # The handler's log entry is written by a background thread: poll for it.
        deadline = time.monotonic() + 10
        while True:
            rows = _ndjson(get(port, "/observability/logs")[2])
            if any(row["message"] == "greeting" for row in rows) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        health = json.loads(get(port, "/observability/health")[2])
    assert sum_samples(exposition, "http_requests_total") == 4
    assert 'http_requests_total{method="GET",route="/hello/{name}",status="200"} 2.0' in exposition
    assert 'http_requests_total{method="GET",route="<unmatched>",status="404"} 1.0' in exposition
    greeting = next(row for row in rows if row["message"] == "greeting")
    assert greeting["attributes"]["request_id"] == "demo-1"
    assert greeting["attributes"]["person"] == "ada"
    requests = [row for row in rows if row["message"].startswith("GET ")]
    assert [row["message"] for row in requests] == [
        "GET / 200",
        "GET /hello/{name} 200",
        "GET /hello/{name} 200",
        "GET <unmatched> 404",
    ]
    assert health["status"] == "pass"
    assert health["components"]["runtime"]["running"] is True


def test_fastapi_example(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("observabilipy.sqlite")
    env = {
        "OBSERVABILIPY_DB": str(tmp_path / "shop.db"),
        "OBSERVABILIPY_SNAPSHOT_INTERVAL": "0.2",
    }
    with uvicorn(
        "fastapi_app:app", app_dir=EXAMPLES, env=env, ready_path="/observability/health"
    ) as port:
        status, headers, body = get(port, "/orders/42", {"x-request-id": "order-42"})
        assert (status, json.loads(body)["item"]) == (200, "espresso machine")
        assert headers["x-request-id"] == "order-42"
        assert get(port, "/orders/1")[0] == 404
        assert get(port, "/")[0] == 200
        docs = json.loads(get(port, "/openapi.json")[2])
        # History: the runtime snapshots into the file.
        deadline = time.monotonic() + 10
        while True:
            history = _ndjson(get(port, "/observability/metrics?name=http_requests_total")[2])
            warnings = _ndjson(get(port, "/observability/logs?min_level=warning")[2])
            if (history and len(warnings) >= 2) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        exposition = get(port, "/observability/metrics/prometheus")[2].decode()
        health = json.loads(get(port, "/observability/health")[2])
    assert "/observability/logs" in docs["paths"]
    assert "/orders/{order_id}" in docs["paths"]
    assert 'route="/orders/{order_id}",status="200"} 1.0' in exposition
    assert 'route="/orders/{order_id}",status="404"} 1.0' in exposition
    assert sum_samples(exposition, "http_requests_total") == 4  # with /openapi.json
    assert history
    assert {row["name"] for row in history} == {"http_requests_total"}
    messages = {row["message"]: row["attributes"] for row in warnings}
    assert messages["order not found"]["order_id"] == 1
    assert "GET /orders/{order_id} 404" in messages
    assert health["status"] == "pass"
