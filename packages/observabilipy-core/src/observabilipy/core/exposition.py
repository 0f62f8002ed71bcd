"""Prometheus text format 0.0.4 and OpenMetrics 1.0, from a registry or from stored samples.

:func:`encode_current` renders a registry's live values; :func:`encode_metrics`
renders the latest point of each series found in stored samples.  Both group
samples into families with ``# HELP`` and ``# TYPE``, write no sample
timestamps, and format floats and escape text as prometheus_client does, so the
output passes ``promtool check metrics`` and Prometheus scrapes it.
:func:`choose_exposition` picks the format from a scraper's Accept header.

>>> from observabilipy.core.metrics import Registry
>>> registry = Registry()
>>> registry.counter("jobs", "Jobs run", labelnames=("queue",)).labels(queue="mail").inc(3)
>>> print(encode_current(registry), end="")
# HELP jobs_total Jobs run
# TYPE jobs_total counter
jobs_total{queue="mail"} 3.0
>>> print(encode_current(registry, openmetrics=True), end="")
# HELP jobs Jobs run
# TYPE jobs counter
jobs_total{queue="mail"} 3.0
# EOF
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from observabilipy.core.metrics import (
    Histogram,
    Registry,
    _render_labels,
    _series_text,
    default_registry,
    format_float,
)
from observabilipy.core.models import MetricSample

__all__ = [
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_PROMETHEUS",
    "choose_exposition",
    "encode_current",
    "encode_metrics",
]

CONTENT_TYPE_PROMETHEUS: Final = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_OPENMETRICS: Final = "application/openmetrics-text; version=1.0.0; charset=utf-8"

_HISTOGRAM_SUFFIXES: Final = ("_bucket", "_count", "_sum")
_Point = tuple[tuple[float, int], MetricSample, str, str, str]


def _escape_help(text: str, openmetrics: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    # OpenMetrics escapes quotes in HELP too; the 0.0.4 format does not.
    return text.replace('"', '\\"') if openmetrics else text


def _header(out: list[str], name: str, kind: str, help: str, unit: str, openmetrics: bool) -> None:
    # In the 0.0.4 format a counter family is named after its `_total` samples (as
    # prometheus_client writes it); OpenMetrics names the family without the suffix.
    # A family made without help text (e.g. by the counter() helper) is described by
    # its name: scrapers accept a missing HELP, but promtool's lint rejects it.
    help = help or name
    if kind == "counter" and not openmetrics:
        name += "_total"
    out.append(f"# HELP {name} {_escape_help(help, openmetrics)}\n")
    if kind == "untyped" and openmetrics:
        kind = "unknown"
    out.append(f"# TYPE {name} {kind}\n")
    if unit and openmetrics:
        out.append(f"# UNIT {name} {unit}\n")


_fmt = format_float  # a short local name keeps the hot comprehension readable


def _count_text(count: int) -> str:
    return f"{count}.0" if count < 1_000_000 else format_float(float(count))


def encode_current(registry: Registry | None = None, *, openmetrics: bool = False) -> str:
    """The registry's current values (default: the default registry) as exposition text.

    >>> from observabilipy.core.metrics import Registry
    >>> registry = Registry()
    >>> latency = registry.histogram("latency_seconds", "Latency", buckets=(0.5,))
    >>> for seconds in (0.1, 0.2, 2.0):
    ...     latency.observe(seconds)
    >>> print(encode_current(registry), end="")
    # HELP latency_seconds Latency
    # TYPE latency_seconds histogram
    latency_seconds_bucket{le="0.5"} 2.0
    latency_seconds_bucket{le="+Inf"} 3.0
    latency_seconds_count 3.0
    latency_seconds_sum 2.3
    """
    reg = default_registry if registry is None else registry
    out: list[str] = []
    for family in reg.families():
        _header(out, family.name, family.kind, family.help, family.unit, openmetrics)
        if isinstance(family, Histogram):
            _histogram_lines(out, family)
            continue
        # Each series' `name{labels}` was rendered when it was created; this loop only
        # formats values.  repr() is the canonical form below 1e6 (Go turns to exponents there).
        out.extend(
            [
                f"{child._series} {repr(v) if -1e6 < (v := child._value) < 1e6 else _fmt(v)}\n"
                for child in family._children_snapshot()
            ]
        )
    if openmetrics:
        out.append("# EOF\n")
    return "".join(out)


def _histogram_lines(out: list[str], family: Histogram) -> None:
    name, le_texts = family.name, family._le_texts
    for child in family._children_snapshot():
        counts, total = child._read()
        labeltext = child._labeltext
        bucket = f'{name}_bucket{{{labeltext},le="' if labeltext else f'{name}_bucket{{le="'
        out.extend(
            [
                f'{bucket}{le}"}} {_count_text(count)}\n'
                for le, count in zip(le_texts, counts, strict=True)
            ]
        )
        out.append(f"{_series_text(name + '_count', labeltext)} {_count_text(counts[-1])}\n")
        out.append(f"{_series_text(name + '_sum', labeltext)} {format_float(total)}\n")


def encode_metrics(samples: Iterable[MetricSample], *, openmetrics: bool = False) -> str:
    """Exposition text of stored samples: the latest point of each series.

    A series is a sample name and label set; the latest point is the one with
    the greatest timestamp, then id.  Samples are grouped into families by
    their ``kind`` (``x_total`` of a counter and ``x_bucket``/``x_sum``/``x_count``
    of a histogram belong to family ``x``); when samples of different kinds
    map to one family name, the kind of the newest wins.  Samples without a
    kind are exposed as ``untyped`` (``unknown`` in OpenMetrics).  ``# HELP``
    is the newest non-empty help among the family's samples (the family name when
    none has help: promtool's lint wants HELP on every family).

    >>> from observabilipy.core.models import MetricSample
    >>> points = [
    ...     MetricSample(name="jobs_total", timestamp=1.0, value=1, kind="counter", help="Jobs"),
    ...     MetricSample(name="jobs_total", timestamp=2.0, value=3, kind="counter", help="Jobs"),
    ...     MetricSample(name="temperature", timestamp=2.0, value=21.5),
    ... ]
    >>> print(encode_metrics(points), end="")
    # HELP jobs_total Jobs
    # TYPE jobs_total counter
    jobs_total 3.0
    # HELP temperature temperature
    # TYPE temperature untyped
    temperature 21.5
    """
    # (exposed name, sorted labels) -> (order, sample, family name, kind, exposed name)
    latest: dict[tuple[str, tuple[tuple[str, str], ...]], _Point] = {}
    # family name -> (order, value) of its newest sample / newest sample with help
    newest_kind: dict[str, tuple[tuple[float, int], str]] = {}
    newest_help: dict[str, tuple[tuple[float, int], str]] = {}
    for sample in samples:
        family, kind, exposed = _family_of(sample)
        order = (sample.timestamp, -1 if sample.id is None else sample.id)
        key = (exposed, tuple(sorted(sample.labels.items())))
        held = latest.get(key)
        if held is None or order >= held[0]:
            latest[key] = (order, sample, family, kind, exposed)
        seen = newest_kind.get(family)
        if seen is None or order >= seen[0]:
            newest_kind[family] = (order, kind)
        if sample.help:
            seen = newest_help.get(family)
            if seen is None or order >= seen[0]:
                newest_help[family] = (order, sample.help)

    grouped: dict[str, list[tuple[MetricSample, str]]] = {}
    for _, sample, family, kind, exposed in latest.values():
        if newest_kind[family][1] == kind:
            grouped.setdefault(family, []).append((sample, exposed))

    out: list[str] = []
    for family, members in grouped.items():
        kind = newest_kind[family][1]
        help = newest_help[family][1] if family in newest_help else ""
        _header(out, family, kind, help, "", openmetrics)
        if kind == "histogram":
            _stored_histogram_lines(out, members)
        else:
            out.extend(
                f"{_series_text(exposed, _render_labels(s.labels.items()))} "
                f"{format_float(s.value)}\n"
                for s, exposed in members
            )
    if openmetrics:
        out.append("# EOF\n")
    return "".join(out)


def _family_of(sample: MetricSample) -> tuple[str, str, str]:
    """(family name, kind, exposed sample name) of a stored sample."""
    name, kind = sample.name, sample.kind
    if kind == "counter":
        family = name[:-6] if name.endswith("_total") else name
        return family, kind, family + "_total"
    if kind == "histogram":
        for suffix in _HISTOGRAM_SUFFIXES:
            if name.endswith(suffix):
                return name[: -len(suffix)], kind, name
        return name, "untyped", name  # not a histogram part: shown as a plain value
    return name, kind, name


def _le_value(text: str) -> float:
    try:
        return float(text)  # float() reads "+Inf" too
    except ValueError:
        return float("nan")


def _stored_histogram_lines(out: list[str], members: list[tuple[MetricSample, str]]) -> None:
    # Regroup per series (labels without `le`): buckets by increasing bound, then count, sum.
    series: dict[tuple[tuple[str, str], ...], list[MetricSample]] = {}
    for sample, _ in members:
        key = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
        series.setdefault(key, []).append(sample)
    rank = {"_bucket": 0, "_count": 1, "_sum": 2}
    for points in series.values():
        decorated = []
        for sample in points:
            part = next(s for s in _HISTOGRAM_SUFFIXES if sample.name.endswith(s))
            bound = _le_value(sample.labels.get("le", "")) if part == "_bucket" else 0.0
            decorated.append((rank[part], bound, sample))
        decorated.sort(key=lambda item: (item[0], item[1]))
        for _, bound, sample in decorated:
            pairs = [(k, v) for k, v in sample.labels.items() if k != "le"]
            if "le" in sample.labels:
                le = sample.labels["le"]
                pairs.append(("le", le if bound != bound else format_float(bound)))
            line = _series_text(sample.name, _render_labels(pairs))
            out.append(f"{line} {format_float(sample.value)}\n")


def choose_exposition(accept: str | None) -> tuple[str, bool]:
    """(content type, OpenMetrics?) to answer a request with this Accept header.

    OpenMetrics when ``application/openmetrics-text`` is accepted with a
    higher quality than ``text/plain``; the 0.0.4 text otherwise.  Wildcards
    count, the most specific match deciding each type's quality.

    >>> prometheus = "application/openmetrics-text;version=1.0.0,text/plain;q=0.5,*/*;q=0.1"
    >>> choose_exposition(prometheus)
    ('application/openmetrics-text; version=1.0.0; charset=utf-8', True)
    >>> choose_exposition(None)
    ('text/plain; version=0.0.4; charset=utf-8', False)
    """
    if accept and _quality(accept, "application", "openmetrics-text") > _quality(
        accept, "text", "plain"
    ):
        return CONTENT_TYPE_OPENMETRICS, True
    return CONTENT_TYPE_PROMETHEUS, False


def _quality(accept: str, main: str, sub: str) -> float:
    """The q an Accept header gives ``main/sub``: from its most specific matching range."""
    best_specificity, best_q = -1, 0.0
    for media_range in accept.split(","):
        media, *params = media_range.split(";")
        range_main, _, range_sub = media.strip().lower().partition("/")
        if range_main == main and range_sub == sub:
            specificity = 2
        elif range_main == main and range_sub == "*":
            specificity = 1
        elif range_main == "*" and range_sub == "*":
            specificity = 0
        else:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0  # a malformed q: treat the range as not acceptable
        # Several ranges may name the same type (OpenMetrics 1.0.0 and 0.0.1): the best counts.
        if specificity > best_specificity:
            best_specificity, best_q = specificity, q
        elif specificity == best_specificity:
            best_q = max(best_q, q)
    return best_q
