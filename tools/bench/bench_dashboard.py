"""Serving the dashboard's files: core's HTTP API (through the ASGI adapter) vs Starlette.

The peer is what a user would otherwise mount: Starlette's ``StaticFiles`` over the
same directory, behind ``GZipMiddleware`` when the browser accepts gzip.  Both are
called in-process as ASGI apps (no sockets), so the figures are the servers' own
work per request.  Also prints the size of what the dashboard ships.

Run with ``hatch run bench:python tools/bench/bench_dashboard.py``; exits 1 if a
goal is missed.
"""

from __future__ import annotations

import asyncio
import gzip
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles

from observabilipy.asgi import create_asgi_app
from observabilipy.core.metrics import Registry
from observabilipy.dashboard import asset, asset_names, page, total_size

# Run as a script: make the repository root importable for the shared timing helpers.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.bench._common import Row, per_call_ns, report

CALLS = 3_000
FILE = "app.js"


async def get(
    app: Any, path: str, headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[bytes, bytes]]:
    """Send one GET of ``path`` to ``app``: its status and response headers."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }
    received = False
    start: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        # As a server does: the request, then nothing until the client goes away.
        nonlocal received
        if received:
            await asyncio.Event().wait()
        received = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)

    await app(scope, receive, send)
    return start["status"], dict(start["headers"])


def caller(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> Callable[[], int]:
    """A function sending one GET of ``path`` to ``app``; returns the status."""
    loop = asyncio.new_event_loop()

    def call() -> int:
        return loop.run_until_complete(get(app, path, headers))[0]

    return call


def etag_of(app: Any, path: str) -> bytes:
    """The ETag ``app`` gives ``path``."""
    return asyncio.run(get(app, path, []))[1][b"etag"]


def main() -> int:
    """Time both servers on one file: plain, gzip, and a revalidation (304)."""
    static = resources.files("observabilipy.dashboard").joinpath("static")
    ours = create_asgi_app(registry=Registry())
    peer = StaticFiles(directory=str(static))
    peer_gzip = GZipMiddleware(peer)
    path = "/dashboard/" + FILE
    peer_path = "/" + FILE
    accept_gzip = [(b"accept-encoding", b"gzip")]
    ours_etag = etag_of(ours, path)
    peer_etag = etag_of(peer, peer_path)

    cases = [
        ("GET app.js", caller(ours, path, []), caller(peer, peer_path, [])),
        (
            "GET app.js, gzip",
            caller(ours, path, accept_gzip),
            caller(peer_gzip, peer_path, accept_gzip),
        ),
        (
            "GET app.js, If-None-Match (304)",
            caller(ours, path, [(b"if-none-match", ours_etag)]),
            caller(peer, peer_path, [(b"if-none-match", peer_etag)]),
        ),
    ]
    rows = []
    for name, ours_call, peer_call in cases:
        assert ours_call() == peer_call(), name  # the same answer before timing it
        rows.append(Row(name, per_call_ns(ours_call, CALLS), per_call_ns(peer_call, CALLS), 1.0))

    files = [page(), *(asset(name) for name in asset_names())]
    compressed = sum(len(gzip.compress(file.body)) for file in files if file is not None)
    print(
        f"dashboard files: {len(files)}, {total_size():,} bytes, {compressed:,} bytes gzip-compressed"
    )
    return 0 if report(rows, peer="Starlette") else 1


if __name__ == "__main__":
    sys.exit(main())
