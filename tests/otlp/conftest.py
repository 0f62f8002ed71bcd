"""Makes the helpers next to these tests importable and provides the loopback collector."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.otlp._otlp_support import FakeCollector
else:
    from _otlp_support import FakeCollector

_OTEL_VARIABLES = (
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    *(
        f"OTEL_EXPORTER_OTLP_{signal}{setting}"
        for signal in ("", "LOGS_", "METRICS_", "TRACES_")
        for setting in ("ENDPOINT", "HEADERS", "TIMEOUT", "COMPRESSION", "PROTOCOL")
    ),
)


@pytest.fixture(autouse=True)
def _clean_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from no OTEL_* setting, whatever the machine running it has."""
    for variable in _OTEL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def collector() -> Iterator[FakeCollector]:
    """An OTLP/HTTP receiver on a free loopback port, for the length of one test.

    Every payload it received must have decoded as an OTLP request.
    """
    with FakeCollector() as running:
        yield running
    assert running.invalid == []
