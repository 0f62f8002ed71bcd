"""Helpers of the Django adapter's tests: answers from the test client and from ASGI,
and real servers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from observabilipy.core.http.conformance import Answer

#: The test settings' middleware: observabilipy's first, then Django's usual ones.
MIDDLEWARE = [
    "observabilipy.django.middleware.ObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

#: This directory: the servers import the test project from it.
HERE = str(Path(__file__).resolve().parent)


def client_answer(
    client: Any,
    method: str,
    path: str,
    query: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """A request through Django's test client, with the raw query bytes (as latin-1, as
    WSGI passes them); the body as sent, streamed or not."""
    response = client.generic(
        method, path, headers=dict(headers or {}), QUERY_STRING=query.decode("latin-1")
    )
    body = b"".join(response.streaming_content) if response.streaming else response.content
    response.close()
    return Answer(
        response.status_code, {name.lower(): value for name, value in response.items()}, body
    )


async def asgi_answer(
    app: Any,
    method: str,
    path: str,
    query: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """A request through an ASGI application, as an ASGI server sends it (raw query bytes)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in (headers or {}).items()
        ]
        + [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []
    done = asyncio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # the client stays until the response is complete
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    await asyncio.wait_for(app(scope, receive, send), timeout=30)
    [start] = [m for m in sent if m["type"] == "http.response.start"]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers_sent = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in start["headers"]]
    names = [name for name, _ in headers_sent]
    assert len(names) == len(set(names)), f"no repeated header: {names}"
    return Answer(start["status"], dict(headers_sent), body)


# -- real servers on loopback ------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (servers here cannot be told to bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(
    port: int, target: str, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    """One GET to 127.0.0.1:``port`` on a fresh connection: status, lower-case headers, body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", target, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        connection.close()


class Server:
    """A server process started by a test; its output goes to a file shown on failure."""

    def __init__(self, argv: list[str], port: int, log: Path, env: dict[str, str]) -> None:
        self.port = port
        self.log = log
        self._output = log.open("wb")
        self.process = subprocess.Popen(
            argv, stdout=self._output, stderr=subprocess.STDOUT, env=env, cwd=log.parent
        )

    def wait_ready(self, path: str, timeout: float = 30.0) -> None:
        """Poll ``path`` until it answers (any status), or fail with the server's output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited early:\n{self.output()}")
            try:
                http_get(self.port, path, timeout=2.0)
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the server was not ready within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        self._output.flush()
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """Terminate the process (and its workers), killing it if it does not stop."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._output.close()


@contextlib.contextmanager
def serve(
    argv: list[str], port: int, log: Path, ready_path: str, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Run a server for the duration of the block; it is always stopped."""
    server = Server(argv, port, log, {**os.environ, **(env or {})})
    try:
        server.wait_ready(ready_path)
        yield server
    finally:
        server.stop()


def counter_total(exposition: str, name: str) -> float:
    """The sum of every sample of counter ``name`` in a text exposition."""
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith((name + "{", name + " ")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def python() -> str:
    """The interpreter running the tests: servers run with it (``-m gunicorn``)."""
    return sys.executable
