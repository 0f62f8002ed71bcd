"""Fixtures of the browser tests: Debian's Chromium driven by playwright, real apps on loopback.

- ``chromium_browser`` (session): headless Chromium from ``/usr/bin/chromium``
  with a fresh profile.  A machine without it fails the tests with the command
  that installs it: the dashboard is never left untested in silence.
- ``page``: a new browser context and page per test (``make_page(**context_options)``
  makes more, such as one with ``http_credentials``).  Every request it makes is
  recorded in ``page.observed_urls`` (also the ``observed_urls`` fixture);
  requests to anything but loopback are recorded and aborted.
  ``page.dialogs`` lists the messages of every ``alert()``/``confirm()``
  (dismissed) and ``page.console_errors`` the console errors (a CSP violation
  shows there).
- ``screenshot(page, name)``: saves ``<name>.png`` under
  ``$OBSERVABILIPY_ARTIFACTS`` (default ``<pytest basetemp>/screenshots``)
  and returns its path.
- ``serve_asgi(app)``: serves an ASGI app with uvicorn on a free loopback port,
  in a thread of the test process; returns its base URL.  ``serve_wsgi(app)``:
  the same for a WSGI app (wsgiref).
- ``observability_server(access=None)``: a running app on a SQLite file (see
  :class:`ServedApp`); ``served_app`` is one without an access check.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK = frozenset({"127.0.0.1"})
#: Where the observability endpoints of ``observability_server`` are mounted (they are
#: also served at the root).
PREFIX = "/observability"


def _loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("about", "data", "blob"):
        return True
    return parts.hostname in LOOPBACK


# Per module, not per session: playwright's sync API keeps an event loop running in this
# thread while it is open, and every later asyncio.run() of the session would then fail.
@pytest.fixture(scope="module")
def chromium_browser() -> Iterator[Any]:
    """Headless Chromium (Debian's), launched once per test module with a fresh profile."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium; "
            "install it with `apt-get install chromium`",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="observabilipy-chromium-")
    with sync_playwright() as playwright:
        # A persistent context is what takes a user-data dir; its browser is shared.
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            browser = context.browser
            if browser is None:  # pragma: no cover - Chromium always has one
                pytest.fail("Chromium started without a browser object", pytrace=False)
            yield browser
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def make_page(chromium_browser: Any) -> Iterator[Callable[..., Any]]:
    """``make_page(**context_options)``: a page in a new context (such as ``http_credentials``).

    Each page records its requests, dialogs and console errors (see the module).
    """
    contexts: list[Any] = []

    def make(**context_options: Any) -> Any:
        context = chromium_browser.new_context(
            viewport={"width": 1280, "height": 900}, **context_options
        )
        contexts.append(context)
        new_page = context.new_page()
        observed: list[str] = []
        dialogs: list[str] = []
        console_errors: list[str] = []

        def route(route: Any) -> None:
            url = route.request.url
            observed.append(url)
            if _loopback(url):
                route.continue_()
            else:
                route.abort()

        def dialog(opened: Any) -> None:
            dialogs.append(opened.message)
            opened.dismiss()

        def console(message: Any) -> None:
            if message.type == "error":
                console_errors.append(message.text)

        new_page.route("**/*", route)
        new_page.on("dialog", dialog)
        new_page.on("console", console)
        new_page.on("pageerror", lambda error: console_errors.append(str(error)))

        def failed_response(response: Any) -> None:
            # The console says only "status of 400"; keep which request it was.
            if response.status >= 400:
                console_errors.append(f"HTTP {response.status} from {response.url}")

        new_page.on("response", failed_response)
        new_page.observed_urls = observed
        new_page.dialogs = dialogs
        new_page.console_errors = console_errors
        return new_page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(make_page: Callable[..., Any]) -> Any:
    """A fresh page recording its requests, dialogs and console errors (see the module)."""
    return make_page()


@pytest.fixture
def observed_urls(page: Any) -> list[str]:
    """Every URL ``page`` requested so far (the same list as ``page.observed_urls``)."""
    urls: list[str] = page.observed_urls
    return urls


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``$OBSERVABILIPY_ARTIFACTS`` or ``<basetemp>/screenshots``."""
    configured = os.environ.get("OBSERVABILIPY_ARTIFACTS")
    directory = Path(configured) if configured else tmp_path_factory.getbasetemp() / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {directory}")
    return directory


@pytest.fixture
def screenshot(artifacts_dir: Path) -> Callable[[Any, str], Path]:
    """``screenshot(page, name)``: save a full-page PNG artifact and return its path."""

    def take(target: Any, name: str) -> Path:
        path = artifacts_dir / f"{name}.png"
        target.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path

    return take


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_uvicorn(app: Any) -> tuple[str, Callable[[], None]]:
    """Serve ``app`` with uvicorn on a free loopback port, in a thread: (base URL, stop)."""
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture
def serve_asgi() -> Iterator[Callable[[Any], str]]:
    """``serve_asgi(app)``: run ``app`` under uvicorn on loopback; returns ``http://127.0.0.1:<port>``."""
    stops: list[Callable[[], None]] = []

    def serve(app: Any) -> str:
        url, stop = _start_uvicorn(app)
        stops.append(stop)
        return url

    yield serve
    for stop in stops:
        stop()


@pytest.fixture
def serve_wsgi() -> Iterator[Callable[[Any], str]]:
    """``serve_wsgi(app)``: run a WSGI app on loopback (wsgiref, a thread per request)."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    running: list[tuple[Any, threading.Thread]] = []

    def serve(app: Any) -> str:
        server = make_server("127.0.0.1", 0, app, server_class=Server, handler_class=QuietHandler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class ServedApp:
    """An app serving core's HTTP API on a SQLite file, under uvicorn on loopback.

    The observability endpoints answer at the root (``base_url + "/dashboard"``)
    and under :data:`PREFIX` (``mounted_url``).  Write logs with
    ``log_storage.write_sync(...)`` then ``log_storage.flush()``; record metrics
    on ``registry`` (the runtime snapshots it every 0.2 s).
    """

    base_url: str
    database_path: Path
    log_storage: Any
    metrics_storage: Any
    registry: Any
    runtime: Any
    api: Any
    closers: list[Callable[[], object]] = field(default_factory=list)

    @property
    def mounted_url(self) -> str:
        """The URL of the endpoints' mount under :data:`PREFIX`."""
        return self.base_url + PREFIX

    def log(self, message: str, *, level: str = "INFO", **attributes: Any) -> None:
        """Write one log entry now and wait until it is committed (readable by the app)."""
        from observabilipy.core.models import LogEntry

        entry = LogEntry(timestamp=time.time(), level=level, message=message, attributes=attributes)
        self.log_storage.write_sync(entry)
        self.log_storage.flush()


@pytest.fixture
def observability_server(tmp_path: Path) -> Iterator[Callable[..., ServedApp]]:
    """``observability_server(access=None, **api_options)``: a :class:`ServedApp` running now."""
    from observabilipy.asgi import create_asgi_app
    from observabilipy.core.http import ObservabilityAPI
    from observabilipy.core.metrics import Registry
    from observabilipy.core.runtime import EmbeddedRuntime
    from observabilipy.sqlite import SQLiteDatabase, SQLiteLogStorage, SQLiteMetricsStorage

    started: list[ServedApp] = []

    def start(access: Any = None, **api_options: Any) -> ServedApp:
        path = tmp_path / f"observability-{len(started)}.db"
        database = SQLiteDatabase(path)
        registry = Registry()
        logs = SQLiteLogStorage(database)
        metrics = SQLiteMetricsStorage(database, registry=registry)
        runtime = EmbeddedRuntime(metrics_storage=metrics, registry=registry, snapshot_interval=0.2)
        api = ObservabilityAPI(
            log_storage=logs,
            metrics_storage=metrics,
            registry=registry,
            runtime=runtime,
            access=access,
            **api_options,
        )
        endpoints = create_asgi_app(api)

        async def app(scope: Any, receive: Any, send: Any) -> None:
            path: str = scope.get("path", "")
            if path == PREFIX or path.startswith(PREFIX + "/"):
                scope = {**scope, "root_path": scope.get("root_path", "") + PREFIX}
            await endpoints(scope, receive, send)

        runtime.start()
        base_url, stop_server = _start_uvicorn(app)
        served = ServedApp(
            base_url=base_url,
            database_path=path,
            log_storage=logs,
            metrics_storage=metrics,
            registry=registry,
            runtime=runtime,
            api=api,
            # The server goes first: no request then reaches a closed database.
            closers=[stop_server, runtime.stop, database.close],
        )
        started.append(served)
        return served

    yield start
    for served in started:
        for close in served.closers:
            close()


@pytest.fixture
def served_app(observability_server: Callable[..., ServedApp]) -> ServedApp:
    """A running app on a SQLite file, without an access check."""
    return observability_server()
