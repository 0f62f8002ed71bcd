"""``observabilipy tail`` against a live API on loopback (and servers that are not one)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from observabilipy.cli.app import main
from observabilipy.cli.render import use_colour
from observabilipy.core.http import basic_auth, bearer_token

if TYPE_CHECKING:
    from tests.cli._cli_support import LiveAPI, StaticServer, free_port
else:
    from _cli_support import LiveAPI, StaticServer, free_port


def tail(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["tail", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_prints_entries_oldest_first_with_their_attributes(live_api: LiveAPI) -> None:
    live_api.log("info", "started", timestamp=1714564800.0, port=8000)
    live_api.log("warn", "disk low", timestamp=1714564801.5, free_mb=12, path="/var log")
    status, out, err = tail(live_api.url)
    assert (status, err) == (0, "")
    assert out == (
        "2024-05-01T12:00:00.000Z INFO     started  port=8000\n"
        '2024-05-01T12:00:01.500Z WARNING  disk low  free_mb=12 path="/var log"\n'
    )


def test_accepts_the_logs_url_and_a_url_without_scheme(live_api: LiveAPI) -> None:
    live_api.log("info", "hello")
    assert "hello" in tail(live_api.url + "logs?limit=3")[1]
    assert "hello" in tail(live_api.url.removeprefix("http://"))[1]


def test_json_lines_are_the_apis_ndjson(live_api: LiveAPI) -> None:
    live_api.log("error", "boom", timestamp=1.0, order=17)
    live_api.log("info", "fine", timestamp=2.0)
    status, out, _ = tail(live_api.url, "--format", "json")
    assert status == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {
            "id": 1,
            "timestamp": 1.0,
            "level": "ERROR",
            "message": "boom",
            "attributes": {"order": 17},
        },
        {"id": 2, "timestamp": 2.0, "level": "INFO", "message": "fine", "attributes": {}},
    ]


def test_filters_run_on_the_server(live_api: LiveAPI) -> None:
    now = time.time()
    live_api.log("debug", "cache miss", timestamp=now - 7200)
    live_api.log("warning", "Disk almost FULL", timestamp=now - 60)
    live_api.log("error", "disk full", timestamp=now - 30)
    live_api.log("critical", "out of memory", timestamp=now - 10)

    def messages(*args: str) -> list[str]:
        status, out, err = tail(live_api.url, "--format", "json", *args)
        assert status == 0, err
        return [json.loads(line)["message"] for line in out.splitlines()]

    assert messages("--level", "WARN") == ["Disk almost FULL"]
    assert messages("--min-level", "error") == ["disk full", "out of memory"]
    assert messages("--grep", "DISK") == ["Disk almost FULL", "disk full"]
    assert messages("--since", "1h") == ["Disk almost FULL", "disk full", "out of memory"]
    assert messages("--since", "45s", "--grep", "full") == ["disk full"]


def test_pages_through_everything_once(serve_api: Callable[..., LiveAPI]) -> None:
    api = serve_api(default_limit=5, max_limit=5)
    for n in range(23):
        api.log("info", f"entry {n}")
    status, out, _ = tail(api.url, "--format", "json")
    assert status == 0
    assert [json.loads(line)["message"] for line in out.splitlines()] == [
        f"entry {n}" for n in range(23)
    ]


def test_colour_only_when_asked_or_on_a_terminal(
    live_api: LiveAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    live_api.log("error", "red \x1b]0;evil title\x07 text")
    plain = tail(live_api.url)[1]
    assert "\x1b" not in plain  # not a terminal; the message's own escape is shown, not sent
    assert "red \\x1b]0;evil title\\x07 text" in plain
    coloured = tail(live_api.url, "--color", "always")[1]
    assert "\x1b[31mERROR   \x1b[0m" in coloured

    class Terminal:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_colour("auto", Terminal())  # type: ignore[arg-type]
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour("auto", Terminal())  # type: ignore[arg-type]


def test_bearer_token_and_basic_credentials(serve_api: Callable[..., LiveAPI]) -> None:
    guarded = serve_api(access=bearer_token("s3cret"))
    guarded.log("info", "private")
    status, out, err = tail(guarded.url)
    assert status == 1
    assert out == ""
    assert err == (
        f"Error: {guarded.url}logs refused access (401): pass --token TOKEN or "
        "--user NAME:PASSWORD (or set OBSERVABILIPY_TOKEN)\n"
    )
    assert "private" in tail(guarded.url, "--token", "s3cret")[1]
    assert "private" in tail(guarded.url, env={"OBSERVABILIPY_TOKEN": "s3cret"})[1]
    assert tail(guarded.url, "--token", "guess")[0] == 1

    basic = serve_api(access=basic_auth("ops", "pa:ss"))
    basic.log("info", "for ops")
    assert "for ops" in tail(basic.url, "--user", "ops:pa:ss")[1]
    assert "refused access (401)" in tail(basic.url, "--user", "ops:wrong")[2]


def test_unreachable_url_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}/observability"
    status, out, err = tail(url)
    assert status == 1
    assert out == ""
    assert err.startswith(f"Error: cannot reach {url}/logs: ")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("status", "content_type", "body", "expected"),
    [
        (200, "text/html", b"<html>hello</html>", "answered text/html, not application/x-ndjson"),
        (404, "text/html", b"<h1>Not Found</h1>", "is not an observabilipy endpoint (HTTP 404)"),
        (200, "application/json", b'{"items": []}', "answered application/json"),
        (200, "application/x-ndjson", b'{"name": "x"}\n', "is not a log entry"),
        (503, "text/plain", b"down", "failed (503): Service Unavailable"),
        (403, "application/json", b'{"detail": "Forbidden"}', "refused access (403): pass --token"),
    ],
)
def test_servers_that_are_not_observabilipy_are_named(
    static_server: Callable[[int, str, bytes], StaticServer],
    status: int,
    content_type: str,
    body: bytes,
    expected: str,
) -> None:
    server = static_server(status, content_type, body)
    code, out, err = tail(server.url)
    assert code == 1
    assert out == ""
    assert err.startswith(f"Error: {server.url}logs ")
    assert expected in err
    assert err.count("\n") == 1


def test_a_since_in_the_future_shows_nothing(live_api: LiveAPI) -> None:
    live_api.log("info", "now")
    assert tail(live_api.url, "--since", "2100-01-01T00:00:00Z") == (0, "", "")
