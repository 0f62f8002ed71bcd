"""The project's storages, named by the ``OBSERVABILIPY`` setting and by ``LOGGING``."""

from __future__ import annotations

import functools
import logging
import os

from observabilipy.core import ObservabilipyHandler
from observabilipy.sqlite import SQLiteLogStorage, SQLiteMetricsStorage

DATABASE = os.environ.get("OBSERVABILIPY_DB", "observability.db")


@functools.cache
def log_storage() -> SQLiteLogStorage:
    """The log storage: request entries, the views' logs, what ``/logs`` reads."""
    return SQLiteLogStorage(DATABASE)


@functools.cache
def metrics_storage() -> SQLiteMetricsStorage:
    """The metrics storage: every worker's snapshots, summed by ``/metrics/prometheus``."""
    return SQLiteMetricsStorage(DATABASE)


def log_handler() -> logging.Handler:
    """The logging handler of ``LOGGING``: application logs into the same storage."""
    return ObservabilipyHandler(log_storage())
