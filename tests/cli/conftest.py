"""Fixtures of the CLI tests; makes the helpers next to them importable (``_cli_support``)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from observabilipy.cli.serve import APIServer  # noqa: E402
from observabilipy.core.http import ObservabilityAPI  # noqa: E402
from observabilipy.core.metrics import Registry  # noqa: E402
from observabilipy.core.storage import InMemoryLogStorage  # noqa: E402

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by the sys.path above
    from tests.cli._cli_support import Child, LiveAPI, StaticServer
else:
    from _cli_support import Child, LiveAPI, StaticServer


@pytest.fixture
def serve_api() -> Iterator[Callable[..., LiveAPI]]:
    """Start APIs on free loopback ports: ``serve_api(**ObservabilityAPI options)``."""
    started: list[tuple[APIServer, threading.Thread]] = []

    def start(**options: Any) -> LiveAPI:
        logs = InMemoryLogStorage()
        registry = Registry()
        api = ObservabilityAPI(log_storage=logs, registry=registry, **options)
        server = APIServer(api, host="127.0.0.1", port=0)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        started.append((server, thread))
        return LiveAPI(server.url, logs, registry, server)

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def live_api(serve_api: Callable[..., LiveAPI]) -> LiveAPI:
    """One live API with default options, at the root of its server."""
    return serve_api()


@pytest.fixture
def static_server() -> Iterator[Callable[[int, str, bytes], StaticServer]]:
    """Serve ``(status, content_type, body)`` to everything: a server that is not observabilipy."""
    servers: list[ThreadingHTTPServer] = []

    def start(status: int, content_type: str, body: bytes) -> StaticServer:
        record = StaticServer("")

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                record.requests.append(self.path)
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        record.url = f"http://127.0.0.1:{server.server_address[1]}/"
        return record

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def child() -> Iterator[Callable[..., Child]]:
    """Start the command in child processes; any still running at the end are killed."""
    children: list[Child] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Child:
        started = Child(*args, env=env)
        children.append(started)
        return started

    yield start
    for started in children:
        started.kill()
