"""``observabilipy serve``: the HTTP API over the standard library's threaded HTTP server.

:class:`APIServer` is a :class:`http.server.ThreadingHTTPServer` that hands
every request to :meth:`ObservabilityAPI.handle_sync
<observabilipy.core.http.ObservabilityAPI.handle_sync>` and writes the answer
back, streaming the body (chunked, or until the connection closes for an
HTTP/1.0 client): a thin translation, so the answers are those of every other
adapter.  No ASGI server is needed.

>>> import threading, urllib.request
>>> from observabilipy.core.http import ObservabilityAPI
>>> from observabilipy.core.metrics import Registry
>>> registry = Registry()
>>> registry.counter("jobs", "Jobs run").inc(2)
>>> server = APIServer(ObservabilityAPI(registry=registry), host="127.0.0.1", port=0)
>>> thread = threading.Thread(target=server.serve_forever, daemon=True)
>>> thread.start()
>>> with urllib.request.urlopen(server.url + "metrics/prometheus") as response:
...     print(response.read().decode().splitlines()[-1])
jobs_total 2.0
>>> server.shutdown(); server.server_close()
"""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import unquote_to_bytes, urlsplit

from observabilipy.core.http import ObservabilityAPI, Request

__all__ = ["APIServer"]

# Headers the server writes itself (or that HTTP/1.1 framing decides).
_HOP_BY_HOP: Final = frozenset({"connection", "transfer-encoding", "keep-alive"})


class APIServer(ThreadingHTTPServer):
    """Serve ``api`` on ``host``:``port`` (port 0 picks a free one: see :attr:`url`).

    Each connection gets a daemon thread; :meth:`shutdown` (from another
    thread) stops :meth:`serve_forever`, and :meth:`server_close` frees the port
    and closes the connections still open (a kept-alive client sees the server
    gone, as it would if the process ended).
    """

    daemon_threads = True

    def __init__(self, api: ObservabilityAPI, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api = api
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Remember the connection, then serve it on its own thread."""
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget and close a connection its thread is done with."""
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        """Stop listening and end every open connection."""
        super().server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    @property
    def url(self) -> str:
        """The base URL clients use, such as ``http://127.0.0.1:8000/``."""
        host, port = self.socket.getsockname()[:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        return f"http://{shown}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    """One connection: every request goes to the API, whatever its method."""

    server: APIServer
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        """The ``Server`` header: no Python version to advertise."""
        return "observabilipy"

    # An idle keep-alive connection, or a client that stops reading, frees its thread.
    timeout = 60

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            # The client went away mid-request: nothing to answer.
            self.close_connection = True

    def __getattr__(self, name: str) -> object:
        # http.server looks up do_<METHOD>; every method goes to the API (which answers 405).
        if name.startswith("do_"):
            return self._answer
        raise AttributeError(name)

    def _answer(self) -> None:
        target = urlsplit(self.path)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        request = Request(
            self.command,
            # http.server decodes the request line as latin-1: back to the bytes sent.
            unquote_to_bytes(target.path.encode("latin-1")).decode("utf-8", "replace"),
            target.query.encode("latin-1"),
            headers,
        )
        if self.command not in ("GET", "HEAD"):
            # A request body is never read: the connection cannot carry another request.
            self.close_connection = True
        response = self.server.api.handle_sync(request)
        body = response.body
        try:
            self.send_response(response.status)
            sized = False
            for name, value in response.headers:
                if name not in _HOP_BY_HOP:
                    self.send_header(name, value)
                    sized = sized or name == "content-length"
            chunked = not sized and self.command != "HEAD" and self.request_version == "HTTP/1.1"
            if chunked:
                self.send_header("transfer-encoding", "chunked")
            elif not sized and self.command != "HEAD":
                self.close_connection = True  # the end of the body is the end of the connection
            self.end_headers()
            if self.command == "HEAD":
                return
            for chunk in body:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a request log on the terminal would bury the URL the command printed."""
