"""--since values and the times every command prints."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from observabilipy.cli.times import format_time, parse_since


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
        ("1h30m", 5400),
        ("1.5h", 5400),
    ],
)
def test_durations_count_back_from_now(value: str, seconds: float) -> None:
    assert parse_since(value, now=1_000_000.0) == 1_000_000.0 - seconds
    before = time.time()
    assert before - seconds - 1 <= parse_since(value) <= time.time() - seconds


def test_iso_times_with_an_offset_and_local_times_without() -> None:
    assert parse_since("2024-05-01T12:00:00Z") == 1714564800.0
    assert parse_since("2024-05-01T14:00:00+02:00") == 1714564800.0
    local = datetime(2024, 5, 1, 12, 0, 0).timestamp()
    assert parse_since("2024-05-01T12:00:00") == local
    assert parse_since("2024-05-01 12:00") == local
    assert parse_since("2024-05-01") == datetime(2024, 5, 1).timestamp()


@pytest.mark.parametrize("value", ["", "10", "10x", "m10", "-5m", "yesterday", "2024-13-01"])
def test_bad_values_name_the_option_and_the_forms(value: str) -> None:
    with pytest.raises(ValueError, match=r"^--since: .* is not a duration \(30s, 10m") as raised:
        parse_since(value)
    assert "\n" not in str(raised.value)


def test_times_print_as_utc_with_milliseconds() -> None:
    assert format_time(0.0) == "1970-01-01T00:00:00.000Z"
    assert format_time(1714564800.9999) == "2024-05-01T12:00:00.999Z"
