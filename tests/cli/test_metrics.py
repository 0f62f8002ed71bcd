"""``observabilipy metrics`` against a live API: the table, filters, JSON, --watch, errors."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from observabilipy.cli.app import main

if TYPE_CHECKING:
    from tests.cli._cli_support import Child, LiveAPI, StaticServer, free_port
else:
    from _cli_support import Child, LiveAPI, StaticServer, free_port


def metrics(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["metrics", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def app_metrics(live_api: LiveAPI) -> LiveAPI:
    requests = live_api.registry.counter(
        "http_requests", "Requests.", labelnames=("method", "route")
    )
    requests.labels(method="GET", route="/users/{id}").inc(3)
    requests.labels(method="POST", route="/users/{id}").inc()
    requests.labels(method="GET", route="/").inc(2)
    live_api.registry.gauge("queue_depth", "Jobs waiting.").set(7)
    live_api.registry.gauge("ratio", "Undefined.").set(math.nan)
    return live_api


def test_table_of_current_values(app_metrics: LiveAPI) -> None:
    status, out, err = metrics(app_metrics.url)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "LABELS", "VALUE", "TYPE"]
    rows = {tuple(line.split()) for line in lines[1:]}
    assert rows == {
        ("http_requests_total", '{method="GET",route="/users/{id}"}', "3", "counter"),
        ("http_requests_total", '{method="POST",route="/users/{id}"}', "1", "counter"),
        ("http_requests_total", '{method="GET",route="/"}', "2", "counter"),
        ("queue_depth", "7", "gauge"),
        ("ratio", "NaN", "gauge"),
    }


def test_filter_by_name_and_by_label(app_metrics: LiveAPI) -> None:
    def names_and_values(*filters: str) -> list[tuple[str, float | str]]:
        args = [arg for f in filters for arg in ("--filter", f)]
        status, out, _ = metrics(app_metrics.url, "--format", "json", *args)
        assert status == 0
        return sorted((item["name"], item["value"]) for item in json.loads(out))

    assert names_and_values("queue_depth") == [("queue_depth", 7.0)]
    assert names_and_values("route=/users/{id}") == [
        ("http_requests_total", 1.0),
        ("http_requests_total", 3.0),
    ]
    assert names_and_values("http_requests_total", "method=GET", "route=/") == [
        ("http_requests_total", 2.0)
    ]
    assert names_and_values("ratio") == [("ratio", "NaN")]
    status, out, err = metrics(app_metrics.url, "--filter", "nothing_like_it")
    assert (status, out, err) == (0, "", "no metrics matched\n")


def test_watch_redraws_until_ctrl_c(app_metrics: LiveAPI, child: Callable[..., Child]) -> None:
    queue = app_metrics.registry.gauge("queue_depth", "Jobs waiting.")
    watching = child(
        "metrics", app_metrics.url, "--watch", "--interval", "0.1", "--filter", "queue_depth"
    )
    watching.wait_for(lambda: any(line.startswith("queue_depth ") for line in watching.stdout))
    queue.set(42)
    watching.wait_for(lambda: any(line.split()[-2:] == ["42", "gauge"] for line in watching.stdout))
    assert watching.interrupt() == 0
    assert "Traceback" not in "".join(watching.stderr)
    tables = [line for line in watching.stdout if line.startswith("queue_depth ")]
    assert tables[0].split()[1] == "7"
    assert tables[-1].split()[1] == "42"


def test_unreachable_url_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    status, out, err = metrics(url)
    assert (status, out) == (1, "")
    assert err.startswith(f"Error: cannot reach {url}/metrics/prometheus: ")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("text/html", b"<html>hi</html>", "answered text/html, not text/plain"),
        ("text/plain", b"<!DOCTYPE html>\n<html>", "line 1 is not in the Prometheus text format"),
        ("text/plain", b"# HELP up\nup 1\nHello world, this is not metrics\n", "line 3 is not"),
    ],
)
def test_pages_that_are_not_metrics_are_named(
    static_server: Callable[[int, str, bytes], StaticServer],
    content_type: str,
    body: bytes,
    expected: str,
) -> None:
    server = static_server(200, content_type, body)
    status, out, err = metrics(server.url)
    assert (status, out) == (1, "")
    assert err.startswith(f"Error: {server.url}metrics/prometheus is not an observabilipy ")
    assert expected in err
    assert err.count("\n") == 1
