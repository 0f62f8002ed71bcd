"""Models are validated when built: a bad value fails at the call, naming the field."""

from __future__ import annotations

import dataclasses
import datetime
import math
from pathlib import PurePosixPath

import pytest

from observabilipy.core.errors import ConfigurationError, ValidationError
from observabilipy.core.models import (
    LevelRetentionPolicy,
    LogEntry,
    MetricSample,
    RetentionPolicy,
)


def test_log_entry_normalises_level_and_keeps_json_scalars() -> None:
    entry = LogEntry(
        timestamp=10,
        level="warn",
        message="disk low",
        attributes={"free": 12, "ratio": 0.5, "ok": False, "who": "ada", "none": None},
    )
    assert entry.level == "WARNING"
    assert entry.timestamp == 10.0
    assert isinstance(entry.timestamp, float)
    assert entry.attributes == {"free": 12, "ratio": 0.5, "ok": False, "who": "ada", "none": None}
    assert entry.id is None


def test_log_entry_stringifies_what_json_cannot_hold() -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5)
    entry = LogEntry(
        timestamp=1.0,
        level="INFO",
        message="m",
        attributes={"when": when, "path": PurePosixPath("/srv"), "nan": math.nan, "inf": -math.inf},  # type: ignore[dict-item]
    )
    assert entry.attributes == {
        "when": "2026-01-02 03:04:05",
        "path": "/srv",
        "nan": "nan",
        "inf": "-inf",
    }


def test_log_entry_attributes_are_copied_not_shared() -> None:
    given = {"a": 1}
    entry = LogEntry(timestamp=1.0, level="INFO", message="m", attributes=given)
    given["a"] = 2
    assert entry.attributes == {"a": 1}


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timestamp": math.nan}, "timestamp"),
        ({"timestamp": math.inf}, "timestamp"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"level": "loud"}, "level"),
        ({"message": 42}, "message"),
        ({"attributes": {1: "x"}}, "attributes"),
        ({"attributes": ["not", "a", "mapping"]}, "attributes"),
        ({"attributes": {"bad": _Unprintable()}}, "attributes['bad']"),
    ],
)
def test_log_entry_refuses_bad_values_naming_the_field(
    kwargs: dict[str, object], field: str
) -> None:
    values: dict[str, object] = {"timestamp": 1.0, "level": "INFO", "message": "m"}
    values.update(kwargs)
    with pytest.raises(ValidationError) as info:
        LogEntry(**values)  # type: ignore[arg-type]
    assert info.value.field == field


def test_ids_take_no_part_in_equality_and_with_id_copies() -> None:
    entry = LogEntry(timestamp=1.0, level="INFO", message="m", attributes={"k": "v"})
    stored = entry.with_id(5)
    assert stored.id == 5
    assert entry.id is None
    assert stored == entry
    with pytest.raises(dataclasses.FrozenInstanceError):
        stored.message = "changed"  # type: ignore[misc]


def test_metric_sample_validates_names_labels_and_value() -> None:
    sample = MetricSample(name="http_requests_total", timestamp=1, value=3, labels={"code": "200"})
    assert sample.value == 3.0
    assert isinstance(sample.value, float)
    assert sample.kind == "untyped"


def test_metric_sample_allows_non_finite_values_like_prometheus() -> None:
    assert math.isnan(MetricSample(name="g", timestamp=1.0, value=math.nan).value)
    assert MetricSample(name="g", timestamp=1.0, value=math.inf).value == math.inf


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "http requests"}, "name"),
        ({"name": "1st"}, "name"),
        ({"name": ""}, "name"),
        ({"timestamp": math.nan}, "timestamp"),
        ({"value": "3"}, "value"),
        ({"value": True}, "value"),
        ({"labels": {"bad-name": "x"}}, "labels"),
        ({"labels": {"__reserved": "x"}}, "labels"),
        ({"labels": {"code": 200}}, "labels['code']"),
        ({"kind": "summary-ish"}, "kind"),
    ],
)
def test_metric_sample_refuses_bad_values_naming_the_field(
    kwargs: dict[str, object], field: str
) -> None:
    values: dict[str, object] = {"name": "x", "timestamp": 1.0, "value": 1.0}
    values.update(kwargs)
    with pytest.raises(ValidationError) as info:
        MetricSample(**values)  # type: ignore[arg-type]
    assert info.value.field == field


def test_retention_policies_are_validated() -> None:
    assert RetentionPolicy().max_age_seconds is None
    with pytest.raises(ConfigurationError, match="max_count"):
        RetentionPolicy(max_count=0)
    with pytest.raises(ConfigurationError, match="max_age_seconds"):
        RetentionPolicy(max_age_seconds=math.inf)
    with pytest.raises(ConfigurationError, match="max_count"):
        RetentionPolicy(max_count=2.5)  # type: ignore[arg-type]


def test_level_retention_policy_is_case_insensitive_with_warn_alias() -> None:
    policy = LevelRetentionPolicy(
        max_age_seconds={"debug": 60, "Warn": 3600}, default_max_age_seconds=86400
    )
    assert policy.age_for("DEBUG") == 60
    assert policy.age_for("warning") == 3600
    assert policy.age_for("ERROR") == 86400
    with pytest.raises(ConfigurationError, match="unknown level"):
        LevelRetentionPolicy(max_age_seconds={"verbose": 60})
    with pytest.raises(ConfigurationError, match="DEBUG"):
        LevelRetentionPolicy(max_age_seconds={"debug": -1})
