"""Metric families held in memory: counters, gauges and histograms, and their registry.

A :class:`Registry` holds families; a family with label names holds one child
(series) per label set.  Recording is an in-memory add under one lock per
series; :meth:`Registry.snapshot` turns the current cumulative values into
:class:`~observabilipy.core.models.MetricSample` objects for storage, and
:mod:`observabilipy.core.exposition` renders them as Prometheus text.

>>> registry = Registry()
>>> requests = registry.counter("http_requests", "Requests served", labelnames=("method",))
>>> requests.labels(method="GET").inc()
>>> requests.labels("GET").inc(2)
>>> requests.labels(method="GET").value
3.0
>>> [(s.name, s.labels, s.value) for s in registry.snapshot(timestamp=0.0)]
[('http_requests_total', {'method': 'GET'}, 3.0)]

The helpers record into the default registry (or ``registry=``) and return the
resulting cumulative samples:

>>> counter("jobs_done", queue="mail", registry=registry).value
1.0
>>> counter("jobs_done", queue="mail", registry=registry).value
2.0
"""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
import math
import re
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Final, Generic, NoReturn, TypeVar, cast

from observabilipy.core.errors import ConfigurationError, ValidationError
from observabilipy.core.models import (
    MetricSample,
    _trusted_metric_sample,
    validate_label_name,
    validate_metric_name,
    validate_timestamp,
)

__all__ = [
    "DEFAULT_HISTOGRAM_BUCKETS",
    "DEFAULT_MAX_SERIES_PER_FAMILY",
    "DEFAULT_REGISTRY",
    "GAUGE_MULTIPROCESS_MODES",
    "SERIES_REFUSED_METRIC",
    "Counter",
    "CounterChild",
    "Family",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "Registry",
    "Timer",
    "counter",
    "default_registry",
    "format_float",
    "gauge",
    "histogram",
    "timer",
]

_INF: Final = math.inf

#: Upper bounds used when a histogram is created without ``buckets`` (prometheus_client's).
DEFAULT_HISTOGRAM_BUCKETS: Final[tuple[float, ...]] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, _INF,
)  # fmt: skip

#: How many series (label sets) a family keeps before refusing new ones.
DEFAULT_MAX_SERIES_PER_FAMILY: Final = 10_000

#: How gauges of several processes combine (used by multi-process storage).
GAUGE_MULTIPROCESS_MODES: Final[frozenset[str]] = frozenset({"sum", "max", "min", "latest", "all"})

#: The registry's own counter of label sets refused by the cardinality guard.
SERIES_REFUSED_METRIC: Final = "observabilipy_series_refused"

_COUNTER_RULE: Final = "must be finite and >= 0 (a counter never goes down)"
_UNIT_RE: Final = re.compile(r"[a-zA-Z0-9_]+\Z")

_logger = logging.getLogger("observabilipy")

# --- text helpers shared with exposition ----------------------------------------------------------


def format_float(value: float) -> str:
    """Text of ``value`` as Prometheus clients write it.

    ``repr`` of the float, except ``+Inf``/``-Inf``/``NaN`` and Go's exponent
    form from 1e6 on (``le`` label values must match what other clients write).

    >>> [format_float(v) for v in (3, 0.005, 1234567.0, float("inf"), float("nan"))]
    ['3.0', '0.005', '1.234567e+06', '+Inf', 'NaN']
    """
    if value == _INF:
        return "+Inf"
    if value == -_INF:
        return "-Inf"
    if value != value:
        return "NaN"
    text = repr(float(value))
    digits = text.lstrip("-")
    dot = digits.find(".")
    if dot > 6:
        mantissa = f"{digits[0]}.{digits[1:dot]}{digits[dot + 1 :]}".rstrip("0").rstrip(".")
        return f"{'-' if value < 0 else ''}{mantissa}e+{dot - 1:02d}"
    return text


def _escape_label_value(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _render_labels(pairs: Iterable[tuple[str, str]]) -> str:
    """``a="x",b="y"``: the inside of a sample's braces, values escaped."""
    return ",".join(f'{name}="{_escape_label_value(value)}"' for name, value in pairs)


def _series_text(sample_name: str, labeltext: str) -> str:
    return f"{sample_name}{{{labeltext}}}" if labeltext else sample_name


# --- children: one series each --------------------------------------------------------------------


def _bad_number(field: str, value: object, rule: str) -> ValidationError:
    return ValidationError(field, f"{rule}, got {type(value).__name__} {value!r}")


class CounterChild:
    """One counter series.  Get it from :meth:`Counter.labels`; it only goes up.

    >>> jobs = Counter("jobs", "Jobs run", labelnames=("queue",), registry=None)
    >>> mail = jobs.labels(queue="mail")
    >>> mail.inc(); mail.inc(2.5); mail.value
    3.5
    >>> try:
    ...     mail.inc(-1)
    ... except ValidationError as exc:
    ...     print(exc)
    amount: must be finite and >= 0 (a counter never goes down), got int -1
    """

    __slots__ = ("_labels", "_lock", "_series", "_value")

    def __init__(self, labels: dict[str, str], series: str) -> None:
        self._lock = threading.Lock()
        self._value = 0.0
        self._labels = labels
        self._series = series  # `name_total{labels}`, rendered once for exposition

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (default 1); a negative or non-finite amount is refused."""
        try:
            valid = 0.0 <= amount < _INF
        except TypeError:
            valid = False
        if not valid:
            raise _bad_number("amount", amount, _COUNTER_RULE)
        with self._lock:
            self._value += amount

    def _inc_and_get(self, amount: float) -> float:
        # The helpers return the total *their* increment produced, so read it under the same lock.
        try:
            valid = 0.0 <= amount < _INF
        except TypeError:
            valid = False
        if not valid:
            raise _bad_number("value", amount, _COUNTER_RULE)
        with self._lock:
            self._value += amount
            return self._value

    @property
    def value(self) -> float:
        """The running total."""
        return self._value


class GaugeChild:
    """One gauge series: a value that goes up and down.

    >>> temperature = Gauge("room_celsius", "Room temperature", labelnames=("room",), registry=None)
    >>> kitchen = temperature.labels("kitchen")
    >>> kitchen.set(21.5); kitchen.inc(); kitchen.dec(0.5); kitchen.value
    22.0
    """

    __slots__ = ("_labels", "_lock", "_series", "_value")

    def __init__(self, labels: dict[str, str], series: str) -> None:
        self._lock = threading.Lock()
        self._value = 0.0
        self._labels = labels
        self._series = series

    def set(self, value: float) -> None:
        """Set the value (NaN and infinities are allowed, as in Prometheus)."""
        self._set_and_get(value)

    def _set_and_get(self, value: float) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise _bad_number("value", value, "must be a number") from None
        with self._lock:
            self._value = number
        return number

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (default 1)."""
        try:
            number = float(amount)
        except (TypeError, ValueError):
            raise _bad_number("amount", amount, "must be a number") from None
        with self._lock:
            self._value += number

    def dec(self, amount: float = 1.0) -> None:
        """Subtract ``amount`` (default 1)."""
        try:
            number = float(amount)
        except (TypeError, ValueError):
            raise _bad_number("amount", amount, "must be a number") from None
        with self._lock:
            self._value -= number

    def set_to_current_time(self) -> None:
        """Set the value to the current Unix time in seconds."""
        self.set(time.time())

    @property
    def value(self) -> float:
        """The current value."""
        return self._value


class HistogramChild:
    """One histogram series: observations counted into buckets, plus their sum.

    Counts are kept per bucket and made cumulative when read, so an
    observation is one bisect and one add under a lock.

    >>> latency = Histogram("latency_seconds", "Latency", buckets=(0.1, 1.0), registry=None)
    >>> for seconds in (0.05, 0.5, 3.0):
    ...     latency.observe(seconds)
    >>> latency.count, latency.sum, latency.buckets
    (3, 3.55, ((0.1, 1), (1.0, 2), (inf, 3)))
    """

    __slots__ = ("_bounds", "_counts", "_labels", "_labeltext", "_lock", "_sum")

    def __init__(self, labels: dict[str, str], labeltext: str, bounds: tuple[float, ...]) -> None:
        self._lock = threading.Lock()
        self._bounds = bounds
        self._counts = [0] * len(bounds)  # per bucket, not cumulative
        self._sum = 0.0
        self._labels = labels
        self._labeltext = labeltext  # `a="x",b="y"` without braces; `le` is added per bucket

    def observe(self, value: float) -> None:
        """Count ``value`` in its bucket and add it to the sum; it must be finite."""
        try:
            valid = -_INF < value < _INF
        except TypeError:
            valid = False
        if not valid:
            raise _bad_number("value", value, "must be a finite number")
        index = bisect_left(self._bounds, value)
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    def _observe_and_read(self, value: float) -> tuple[list[int], float]:
        self.observe(value)
        return self._read()

    def _read(self) -> tuple[list[int], float]:
        """Cumulative bucket counts and the sum, read together."""
        with self._lock:
            counts = self._counts.copy()
            total = self._sum
        running = 0
        for index, count in enumerate(counts):
            running += count
            counts[index] = running
        return counts, total

    def time(self) -> Timer:
        """A :class:`Timer` observing elapsed seconds into this series."""
        return Timer(self)

    @property
    def count(self) -> int:
        """How many values were observed."""
        with self._lock:
            return sum(self._counts)

    @property
    def sum(self) -> float:
        """The sum of the observed values."""
        return self._sum

    @property
    def buckets(self) -> tuple[tuple[float, int], ...]:
        """``(upper bound, cumulative count)`` per bucket, ``+inf`` last."""
        counts, _ = self._read()
        return tuple(zip(self._bounds, counts, strict=True))


# The cardinality guard hands these out for refused label sets: shared, they record nothing,
# so memory stays bounded however many new label sets arrive.
class _RefusedCounterChild(CounterChild):
    __slots__ = ()

    def inc(self, amount: float = 1.0) -> None:
        """Record nothing."""

    def _inc_and_get(self, amount: float) -> float:
        return math.nan


class _RefusedGaugeChild(GaugeChild):
    __slots__ = ()

    def _set_and_get(self, value: float) -> float:
        return math.nan

    def inc(self, amount: float = 1.0) -> None:
        """Record nothing."""

    def dec(self, amount: float = 1.0) -> None:
        """Record nothing."""


class _RefusedHistogramChild(HistogramChild):
    __slots__ = ()

    def observe(self, value: float) -> None:
        """Record nothing."""


_REFUSED_COUNTER: Final = _RefusedCounterChild({}, "")
_REFUSED_GAUGE: Final = _RefusedGaugeChild({}, "")
_REFUSED_HISTOGRAM: Final = _RefusedHistogramChild({}, "", (_INF,))

ChildT = TypeVar("ChildT", CounterChild, GaugeChild, HistogramChild)


# --- the registry ---------------------------------------------------------------------------------


class Registry:
    """A thread-safe set of metric families, looked up by name.

    ``counter()``, ``gauge()`` and ``histogram()`` get or create: asking again
    with the same definition returns the same family; a different kind, label
    names, unit, buckets or gauge mode raise :class:`ConfigurationError`.  Help text is
    kept from the first call that gives one.

    ``max_series_per_family`` bounds each family's label sets (see
    :meth:`Counter.labels`).

    >>> registry = Registry()
    >>> registry.counter("jobs", "Jobs run") is registry.counter("jobs_total")
    True
    >>> try:
    ...     registry.gauge("jobs")
    ... except ConfigurationError as exc:
    ...     print(exc)
    metric 'jobs' is already registered with kind 'counter', asked for 'gauge'
    """

    def __init__(self, *, max_series_per_family: int = DEFAULT_MAX_SERIES_PER_FAMILY) -> None:
        if (
            isinstance(max_series_per_family, bool)
            or not isinstance(max_series_per_family, int)
            or max_series_per_family < 1
        ):
            raise ConfigurationError(
                f"max_series_per_family: must be a whole number >= 1, got {max_series_per_family!r}"
            )
        #: The cardinality guard's limit for every family of this registry.
        self.max_series_per_family = max_series_per_family
        self._lock = threading.RLock()
        self._families: dict[str, Family] = {}
        self._claims: dict[str, Family] = {}  # every exposed sample name -> its family
        self._refusals: Counter | None = None

    def counter(
        self, name: str, help: str = "", *, labelnames: Sequence[str] = (), unit: str = ""
    ) -> Counter:
        """Get or create the counter family ``name`` (a trailing ``_total`` is dropped)."""
        candidate = Counter(name, help, labelnames=labelnames, unit=unit, registry=None)
        return cast(Counter, self._register(candidate, get_or_create=True))

    def gauge(
        self,
        name: str,
        help: str = "",
        *,
        labelnames: Sequence[str] = (),
        unit: str = "",
        multiprocess_mode: str = "latest",
    ) -> Gauge:
        """Get or create the gauge family ``name``."""
        candidate = Gauge(
            name,
            help,
            labelnames=labelnames,
            unit=unit,
            multiprocess_mode=multiprocess_mode,
            registry=None,
        )
        return cast(Gauge, self._register(candidate, get_or_create=True))

    def histogram(
        self,
        name: str,
        help: str = "",
        *,
        labelnames: Sequence[str] = (),
        unit: str = "",
        buckets: Sequence[float] = DEFAULT_HISTOGRAM_BUCKETS,
    ) -> Histogram:
        """Get or create the histogram family ``name``."""
        candidate = Histogram(
            name, help, labelnames=labelnames, unit=unit, buckets=buckets, registry=None
        )
        return cast(Histogram, self._register(candidate, get_or_create=True))

    def get(self, name: str) -> Family | None:
        """The family called ``name`` (a counter also answers to ``<name>_total``), or None.

        >>> registry = Registry()
        >>> registry.counter("jobs") is registry.get("jobs_total")
        True
        >>> registry.get("missing") is None
        True
        """
        with self._lock:
            return self._lookup(name)

    def _lookup(self, name: str) -> Family | None:
        family = self._families.get(name)
        if family is None and name.endswith("_total"):
            family = self._families.get(name[:-6])
            if not isinstance(family, Counter):
                return None
        return family

    def unregister(self, name: str) -> None:
        """Forget the family ``name`` (no error if there is none); its series stop being exposed."""
        with self._lock:
            family = self._lookup(name)
            if family is None:
                return
            del self._families[family.name]
            for claimed in family._claimed_names():
                self._claims.pop(claimed, None)
            if family is self._refusals:
                self._refusals = None
            family._registry = None

    def clear(self) -> None:
        """Forget every family."""
        with self._lock:
            for family in self._families.values():
                family._registry = None
            self._families.clear()
            self._claims.clear()
            self._refusals = None

    def families(self) -> list[Family]:
        """The registered families, in registration order."""
        with self._lock:
            return list(self._families.values())

    def snapshot(self, timestamp: float | None = None) -> list[MetricSample]:
        """Every series' current cumulative value as samples stamped ``timestamp`` (default now).

        Counters give ``<name>_total``; histograms give ``<name>_bucket`` per
        bound (``le`` as Prometheus writes it), ``<name>_sum`` and ``<name>_count``.

        >>> registry = Registry()
        >>> registry.histogram("wait_seconds", "Wait", buckets=(1.0,)).observe(0.5)
        >>> for sample in registry.snapshot(timestamp=0.0):
        ...     print(sample.name, sample.labels, sample.value)
        wait_seconds_bucket {'le': '1.0'} 1.0
        wait_seconds_bucket {'le': '+Inf'} 1.0
        wait_seconds_sum {} 0.5
        wait_seconds_count {} 1.0
        """
        now = time.time() if timestamp is None else validate_timestamp(timestamp)
        samples: list[MetricSample] = []
        for family in self.families():
            help = family.help
            if isinstance(family, Histogram):
                for hchild in family._children_snapshot():
                    counts, total = hchild._read()
                    samples.extend(family._series_samples(hchild, counts, total, now))
                continue
            sample_name = family._sample_name if isinstance(family, Counter) else family.name
            kind = family.kind
            for child in family._children_snapshot():
                samples.append(
                    _trusted_metric_sample(
                        sample_name, now, child._value, child._labels.copy(), kind, help
                    )
                )
        return samples

    def _register(self, family: Family, *, get_or_create: bool) -> Family:
        with self._lock:
            existing = self._families.get(family.name)
            if existing is not None:
                if not get_or_create:
                    raise ConfigurationError(
                        f"metric {family.name!r} is already registered; use "
                        f"registry.{family.kind}(...) to get the existing family"
                    )
                _check_same_definition(existing, family)
                if not existing.help and family.help:
                    existing.help = family.help
                return existing
            for claimed in family._claimed_names():
                owner = self._claims.get(claimed)
                if owner is not None:
                    raise ConfigurationError(
                        f"{family.kind} {family.name!r} would expose {claimed!r}, already used "
                        f"by {owner.kind} {owner.name!r}; choose another name"
                    )
            self._families[family.name] = family
            for claimed in family._claimed_names():
                self._claims[claimed] = family
            family._registry = self
            family._max_series = self.max_series_per_family
            return family

    def _count_refusal(self, family_name: str) -> None:
        # Never raises: this runs inside a caller's labels() call.
        try:
            refusals = self._refusals
            if refusals is None:
                with self._lock:
                    refusals = self._refusals
                    if refusals is None:
                        refusals = self.counter(
                            SERIES_REFUSED_METRIC,
                            "Label sets refused by the cardinality guard, per metric family",
                            labelnames=("family",),
                        )
                        # Exempt from the guard: it has one series per family, so it is bounded.
                        refusals._max_series = None
                        self._refusals = refusals
            refusals.labels(family=family_name).inc()
        except Exception:
            _logger.debug("could not count a refused metric series", exc_info=True)

    def _helper_family(
        self,
        kind: type[Counter] | type[Gauge] | type[Histogram],
        name: str,
        help: str,
        labels: dict[str, object],
        buckets: Sequence[float] | None,
    ) -> Family:
        """Get or create a family for a helper call, its label names the call's sorted keys."""
        with self._lock:
            family = self._lookup(name)
            if type(family) is kind:
                return family
            labelnames = tuple(sorted(labels))
            if kind is Counter:
                return self.counter(name, help, labelnames=labelnames)
            if kind is Gauge:
                return self.gauge(name, help, labelnames=labelnames)
            return self.histogram(
                name,
                help,
                labelnames=labelnames,
                buckets=DEFAULT_HISTOGRAM_BUCKETS if buckets is None else buckets,
            )


def _check_same_definition(existing: Family, asked: Family) -> None:
    have, want = existing._definition(), asked._definition()
    for key, value in have.items():
        if want.get(key) != value:
            raise ConfigurationError(
                f"metric {existing.name!r} is already registered with {key} {value!r}, "
                f"asked for {want.get(key)!r}"
            )


#: The registry the helpers and directly built families use unless told otherwise.
default_registry: Final = Registry()
DEFAULT_REGISTRY: Final = default_registry


# --- families -------------------------------------------------------------------------------------


class _Family(Generic[ChildT]):
    """What counters, gauges and histograms share: name, labels, series and the guard."""

    kind: ClassVar[str]
    _refused: ClassVar[object]  # the shared child handed out for refused label sets

    def __init__(
        self,
        name: str,
        help: str,
        *,
        labelnames: Sequence[str],
        unit: str,
        registry: Registry | None,
    ) -> None:
        validate_metric_name(name)
        if not isinstance(help, str):
            raise ValidationError("help", f"must be str, got {type(help).__name__}")
        if not isinstance(unit, str) or (unit and not _UNIT_RE.match(unit)):
            raise ValidationError(
                "unit",
                f"{unit!r} is not a valid unit; use letters, digits and '_' (e.g. 'seconds')",
            )
        name = self._family_name(name)
        if unit and not name.endswith("_" + unit):
            # OpenMetrics wants the unit as the name's suffix; add it, as prometheus_client does.
            name = f"{name}_{unit}"
        validate_metric_name(name)
        #: The family name (a counter's samples add ``_total``).
        self.name = name
        #: The help text shown in exposition.
        self.help = help
        #: The unit (OpenMetrics ``# UNIT``), "" when none.
        self.unit = unit
        #: The label names every series of this family has, in order.
        self.labelnames = self._check_labelnames(labelnames)
        self._labelset = frozenset(self.labelnames)
        self._lock = threading.Lock()
        self._children: dict[tuple[object, ...], ChildT] = {}
        # Keyword calls are looked up by `tuple(kwargs.items())`, which costs no sorting or
        # validation once a label set has been seen; see labels().
        self._by_kwargs: dict[tuple[tuple[str, object], ...], ChildT] = {}
        self._registry: Registry | None = None
        self._max_series: int | None = DEFAULT_MAX_SERIES_PER_FAMILY
        self._warned = False
        self._solo: ChildT | None = None
        if not self.labelnames:
            self._solo = self._children[()] = self._by_kwargs[()] = self._new_child(())
        if registry is not None:
            registry._register(cast(Family, self), get_or_create=False)

    # Subclasses fill these in.
    def _family_name(self, name: str) -> str:
        return name

    def _new_child(self, values: tuple[str, ...]) -> ChildT:
        raise NotImplementedError

    def _claimed_names(self) -> tuple[str, ...]:
        """Every sample name this family exposes (two families may not share one)."""
        return (self.name,)

    def _definition(self) -> dict[str, object]:
        return {"kind": self.kind, "labelnames": self.labelnames, "unit": self.unit}

    def _check_labelnames(self, labelnames: Sequence[str]) -> tuple[str, ...]:
        if isinstance(labelnames, str):
            raise ValidationError(
                "labelnames", f"must be a sequence of names such as ({labelnames!r},), not a str"
            )
        names = tuple(validate_label_name(n, field="labelnames") for n in labelnames)
        if len(set(names)) != len(names):
            raise ValidationError("labelnames", f"{names!r} names a label twice")
        return names

    def labels(self, /, *values: object, **labelvalues: object) -> ChildT:
        """The series for one label set, created on first use.

        Pass the values by name or in :attr:`labelnames` order; non-str values
        are converted with ``str()``.  Past the registry's series limit a new
        label set gets a shared child that records nothing (and is counted in
        ``observabilipy_series_refused_total``), so a label fed from request
        data cannot exhaust memory.

        >>> hits = Counter("hits", "Hits", labelnames=("method", "status"), registry=None)
        >>> hits.labels(method="GET", status=200) is hits.labels("GET", "200")
        True
        >>> try:
        ...     hits.labels(method="GET")
        ... except ValidationError as exc:
        ...     print(exc)
        labels: counter 'hits' takes labels ('method', 'status'); missing ['status']
        """
        # Fast path: a label set seen before costs one tuple and one dict lookup.
        if labelvalues:
            if not values:
                try:
                    child = self._by_kwargs.get(tuple(labelvalues.items()))
                except TypeError:  # an unhashable value; the slow path converts it
                    child = None
                if child is not None:
                    return child
        else:
            try:
                child = self._children.get(values)
            except TypeError:
                child = None
            if child is not None:
                return child
        return self._labels_slow(values, labelvalues)

    def _child_for_kwargs(self, labelvalues: dict[str, object]) -> ChildT:
        # labels(**labelvalues) for the helpers, without unpacking the dict again.
        try:
            child = self._by_kwargs.get(tuple(labelvalues.items()))
        except TypeError:
            child = None
        return child if child is not None else self._labels_slow((), labelvalues)

    def _labels_slow(self, values: tuple[object, ...], labelvalues: dict[str, object]) -> ChildT:
        names = self.labelnames
        if values and labelvalues:
            raise ValidationError(
                "labels", "pass label values either in order or by name, not both"
            )
        if labelvalues or (not values and names):
            missing = [n for n in names if n not in labelvalues]
            unexpected = sorted(k for k in labelvalues if k not in self._labelset)
            if missing or unexpected:
                problems = []
                if missing:
                    problems.append(f"missing {missing}")
                if unexpected:
                    problems.append(f"unexpected {unexpected}")
                raise ValidationError(
                    "labels",
                    f"{self.kind} {self.name!r} takes labels {names}; {', '.join(problems)}",
                )
            values = tuple(labelvalues[n] for n in names)
        elif len(values) != len(names):
            raise ValidationError(
                "labels",
                f"{self.kind} {self.name!r} takes {len(names)} label values {names}, "
                f"got {len(values)}",
            )
        key = tuple(v if type(v) is str else str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            child = self._add_child(key)
            if child is self._refused:
                return child
        if (
            labelvalues
            and len(self._by_kwargs) < 2 * len(self._children)  # bounded like the series
            and all(type(v) is str for v in labelvalues.values())  # 1 == 1.0 == True as keys
        ):
            self._by_kwargs[tuple(labelvalues.items())] = child
        return child

    def _add_child(self, key: tuple[str, ...]) -> ChildT:
        with self._lock:
            child = self._children.get(key)
            if child is not None:
                return child
            limit = self._max_series
            if limit is None or len(self._children) < limit:
                child = self._children[key] = self._new_child(key)
                return child
            warn, self._warned = not self._warned, True
        # Refused: never raise into the caller; count it and say so once per family.
        if warn:
            _logger.warning(
                "metric %r reached its limit of %d series; new label sets are not recorded "
                '(counted in %s_total{family="%s"}). Drop the high-cardinality label or raise '
                "Registry(max_series_per_family=...).",
                self.name,
                limit,
                SERIES_REFUSED_METRIC,
                self.name,
            )
        registry = self._registry
        if registry is not None:
            registry._count_refusal(self.name)
        return cast(ChildT, self._refused)

    def _solo_child(self) -> ChildT:
        child = self._solo
        if child is None:
            self._needs_labels()
        return child

    def _needs_labels(self) -> NoReturn:
        raise ValidationError(
            "labels",
            f"{self.kind} {self.name!r} has labels {self.labelnames}; "
            f"record through .labels(...) first",
        )

    def _children_snapshot(self) -> list[ChildT]:
        with self._lock:
            return list(self._children.values())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, labelnames={self.labelnames!r})"


class Counter(_Family[CounterChild]):
    """A value that only goes up (requests served, errors, bytes sent).

    The family name drops a trailing ``_total``; samples are exposed as
    ``<name>_total``, as prometheus_client does.

    >>> registry = Registry()
    >>> errors = Counter("errors_total", "Errors seen", registry=registry)
    >>> errors.name
    'errors'
    >>> errors.inc(); errors.inc(); errors.value
    2.0
    """

    kind: ClassVar[str] = "counter"
    _refused: ClassVar[CounterChild] = _REFUSED_COUNTER

    def __init__(
        self,
        name: str,
        help: str = "",
        *,
        labelnames: Sequence[str] = (),
        unit: str = "",
        registry: Registry | None = default_registry,
    ) -> None:
        super().__init__(name, help, labelnames=labelnames, unit=unit, registry=registry)
        self._sample_name = self.name + "_total"

    def _family_name(self, name: str) -> str:
        return name[:-6] if name.endswith("_total") else name

    def _new_child(self, values: tuple[str, ...]) -> CounterChild:
        labels = dict(zip(self.labelnames, values, strict=True))
        return CounterChild(
            labels, _series_text(self.name + "_total", _render_labels(labels.items()))
        )

    def _claimed_names(self) -> tuple[str, ...]:
        return (self.name, self.name + "_total")

    def inc(self, amount: float = 1.0) -> None:
        """Increment a family without labels (see :meth:`CounterChild.inc`)."""
        self._solo_child().inc(amount)

    @property
    def value(self) -> float:
        """The total of a family without labels."""
        return self._solo_child().value


class Gauge(_Family[GaugeChild]):
    """A value that goes up and down (queue length, temperature, in-flight requests).

    ``multiprocess_mode`` says how the values of several processes combine:
    ``sum``, ``max``, ``min``, ``latest`` or ``all`` (one series per process).

    >>> in_flight = Gauge("in_flight", "Requests in progress", registry=None)
    >>> in_flight.inc(); in_flight.inc(); in_flight.dec(); in_flight.value
    1.0
    """

    kind: ClassVar[str] = "gauge"
    _refused: ClassVar[GaugeChild] = _REFUSED_GAUGE

    def __init__(
        self,
        name: str,
        help: str = "",
        *,
        labelnames: Sequence[str] = (),
        unit: str = "",
        multiprocess_mode: str = "latest",
        registry: Registry | None = default_registry,
    ) -> None:
        if multiprocess_mode not in GAUGE_MULTIPROCESS_MODES:
            raise ValidationError(
                "multiprocess_mode",
                f"{multiprocess_mode!r} is not one of {sorted(GAUGE_MULTIPROCESS_MODES)}",
            )
        #: How values of several processes combine (see the class docstring).
        self.multiprocess_mode = multiprocess_mode
        super().__init__(name, help, labelnames=labelnames, unit=unit, registry=registry)

    def _new_child(self, values: tuple[str, ...]) -> GaugeChild:
        labels = dict(zip(self.labelnames, values, strict=True))
        return GaugeChild(labels, _series_text(self.name, _render_labels(labels.items())))

    def _definition(self) -> dict[str, object]:
        return {**super()._definition(), "multiprocess_mode": self.multiprocess_mode}

    def set(self, value: float) -> None:
        """Set a family without labels (see :meth:`GaugeChild.set`)."""
        self._solo_child().set(value)

    def inc(self, amount: float = 1.0) -> None:
        """Add to a family without labels."""
        self._solo_child().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        """Subtract from a family without labels."""
        self._solo_child().dec(amount)

    def set_to_current_time(self) -> None:
        """Set a family without labels to the current Unix time."""
        self._solo_child().set_to_current_time()

    @property
    def value(self) -> float:
        """The value of a family without labels."""
        return self._solo_child().value


class Histogram(_Family[HistogramChild]):
    """Observations (latencies, sizes) counted into cumulative buckets, with sum and count.

    ``buckets`` are the upper bounds, increasing; ``+inf`` is added when missing.
    ``le`` cannot be a label name: exposition uses it for the bounds.

    >>> sizes = Histogram("payload_bytes", "Payload sizes", buckets=(100, 1000), registry=None)
    >>> sizes.bounds
    (100.0, 1000.0, inf)
    >>> sizes.observe(512); sizes.buckets
    ((100.0, 0), (1000.0, 1), (inf, 1))
    """

    kind: ClassVar[str] = "histogram"
    _refused: ClassVar[HistogramChild] = _REFUSED_HISTOGRAM

    def __init__(
        self,
        name: str,
        help: str = "",
        *,
        labelnames: Sequence[str] = (),
        unit: str = "",
        buckets: Sequence[float] = DEFAULT_HISTOGRAM_BUCKETS,
        registry: Registry | None = default_registry,
    ) -> None:
        #: The bucket upper bounds, ending with ``inf``.
        self.bounds = _check_buckets(buckets)
        self._le_texts = tuple(format_float(b) for b in self.bounds)
        super().__init__(name, help, labelnames=labelnames, unit=unit, registry=registry)

    def _check_labelnames(self, labelnames: Sequence[str]) -> tuple[str, ...]:
        names = super()._check_labelnames(labelnames)
        if "le" in names:
            raise ValidationError("labelnames", "'le' is reserved for histogram bucket bounds")
        return names

    def _new_child(self, values: tuple[str, ...]) -> HistogramChild:
        labels = dict(zip(self.labelnames, values, strict=True))
        return HistogramChild(labels, _render_labels(labels.items()), self.bounds)

    def _claimed_names(self) -> tuple[str, ...]:
        return (self.name, self.name + "_bucket", self.name + "_sum", self.name + "_count")

    def _definition(self) -> dict[str, object]:
        return {**super()._definition(), "buckets": self.bounds}

    def _series_samples(
        self, child: HistogramChild, counts: list[int], total: float, timestamp: float
    ) -> list[MetricSample]:
        """The cumulative bucket, sum and count samples of one series."""
        labels, name, help = child._labels, self.name, self.help
        bucket = name + "_bucket"
        samples = [
            _trusted_metric_sample(
                bucket, timestamp, float(count), {**labels, "le": le}, "histogram", help
            )
            for le, count in zip(self._le_texts, counts, strict=True)
        ]
        samples.append(
            _trusted_metric_sample(
                name + "_sum", timestamp, total, labels.copy(), "histogram", help
            )
        )
        samples.append(
            _trusted_metric_sample(
                name + "_count", timestamp, float(counts[-1]), labels.copy(), "histogram", help
            )
        )
        return samples

    def observe(self, value: float) -> None:
        """Observe into a family without labels (see :meth:`HistogramChild.observe`)."""
        self._solo_child().observe(value)

    def time(self) -> Timer:
        """A :class:`Timer` for a family without labels."""
        return Timer(self._solo_child())

    @property
    def count(self) -> int:
        """How many values a family without labels observed."""
        return self._solo_child().count

    @property
    def sum(self) -> float:
        """The sum of the values a family without labels observed."""
        return self._solo_child().sum

    @property
    def buckets(self) -> tuple[tuple[float, int], ...]:
        """Cumulative buckets of a family without labels."""
        return self._solo_child().buckets


def _check_buckets(buckets: Sequence[float]) -> tuple[float, ...]:
    if isinstance(buckets, (str, bytes)) or not isinstance(buckets, Sequence):
        raise ValidationError("buckets", f"must be a sequence of numbers, got {buckets!r}")
    bounds: list[float] = []
    for bound in buckets:
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or bound != bound:
            raise ValidationError("buckets", f"bounds must be numbers, got {bound!r}")
        bounds.append(float(bound))
    if any(low >= high for low, high in itertools.pairwise(bounds)):
        raise ValidationError("buckets", f"bounds must increase, got {tuple(buckets)!r}")
    if not bounds or bounds[-1] != _INF:
        bounds.append(_INF)
    return tuple(bounds)


#: Any metric family.
Family = Counter | Gauge | Histogram


# --- timer ----------------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


class Timer:
    """Observes elapsed seconds (``time.perf_counter``) into a histogram series.

    Use it as ``with``, ``async with`` or as a decorator of sync and async
    functions.  The time is recorded also when the block raises; the
    exception goes on unchanged.  ``elapsed`` holds the last duration.

    >>> registry = Registry()
    >>> waits = registry.histogram("step_seconds", "Step duration")
    >>> with waits.time() as t:
    ...     pass
    >>> waits.count, t.elapsed is not None
    (1, True)
    >>> @waits.time()
    ... def step():
    ...     raise KeyError("boom")
    >>> step()
    Traceback (most recent call last):
    ...
    KeyError: 'boom'
    >>> waits.count
    2
    """

    __slots__ = ("_child", "_start", "elapsed")

    def __init__(self, child: HistogramChild) -> None:
        self._child = child
        self._start = 0.0
        #: Seconds the last timed block or call took; None before the first one ends.
        self.elapsed: float | None = None

    def _record(self, start: float) -> None:
        elapsed = self.elapsed = time.perf_counter() - start
        self._child.observe(elapsed)

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._record(self._start)

    async def __aenter__(self) -> Timer:
        return self.__enter__()

    async def __aexit__(self, *exc_info: object) -> None:
        self._record(self._start)

    def __call__(self, func: F) -> F:
        """Time every call of ``func`` (a plain or ``async`` function)."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return await func(*args, **kwargs)
                finally:
                    self._record(start)

            return cast(F, timed_async)

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self._record(start)

        return cast(F, timed)


# --- helpers --------------------------------------------------------------------------------------
#
# Each finds its family with one dict lookup and its series through the family's cache, so a
# repeated call costs about what family.labels(...).inc() does.  The first call creates the
# family with the call's label keys, sorted, as label names.  `name`, `value`, `registry`,
# `help` and `buckets` are the helpers' own arguments, so they cannot be label names here.


def counter(
    name: str,
    value: float = 1.0,
    *,
    registry: Registry | None = None,
    help: str = "",
    **labels: object,
) -> MetricSample:
    """Increment counter ``name`` by ``value`` and return its new cumulative sample.

    >>> registry = Registry()
    >>> sample = counter("emails_sent", 2, registry=registry, provider="smtp")
    >>> sample.name, sample.value, sample.labels, sample.kind
    ('emails_sent_total', 2.0, {'provider': 'smtp'}, 'counter')
    >>> counter("emails_sent", registry=registry, provider="smtp").value
    3.0

    A label set refused by the cardinality guard records nothing and returns NaN.
    """
    reg = default_registry if registry is None else registry
    family = reg._claims.get(name)  # a counter claims both `name` and `name_total`
    if type(family) is not Counter:
        family = cast(Counter, reg._helper_family(Counter, name, help, labels, None))
    child = family._child_for_kwargs(labels)
    total = child._inc_and_get(value)
    return _trusted_metric_sample(
        family._sample_name,
        time.time(),
        total,
        child._labels.copy() if child is not _REFUSED_COUNTER else _str_labels(labels),
        "counter",
        family.help,
    )


def gauge(
    name: str,
    value: float,
    *,
    registry: Registry | None = None,
    help: str = "",
    **labels: object,
) -> MetricSample:
    """Set gauge ``name`` to ``value`` and return the sample.

    >>> registry = Registry()
    >>> gauge("queue_length", 7, registry=registry, queue="mail").value
    7.0
    """
    reg = default_registry if registry is None else registry
    family = reg._families.get(name)
    if type(family) is not Gauge:
        family = cast(Gauge, reg._helper_family(Gauge, name, help, labels, None))
    child = family._child_for_kwargs(labels)
    number = child._set_and_get(value)
    return _trusted_metric_sample(
        family.name,
        time.time(),
        number,
        child._labels.copy() if child is not _REFUSED_GAUGE else _str_labels(labels),
        "gauge",
        family.help,
    )


def histogram(
    name: str,
    value: float,
    *,
    registry: Registry | None = None,
    help: str = "",
    buckets: Sequence[float] | None = None,
    **labels: object,
) -> list[MetricSample]:
    """Observe ``value`` in histogram ``name``; return the series' cumulative samples.

    ``buckets`` applies when this call creates the family; given for an
    existing family, it must match.  A refused label set returns ``[]``.

    >>> registry = Registry()
    >>> samples = histogram("upload_seconds", 0.3, registry=registry, buckets=(0.5, 1.0))
    >>> for sample in samples:
    ...     print(sample.name, sample.labels, sample.value)
    upload_seconds_bucket {'le': '0.5'} 1.0
    upload_seconds_bucket {'le': '1.0'} 1.0
    upload_seconds_bucket {'le': '+Inf'} 1.0
    upload_seconds_sum {} 0.3
    upload_seconds_count {} 1.0
    """
    family = _helper_histogram(name, registry, help, buckets, labels)
    child = family._child_for_kwargs(labels)
    if child is _REFUSED_HISTOGRAM:
        return []
    counts, total = child._observe_and_read(value)
    return family._series_samples(child, counts, total, time.time())


def timer(
    name: str,
    *,
    registry: Registry | None = None,
    help: str = "",
    buckets: Sequence[float] | None = None,
    **labels: object,
) -> Timer:
    """A :class:`Timer` observing elapsed seconds into histogram ``name``.

    >>> registry = Registry()
    >>> async def fetch():
    ...     async with timer("fetch_seconds", registry=registry, source="db"):
    ...         return "rows"
    >>> import asyncio; asyncio.run(fetch())
    'rows'
    >>> registry.get("fetch_seconds").labels(source="db").count
    1
    """
    family = _helper_histogram(name, registry, help, buckets, labels)
    return Timer(family._child_for_kwargs(labels))


def _helper_histogram(
    name: str,
    registry: Registry | None,
    help: str,
    buckets: Sequence[float] | None,
    labels: dict[str, object],
) -> Histogram:
    reg = default_registry if registry is None else registry
    family = reg._families.get(name)
    if type(family) is not Histogram:
        family = cast(Histogram, reg._helper_family(Histogram, name, help, labels, buckets))
    elif buckets is not None and _check_buckets(buckets) != family.bounds:
        raise ConfigurationError(
            f"metric {family.name!r} is already registered with buckets {family.bounds!r}, "
            f"asked for {tuple(buckets)!r}"
        )
    return family


def _str_labels(labels: dict[str, object]) -> dict[str, str]:
    return {key: value if type(value) is str else str(value) for key, value in labels.items()}
