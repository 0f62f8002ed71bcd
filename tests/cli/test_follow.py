"""``tail --follow`` against ``observabilipy serve`` in child processes: restarts and Ctrl-C."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry
from observabilipy.sqlite import SQLiteDatabase, SQLiteLogStorage

if TYPE_CHECKING:
    from tests.cli._cli_support import Child, free_port, served_url
else:
    from _cli_support import Child, free_port, served_url


@pytest.fixture
def app_logs(tmp_path: Path) -> Iterator[tuple[Path, SQLiteLogStorage]]:
    """The application's side: a file it writes while the CLI reads it."""
    path = tmp_path / "app.db"
    database = SQLiteDatabase(path, registry=Registry())
    yield path, SQLiteLogStorage(database)
    database.close()


def write(storage: SQLiteLogStorage, numbers: range) -> None:
    storage.write_many_sync(
        [
            LogEntry(timestamp=time.time(), level="INFO", message=f"entry {n}", attributes={"n": n})
            for n in numbers
        ],
        durable=True,
    )


def test_follow_survives_a_server_restart_without_gaps_or_repeats(
    app_logs: tuple[Path, SQLiteLogStorage], child: Callable[..., Child]
) -> None:
    path, storage = app_logs
    write(storage, range(1, 6))
    port = str(free_port())
    serve = child("serve", str(path), "--port", port)
    url = served_url(serve)
    tail = child("tail", url, "--follow", "--interval", "0.1", "--format", "json")

    def seen() -> list[int]:
        return [json.loads(line)["attributes"]["n"] for line in tail.stdout]

    tail.wait_for(lambda: len(seen()) == 5)
    serve.kill()  # a crash: no goodbye to the client
    write(storage, range(6, 11))
    tail.wait_for(lambda: any("reconnecting" in line for line in tail.stderr))
    time.sleep(0.3)  # a few more failed polls
    restarted = child("serve", str(path), "--port", port)
    assert served_url(restarted) == url
    write(storage, range(11, 16))
    tail.wait_for(lambda: len(seen()) == 15)
    time.sleep(0.3)  # polls that must add nothing
    assert tail.interrupt() == 0  # Ctrl-C is how --follow ends
    assert seen() == list(range(1, 16))
    errors = "".join(tail.stderr)
    assert errors.count("reconnecting") == 1
    assert errors.count(f"reconnected to {url.rstrip('/')}") == 1
    assert "Traceback" not in errors


def test_follow_prints_new_entries_as_they_come_with_filters(
    app_logs: tuple[Path, SQLiteLogStorage], child: Callable[..., Child]
) -> None:
    path, storage = app_logs
    url = served_url(child("serve", str(path), "--port", "0"))
    tail = child("tail", url, "-f", "--interval", "0.1", "--grep", "entry 1")
    write(storage, range(1, 4))
    tail.wait_for(lambda: len(tail.stdout) == 1)
    write(storage, range(10, 13))
    tail.wait_for(lambda: len(tail.stdout) == 4)
    assert tail.interrupt() == 0
    assert [line.split(" INFO     ")[1] for line in tail.stdout] == [
        "entry 1  n=1\n",
        "entry 10  n=10\n",
        "entry 11  n=11\n",
        "entry 12  n=12\n",
    ]


def test_follow_refuses_an_unreachable_url_at_once(child: Callable[..., Child]) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    tail = child("tail", url, "--follow")
    assert tail.finish() == 1
    assert len(tail.stderr) == 1
    assert tail.stderr[0].startswith(f"Error: cannot reach {url}logs")


def test_ctrl_c_while_a_one_shot_command_waits_is_status_130(child: Callable[..., Child]) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        tail = child("tail", f"http://127.0.0.1:{silent.getsockname()[1]}/")
        time.sleep(1.0)  # the request is sent and waiting
        assert tail.interrupt() == 130
    assert "Traceback" not in "".join(tail.stderr)
