"""For tests/e2e/test_export_faults.py: a loopback NDJSON collector and an exporter POSTing to it.

The exporter is what a user of ``observabilipy.core.export`` writes for an HTTP
endpoint: httpx, answers classified by ``export_error_for_status``.  The child
processes of the tests import it too (with this folder on ``sys.path``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from observabilipy.core import (
    LogEntry,
    MetricSample,
    RetryableExportError,
    Signal,
    export_error_for_status,
)

# Guards against a hang in the code under test; never reached when it works.
PATIENCE = 30.0


class NdjsonExporter:
    """POSTs each batch of logs as NDJSON lines ``{"id": ..., "message": ...}`` to ``url``.

    The collector answers ``{"accepted": <lines>}``; any other answer is retried.
    """

    signals: frozenset[Signal] = frozenset({"logs"})

    def __init__(self, url: str, *, name: str = "ndjson", timeout: float = 2.0) -> None:
        self.name = name
        self.url = url
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def export_logs(self, entries: AsyncIterable[LogEntry]) -> None:
        lines = [json.dumps({"id": entry.id, "message": entry.message}) async for entry in entries]
        if self._client is None:  # made on the exporters' event loop, at first use
            self._client = httpx.AsyncClient(timeout=self.timeout)
        try:
            response = await self._client.post(
                self.url,
                content="\n".join(lines).encode() + b"\n",
                headers={"content-type": "application/x-ndjson"},
            )
        except httpx.HTTPError as exc:  # refused, timed out, not HTTP
            raise RetryableExportError(f"{type(exc).__name__}: {exc}") from exc
        error = export_error_for_status(
            response.status_code,
            reason=response.text[:100],
            retry_after=response.headers.get("retry-after"),
        )
        if error is not None:
            raise error
        try:
            accepted = response.json()["accepted"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RetryableExportError(f"malformed answer: {response.text[:100]!r}") from exc
        if accepted != len(lines):
            raise RetryableExportError(f"collector accepted {accepted} of {len(lines)} lines")

    async def export_metrics(self, samples: AsyncIterable[MetricSample]) -> None:
        raise RetryableExportError("this exporter sends logs only")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class Collector:
    """A loopback HTTP server taking NDJSON batches, with the faults a real collector has.

    Each request takes the next planned answer (``plan``), ``"ok"`` once the plan
    is spent: ``"ok"`` stores the batch's ids; ``("status", code, headers)``,
    ``"slow"`` (answers after ``slow_seconds``), ``"garbage"`` (not HTTP) and
    ``"bad-json"`` (200 with a body that is not the expected JSON) store nothing.
    :meth:`down` closes the port (connections refused); :meth:`up` opens it again.
    """

    def __init__(self) -> None:
        self.plan: list[Any] = []
        self.slow_seconds = 1.0
        self.batches: list[tuple[int, int, int]] = []  # (first id, last id, lines) stored
        self.requests = 0
        self.lock = threading.Lock()
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/ingest"
        self._server: ThreadingHTTPServer | None = None

    def up(self) -> None:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                collector.answer(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def down(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        with self.lock:
            self.requests += 1
            answer = self.plan.pop(0) if self.plan else "ok"
        if answer == "garbage":
            handler.wfile.write(b"this is not HTTP\r\n\r\n")
            handler.close_connection = True
            return
        if answer == "slow":
            time.sleep(self.slow_seconds)  # the client gave up meanwhile: store nothing
            answer = ("status", 200, {})
        if answer == "bad-json":
            answer = ("status", 200, {"content-type": "text/html"})
        if isinstance(answer, tuple):
            _, status, headers = answer
            self._reply(handler, status, b"<html>not the answer you want</html>", headers)
            return
        lines = body.splitlines()
        first, last = json.loads(lines[0])["id"], json.loads(lines[-1])["id"]
        with self.lock:
            self.batches.append((first, last, len(lines)))
        self._reply(handler, 200, json.dumps({"accepted": len(lines)}).encode(), {})

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        try:
            handler.send_response(status)
            for key, value in {"content-type": "application/json", **headers}.items():
                handler.send_header(key, value)
            handler.send_header("content-length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:  # the client went away (it timed out)
            pass

    def stored(self) -> int:
        """How many lines were stored."""
        with self.lock:
            return sum(lines for _, _, lines in self.batches)

    def ids(self) -> list[int]:
        """Every stored id, in arrival order (each batch holds consecutive ids)."""
        with self.lock:
            batches = list(self.batches)
        ids: list[int] = []
        for first, last, lines in batches:
            assert last - first + 1 == lines, f"batch {first}..{last} has {lines} lines"
            ids.extend(range(first, last + 1))
        return ids

    def wait_for(self, count: int) -> None:
        """Wait until ``count`` lines were stored."""
        deadline = time.monotonic() + PATIENCE
        while self.stored() < count:
            assert time.monotonic() < deadline, f"stored {self.stored()} of {count} lines"
            time.sleep(0.01)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
