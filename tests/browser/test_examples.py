"""The dashboard examples in headless Chromium, against real servers on loopback.

- examples/chartjs_dashboard.html, served by examples/chartjs_dashboard/serve.py
  (uvicorn, SQLite, its own traffic) with the libraries from ``npm ci``: the
  Chart.js chart read from ``/metrics?since=`` gets data points; a log written
  after load appears without reload, as text; the level filter and the search
  work; with Debian's Prometheus scraping the app, the chart drawn by
  chartjs-plugin-datasource-prometheus gets data points too;
- examples/react_dashboard, built with ``npm ci && npm run build`` and served
  by ``vite preview`` (its proxy sends ``/observability`` to serve.py): the
  chart and the log table fill, a hostile log message shows as text;
- examples/django_admin_integration.py under Django's development server: the
  admin login leads a staff user to the observability page, whose widget shows
  health, a chart and the recent logs.

npm builds run once per session, in temporary copies (the examples' folders are
left as they are).  No request leaves loopback (the ``page`` fixture aborts and
records any other); screenshots are saved as artifacts.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
HOSTILE = "<img src=x onerror=alert(1)>"

pytestmark = pytest.mark.slow


# -- servers and builds -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    """A server process a test started, its output in a file shown when it fails."""

    process: subprocess.Popen[bytes]
    log: Path
    url: str

    def output(self) -> str:
        """The end of what the process printed."""
        return self.log.read_text(errors="replace")[-4000:]


@contextmanager
def running(
    argv: list[str],
    *,
    log: Path,
    url: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60.0,
) -> Iterator[Process]:
    """Run ``argv`` until the block ends (always stopped); ready once ``url`` answers."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        started = Process(process, log, url)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"{argv[0]} exited:\n{started.output()}")
                try:
                    urllib.request.urlopen(url, timeout=2).close()
                    break
                except urllib.error.HTTPError:
                    break  # it answers
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"{url} never answered:\n{started.output()}") from None
                    time.sleep(0.1)
            yield started
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(
            "npm is missing: the React and Chart.js examples are built with it; install "
            "Node.js 20+ with npm (Debian: apt-get install nodejs npm)",
            pytrace=False,
        )
    return npm


def _npm_run(arguments: list[str], cwd: Path) -> None:
    result = subprocess.run(
        [_npm(), *arguments, "--no-audit", "--no-fund"]
        if arguments[0] == "ci"
        else [_npm(), *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, (
        f"npm {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}"
    )


def _copy_project(source: Path, target: Path) -> Path:
    """The example's sources, without what npm made there."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("node_modules", "dist"))
    return target


@pytest.fixture(scope="session")
def chartjs_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``npm ci`` of examples/chartjs_dashboard, in a copy: its node_modules."""
    project = _copy_project(
        EXAMPLES / "chartjs_dashboard", tmp_path_factory.mktemp("chartjs") / "project"
    )
    _npm_run(["ci"], project)
    return project / "node_modules"


@pytest.fixture(scope="session")
def react_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/react_dashboard after ``npm ci && npm run build``, in a copy."""
    project = _copy_project(
        EXAMPLES / "react_dashboard", tmp_path_factory.mktemp("react") / "project"
    )
    _npm_run(["ci"], project)
    _npm_run(["run", "build"], project)
    return project


@pytest.fixture
def shop(tmp_path: Path, chartjs_modules: Path) -> Iterator[Process]:
    """examples/chartjs_dashboard/serve.py: the page, its libraries and the API, on SQLite."""
    port = _free_port()
    argv = [
        sys.executable,
        str(EXAMPLES / "chartjs_dashboard" / "serve.py"),
        "--port",
        str(port),
        "--db",
        str(tmp_path / "shop.db"),
        "--node-modules",
        str(chartjs_modules),
    ]
    url = f"http://127.0.0.1:{port}"
    with running(argv, log=tmp_path / "serve.log", url=url + "/observability/health") as served:
        served.url = url
        yield served


def write_log(database: Path, message: str, level: str) -> None:
    """Write one entry into the app's SQLite file from this process (as another worker does)."""
    from observabilipy.core.models import LogEntry
    from observabilipy.sqlite import SQLiteDatabase, SQLiteLogStorage

    connection = SQLiteDatabase(database)
    try:
        storage = SQLiteLogStorage(connection)
        storage.write_sync(LogEntry(timestamp=time.time(), level=level, message=message))
        storage.flush()
    finally:
        connection.close()


def _assert_stayed_on_loopback(page: Any) -> None:
    assert page.observed_urls
    outside = [url for url in page.observed_urls if not url.startswith("http://127.0.0.1:")]
    assert outside == [], f"requests left loopback: {outside}"


def _chart_points(page: Any, canvas: str) -> int:
    points: int = page.evaluate(
        "(id) => Chart.getChart(id).data.datasets.reduce((n, d) => n + d.data.length, 0)",
        canvas,
    )
    return points


# -- the Chart.js example -----------------------------------------------------------------


def test_chartjs_example_charts_metrics_and_tails_logs(
    page: Any, shop: Process, tmp_path: Path, screenshot: Callable[[Any, str], Path]
) -> None:
    page.goto(shop.url + "/?metric=http_requests_total&minutes=5")
    page.wait_for_function(
        "() => Chart.getChart('history').data.datasets.some((d) => d.data.length >= 2)",
        timeout=30_000,
    )
    assert _chart_points(page, "history") >= 2
    assert page.locator("#prometheus-section").is_hidden()  # no ?prometheus=: no such chart

    page.wait_for_selector("#logs tr")  # the app's own request log entries
    write_log(tmp_path / "shop.db", HOSTILE, "ERROR")
    hostile = page.locator("#logs td.message", has_text=HOSTILE)
    hostile.wait_for(timeout=15_000)  # arrived without a reload, as text
    assert page.locator("#logs img").count() == 0
    assert page.dialogs == []

    page.select_option("#level", "ERROR")
    page.wait_for_function(
        "() => document.querySelectorAll('#logs tr').length > 0 && "
        "[...document.querySelectorAll('#logs tr')].every((row) => row.className === 'ERROR')",
        timeout=15_000,
    )
    page.select_option("#level", "")
    page.fill("#search", "order 1 placed")
    page.press("#search", "Enter")
    page.wait_for_function(
        "() => { const rows = [...document.querySelectorAll('#logs td.message')];"
        " return rows.length > 0 && rows.every((cell) => cell.textContent.includes('order 1 placed')); }",
        timeout=15_000,
    )
    screenshot(page, "chartjs_dashboard")
    assert page.console_errors == []
    _assert_stayed_on_loopback(page)


def test_chartjs_example_charts_through_prometheus(
    page: Any, shop: Process, tmp_path: Path, screenshot: Callable[[Any, str], Path]
) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("the prometheus binary is missing (Debian package: prometheus)", pytrace=False)
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    app_address = shop.url.removeprefix("http://")
    example_config = (EXAMPLES / "chartjs_dashboard" / "prometheus.yml").read_text()
    config.write_text(example_config.replace("127.0.0.1:8000", app_address))
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    prometheus_url = f"http://127.0.0.1:{port}"
    with running(argv, log=tmp_path / "prometheus.log", url=prometheus_url + "/-/ready"):
        page.goto(f"{shop.url}/?minutes=2&prometheus={prometheus_url}")
        page.wait_for_function(
            "() => (Chart.getChart('prometheus')?.data.datasets ?? []).some((d) => d.data.length > 0)",
            timeout=60_000,
        )
        assert _chart_points(page, "prometheus") > 0
        screenshot(page, "chartjs_dashboard_prometheus")
    assert page.console_errors == []
    _assert_stayed_on_loopback(page)


# -- the React example --------------------------------------------------------------------


def test_react_example_builds_and_shows_the_chart_and_the_log_table(
    page: Any,
    shop: Process,
    react_project: Path,
    tmp_path: Path,
    screenshot: Callable[[Any, str], Path],
) -> None:
    assert (react_project / "dist" / "index.html").is_file()
    port = _free_port()
    vite = react_project / "node_modules" / ".bin" / "vite"
    argv = [str(vite), "preview", "--host", "127.0.0.1", "--port", str(port), "--strictPort"]
    url = f"http://127.0.0.1:{port}"
    with running(
        argv,
        log=tmp_path / "vite.log",
        url=url + "/",
        cwd=react_project,
        env={"OBSERVABILIPY_URL": shop.url},
    ):
        page.goto(url + "/?metric=orders_total")
        page.wait_for_function(
            "() => [...document.querySelectorAll('.metric-chart polyline')]"
            ".some((line) => line.getAttribute('points').trim().split(' ').length >= 2)",
            timeout=30_000,
        )
        page.wait_for_selector(".log-table tbody tr")
        write_log(tmp_path / "shop.db", HOSTILE, "WARNING")
        page.locator(".log-table td", has_text=HOSTILE).wait_for(timeout=15_000)
        assert page.locator(".log-table img").count() == 0
        assert page.dialogs == []

        page.get_by_label("Level").select_option("WARNING")
        page.wait_for_function(
            "() => { const rows = [...document.querySelectorAll('.log-table tbody tr')];"
            " return rows.length > 0 && rows.every((row) => row.className === 'WARNING'); }",
            timeout=15_000,
        )
        screenshot(page, "react_dashboard")
    assert page.console_errors == []
    _assert_stayed_on_loopback(page)


# -- the Django admin example -------------------------------------------------------------


def test_django_admin_example_shows_the_widget_to_staff(
    page: Any, tmp_path: Path, screenshot: Callable[[Any, str], Path]
) -> None:
    port = _free_port()
    argv = [
        sys.executable,
        str(EXAMPLES / "django_admin_integration.py"),
        "--port",
        str(port),
        "--password",
        "s3cret",
        "--db",
        str(tmp_path / "admin.db"),
    ]
    url = f"http://127.0.0.1:{port}"
    with running(argv, log=tmp_path / "django.log", url=url + "/admin/login/", cwd=tmp_path):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/admin/observability/api/logs")
        refused = connection.getresponse()
        assert refused.status == 302  # anonymous: to the login, without the data
        assert refused.getheader("Location", "").startswith("/admin/login/")
        connection.close()

        page.goto(url + "/admin/observability/")
        assert "/admin/login/" in page.url
        page.fill("#id_username", "admin")
        page.fill("#id_password", "s3cret")
        page.click("input[type=submit]")
        page.wait_for_url(url + "/admin/observability/")
        widget = page.locator(".observabilipy-widget")
        widget.locator('[data-role="health"]', has_text="pass").wait_for(timeout=15_000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.observabilipy-widget polyline')]"
            ".some((line) => line.getAttribute('points').split(' ').length >= 2)",
            timeout=30_000,
        )
        widget.locator("tbody tr", has_text="done").first.wait_for(timeout=15_000)
        page.select_option('[data-role="level"]', "WARNING")
        page.wait_for_function(
            "() => { const rows = [...document.querySelectorAll('[data-role=logs] tr')];"
            " return rows.length > 0 && rows.every((row) => row.className === 'level-WARNING'); }",
            timeout=15_000,
        )
        screenshot(page, "django_admin")
    assert page.console_errors == []
    _assert_stayed_on_loopback(page)
