"""``--since`` values: a duration back from now (``30s``, ``10m``, ``2h``, ``1d``) or an ISO time.

Durations combine units largest first or in any order (``1h30m``); an
ISO-8601 time without a UTC offset is local time, as ``date`` shows it; a
date alone is its midnight.

>>> parse_since("10m", now=1_000.0)
400.0
>>> parse_since("1h30m", now=10_000.0)
4600.0
>>> parse_since("2024-05-01T12:00:00Z")
1714564800.0
>>> parse_since("yesterday")
Traceback (most recent call last):
...
ValueError: --since: 'yesterday' is not a duration (30s, 10m, 2h, 1d, 1h30m) nor an ISO-8601 time (2024-05-01T12:00:00Z)
"""

from __future__ import annotations

import functools
import math
import re
import time
from datetime import UTC, datetime
from typing import Final

__all__ = ["format_time", "parse_since"]

_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_RE: Final = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?[smhdw])+")
_PART_RE: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhdw])")


def parse_since(value: str, *, now: float | None = None, option: str = "--since") -> float:
    """The Unix time ``value`` names; ``ValueError`` with a one-line message otherwise.

    >>> parse_since("30s", now=100.0), parse_since("1d", now=86_400.0)
    (70.0, 0.0)
    >>> parse_since("2024-05-01 12:00:00+02:00")
    1714557600.0
    """
    text = value.strip()
    if _DURATION_RE.fullmatch(text):
        seconds = sum(float(number) * _UNITS[unit] for number, unit in _PART_RE.findall(text))
        return (time.time() if now is None else now) - seconds
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{option}: {value!r} is not a duration (30s, 10m, 2h, 1d, 1h30m) "
            "nor an ISO-8601 time (2024-05-01T12:00:00Z)"
        ) from None
    # A naive time is local time: datetime.timestamp() reads it so.
    return moment.timestamp()


def format_time(timestamp: float) -> str:
    """``timestamp`` as ISO-8601 UTC with milliseconds, the way every command prints times.

    >>> format_time(1714564800.25)
    '2024-05-01T12:00:00.250Z'
    >>> format_time(float("nan"))
    'nan'
    """
    try:
        second = math.floor(timestamp)
        text = _second(second)
    except (ValueError, OverflowError, OSError):
        return repr(timestamp)
    return f"{text}.{min(int((timestamp - second) * 1000), 999):03d}Z"


@functools.lru_cache(maxsize=256)
def _second(second: int) -> str:
    # Entries printed together share their seconds: format each second once.
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
