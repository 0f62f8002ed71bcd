"""``observabilipy serve`` in a child process over a real SQLite file."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry

if TYPE_CHECKING:
    from tests.cli._cli_support import Child, fill_database, served_url
else:
    from _cli_support import Child, fill_database, served_url


@pytest.fixture
def app_db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    registry = Registry()
    registry.counter("jobs", "Jobs run.", labelnames=("queue",)).labels(queue="mail").inc(5)
    entries = [
        LogEntry(
            timestamp=1.7e9 + n,
            level="ERROR" if n % 10 == 0 else "INFO",
            message=f"entry {n} " + "x" * 80,
            attributes={"n": n},
        )
        for n in range(3000)
    ]
    fill_database(path, entries, registry)
    return path


def test_serves_the_api_over_the_file_read_only(app_db: Path, child: Callable[..., Child]) -> None:
    before = hashlib.sha256(app_db.read_bytes()).hexdigest()
    serve = child("serve", str(app_db), "--port", "0")
    url = served_url(serve)
    assert url.startswith("http://127.0.0.1:")
    with httpx.Client(base_url=url, timeout=10) as client:
        page = client.get("/logs", params={"limit": 3000})
        assert page.status_code == 200
        assert page.headers["transfer-encoding"] == "chunked"  # a large body streams
        entries = [json.loads(line) for line in page.text.splitlines()]
        assert [entry["attributes"]["n"] for entry in entries] == list(range(3000))
        small = client.get("/logs", params={"level": "error", "limit": 2, "after": 5})
        assert small.headers["content-length"] == str(len(small.content))
        assert [json.loads(line)["id"] for line in small.text.splitlines()] == [11, 21]
        exposition = client.get("/metrics/prometheus").text
        assert 'jobs_total{queue="mail"} 5.0' in exposition
        assert client.get("/health").json()["status"] == "pass"
        assert client.head("/logs").content == b""
        refused = client.post("/logs", content=b"x")
        assert (refused.status_code, refused.headers["allow"]) == (405, "GET, HEAD")
        missing = client.get("/nowhere")
        assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
        compressed = client.get("/logs", params={"limit": 100}, headers={"accept-encoding": "gzip"})
        assert compressed.headers["content-encoding"] == "gzip"
        assert len(compressed.text.splitlines()) == 100
    assert serve.interrupt() == 0
    assert hashlib.sha256(app_db.read_bytes()).hexdigest() == before


def test_serves_the_dashboard(app_db: Path, child: Callable[..., Child]) -> None:
    serve = child("serve", str(app_db), "--port", "0")
    url = served_url(serve)
    assert f"dashboard: {url}dashboard" in "".join(serve.stdout)
    with httpx.Client(base_url=url, timeout=10) as client:
        page = client.get("/dashboard")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["server"] == "observabilipy"
        assert "<!doctype html>" in page.text.lower()
        # What the page's script reads, from the same server.
        assert client.get("/logs", params={"limit": 1}).status_code == 200


def test_ctrl_c_stops_cleanly_and_frees_the_port(app_db: Path, child: Callable[..., Child]) -> None:
    serve = child("serve", str(app_db), "--port", "0")
    url = served_url(serve)
    with httpx.Client(timeout=10) as client:  # a kept-alive connection must not hold the exit
        assert client.get(url + "health").status_code == 200
        assert serve.interrupt() == 0
    assert "".join(serve.stderr) == "stopped\n"
    port = int(url.rsplit(":", 1)[1].rstrip("/"))
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_a_token_guards_every_route_but_health(app_db: Path, child: Callable[..., Child]) -> None:
    url = served_url(child("serve", str(app_db), "--port", "0", "--token", "s3cret"))
    assert httpx.get(url + "logs", timeout=10).status_code == 401
    assert httpx.get(url + "health", timeout=10).status_code == 200
    tail = child("tail", url, "--min-level", "error", env={"OBSERVABILIPY_TOKEN": "s3cret"})
    assert tail.finish() == 0
    assert len(tail.stdout) == 300


def test_a_port_in_use_is_one_line(app_db: Path, child: Callable[..., Child]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        serve = child("serve", str(app_db), "--port", str(port))
        assert serve.finish() == 1
    assert serve.stdout == []
    assert serve.stderr == [
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use; pass --port 0 for a free one\n"
    ]


def test_a_missing_file_is_one_line(tmp_path: Path, child: Callable[..., Child]) -> None:
    serve = child("serve", str(tmp_path / "nope.db"))
    assert serve.finish() == 1
    assert serve.stderr == [f"Error: {tmp_path / 'nope.db'}: no such file\n"]
    assert not (tmp_path / "nope.db").exists()
