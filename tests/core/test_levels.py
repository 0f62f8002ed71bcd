"""Levels mean the same everywhere: any casing, WARN for WARNING."""

from __future__ import annotations

import logging

import pytest

from observabilipy.core.errors import ObservabilityError, ValidationError
from observabilipy.core.levels import LEVELS, levels_at_or_above, normalize_level, severity


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("debug", "DEBUG"),
        ("Info", "INFO"),
        ("warn", "WARNING"),
        ("WARN", "WARNING"),
        ("Warning", "WARNING"),
        ("wArNiNg", "WARNING"),
        (" error ", "ERROR"),
        ("fatal", "CRITICAL"),
        ("CRITICAL", "CRITICAL"),
    ],
)
def test_any_spelling_maps_to_the_canonical_name(given: str, canonical: str) -> None:
    assert normalize_level(given) == canonical


def test_standard_library_numbers_map_to_the_nearest_level_below() -> None:
    assert normalize_level(logging.WARNING) == "WARNING"
    assert normalize_level(25) == "INFO"  # a custom level between INFO and WARNING
    assert normalize_level(5) == "DEBUG"
    assert normalize_level(100) == "CRITICAL"


@pytest.mark.parametrize("bad", ["verbose", "", None, 3.5, True])
def test_unknown_levels_are_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        normalize_level(bad, field="min_level")
    assert info.value.field == "min_level"
    assert isinstance(info.value, ObservabilityError)
    assert isinstance(info.value, ValueError)
    assert "WARNING" in str(info.value)


def test_severity_orders_levels_like_the_standard_library() -> None:
    assert [severity(level) for level in LEVELS] == [10, 20, 30, 40, 50]


def test_min_level_selects_that_level_and_more_severe() -> None:
    assert levels_at_or_above("warn") == ("WARNING", "ERROR", "CRITICAL")
    assert levels_at_or_above("debug") == LEVELS
    assert levels_at_or_above("critical") == ("CRITICAL",)
