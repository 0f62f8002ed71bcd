"""Helpers of the exporters' tests: real Pushgateway processes and loopback HTTP receivers.

Both run on free 127.0.0.1 ports and are always stopped.  The receivers use the
standard library's http.server (a real HTTP server on a real socket): each request
is recorded, and a ``respond`` callable chooses the answer.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def binary(name: str, apt_package: str) -> str:
    """The path of an installed program; fails (no skip) naming the package that has it."""
    path = shutil.which(name)
    if path is None:
        raise AssertionError(
            f"{name} is not installed; install the Debian package: apt-get install {apt_package}"
        )
    return path


def http_get(port: int, target: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """One GET to 127.0.0.1:``port``: status and body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class Process:
    """A server program started by a test; its output goes to a file shown on failure."""

    def __init__(self, argv: list[str], port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self._output = log.open("wb")
        self.process = subprocess.Popen(
            argv, stdout=self._output, stderr=subprocess.STDOUT, cwd=log.parent
        )

    def wait_ready(self, path: str, timeout: float = 30.0) -> None:
        """Poll ``path`` until it answers 200, or fail with the program's output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.log.stem} exited early:\n{self.output()}")
            try:
                if http_get(self.port, path, timeout=2.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{self.log.stem} not ready within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        """The last lines the program wrote."""
        self._output.flush()
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """Terminate the program, killing it if it does not stop."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._output.close()


@contextlib.contextmanager
def pushgateway(directory: Path) -> Iterator[Process]:
    """Debian's prometheus-pushgateway on a free loopback port, keeping metrics in memory."""
    port = free_port()
    argv = [
        binary("prometheus-pushgateway", "prometheus-pushgateway"),
        f"--web.listen-address=127.0.0.1:{port}",
        "--persistence.file=",  # Debian's default writes under /var/lib
        "--log.level=warn",
    ]
    process = Process(argv, port, directory / "pushgateway.log")
    try:
        process.wait_ready("/-/ready")
        yield process
    finally:
        process.stop()


_PUSHGATEWAY_OWN = frozenset({"push_time_seconds", "push_failure_time_seconds"})


def pushed_families(port: int, job: str) -> dict[str, Metric]:
    """The metric families a Pushgateway exposes, keeping only samples of group ``job``.

    Read from its /metrics and parsed with prometheus_client's text parser, as a
    scrape would; families left without samples are omitted, and so are the
    ``push_time_seconds`` and ``push_failure_time_seconds`` the Pushgateway adds.
    """
    status, body = http_get(port, "/metrics")
    assert status == 200, body
    families: dict[str, Metric] = {}
    for family in text_string_to_metric_families(body.decode()):
        family.samples = [s for s in family.samples if s.labels.get("job") == job]
        if family.samples and family.name not in _PUSHGATEWAY_OWN:
            families[family.name] = family
    return families


def groups(port: int) -> list[dict[str, str]]:
    """The label sets of the groups a Pushgateway holds (its /api/v1/metrics)."""
    status, body = http_get(port, "/api/v1/metrics")
    assert status == 200, body
    return [group["labels"] for group in json.loads(body)["data"]]


def values(family: Metric) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels without job/instance) -> value, of one family.

    Bucket bounds are written as Python floats (``le="2.0"``): the Pushgateway
    re-renders them the Go way (``le="2"``).
    """
    return {
        (
            sample.name,
            tuple(
                sorted(
                    (k, repr(float(v)) if k == "le" and v != "+Inf" else v)
                    for k, v in sample.labels.items()
                    if k not in ("job", "instance")
                )
            ),
        ): sample.value
        for sample in family.samples
    }


@dataclass
class Request:
    """One request a receiver got."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Answer:
    """What a receiver answers: status, headers, body, and an optional delay before it."""

    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


Responder = Callable[[Request], Answer]


class Receiver:
    """A real HTTP server on loopback that records requests and answers with ``respond``."""

    def __init__(self, respond: Responder) -> None:
        self.requests: list[Request] = []
        self.respond = respond
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = Request(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                )
                receiver.requests.append(request)
                answer = receiver.respond(request)
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test): nothing to answer

            def do_POST(self) -> None:  # http.server calls do_<METHOD>
                self._handle()

            def do_PUT(self) -> None:
                self._handle()

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the tests look at the recorded requests instead."""

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        # A short poll interval: shutdown() waits up to one interval.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str = "") -> str:
        """This server's URL, with ``path``."""
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
