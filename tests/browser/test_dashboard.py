"""The built-in dashboard in real headless Chromium, against real servers on loopback.

Every page records the URLs it requested (none may leave 127.0.0.1), the dialogs
it opened (none) and its console errors (a Content-Security-Policy violation
would be one).  Screenshots go to the artifacts directory (see conftest.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest

from observabilipy.core.http import basic_auth, bearer_token
from observabilipy.core.models import LogEntry

# Longer than a few polls of the page (every 2 s), for a busy machine.
TIMEOUT_MS = 20_000

XSS = "<img src=x onerror=alert(1)>"
#: Where conftest's app mounts the endpoints (they answer at the root too).
PREFIX = "/observability"
#: What the ``served_app`` fixture gives (see conftest.py).
ServedApp = Any


def open_dashboard(page: Any, url: str, *, status: int = 200) -> Any:
    """Load the dashboard at ``url`` and wait until its scripts have run."""
    response = page.goto(url)
    assert response is not None
    assert response.status == status
    page.wait_for_function("() => document.getElementById('health').dataset.status !== 'unknown'")
    return response


def wait_for_rows(page: Any, count: int) -> None:
    page.wait_for_function(
        f"() => document.getElementById('log-count').dataset.count === '{count}'",
        timeout=TIMEOUT_MS,
    )


def shown_rows(page: Any) -> list[dict[str, str]]:
    """The log table: id, level and message of every row, in order."""
    rows: list[dict[str, str]] = page.eval_on_selector_all(
        "#log-rows tr",
        """rows => rows.map(row => ({
            id: row.dataset.id,
            level: row.dataset.level,
            message: row.querySelector('.message').textContent,
            attributes: row.querySelector('.attributes').textContent,
        }))""",
    )
    return rows


def chart_last(page: Any) -> dict[str, float]:
    """The newest value of each line the chart draws."""
    last: dict[str, float] = json.loads(page.get_attribute("#chart", "data-last") or "{}")
    return last


def assert_clean(page: Any) -> None:
    """Every request stayed on loopback; no dialog opened; no script or CSP error."""
    assert page.observed_urls, "the page made no request"
    hosts = {urlsplit(url).hostname for url in page.observed_urls}
    assert hosts == {"127.0.0.1"}, page.observed_urls
    assert page.dialogs == []
    assert page.console_errors == []


@contextmanager
def repeating(action: Callable[[], object], every: float = 0.05) -> Iterator[None]:
    """Run ``action`` on a thread every ``every`` seconds while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            action()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def test_dashboard_loads_and_charts_gauges_and_counters(
    page: Any, served_app: ServedApp, screenshot: Callable[[Any, str], Any]
) -> None:
    served_app.registry.gauge("temperature_celsius", "Room temperature.").set(21.5)
    jobs = served_app.registry.counter("jobs", "Jobs run.", labelnames=("queue",))
    served_app.runtime.snapshot_now()

    with repeating(lambda: jobs.labels(queue="mail").inc()):
        open_dashboard(page, served_app.mounted_url + "/dashboard")
        assert page.title() == "observabilipy dashboard"
        # The metric list arrives with its own request, after the health check answered.
        page.wait_for_function(
            "() => ['temperature_celsius', 'jobs_total'].every("
            "(name) => [...document.querySelectorAll('#metric option')].some((o) => o.value === name))",
            timeout=TIMEOUT_MS,
        )

        page.select_option("#metric", "temperature_celsius")
        page.wait_for_function(
            "() => Number(document.getElementById('chart').dataset.points) > 0", timeout=TIMEOUT_MS
        )
        assert chart_last(page) == {"temperature_celsius": 21.5}
        assert page.text_content("#metric-kind") == "gauge: value"
        screenshot(page, "dashboard-gauge")

        # A counter is drawn as its rate: positive while the thread counts.
        page.select_option("#metric", "jobs_total")
        page.wait_for_function(
            "() => Number(document.getElementById('chart').dataset.points) >= 3", timeout=TIMEOUT_MS
        )
        rates = chart_last(page)
        assert list(rates) == ['jobs_total{queue="mail"}']
        assert rates['jobs_total{queue="mail"}'] > 0
        screenshot(page, "dashboard-counter-rate")

    assert page.get_attribute("#health", "data-status") == "pass"
    assert page.text_content("#health-components") == (
        "log_storage: passmetrics_storage: passruntime: pass"
    )
    assert_clean(page)


def test_histograms_show_p50_p95_p99(
    page: Any, served_app: ServedApp, screenshot: Callable[[Any, str], Any]
) -> None:
    latency = served_app.registry.histogram(
        "request_seconds", "Request latency.", buckets=(0.1, 0.5, 1.0)
    )
    served_app.runtime.snapshot_now()
    open_dashboard(page, served_app.mounted_url + "/dashboard")
    page.select_option("#metric", "request_seconds")

    # Every observation falls in the (0.1, 0.5] bucket: interpolation puts the
    # quantile q at 0.1 + 0.4 q there, as Prometheus' histogram_quantile does.
    with repeating(lambda: latency.observe(0.3)):
        page.wait_for_function(
            "() => Number(document.getElementById('chart').dataset.series) === 3",
            timeout=TIMEOUT_MS,
        )
    last = chart_last(page)
    assert set(last) == {"p50", "p95", "p99"}
    assert last == pytest.approx({"p50": 0.3, "p95": 0.48, "p99": 0.496})
    assert page.text_content("#metric-kind") == "histogram: p50 / p95 / p99"
    screenshot(page, "dashboard-histogram")
    assert_clean(page)


def test_the_quantile_and_rate_rules_of_the_page(page: Any, served_app: ServedApp) -> None:
    open_dashboard(page, served_app.mounted_url + "/dashboard")
    results = page.evaluate(
        """async () => {
            const m = await import(new URL("dashboard/metrics.js", location.href).href);
            return {
                middle: m.quantile(0.5, [[0.1, 0], [0.5, 10], [Infinity, 10]]),
                overflow: m.quantile(0.99, [[0.1, 1], [0.5, 2], [Infinity, 10]]),
                first: m.quantile(0.5, [[0.1, 4], [Infinity, 4]]),
                empty: m.quantile(0.5, [[0.1, 0], [Infinity, 0]]),
                rates: m.rates([[0, 10], [10, 30], [20, 5]], 0),
                families: m.parseFamilies(
                    "# HELP a_total A\\n# TYPE a_total counter\\na_total 1\\n# TYPE b histogram\\n"
                ),
            };
        }"""
    )
    assert results["middle"] == pytest.approx(0.3)
    assert results["overflow"] == 0.5  # in the +Inf bucket: the highest finite bound
    assert results["first"] == 0.05  # the first bucket starts at zero
    assert results["empty"] is None
    # 20 in 10 s, then a restart: the counter went down, so it counted 5 from zero.
    assert results["rates"] == [[10, 2], [20, 0.5]]
    assert results["families"] == [
        {"name": "a_total", "kind": "counter"},
        {"name": "b", "kind": "histogram"},
    ]


def test_logs_written_after_load_appear_without_reload_none_skipped_or_repeated(
    page: Any, served_app: ServedApp, screenshot: Callable[[Any, str], Any]
) -> None:
    served_app.log("before the page", level="INFO")
    open_dashboard(page, served_app.mounted_url + "/dashboard")
    wait_for_rows(page, 1)
    page.evaluate("window.sameDocument = true")

    served_app.log("after the page", level="WARNING", order=7)
    wait_for_rows(page, 2)
    assert shown_rows(page)[1] == {
        "id": "2",
        "level": "WARNING",
        "message": "after the page",
        "attributes": "order=7",
    }

    # Bursts with equal timestamps, written while the page polls: a timestamp cursor
    # would skip or repeat some; the id cursor shows each exactly once, in order.
    stamp = time.time()
    for burst in range(4):
        served_app.log_storage.write_many_sync(
            [
                LogEntry(timestamp=stamp, level="INFO", message=f"burst {burst} entry {n}")
                for n in range(6)
            ]
        )
        served_app.log_storage.flush()
        time.sleep(0.7)
    wait_for_rows(page, 26)
    page.wait_for_timeout(2500)  # more polls: nothing is added twice
    rows = shown_rows(page)
    assert [row["id"] for row in rows] == [str(n) for n in range(1, 27)]
    assert [row["message"] for row in rows[2:]] == [
        f"burst {burst} entry {n}" for burst in range(4) for n in range(6)
    ]
    assert page.evaluate("window.sameDocument") is True
    screenshot(page, "dashboard-logs")
    assert_clean(page)


def test_level_filter_and_text_search(
    page: Any, served_app: ServedApp, screenshot: Callable[[Any, str], Any]
) -> None:
    for level, message in [
        ("DEBUG", "cache warmed"),
        ("INFO", "User Alice logged in"),
        ("WARNING", "disk low"),
        ("ERROR", "payment failed for Alice"),
        ("CRITICAL", "database gone"),
    ]:
        served_app.log(message, level=level)
    open_dashboard(page, served_app.mounted_url + "/dashboard")
    wait_for_rows(page, 5)

    page.select_option("#level", "ERROR")
    wait_for_rows(page, 2)
    assert [row["level"] for row in shown_rows(page)] == ["ERROR", "CRITICAL"]
    served_app.log("a newer warning", level="WARNING")
    served_app.log("a newer error", level="ERROR")
    wait_for_rows(page, 3)
    assert shown_rows(page)[-1]["message"] == "a newer error"

    page.select_option("#level", "")
    page.fill("#search", "ALICE")  # any case
    wait_for_rows(page, 2)
    assert [row["message"] for row in shown_rows(page)] == [
        "User Alice logged in",
        "payment failed for Alice",
    ]
    served_app.log("Alice logged out")
    served_app.log("Bob logged in")
    wait_for_rows(page, 3)
    assert shown_rows(page)[-1]["message"] == "Alice logged out"
    screenshot(page, "dashboard-search")

    page.fill("#search", "")
    wait_for_rows(page, 9)
    assert_clean(page)


def test_log_text_is_shown_as_text_and_runs_nothing(
    page: Any, served_app: ServedApp, screenshot: Callable[[Any, str], Any]
) -> None:
    open_dashboard(page, served_app.mounted_url + "/dashboard")
    served_app.log(XSS, level="ERROR", html="<script>alert(2)</script>", **{"<b>": "x"})
    wait_for_rows(page, 1)
    page.wait_for_timeout(500)  # time for an injected handler to fire, were there one
    row = shown_rows(page)[0]
    assert row["message"] == XSS
    assert row["attributes"] == "html=<script>alert(2)</script> <b>=x"
    assert page.locator("img").count() == 0
    assert page.locator("#log-rows script, #log-rows b").count() == 0
    assert not any(urlsplit(url).path.endswith("/x") for url in page.observed_urls)
    screenshot(page, "dashboard-xss-as-text")
    assert_clean(page)  # no dialog opened


def test_no_request_leaves_loopback(page: Any, served_app: ServedApp) -> None:
    served_app.registry.gauge("queue_depth", "Jobs waiting.").set(3)
    served_app.runtime.snapshot_now()
    served_app.log("hello")
    open_dashboard(page, served_app.mounted_url + "/dashboard")
    wait_for_rows(page, 1)
    page.wait_for_function(
        "() => Number(document.getElementById('chart').dataset.points) > 0", timeout=TIMEOUT_MS
    )
    paths = {urlsplit(url).path for url in page.observed_urls}
    # The page, its scripts, style and icon, and the API: nothing else, all on loopback.
    assert {
        f"{PREFIX}/dashboard",
        f"{PREFIX}/dashboard/app.js",
        f"{PREFIX}/dashboard/style.css",
        f"{PREFIX}/dashboard/favicon.svg",
        f"{PREFIX}/health",
        f"{PREFIX}/logs/json",
        f"{PREFIX}/metrics/json",
        f"{PREFIX}/metrics/prometheus",
    } <= paths
    assert all(path.startswith(PREFIX + "/") for path in paths)
    assert_clean(page)


def test_works_at_the_root_and_under_a_mount_prefix(
    make_page: Callable[..., Any], served_app: ServedApp
) -> None:
    served_app.log("seen from both")
    for base in (served_app.base_url, served_app.mounted_url):
        page = make_page()
        open_dashboard(page, base + "/dashboard")
        wait_for_rows(page, 1)
        api_requests = [url for url in page.observed_urls if "/logs/json" in url]
        assert api_requests
        assert all(url.startswith(base + "/logs/json?") for url in api_requests)
        assert_clean(page)


def test_a_trailing_slash_redirects_to_the_page(page: Any, served_app: ServedApp) -> None:
    served_app.log("after a redirect")
    open_dashboard(page, served_app.mounted_url + "/dashboard/")
    assert page.url == served_app.mounted_url + "/dashboard"
    wait_for_rows(page, 1)
    assert_clean(page)


def test_served_by_the_wsgi_adapter_too(
    page: Any, served_app: ServedApp, serve_wsgi: Callable[[Any], str]
) -> None:
    from observabilipy.wsgi import create_wsgi_app, mount

    def site(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("404 Not Found", [("content-type", "text/plain")])
        return [b"not here"]

    base = serve_wsgi(mount(site, PREFIX, create_wsgi_app(served_app.api)))
    served_app.log("through WSGI", level="ERROR")
    open_dashboard(page, base + PREFIX + "/dashboard")
    wait_for_rows(page, 1)
    assert shown_rows(page)[0]["message"] == "through WSGI"
    assert_clean(page)


def test_bearer_token_typed_into_the_page(
    make_page: Callable[..., Any],
    observability_server: Callable[..., ServedApp],
    screenshot: Callable[[Any, str], Any],
) -> None:
    served = observability_server(access=bearer_token("s3cret-token"))
    served.log("only for token holders")
    page = make_page()
    authorizations: list[str | None] = []
    page.on(
        "request",
        lambda request: (
            authorizations.append(request.headers.get("authorization"))
            if "/logs/json" in request.url
            else None
        ),
    )

    # The page itself is refused (401); its body is the sign-in, shown with no data.
    response = open_dashboard(page, served.mounted_url + "/dashboard", status=401)
    assert response.headers["www-authenticate"] == 'Bearer realm="observabilipy"'
    page.wait_for_selector("#sign-in", state="visible")
    assert page.locator("#main").is_hidden()
    screenshot(page, "dashboard-sign-in")

    page.fill("#token", "wrong")
    page.click("#sign-in form button")
    page.wait_for_selector("#sign-in-error", state="visible", timeout=TIMEOUT_MS)
    assert page.text_content("#sign-in-error") == "The server refused this token."

    page.fill("#token", "s3cret-token")
    page.click("#sign-in form button")
    page.wait_for_selector("#main", state="visible", timeout=TIMEOUT_MS)
    wait_for_rows(page, 1)
    assert shown_rows(page)[0]["message"] == "only for token holders"
    assert "Bearer s3cret-token" in authorizations
    assert not any("s3cret" in url or "token=" in url for url in page.observed_urls)
    screenshot(page, "dashboard-signed-in")

    # The token lives in this tab only: a new context starts signed out.
    other = make_page()
    open_dashboard(other, served.mounted_url + "/dashboard", status=401)
    other.wait_for_selector("#sign-in", state="visible")
    hosts = {urlsplit(url).hostname for url in page.observed_urls + other.observed_urls}
    assert hosts == {"127.0.0.1"}


def test_basic_auth_uses_the_browser_credentials(
    make_page: Callable[..., Any], observability_server: Callable[..., ServedApp]
) -> None:
    served = observability_server(access=basic_auth("ops", "hunter2"))
    served.log("behind basic auth")

    # Without credentials the browser is challenged: the page answers 401, Basic.
    refused = make_page().request.get(served.mounted_url + "/dashboard")
    assert refused.status == 401
    assert refused.headers["www-authenticate"].startswith('Basic realm="observabilipy"')

    page = make_page(http_credentials={"username": "ops", "password": "hunter2"})
    open_dashboard(page, served.mounted_url + "/dashboard")
    wait_for_rows(page, 1)
    assert page.locator("#sign-in").is_hidden()
    assert_clean(page)
