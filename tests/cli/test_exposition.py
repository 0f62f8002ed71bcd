"""The exposition parser reads what core writes (0.0.4 and OpenMetrics) and refuses the rest."""

from __future__ import annotations

import math

import pytest

from observabilipy.cli.exposition import (
    ExpositionError,
    Sample,
    filter_samples,
    format_labels,
    parse_exposition,
)
from observabilipy.core.exposition import encode_current
from observabilipy.core.metrics import Registry


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    requests = registry.counter("http_requests", "Requests.", labelnames=("route", "note"))
    requests.labels(route="/users/{id}", note='say "hi"\\ \nbye').inc(3)
    requests.labels(route="/", note="").inc()
    registry.gauge("temperature", "Now.").set(-2.5)
    registry.gauge("ratio", "Undefined.").set(math.nan)
    latency = registry.histogram("latency_seconds", "Latency.", buckets=(0.1, 1.0))
    latency.observe(0.05)
    latency.observe(5)
    return registry


@pytest.mark.parametrize("openmetrics", [False, True])
def test_reads_every_sample_core_exposes(registry: Registry, openmetrics: bool) -> None:
    samples = parse_exposition(encode_current(registry, openmetrics=openmetrics))
    by_key = {sample.key: sample for sample in samples}
    users = next(s for s in samples if s.labels.get("route") == "/users/{id}")
    assert users.name == "http_requests_total"
    assert users.labels == {"route": "/users/{id}", "note": 'say "hi"\\ \nbye'}
    assert (users.value, users.type, users.help, users.family) == (
        3.0,
        "counter",
        "Requests.",
        "http_requests" if openmetrics else "http_requests_total",
    )
    assert by_key["temperature"].value == -2.5
    assert by_key["temperature"].type == "gauge"
    assert math.isnan(by_key["ratio"].value)
    assert by_key['latency_seconds_bucket{le="+Inf"}'].value == 2.0
    assert by_key['latency_seconds_bucket{le="0.1"}'].value == 1.0
    assert by_key["latency_seconds_sum"].value == 5.05
    assert {s.type for s in samples if s.name.startswith("latency_seconds")} == {"histogram"}


def test_labels_print_back_as_prometheus_writes_them(registry: Registry) -> None:
    text = encode_current(registry)
    for sample in parse_exposition(text):
        assert f"{sample.key} " in text


@pytest.mark.parametrize(
    "text",
    [
        "<!DOCTYPE html><html><body>Welcome</body></html>",
        '{"items": []}',
        'up{job="api" 1',
        "up one",
        "up 1 2 3",
    ],
)
def test_refuses_text_that_is_not_the_format(text: str) -> None:
    with pytest.raises(ExpositionError, match=r"^line 1 is not in the Prometheus text format"):
        parse_exposition(text)


def test_timestamps_exemplars_and_unknown_comments_are_skipped() -> None:
    text = (
        "# a comment\n"
        "# TYPE jobs counter\n"
        'jobs_total{q="a"} 7 1700000000000\n'
        'jobs_total{q="b",} 1 # {trace_id="x"} 1.0\n'
        "# EOF\n"
    )
    assert [(s.labels, s.value, s.type) for s in parse_exposition(text)] == [
        ({"q": "a"}, 7.0, "counter"),
        ({"q": "b"}, 1.0, "counter"),
    ]


def test_filters_keep_any_name_and_every_label() -> None:
    samples = [
        Sample(
            "http_requests_total",
            {"route": "/users/{id}", "method": "GET"},
            3.0,
            family="http_requests",
        ),
        Sample(
            "http_requests_total",
            {"route": "/users/{id}", "method": "POST"},
            1.0,
            family="http_requests",
        ),
        Sample("db_queries_total", {"route": "/users/{id}"}, 9.0, family="db_queries"),
    ]
    assert filter_samples(samples, []) == samples
    assert filter_samples(samples, ["http_requests_total"]) == samples[:2]
    assert filter_samples(samples, ["db_*", "http_requests"]) == samples
    assert filter_samples(samples, ["route=/users/{id}", "method=GET"]) == samples[:1]
    assert filter_samples(samples, ["db_queries", "method=GET"]) == []
    assert format_labels({}) == ""
