"""Helpers of the CLI tests: live API servers on loopback, SQLite files, the command in a child.

Everything here runs with only observabilipy-cli and its dependencies installed:
the servers are the CLI's own stdlib server (``observabilipy.cli.serve``) in a
thread of the test process, or ``observabilipy serve`` in a child process.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from observabilipy.cli.serve import APIServer
from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry
from observabilipy.core.storage import InMemoryLogStorage
from observabilipy.sqlite import SQLiteDatabase, SQLiteLogStorage, SQLiteMetricsStorage

# The command as a child process runs it: `python -m observabilipy.cli` is the console
# script's entry point (tests/cli/test_app.py checks both are the same function).
COMMAND = [sys.executable, "-m", "observabilipy.cli"]


@dataclass
class LiveAPI:
    """An ObservabilityAPI over in-memory logs and a registry, served on loopback."""

    url: str
    logs: InMemoryLogStorage
    registry: Registry
    server: APIServer

    def log(
        self, level: str, message: str, *, timestamp: float | None = None, **attributes: Any
    ) -> None:
        """Store one entry (now, unless ``timestamp`` is given)."""
        self.logs.write_sync(
            LogEntry(
                timestamp=time.time() if timestamp is None else timestamp,
                level=level,
                message=message,
                attributes=attributes,
            )
        )


@dataclass
class StaticServer:
    """A loopback server answering every request with one canned response."""

    url: str
    requests: list[str] = field(default_factory=list)


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fill_database(path: Path, entries: list[LogEntry], registry: Registry | None = None) -> None:
    """Create the SQLite file at ``path`` (or add to it): ``entries``, and a snapshot of ``registry``."""
    database = SQLiteDatabase(path, registry=Registry())
    try:
        logs = SQLiteLogStorage(database)
        logs.write_many_sync(entries, durable=True)
        if registry is not None:
            metrics = SQLiteMetricsStorage(database, registry=registry)
            metrics.write_many_sync(registry.snapshot(), durable=True)
    finally:
        database.close()


class Child:
    """The command running in a child process; stdout and stderr are collected by threads."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [*COMMAND, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._threads = [
            threading.Thread(
                target=self._collect, args=(self.process.stdout, self.stdout), daemon=True
            ),
            threading.Thread(
                target=self._collect, args=(self.process.stderr, self.stderr), daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _collect(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        """Wait until ``predicate()`` holds; fail with what the child printed otherwise."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(
                    f"timed out; stdout={''.join(self.stdout)!r} stderr={''.join(self.stderr)!r}"
                )
            if self.process.poll() is not None and not predicate():
                time.sleep(0.2)  # let the collector threads finish reading
                if predicate():
                    return
                pytest.fail(
                    f"exited {self.process.returncode}; stdout={''.join(self.stdout)!r} "
                    f"stderr={''.join(self.stderr)!r}"
                )
            time.sleep(0.02)

    def interrupt(self, timeout: float = 10.0) -> int:
        """Send SIGINT (Ctrl-C) and return the exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.finish(timeout)

    def finish(self, timeout: float = 20.0) -> int:
        """Wait for the exit status; the output is then complete."""
        status = self.process.wait(timeout=timeout)
        for thread in self._threads:
            thread.join(timeout=5)
        return status

    def kill(self) -> None:
        """Stop it the hard way (a crash, as a server restart test needs)."""
        if self.process.poll() is None:
            self.process.kill()
        self.finish()


def served_url(serve: Child) -> str:
    """The URL ``observabilipy serve`` printed."""
    serve.wait_for(lambda: any("http://" in line for line in serve.stdout))
    match = re.search(r"http://\S+/", "".join(serve.stdout))
    assert match is not None
    return match.group()
