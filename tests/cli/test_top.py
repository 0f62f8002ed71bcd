"""``observabilipy top``: the TUI driven by textual's test pilot against a live API."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from observabilipy.cli.app import main
from observabilipy.cli.client import Endpoint

if TYPE_CHECKING:
    from tests.cli._cli_support import LiveAPI, free_port
else:
    from _cli_support import LiveAPI, free_port

pytest.importorskip("textual", reason='needs textual: pip install "observabilipy-cli[tui]"')

from textual.pilot import Pilot
from textual.widgets import DataTable, Log

from observabilipy.cli.tui import TopApp

JOBS = 'jobs_total{queue="mail"}'


async def until(pilot: Pilot[None], condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 15.0
    while not condition():
        assert time.monotonic() < deadline, "the screen never showed it"
        await pilot.pause(0.05)


async def test_live_metrics_and_logs_with_a_level_filter(live_api: LiveAPI) -> None:
    jobs = live_api.registry.counter("jobs", "Jobs run.", labelnames=("queue",))
    jobs.labels(queue="mail").inc()
    live_api.log("info", "started")
    live_api.log("error", "payment failed", order=17)
    with Endpoint(live_api.url) as endpoint:
        app = TopApp(endpoint, interval=0.1)
        async with app.run_test(size=(120, 40)) as pilot:
            table = app.query_one("#metrics", DataTable)
            viewer = app.query_one("#logs", Log)
            await until(pilot, lambda: JOBS in table.rows and len(viewer.lines) == 2)
            assert table.get_cell(JOBS, "name") == "jobs_total"
            assert table.get_cell(JOBS, "labels") == '{queue="mail"}'
            assert table.get_cell(JOBS, "value") == "1"
            assert table.get_cell(JOBS, "type") == "counter"

            jobs.labels(queue="mail").inc(41)
            await until(pilot, lambda: table.get_cell(JOBS, "value") == "42")
            live_api.registry.gauge("queue_depth", "Waiting.").set(3)
            await until(pilot, lambda: "queue_depth" in table.rows)

            await pilot.press("e")
            assert [line.split(" ", 1)[1] for line in viewer.lines] == [
                "ERROR    payment failed  order=17"
            ]
            assert "logs: ERROR+" in app.sub_title
            live_api.log("critical", "out of memory")
            live_api.log("debug", "noise")
            await until(pilot, lambda: len(viewer.lines) == 2)
            assert viewer.lines[-1].endswith("CRITICAL out of memory")
            await pilot.press("a")
            assert [line.split(" ", 2)[2].strip() for line in viewer.lines] == [
                "started",
                "payment failed  order=17",
                "out of memory",
                "noise",
            ]

            await pilot.press("p")
            assert "PAUSED" in app.sub_title
            jobs.labels(queue="mail").inc()
            await pilot.pause(0.5)
            assert table.get_cell(JOBS, "value") == "42"
            await pilot.press("p")
            await until(pilot, lambda: table.get_cell(JOBS, "value") == "43")

            live_api.server.shutdown()
            live_api.server.server_close()
            await until(pilot, lambda: "retrying: cannot reach" in app.sub_title)
            assert table.get_cell(JOBS, "value") == "43"  # the last values stay on screen
            await pilot.press("q")


def test_an_unreachable_url_is_an_error_before_the_screen_opens() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    result = CliRunner().invoke(main, ["top", url])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot reach {url}metrics/prometheus: ")


def test_without_textual_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in sys.modules if name.split(".")[0] == "textual"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "observabilipy.cli.tui")
    result = CliRunner().invoke(main, ["top", "http://127.0.0.1:1/"])
    assert result.exit_code == 1
    assert (
        result.stderr
        == 'Error: observabilipy top needs textual: pip install "observabilipy-cli[tui]"\n'
    )
