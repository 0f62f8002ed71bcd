"""The README's demo runs and prints what each endpoint will serve."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


def test_demo_prints_exposition_metrics_history_and_logs(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = subprocess.run(
        [sys.executable, str(DEMO), "120", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    sections = result.stdout.split("\n=== ")
    titles = [section.split(" ===", 1)[0].strip("= \n") for section in sections[1:]]
    assert titles == [
        "GET /metrics/prometheus",
        "GET /metrics?name=http_requests (NDJSON history)",
        "GET /logs?min_level=warning (NDJSON)",
    ]
    exposition = sections[1].split("===\n", 1)[1].split("\n...")[0]
    families = {family.name for family in text_string_to_metric_families(exposition)}
    assert families & {"http_requests", "http_request_duration_seconds"}
    for section in sections[2:]:
        rows = [line for line in section.splitlines()[1:] if line.startswith("{")]
        assert rows
        for row in rows:
            json.loads(row)
    logs = [json.loads(line) for line in sections[3].splitlines() if line.startswith("{")]
    assert {entry["level"] for entry in logs} <= {"WARNING", "ERROR", "CRITICAL"}
    assert "120 requests, 120 log entries" in result.stdout
    assert result.stderr == ""
    # The data stays in the file for a later look (CLI, another process).
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM logs").fetchone() == (120,)
