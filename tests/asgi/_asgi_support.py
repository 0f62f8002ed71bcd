"""Helpers of the ASGI adapter's tests: an ASGI driver, and real uvicorn servers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from observabilipy.asgi.types import ASGIApp, Message
from observabilipy.core.http.conformance import Answer

#: This directory: uvicorn imports the test apps from it.
HERE = str(Path(__file__).resolve().parent)


@dataclass
class Exchange:
    """What an ASGI app sent for one request."""

    messages: list[Message] = field(default_factory=list)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def header_list(self) -> list[tuple[str, str]]:
        return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.messages[0]["headers"]]

    @property
    def headers(self) -> dict[str, str]:
        names = [name for name, _ in self.header_list]
        assert len(names) == len(set(names)), f"a header sent twice: {names}"
        return dict(self.header_list)

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])

    @property
    def answer(self) -> Answer:
        return Answer(self.status, self.headers, self.body)


def http_scope(
    method: str,
    path: str,
    query: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    root_path: str = "",
) -> dict[str, Any]:
    """An ASGI HTTP scope as uvicorn builds it (``path`` includes ``root_path``)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": query,
        "headers": [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def call(
    app: ASGIApp,
    method: str,
    path: str,
    query: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    root_path: str = "",
    scope: dict[str, Any] | None = None,
    disconnect_after: int | None = None,
) -> Exchange:
    """Run one request through ``app`` as a server would, checking the ASGI message order.

    ``receive()`` gives the (empty) request body, then waits for the response
    to complete (or, with ``disconnect_after``, for that many body messages)
    and reports ``http.disconnect``.
    """
    exchange = Exchange()
    done = asyncio.Event()
    body_messages = 0
    request_sent = False

    async def receive() -> Message:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal body_messages
        assert not done.is_set() or disconnect_after is not None, f"sent after the end: {message}"
        if not exchange.messages:
            assert message["type"] == "http.response.start", message
            assert isinstance(message["status"], int)
            for name, value in message.get("headers", []):
                assert isinstance(name, bytes)
                assert isinstance(value, bytes)
                assert name == name.lower()
        else:
            assert message["type"] == "http.response.body", message
            assert isinstance(message.get("body", b""), bytes)
            body_messages += 1
        if done.is_set():
            return  # the client is gone; a server drops what is sent now
        exchange.messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()
        if disconnect_after is not None and body_messages >= disconnect_after:
            done.set()
        await asyncio.sleep(0)

    await app(scope or http_scope(method, path, query, headers, root_path=root_path), receive, send)
    return exchange


async def lifespan(app: ASGIApp) -> list[str]:
    """Run a lifespan startup and shutdown; the event types the app sent."""
    events = ["lifespan.startup", "lifespan.shutdown"]
    sent: list[str] = []

    async def receive() -> Message:
        return {"type": events.pop(0)}

    async def send(message: Message) -> None:
        sent.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    return sent


# -- real servers ---------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(
    port: int, path: str, headers: Mapping[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One GET on a fresh connection to 127.0.0.1 (any worker may answer it)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=dict(headers or {}))
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def sum_samples(exposition: str, name: str) -> float:
    """The sum of every sample ``name`` in Prometheus text (any labels)."""
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith((name + "{", name + " ")):
            total += float(line.rsplit(" ", 1)[1])
    return total


@contextlib.contextmanager
def uvicorn(
    app: str,
    *,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    factory: bool = False,
    ready_path: str = "/",
    timeout: float = 30.0,
    app_dir: str = HERE,
) -> Iterator[int]:
    """Run ``uvicorn <app>`` (``module:attr`` in ``app_dir``) on a free loopback port.

    Yields the port once ``ready_path`` answers; the server is terminated at the end.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--app-dir",
        app_dir,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if workers > 1:
        command += ["--workers", str(workers)]
    if factory:
        command.append("--factory")
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            command,
            env={**os.environ, **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=app_dir,
        )

        def log() -> str:
            output.seek(0)
            return output.read().decode(errors="replace")

        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"uvicorn exited with {process.returncode}:\n{log()}")
                try:
                    get(port, ready_path)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"uvicorn did not answer in {timeout}s:\n{log()}"
                        ) from None
                    time.sleep(0.1)
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
