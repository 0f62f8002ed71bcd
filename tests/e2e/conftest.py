"""End-to-end tests: the helpers next to them are importable (``from _export_support import ...``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by the sys.path above
    from tests.e2e._export_support import Collector
else:
    from _export_support import Collector


@pytest.fixture
def collector() -> Iterator[Collector]:
    """A running NDJSON collector on a free loopback port; stopped afterwards."""
    server = Collector()
    server.up()
    yield server
    server.down()
