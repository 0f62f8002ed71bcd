"""Helpers of the FastAPI adapter's tests: raw requests through httpx, real uvicorn servers.

(tests/fastapi runs alone when observabilipy-fastapi is installed by itself, so it
does not import the ASGI tests' helpers; the server helpers are the same.)
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from observabilipy.core.http.conformance import Answer

#: This directory: uvicorn imports the test apps from it.
HERE = str(Path(__file__).resolve().parent)


async def send(
    app: Any,
    method: str,
    path: str,
    query: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """One request through httpx's ASGITransport, exactly as given: no default headers
    (httpx's client would add accept-encoding), the body as sent (gzip not undone)."""
    transport = httpx.ASGITransport(app=app)
    url = httpx.URL("http://testserver" + path, query=query)
    response = await transport.handle_async_request(
        httpx.Request(method, url, headers=dict(headers or {}))
    )
    body = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
    names = [name.decode("latin-1").lower() for name, _ in response.headers.raw]
    assert len(names) == len(set(names)), f"a header sent twice: {names}"
    return Answer(
        response.status_code,
        {n.decode("latin-1").lower(): v.decode("latin-1") for n, v in response.headers.raw},
        body,
    )


async def send_raw(
    app: Any,
    method: str,
    path: str,
    query: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """One request straight to the ASGI app, for what httpx cannot send (raw query bytes)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    messages: list[Any] = []
    done = False

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"} if done else {"type": "http.request", "body": b""}

    async def send_message(message: Any) -> None:
        nonlocal done
        messages.append(message)
        done = message["type"] == "http.response.body" and not message.get("more_body", False)

    await app(scope, receive, send_message)
    start, bodies = messages[0], messages[1:]
    return Answer(
        start["status"],
        {n.decode("latin-1"): v.decode("latin-1") for n, v in start["headers"]},
        b"".join(m.get("body", b"") for m in bodies),
    )


async def lifespan(app: Any) -> list[str]:
    """Run a lifespan startup and shutdown; the event types the app sent."""
    events = ["lifespan.startup", "lifespan.shutdown"]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return {"type": events.pop(0)}

    async def send_event(message: Any) -> None:
        sent.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send_event)
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
