"""Test helpers for storage backends: a contract suite any backend can run.

Needs pytest, so it is an extra: ``pip install observabilipy-core[testing]``.
Subclass :class:`LogStorageContract` or :class:`MetricsStorageContract` in a
test module and override the ``log_storage`` / ``metrics_storage`` fixture;
every rule of :mod:`observabilipy.core.ports` is then checked against your
backend through both its sync and its async methods (see
:mod:`observabilipy.core.testing.storage_contract`).

:func:`log` and :func:`sample` build test data tersely:

>>> from observabilipy.core.testing import log, sample
>>> log(1.0, "warn", "disk low", free_mb=12).attributes
{'free_mb': 12}
>>> sample("jobs_total", 1.0, 3, "counter", queue="mail").labels
{'queue': 'mail'}
"""

from __future__ import annotations

try:
    import pytest
except ImportError as exc:  # pragma: no cover - exercised by the isolated-install check
    raise ImportError(
        "observabilipy.core.testing needs pytest: pip install 'observabilipy-core[testing]'"
    ) from exc

# Before the import below, so failing contract checks show pytest's detailed diffs.
pytest.register_assert_rewrite("observabilipy.core.testing.storage_contract")

from observabilipy.core.testing.storage_contract import (  # noqa: E402
    LogApi,
    LogStorageContract,
    MetricsApi,
    MetricsStorageContract,
    log,
    sample,
)

__all__ = [
    "LogApi",
    "LogStorageContract",
    "MetricsApi",
    "MetricsStorageContract",
    "log",
    "sample",
]
