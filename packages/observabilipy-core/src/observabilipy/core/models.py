"""The data observabilipy stores and moves: log entries, metric samples, policies.

Models are frozen and validated when built, so a bad value fails at the call
that made it (naming the field) and never later, at read or scrape time.

>>> entry = LogEntry(timestamp=1700000000.0, level="warn", message="disk low", attributes={"free_mb": 12})
>>> entry.level
'WARNING'
>>> MetricSample(name="jobs_total", timestamp=1700000000.0, value=3, labels={"queue": "mail"}).value
3.0
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from observabilipy.core.errors import ConfigurationError, ValidationError
from observabilipy.core.levels import normalize_level

#: What an attribute value may be once stored: JSON scalars.
AttributeValue = str | int | float | bool | None

#: The kinds of metric a sample can belong to (OpenMetrics calls untyped "unknown").
MetricKind = Literal["counter", "gauge", "histogram", "untyped"]
METRIC_KINDS: Final[frozenset[str]] = frozenset({"counter", "gauge", "histogram", "untyped"})

METRIC_NAME_RE: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME_RE: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def validate_metric_name(name: object, *, field: str = "name") -> str:
    """Return ``name`` if it is a valid Prometheus metric name, else raise.

    >>> validate_metric_name("http_requests_total")
    'http_requests_total'
    >>> validate_metric_name("2xx")
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ValidationError: name: '2xx' is not a valid metric name; use letters, digits, '_' and ':', not starting with a digit
    """
    if not isinstance(name, str) or not METRIC_NAME_RE.match(name):
        raise ValidationError(
            field,
            f"{name!r} is not a valid metric name; use letters, digits, '_' and ':', "
            "not starting with a digit",
        )
    return name


def validate_label_name(name: object, *, field: str = "labels") -> str:
    """Return ``name`` if it is a valid label name, else raise.

    Names starting with ``__`` are reserved by Prometheus.

    >>> validate_label_name("__name__")
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ValidationError: labels: label name '__name__' is reserved (starts with '__')
    """
    if not isinstance(name, str) or not LABEL_NAME_RE.match(name):
        raise ValidationError(
            field,
            f"{name!r} is not a valid label name; use letters, digits and '_', "
            "not starting with a digit",
        )
    if name.startswith("__"):
        raise ValidationError(field, f"label name {name!r} is reserved (starts with '__')")
    return name


def validate_labels(labels: Mapping[str, str], *, field: str = "labels") -> dict[str, str]:
    """Return a copy of ``labels`` after checking every name and value.

    >>> validate_labels({"method": "GET"})
    {'method': 'GET'}
    >>> validate_labels({"status": 200})
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ValidationError: labels['status']: label values must be str, got int 200
    """
    checked: dict[str, str] = {}
    for key, value in labels.items():
        validate_label_name(key, field=field)
        if not isinstance(value, str):
            raise ValidationError(
                f"{field}[{key!r}]",
                f"label values must be str, got {type(value).__name__} {value!r}",
            )
        checked[key] = value
    return checked


def validate_timestamp(value: object, *, field: str = "timestamp") -> float:
    """Return ``value`` as a float if it is a finite number of seconds, else raise.

    >>> validate_timestamp(float("nan"))
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ValidationError: timestamp: must be a finite number of seconds, got nan
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(field, f"must be a number of seconds, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(field, f"must be a finite number of seconds, got {value!r}")
    return number


def normalize_attribute(key: str, value: object, *, field: str = "attributes") -> AttributeValue:
    """Return ``value`` as something JSON can hold.

    Strings, ints, bools, None and finite floats are kept; NaN and infinities
    become their names ("nan", "inf") because JSON has no token for them; any
    other object is stored as ``str(value)``.

    >>> normalize_attribute("n", float("inf")), normalize_attribute("when", 1.5)
    ('inf', 1.5)
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    try:
        return str(value)
    except Exception as exc:  # a broken __str__ must name the attribute, not crash later
        raise ValidationError(
            f"{field}[{key!r}]", f"cannot be turned into text ({type(exc).__name__}: {exc})"
        ) from exc


def normalize_attributes(
    attributes: Mapping[str, object], *, field: str = "attributes"
) -> dict[str, AttributeValue]:
    """Return a new dict of ``attributes`` with every value made JSON-safe.

    >>> normalize_attributes({"user": "ada", "retries": 2, "path": __import__("pathlib").PurePosixPath("/tmp")})
    {'user': 'ada', 'retries': 2, 'path': '/tmp'}
    """
    if not isinstance(attributes, Mapping):
        raise ValidationError(field, f"must be a mapping, got {type(attributes).__name__}")
    normalized: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if not isinstance(key, str):
            raise ValidationError(field, f"keys must be str, got {type(key).__name__} {key!r}")
        normalized[key] = normalize_attribute(key, value, field=field)
    return normalized


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One structured log entry.

    ``timestamp`` is Unix seconds, ``level`` is normalised to its canonical name
    and ``attributes`` hold JSON scalars (see :func:`normalize_attribute`).
    ``id`` is given by the storage that holds the entry (it increases with every
    write) and is ``None`` before that; it takes no part in equality.

    >>> LogEntry(timestamp=1.0, level="INFO", message="hi") == LogEntry(timestamp=1.0, level="info", message="hi")
    True
    >>> LogEntry(timestamp=1.0, level="loud", message="hi")
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ValidationError: level: unknown level 'loud'; expected one of DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL
    """

    timestamp: float
    level: str
    message: str
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict, hash=False)
    id: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "timestamp", validate_timestamp(self.timestamp))
        object.__setattr__(self, "level", normalize_level(self.level))
        if not isinstance(self.message, str):
            raise ValidationError("message", f"must be str, got {type(self.message).__name__}")
        object.__setattr__(self, "attributes", normalize_attributes(self.attributes))
        if self.id is not None and (isinstance(self.id, bool) or not isinstance(self.id, int)):
            raise ValidationError("id", f"must be an int or None, got {self.id!r}")

    def with_id(self, entry_id: int) -> LogEntry:
        """Return this entry carrying the id a storage gave it (no re-validation).

        >>> LogEntry(timestamp=1.0, level="INFO", message="hi").with_id(7).id
        7
        """
        return _trusted_log_entry(
            self.timestamp, self.level, self.message, self.attributes, entry_id
        )


@dataclass(frozen=True, slots=True)
class MetricSample:
    """One value of one metric series at one time.

    ``name`` is the exposed sample name (``http_requests_total``,
    ``latency_seconds_bucket``), ``labels`` its label set, and ``kind`` the
    kind of metric family it belongs to, so stored samples can be exposed with
    the right TYPE.  Values may be NaN or infinite (Prometheus allows it);
    timestamps may not.  ``id`` is given by storage, as for :class:`LogEntry`.

    >>> MetricSample(name="temp", timestamp=1.0, value=float("nan"), kind="gauge").kind
    'gauge'
    >>> MetricSample(name="temp", timestamp=1.0, value="hot")
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ValidationError: value: must be a number, got str 'hot'
    """

    name: str
    timestamp: float
    value: float
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    kind: str = "untyped"
    help: str = field(default="", compare=False)
    id: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        validate_metric_name(self.name)
        object.__setattr__(self, "timestamp", validate_timestamp(self.timestamp))
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise ValidationError(
                "value", f"must be a number, got {type(self.value).__name__} {self.value!r}"
            )
        object.__setattr__(self, "value", float(self.value))
        if not isinstance(self.labels, Mapping):
            raise ValidationError("labels", f"must be a mapping, got {type(self.labels).__name__}")
        object.__setattr__(self, "labels", validate_labels(self.labels))
        if self.kind not in METRIC_KINDS:
            raise ValidationError(
                "kind", f"unknown kind {self.kind!r}; expected one of {sorted(METRIC_KINDS)}"
            )
        if not isinstance(self.help, str):
            raise ValidationError("help", f"must be str, got {type(self.help).__name__}")
        if self.id is not None and (isinstance(self.id, bool) or not isinstance(self.id, int)):
            raise ValidationError("id", f"must be an int or None, got {self.id!r}")

    def with_id(self, sample_id: int) -> MetricSample:
        """Return this sample carrying the id a storage gave it (no re-validation)."""
        return _trusted_metric_sample(
            self.name, self.timestamp, self.value, self.labels, self.kind, self.help, sample_id
        )


# Hot paths (metric helpers, storage reads, the logging handler's writer) build models
# from values already checked.  Setting the slots through their descriptors skips
# both __post_init__ and frozen's __setattr__ guard: about twice as fast as
# object.__setattr__ per field.
_new = object.__new__
_set_entry = tuple(
    vars(LogEntry)[name].__set__ for name in ("timestamp", "level", "message", "attributes", "id")
)
_set_sample = tuple(
    vars(MetricSample)[name].__set__
    for name in ("name", "timestamp", "value", "labels", "kind", "help", "id")
)


def _trusted_log_entry(
    timestamp: float,
    level: str,
    message: str,
    attributes: Mapping[str, AttributeValue],
    entry_id: int | None = None,
) -> LogEntry:
    """Build a LogEntry from values already validated (storage reads, copies)."""
    entry: LogEntry = _new(LogEntry)
    set_timestamp, set_level, set_message, set_attributes, set_id = _set_entry
    set_timestamp(entry, timestamp)
    set_level(entry, level)
    set_message(entry, message)
    set_attributes(entry, attributes)
    set_id(entry, entry_id)
    return entry


def _trusted_metric_sample(
    name: str,
    timestamp: float,
    value: float,
    labels: Mapping[str, str],
    kind: str = "untyped",
    help: str = "",
    sample_id: int | None = None,
) -> MetricSample:
    """Build a MetricSample from values already validated (registry, storage reads)."""
    sample: MetricSample = _new(MetricSample)
    set_name, set_timestamp, set_value, set_labels, set_kind, set_help, set_id = _set_sample
    set_name(sample, name)
    set_timestamp(sample, timestamp)
    set_value(sample, value)
    set_labels(sample, labels)
    set_kind(sample, kind)
    set_help(sample, help)
    set_id(sample, sample_id)
    return sample


def _check_positive(value: float | None, field: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(f"{field}: must be a positive number or None, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigurationError(f"{field}: must be finite, got {value!r}")


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How much data a store keeps: entries younger than ``max_age_seconds`` and
    at most ``max_count`` of them (the oldest go first).  ``None`` means no limit.

    >>> RetentionPolicy(max_age_seconds=3600, max_count=100_000).max_count
    100000
    >>> RetentionPolicy(max_age_seconds=-5)
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: max_age_seconds: must be a positive number or None, got -5
    """

    max_age_seconds: float | None = None
    max_count: int | None = None

    def __post_init__(self) -> None:
        _check_positive(self.max_age_seconds, "max_age_seconds")
        _check_positive(self.max_count, "max_count")
        if self.max_count is not None and not isinstance(self.max_count, int):
            raise ConfigurationError(f"max_count: must be a whole number, got {self.max_count!r}")


@dataclass(frozen=True, slots=True)
class LevelRetentionPolicy:
    """Log retention by level: keep each level for its own age.

    ``max_age_seconds`` maps levels (any casing, ``WARN`` included) to ages;
    levels not listed keep ``default_max_age_seconds`` (``None``: forever).
    ``max_count`` caps the whole store as in :class:`RetentionPolicy`.

    >>> policy = LevelRetentionPolicy(max_age_seconds={"debug": 3600, "warn": 86400}, default_max_age_seconds=604800)
    >>> policy.age_for("WARNING"), policy.age_for("error")
    (86400, 604800)
    """

    max_age_seconds: Mapping[str, float] = field(default_factory=dict, hash=False)
    default_max_age_seconds: float | None = None
    max_count: int | None = None

    def __post_init__(self) -> None:
        ages: dict[str, float] = {}
        for level, age in self.max_age_seconds.items():
            try:
                canonical = normalize_level(level)
            except ValidationError as exc:
                raise ConfigurationError(f"max_age_seconds: {exc.problem}") from None
            _check_positive(age, f"max_age_seconds[{canonical!r}]")
            ages[canonical] = age
        object.__setattr__(self, "max_age_seconds", ages)
        _check_positive(self.default_max_age_seconds, "default_max_age_seconds")
        _check_positive(self.max_count, "max_count")

    def age_for(self, level: str) -> float | None:
        """The age after which entries of ``level`` are deleted (``None``: never)."""
        return self.max_age_seconds.get(normalize_level(level), self.default_max_age_seconds)
