"""The storage, runtime, handler and middleware examples run on their own and print what they show."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(script: str, cwd: Path, *args: str) -> list[str]:
    """Run an example as a user would; it must end by itself, cleanly, printing only to stdout."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.splitlines()


def test_sqlite_storage(tmp_path: Path) -> None:
    pytest.importorskip("observabilipy.sqlite")
    lines = run("sqlite_storage.py", tmp_path, "shop.db")
    assert lines[:2] == ["first poll:", "  #1 INFO    service started {'version': '2.0.0'}"]
    assert "async read, warnings and worse: ['stock low']" in lines
    # The second poll starts after the cursor: the first entry is not repeated.
    second = lines[lines.index("second poll (after id 1), only the new entries:") + 1 :][:3]
    assert [line.split()[0] for line in second] == ["#2", "#3", "#4"]
    assert "metric history: [('queue_depth', 7.0), ('queue_depth', 3.0)]" in lines
    assert "retention kept the newest 2 log entries, removed 2" in lines
    assert lines[-1] == "in shop.db: 2 log entries, 2 metric samples"
    assert (tmp_path / "shop.db").exists()


def test_ring_buffer(tmp_path: Path) -> None:
    lines = run("ring_buffer.py", tmp_path)
    assert lines[0] == "kept 5 of 12 entries, evicted 7:"
    assert [line.split()[0] for line in lines[1:6]] == ["#8", "#9", "#10", "#11", "#12"]
    assert "warnings still held: ['job 8 done', 'job 12 done']" in lines
    assert lines[-1] == "new since id 12: ['job 13 done']"


def test_embedded_runtime(tmp_path: Path) -> None:
    lines = run("embedded_runtime.py", tmp_path)
    assert lines[:3] == [
        "running=True failures=0",
        "snapshot taken: True",
        "after exit: running=False",
    ]
    # The last snapshot, taken at exit, holds every increment.
    assert "last stored jobs_total: 15.0" in lines
    history = next(line for line in lines if line.startswith("jobs_total history"))
    values = [float(value) for value in history.split("[")[1].rstrip("]").split(", ")]
    assert values == sorted(values)  # cumulative: never goes down
    assert lines[-1].endswith("12 samples stored (max 12)")


def test_logging_handler(tmp_path: Path) -> None:
    pytest.importorskip("observabilipy.sqlite")
    lines = run("logging_handler.py", tmp_path, "app.db")
    assert lines == [
        "INFO    invoice created (logger=billing)",
        "        {'invoice': 1017}",
        "WARNING card expires soon (logger=billing)",
        "        {'customer': 'c-88', 'months_left': 1}",
        "ERROR   tax computation failed (logger=billing)",
        "        {'customer': 'c-88'}",
        "        exception.type=ZeroDivisionError",
        "        traceback ends: ZeroDivisionError: division by zero",
        "stored 3 entries, dropped 0",
    ]


@pytest.mark.skipif(
    importlib.util.find_spec("httpx") is None or importlib.util.find_spec("fastapi") is None,
    reason="needs pip install observabilipy-fastapi httpx",
)
def test_middleware_log_context(tmp_path: Path) -> None:
    lines = run("middleware_log_context.py", tmp_path)
    assert lines[0] == "echoed x-request-id: abc-123"
    generated = lines[1].removeprefix("generated x-request-id: ")
    assert generated not in ("", "abc-123")
    rows = [(line.split()[1:-1], line.split("request_id=")[1]) for line in lines[2:]]
    handler_logs = [(" ".join(words), rid) for words, rid in rows if words[0] != "POST"]
    # The application's own logs carry the id of the request they were logged in.
    assert sorted(handler_logs) == sorted(
        [
            ("checkout started", "abc-123"),
            ("payment authorised", "abc-123"),
            ("checkout started", generated),
            ("payment authorised", generated),
        ]
    )
    assert sum("POST /carts/{cart_id}/checkout 200" in line for line in lines) == 2
