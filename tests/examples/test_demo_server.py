"""`hatch run demo`: the live demo server starts, serves itself traffic, prints its URLs and ends."""

from __future__ import annotations

import importlib.util
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo_server.py"

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("uvicorn", "fastapi", "aiosqlite")),
    reason="needs pip install uvicorn observabilipy-fastapi observabilipy-sqlite",
)


def test_demo_server_serves_for_its_duration_and_summarises(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = subprocess.run(
        [sys.executable, str(DEMO), "--port", "0", "--duration", "3", "--db", str(db)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    first = re.fullmatch(
        r"observabilipy demo serving at (http://127\.0\.0\.1:(\d+))/ \(API docs: \1/docs\)",
        lines[0],
    )
    assert first, lines[0]
    base, port = first[1], int(first[2])
    assert port != 0  # --port 0 picked a real free port and printed it
    assert lines[1:4] == [
        f"  {base}/observability/logs",
        f"  {base}/observability/metrics/prometheus",
        f"  {base}/observability/health",
    ]
    summary = re.fullmatch(
        r"served (\d+) requests \((.*)\); (\d+) log entries and (\d+) metric points in (.*)",
        lines[-1],
    )
    assert summary, lines[-1]
    served, log_entries, points = int(summary[1]), int(summary[3]), int(summary[4])
    assert served > 0
    assert summary[5] == str(db)
    # One entry per request from the middleware, plus the shop's own logs.
    assert log_entries > served
    assert points > 0
    with sqlite3.connect(db) as conn:
        messages = [row[0] for row in conn.execute("SELECT message FROM logs")]
    assert len(messages) == log_entries
    assert any(message.startswith("GET /orders/{order_id} ") for message in messages)
    assert "order read" in messages  # a handler's own log went to the file too
