"""The WSGI examples run under a real gunicorn: examples/flask_app.py, examples/wsgi_app.py
and the Django project in examples/django_app/.

Each is started as its docstring says (on a free loopback port, with its SQLite
file in a temporary directory and a short snapshot interval), gets some
traffic, and must then serve its metrics, logs and health; the servers are
always stopped.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("gunicorn")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
N = 12


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(
    port: int, target: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", target, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def _gunicorn(tmp_path: Path, app: str, *options: str) -> Iterator[int]:
    """gunicorn serving ``app`` on a free port, its SQLite file in ``tmp_path``; yields the port."""
    port = _free_port()
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "OBSERVABILIPY_DB": str(tmp_path / "observability.db"),
        "OBSERVABILIPY_SNAPSHOT_INTERVAL": "0.1",
    }
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
    argv += ["--graceful-timeout", "5", *options, app]
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=tmp_path
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, log.read_text(errors="replace")
                try:
                    _get(port, "/observability/health")
                    break
                except OSError:
                    assert time.monotonic() < deadline, log.read_text(errors="replace")
                    time.sleep(0.1)
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _total(port: int, expected: float) -> float:
    """``http_requests_total`` summed, once it reaches ``expected`` (workers snapshot every 0.1 s)."""
    total = -1.0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        _, _, body = _get(port, "/observability/metrics/prometheus")
        total = sum(
            float(line.rsplit(" ", 1)[1])
            for line in body.decode().splitlines()
            if line.startswith("http_requests_total{")
        )
        if total == expected:
            break
        time.sleep(0.1)
    return total


def _logs(port: int, query: str) -> list[dict[str, Any]]:
    status, _, body = _get(port, f"/observability/logs?{query}")
    assert status == 200
    return [json.loads(line) for line in body.splitlines()]


def _wait_for_log(
    port: int, query: str, message: str, request_id: str | None = None
) -> dict[str, Any]:
    """The first entry with ``message`` (and ``request_id``), once a worker has written it.

    Each worker writes in its own batches: entries of different workers are not in
    the order of their requests, so an entry is picked by its request id.
    """
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for entry in _logs(port, query):
            attributes: dict[str, Any] = entry["attributes"]
            if entry["message"] == message and request_id in (None, attributes.get("request_id")):
                return entry
        time.sleep(0.1)
    raise AssertionError(f"no log entry {message!r} of request {request_id!r}")


def test_flask_example_under_gunicorn(tmp_path: Path) -> None:
    pytest.importorskip("flask")
    pytest.importorskip("observabilipy.sqlite")
    with _gunicorn(tmp_path, "flask_app:app", "-w", "2", "--chdir", str(EXAMPLES)) as port:
        for index in range(N):
            target = ("/", f"/users/{index}", "/users/5000", "/fail")[index % 4]
            status, headers, _ = _get(port, target, {"x-request-id": f"flask-{index}"})
            assert status == (200, 200, 404, 500)[index % 4]
            assert headers["x-request-id"] == f"flask-{index}"
        assert _total(port, N) == N
        _, _, body = _get(port, "/observability/metrics/prometheus")
        assert 'route="/users/<int:user_id>",status="200"' in body.decode()
        entry = _wait_for_log(port, "q=looking", "looking up user", "flask-1")
        assert entry["attributes"]["user_id"] == 1
        failed = _wait_for_log(port, "min_level=error", "GET /fail 500", "flask-3")
        assert failed["attributes"]["exception.type"] == "RuntimeError"
        status, _, body = _get(port, "/observability/health")
        assert (status, json.loads(body)["status"]) == (200, "pass")


def test_plain_wsgi_example_under_gunicorn(tmp_path: Path) -> None:
    with _gunicorn(tmp_path, "wsgi_app:app", "--threads", "4", "--chdir", str(EXAMPLES)) as port:
        for index in range(N):
            target = ("/", f"/hello/ada{index}", "/nowhere")[index % 3]
            status, _, _ = _get(port, target)
            assert status == (200, 200, 404)[index % 3]
        assert _total(port, N) == N
        _, _, body = _get(port, "/observability/metrics/prometheus")
        text = body.decode()
        assert 'route="/hello/{name}",status="200"} 4.0' in text
        assert 'route="<unmatched>",status="404"} 4.0' in text
        entry = _wait_for_log(port, "q=greeting", "greeting")
        assert len(entry["attributes"]["request_id"]) == 32
        status, _, body = _get(port, "/observability/logs/json?limit=2")
        assert status == 200
        assert json.loads(body)["count"] == 2


def test_django_example_under_gunicorn(tmp_path: Path) -> None:
    pytest.importorskip("django")
    pytest.importorskip("observabilipy.sqlite")
    project = EXAMPLES / "django_app"
    with _gunicorn(tmp_path, "shop.wsgi", "-w", "2", "--chdir", str(project)) as port:
        for index in range(N):
            target = ("/", f"/users/{index}", f"/orders/{index}", "/fail")[index % 4]
            status, headers, _ = _get(port, target, {"x-request-id": f"dj-{index}"})
            assert status == (200, 200, 200, 500)[index % 4]
            assert headers["x-request-id"] == f"dj-{index}"
        assert _total(port, N) == N
        _, _, body = _get(port, "/observability/metrics/prometheus")
        text = body.decode()
        assert 'route="/orders/<int:order_id>",status="200"} 3.0' in text
        assert 'route="/fail",status="500"} 3.0' in text
        entry = _wait_for_log(port, "q=looking+up+user", "looking up user 1", "dj-1")
        assert entry["attributes"]["logger"] == "shop"
        status, _, body = _get(port, "/observability/health")
        health = json.loads(body)
        assert (status, health["components"]["runtime"]["running"]) == (200, True)
