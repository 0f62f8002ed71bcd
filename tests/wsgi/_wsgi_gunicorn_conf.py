"""gunicorn settings of tests/wsgi/test_servers.py: each worker starts its own runtime."""

from __future__ import annotations

import importlib
from typing import Any


def post_fork(server: Any, worker: Any) -> None:
    """In each new worker: start the runtime that snapshots its metrics into the file."""
    # Next to this file, on gunicorn's --pythonpath.
    importlib.import_module("_wsgi_server_apps").start_runtime()
