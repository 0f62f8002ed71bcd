"""Helpers of the WSGI adapter's tests: a PEP 3333 driver and real servers on loopback."""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from observabilipy.core.http.conformance import Answer

WSGIApp = Callable[..., Iterable[bytes]]

#: This directory: gunicorn imports the test apps from it.
HERE = str(Path(__file__).resolve().parent)


def make_environ(
    method: str,
    script_name: str,
    path_info: str,
    query: bytes = b"",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A PEP 3333 environ as a server builds it: native strings hold bytes as latin-1."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        environ[key] = value
    return environ


def ignore_start_response(
    status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
) -> Callable[[bytes], object]:
    """A start_response that keeps nothing (for tests that look at the body only)."""
    return lambda data: None


def drive(app: WSGIApp, environ: dict[str, Any]) -> Answer:
    """Call ``app`` as a WSGI server would: read the whole body, then close it."""
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        assert not started or exc_info is not None, "start_response called twice"
        started.append((status, headers))

        def write(data: bytes) -> None:
            raise AssertionError("the write() callable is not used")

        return write

    result = app(environ, start_response)
    try:
        chunks = []
        for chunk in result:
            assert isinstance(chunk, bytes), "WSGI bodies are bytes"
            chunks.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started[-1]
    assert status[3:4] == " ", f"a status line: {status!r}"
    assert status[4:], f"a status line with a reason: {status!r}"
    names = [name.lower() for name, _ in headers]
    assert len(names) == len(set(names)), f"no repeated header: {names}"
    return Answer(
        int(status[:3]), {name.lower(): value for name, value in headers}, b"".join(chunks)
    )


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


def gunicorn(app: str, port: int, *options: str) -> list[str]:
    """The command line of gunicorn serving ``app`` on 127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "5",
        "--pythonpath",
        HERE,
        *options,
        app,
    ]


def counter_total(exposition: str, name: str) -> float:
    """The sum of every sample of counter ``name`` in a text exposition."""
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith((name + "{", name + " ")):
            total += float(line.rsplit(" ", 1)[1])
    return total
