"""Helpers for the SQLite tests: raw connections to inspect files, child Python processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

RunPython = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's database file goes (not created)."""
    return tmp_path / "obs.db"


@pytest.fixture
def raw_connection() -> Iterator[Callable[[Path], sqlite3.Connection]]:
    """Open plain sqlite3 connections to a file, closed after the test."""
    opened: list[sqlite3.Connection] = []

    def connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


@pytest.fixture
def run_python(tmp_path: Path) -> RunPython:
    """Run a Python script in a child process (this interpreter); return its result.

    The script is dedented; ``args`` are passed as ``sys.argv[1:]``.
    """

    def run(
        code: str, *args: str, timeout: float = 30.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        script = tmp_path / f"child_{len(list(tmp_path.glob('child_*.py')))}.py"
        script.write_text(textwrap.dedent(code), encoding="utf-8")
        result = subprocess.run(
            [sys.executable, str(script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"child exited with {result.returncode}\n--- stdout\n{result.stdout}"
                f"\n--- stderr\n{result.stderr}"
            )
        return result

    return run


@pytest.fixture
def files_held_open() -> Callable[[Path], list[str]]:
    """A function listing the files of ``path``'s folder this process holds open (Linux)."""

    def held(path: Path) -> list[str]:
        found = []
        folder = str(path.parent)
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith(folder):
                found.append(target)
        return found

    return held
