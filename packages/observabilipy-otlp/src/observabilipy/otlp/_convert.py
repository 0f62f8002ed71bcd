"""From observabilipy's models to OTLP's: nanoseconds, severities, trace ids, metric points.

Both encoders (JSON and protobuf) share what is decided here, so they always agree.

Metrics.  Stored samples are Prometheus-style cumulative points.  They become OTLP
metrics by family: a counter (``jobs_total``) is a monotonic cumulative Sum named
``jobs``; a gauge or untyped sample is a Gauge; a histogram's ``_bucket``, ``_sum``
and ``_count`` samples of one series and timestamp are one HistogramDataPoint with
per-bucket (not cumulative) counts, ``+Inf`` last.

Start times.  A cumulative point says since when it counts.  We do not know when
another process's counter began, so :class:`MetricGrouper` remembers each series:
a series first seen after the exporter was created (about when this process
started) starts at that creation time; an older one (a backlog read from SQLite)
starts at its first point; when its value goes down (the process restarted) it
starts again, at the exporter's creation if that falls between the two points,
else one nanosecond after the last point seen before the drop.

>>> to_unix_nano(1700000000.123456)
1700000000123456000
>>> SEVERITY["WARNING"]
13
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from observabilipy.core.models import AttributeValue, MetricSample

__all__ = [
    "SEVERITY",
    "Grouped",
    "HistogramPoint",
    "Metric",
    "MetricGrouper",
    "NumberPoint",
    "split_trace_context",
    "to_unix_nano",
]

#: OTLP SeverityNumber of each level: the first number of each range.
SEVERITY: Final[Mapping[str, int]] = {
    "DEBUG": 5,
    "INFO": 9,
    "WARNING": 13,
    "ERROR": 17,
    "CRITICAL": 21,
}

#: Attributes that carry the W3C trace context of a log entry (as a tracer writes them).
TRACE_ID_KEY: Final = "trace_id"
SPAN_ID_KEY: Final = "span_id"
_HEX_RE = re.compile(r"[0-9a-f]+\Z")

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


def to_unix_nano(timestamp: float) -> int:
    """Unix seconds as integer nanoseconds, at microsecond precision.

    A float holds about a quarter of a microsecond of today's time; rounding to whole
    microseconds gives the same nanoseconds for the same stored timestamp everywhere.
    """
    return round(timestamp * 1_000_000) * 1000


def split_trace_context(
    attributes: Mapping[str, AttributeValue],
) -> tuple[str | None, str | None]:
    """The ``trace_id`` and ``span_id`` attributes, when they are valid lowercase hex ids.

    Valid ones go in the log record's own traceId / spanId fields (and not again as
    attributes); anything else stays an ordinary attribute.

    >>> split_trace_context({"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"})
    ('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7')
    >>> split_trace_context({"trace_id": "not-hex", "span_id": "00f067aa0ba902b7"})
    (None, '00f067aa0ba902b7')
    """
    return (
        _hex_id(attributes.get(TRACE_ID_KEY), 32),
        _hex_id(attributes.get(SPAN_ID_KEY), 16),
    )


def _hex_id(value: AttributeValue, length: int) -> str | None:
    if isinstance(value, str) and len(value) == length and _HEX_RE.match(value):
        # All zeros is the specification's "no id".
        return value if value.strip("0") else None
    return None


Attributes = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class NumberPoint:
    """One Sum or Gauge data point (``start_ns`` None for gauges)."""

    attributes: Attributes
    start_ns: int | None
    time_ns: int
    value: float


@dataclass(slots=True)
class HistogramPoint:
    """One histogram data point: ``bucket_counts`` per bucket, one more than ``bounds``."""

    attributes: Attributes
    start_ns: int
    time_ns: int
    count: int
    sum: float | None
    bounds: list[float]
    bucket_counts: list[int]


@dataclass(slots=True)
class Metric:
    """One OTLP metric: a family's name, description, shape and points, oldest first."""

    name: str
    description: str
    shape: Literal["sum", "gauge", "histogram"]
    points: list[NumberPoint | HistogramPoint] = field(default_factory=list)


@dataclass(slots=True)
class _Parts:
    """The samples of one histogram point seen so far."""

    description: str
    buckets: dict[str, float] = field(default_factory=dict)
    sum: float | None = None
    count: float | None = None
    carried: bool = False


_SeriesKey = tuple[str, Attributes]
_PartsKey = tuple[str, Attributes, int]
#: start, time of the last point, value (or count) of the last point
_SeriesState = tuple[int, int, float]


@dataclass(slots=True)
class Grouped:
    """A batch turned into metrics, and the memory to keep once it is delivered."""

    metrics: list[Metric]
    points: int
    series: dict[_SeriesKey, _SeriesState]
    pending: dict[_PartsKey, _Parts]


class MetricGrouper:
    """Groups batches of samples into OTLP metrics, remembering series across batches.

    Nothing changes until :meth:`commit`: a batch that failed and is sent again is
    grouped exactly as the first time.  A histogram point whose ``_count`` has not
    arrived yet (a batch ended in the middle of it) waits for the next batch, once.

    >>> grouper = MetricGrouper(created_ns=0)
    >>> grouped = grouper.group([
    ...     MetricSample(name="jobs_total", timestamp=5.0, value=3, labels={"queue": "mail"}, kind="counter"),
    ...     MetricSample(name="wait_bucket", timestamp=5.0, value=1, labels={"le": "0.5"}, kind="histogram"),
    ...     MetricSample(name="wait_bucket", timestamp=5.0, value=3, labels={"le": "+Inf"}, kind="histogram"),
    ...     MetricSample(name="wait_sum", timestamp=5.0, value=2.25, kind="histogram"),
    ...     MetricSample(name="wait_count", timestamp=5.0, value=3, kind="histogram"),
    ... ])
    >>> [(metric.name, metric.shape) for metric in grouped.metrics]
    [('jobs', 'sum'), ('wait', 'histogram')]
    >>> point = grouped.metrics[1].points[0]
    >>> point.bounds, point.bucket_counts, point.count, point.sum
    ([0.5], [1, 2], 3, 2.25)
    """

    def __init__(self, *, created_ns: int, max_series: int = 100_000, max_pending: int = 10_000):
        self._created_ns = created_ns
        self._max_series = max_series
        self._max_pending = max_pending
        self._series: dict[_SeriesKey, _SeriesState] = {}
        self._pending: dict[_PartsKey, _Parts] = {}

    def group(self, samples: Iterable[MetricSample]) -> Grouped:
        """Turn one batch into metrics (plus what :meth:`commit` will remember)."""
        metrics: dict[tuple[str, str], Metric] = {}
        updates: dict[_SeriesKey, _SeriesState] = {}
        parts: dict[_PartsKey, _Parts] = {}
        for key, waiting in self._pending.items():
            parts[key] = _Parts(
                waiting.description, dict(waiting.buckets), waiting.sum, waiting.count, True
            )
        points = 0
        for sample in samples:
            name, kind, labels = sample.name, sample.kind, sample.labels
            if kind == "histogram":
                role = _histogram_role(name, labels)
                if role is not None:
                    family, suffix = role
                    key = (
                        family,
                        _attributes(labels, drop_le=True),
                        to_unix_nano(sample.timestamp),
                    )
                    found = parts.get(key)
                    if found is None:
                        found = parts[key] = _Parts(sample.help)
                    if suffix == "_bucket":
                        found.buckets[labels["le"]] = sample.value
                    elif suffix == "_sum":
                        found.sum = sample.value
                    else:
                        found.count = sample.value
                    continue
            attributes = _attributes(labels)
            time_ns = to_unix_nano(sample.timestamp)
            if kind == "counter":
                family = name[:-6] if name.endswith("_total") else name
                start = self._start((family, attributes), time_ns, sample.value, updates)
                metric = _metric(metrics, family, "sum", sample.help)
                metric.points.append(NumberPoint(attributes, start, time_ns, sample.value))
            else:
                metric = _metric(metrics, name, "gauge", sample.help)
                metric.points.append(NumberPoint(attributes, None, time_ns, sample.value))
            points += 1
        pending: dict[_PartsKey, _Parts] = {}
        for key, found in parts.items():
            if found.count is None and not found.carried and len(pending) < self._max_pending:
                pending[key] = found
                continue
            family, attributes, time_ns = key
            point = self._histogram_point(family, attributes, time_ns, found, updates)
            if point is not None:
                _metric(metrics, family, "histogram", found.description).points.append(point)
                points += 1
        return Grouped(list(metrics.values()), points, updates, pending)

    def commit(self, grouped: Grouped) -> None:
        """Remember what a delivered batch taught: series start times, parts still waiting."""
        self._series.update(grouped.series)
        excess = len(self._series) - self._max_series
        if excess > 0:  # forget the oldest series: they will start afresh if seen again
            for key in list(self._series)[:excess]:
                del self._series[key]
        self._pending = grouped.pending

    def _start(
        self,
        key: _SeriesKey,
        time_ns: int,
        value: float,
        updates: dict[_SeriesKey, _SeriesState],
    ) -> int:
        created = self._created_ns
        previous = updates.get(key) or self._series.get(key)
        if previous is None:
            start = created if created <= time_ns else time_ns
        else:
            start, last_ns, last_value = previous
            if value < last_value:  # a reset: the series counts again from zero
                start = created if last_ns < created <= time_ns else last_ns + 1
        updates[key] = (start, time_ns, value)
        return start

    def _histogram_point(
        self,
        family: str,
        attributes: Attributes,
        time_ns: int,
        parts: _Parts,
        updates: dict[_SeriesKey, _SeriesState],
    ) -> HistogramPoint | None:
        finite: list[tuple[float, float]] = []
        infinite: float | None = None
        for text, value in parts.buckets.items():
            try:
                bound = float(text)  # float() reads "+Inf" too
            except ValueError:
                continue
            if bound == math.inf:
                infinite = value
            elif math.isfinite(bound):
                finite.append((bound, value))
        finite.sort()
        total = parts.count if parts.count is not None else infinite
        if total is None:  # nothing says how many observations there were
            return None
        count = _whole(total)
        bucket_counts = []
        below = 0
        for _, cumulative in finite:
            running = min(max(_whole(cumulative), below), count)
            bucket_counts.append(running - below)
            below = running
        bucket_counts.append(count - below)
        start = self._start((family, attributes), time_ns, float(count), updates)
        return HistogramPoint(
            attributes,
            start,
            time_ns,
            count,
            parts.sum,
            [bound for bound, _ in finite],
            bucket_counts,
        )


def _histogram_role(name: str, labels: Mapping[str, str]) -> tuple[str, str] | None:
    """(family, suffix) of a histogram sample, or None if it is not a histogram part."""
    if name.endswith("_bucket"):
        return (name[:-7], "_bucket") if "le" in labels else None
    if name.endswith("_count"):
        return name[:-6], "_count"
    if name.endswith("_sum"):
        return name[:-4], "_sum"
    return None


def _attributes(labels: Mapping[str, str], *, drop_le: bool = False) -> Attributes:
    if drop_le:
        return tuple(sorted(item for item in labels.items() if item[0] != "le"))
    return tuple(sorted(labels.items()))


def _metric(
    metrics: dict[tuple[str, str], Metric],
    name: str,
    shape: Literal["sum", "gauge", "histogram"],
    description: str,
) -> Metric:
    metric = metrics.get((name, shape))
    if metric is None:
        metric = metrics[(name, shape)] = Metric(name, description, shape)
    return metric


def _whole(value: float) -> int:
    """A count as a non-negative int (a corrupt NaN or negative count counts as zero)."""
    return int(value) if math.isfinite(value) and value > 0 else 0
