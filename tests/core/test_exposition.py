"""Prometheus text 0.0.4 and OpenMetrics 1.0 exposition, checked with promtool and
prometheus_client's parsers."""

from __future__ import annotations

import math
import random
import shutil
import subprocess
import threading
from typing import Any

import prometheus_client
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from observabilipy.core.exposition import (
    CONTENT_TYPE_OPENMETRICS,
    CONTENT_TYPE_PROMETHEUS,
    choose_exposition,
    encode_current,
    encode_metrics,
)
from observabilipy.core.metrics import Registry, counter, default_registry, gauge, histogram
from observabilipy.core.models import MetricSample

pytestmark = pytest.mark.core

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian package 'prometheus'; .ci/run installs it)",
)

AWKWARD_LABEL = 'say "hi" \\ then\nleave, é ☃'
AWKWARD_HELP = 'Help with a \\ backslash,\na newline and "quotes"'


def promtool_check(text: str) -> None:
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"promtool says:\n{result.stdout}{result.stderr}\n---\n{text}"


def families(text: str, *, openmetrics: bool = False) -> dict[str, Any]:
    parse = parse_openmetrics if openmetrics else parse_text
    return {family.name: family for family in parse(text)}


def values(family: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}


@pytest.fixture
def full_registry() -> Registry:
    """A registry with every kind, labels needing escapes, special values and a unit."""
    registry = Registry()
    requests = registry.counter("http_requests", "Requests served", labelnames=("method", "status"))
    requests.labels(method="GET", status="200").inc(3)
    requests.labels(method="POST", status="500").inc()
    registry.counter("restarts", AWKWARD_HELP).inc(2)
    registry.counter("messages", "Messages", labelnames=("text",)).labels(AWKWARD_LABEL).inc()
    temperature = registry.gauge("temperature_celsius", "Temperature", labelnames=("room",))
    temperature.labels("kitchen").set(21.5)
    temperature.labels("oven").set(math.inf)
    temperature.labels("freezer").set(-math.inf)
    temperature.labels("broken").set(math.nan)
    temperature.labels("sun").set(5_778_000.0)
    latency = registry.histogram(
        "request_duration", "Latency", labelnames=("route",), unit="seconds", buckets=(0.1, 1.0)
    )
    for seconds in (0.05, 0.5, 3.0):
        latency.labels(route="/items").observe(seconds)
    registry.gauge("queue_depth", "Queue depth", labelnames=("queue",))  # no series yet
    return registry


# --- the counter and histogram stories -------------------------------------------------------


def test_counter_incremented_three_times_is_exposed_as_three() -> None:
    registry = Registry()
    jobs = registry.counter("x", "Jobs")
    for _ in range(3):
        jobs.inc()
    text = encode_current(registry)
    assert "x_total 3.0\n" in text.splitlines(keepends=True)
    assert families(text)["x"].samples[0].value == 3.0


def test_histogram_observed_three_times_has_count_three_and_cumulative_buckets() -> None:
    registry = Registry()
    latency = registry.histogram("latency_seconds", "Latency", buckets=(0.1, 1.0))
    for seconds in (0.05, 0.5, 3.0):
        latency.observe(seconds)
    text = encode_current(registry)
    assert text == (
        "# HELP latency_seconds Latency\n"
        "# TYPE latency_seconds histogram\n"
        'latency_seconds_bucket{le="0.1"} 1.0\n'
        'latency_seconds_bucket{le="1.0"} 2.0\n'
        'latency_seconds_bucket{le="+Inf"} 3.0\n'
        "latency_seconds_count 3.0\n"
        "latency_seconds_sum 3.55\n"
    )
    parsed = values(families(text)["latency_seconds"])
    assert parsed[("latency_seconds_count", ())] == 3.0


# --- validity: promtool and prometheus_client's parsers ------------------------------------


@needs_promtool
def test_current_text_passes_promtool(full_registry: Registry) -> None:
    promtool_check(encode_current(full_registry))


@needs_promtool
def test_stored_text_passes_promtool(full_registry: Registry) -> None:
    samples = full_registry.snapshot(timestamp=1.0) + full_registry.snapshot(timestamp=2.0)
    promtool_check(encode_metrics(samples))


@needs_promtool
def test_helper_made_metrics_pass_promtool() -> None:
    registry = Registry()
    counter("jobs_processed", registry=registry, queue="mail")
    gauge("queue_depth", 3, registry=registry)
    histogram("job_seconds", 0.2, registry=registry)
    promtool_check(encode_current(registry))
    promtool_check(encode_metrics(registry.snapshot()))


def test_current_text_parses_to_the_recorded_values(full_registry: Registry) -> None:
    parsed = families(encode_current(full_registry))
    assert parsed["http_requests"].type == "counter"
    assert parsed["http_requests"].documentation == "Requests served"
    assert values(parsed["http_requests"]) == {
        ("http_requests_total", (("method", "GET"), ("status", "200"))): 3.0,
        ("http_requests_total", (("method", "POST"), ("status", "500"))): 1.0,
    }
    temperatures = values(parsed["temperature_celsius"])
    assert temperatures[("temperature_celsius", (("room", "kitchen"),))] == 21.5
    assert temperatures[("temperature_celsius", (("room", "oven"),))] == math.inf
    assert temperatures[("temperature_celsius", (("room", "freezer"),))] == -math.inf
    assert math.isnan(temperatures[("temperature_celsius", (("room", "broken"),))])
    assert temperatures[("temperature_celsius", (("room", "sun"),))] == 5_778_000.0
    latency = values(parsed["request_duration_seconds"])
    assert latency[("request_duration_seconds_bucket", (("le", "0.1"), ("route", "/items")))] == 1
    assert latency[("request_duration_seconds_bucket", (("le", "1.0"), ("route", "/items")))] == 2
    assert latency[("request_duration_seconds_bucket", (("le", "+Inf"), ("route", "/items")))] == 3
    assert latency[("request_duration_seconds_count", (("route", "/items"),))] == 3
    assert parsed["queue_depth"].samples == []


def test_openmetrics_parses_to_the_recorded_values(full_registry: Registry) -> None:
    text = encode_current(full_registry, openmetrics=True)
    assert text.endswith("# EOF\n")
    parsed = families(text, openmetrics=True)
    assert parsed["http_requests"].type == "counter"
    assert (
        values(parsed["http_requests"])[
            ("http_requests_total", (("method", "GET"), ("status", "200")))
        ]
        == 3.0
    )
    assert parsed["request_duration_seconds"].unit == "seconds"
    assert (
        values(parsed["request_duration_seconds"])[
            ("request_duration_seconds_count", (("route", "/items"),))
        ]
        == 3.0
    )


def test_openmetrics_counter_type_line_uses_the_family_name() -> None:
    registry = Registry()
    registry.counter("jobs", "Jobs", unit="seconds").inc()
    assert encode_current(registry, openmetrics=True) == (
        "# HELP jobs_seconds Jobs\n"
        "# TYPE jobs_seconds counter\n"
        "# UNIT jobs_seconds seconds\n"
        "jobs_seconds_total 1.0\n"
        "# EOF\n"
    )
    assert "# UNIT" not in encode_current(registry)  # the 0.0.4 format has no units


def test_no_sample_timestamps(full_registry: Registry) -> None:
    for openmetrics in (False, True):
        text = encode_current(full_registry, openmetrics=openmetrics)
        for family in families(text, openmetrics=openmetrics).values():
            assert all(sample.timestamp is None for sample in family.samples)
    stored = encode_metrics(full_registry.snapshot(timestamp=1700000000.0))
    assert "1700000000" not in stored


def test_float_formatting(full_registry: Registry) -> None:
    lines = encode_current(full_registry).splitlines()
    assert 'temperature_celsius{room="oven"} +Inf' in lines
    assert 'temperature_celsius{room="freezer"} -Inf' in lines
    assert 'temperature_celsius{room="broken"} NaN' in lines
    assert 'temperature_celsius{room="sun"} 5.778e+06' in lines
    assert 'http_requests_total{method="GET",status="200"} 3.0' in lines


def test_same_text_as_prometheus_client() -> None:
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        ours, peer = Registry(), prometheus_client.CollectorRegistry()
        ours_requests = ours.counter("requests", "Requests", labelnames=("method", "path"))
        peer_requests = prometheus_client.Counter(
            "requests", "Requests", ["method", "path"], registry=peer
        )
        ours_depth = ours.gauge("depth", "Depth with \\ and\nnewline")
        peer_depth = prometheus_client.Gauge("depth", "Depth with \\ and\nnewline", registry=peer)
        ours_latency = ours.histogram("latency_seconds", "Latency")
        peer_latency = prometheus_client.Histogram("latency_seconds", "Latency", registry=peer)
        for i in range(20):
            path = f'/items/{i % 3}/"x"\\'
            ours_requests.labels(method="GET", path=path).inc(i)
            peer_requests.labels(method="GET", path=path).inc(i)
            ours_latency.observe(i / 7)
            peer_latency.observe(i / 7)
        ours_depth.set(1234567.5)
        peer_depth.set(1234567.5)
        assert encode_current(ours).encode() == prometheus_client.generate_latest(peer)
    finally:
        prometheus_client.enable_created_metrics()  # type: ignore[no-untyped-call]


# --- escaping --------------------------------------------------------------------------------


@pytest.mark.parametrize("openmetrics", [False, True])
def test_label_values_and_help_round_trip(openmetrics: bool) -> None:
    registry = Registry()
    messages = registry.counter("messages", AWKWARD_HELP, labelnames=("text",))
    messages.labels(text=AWKWARD_LABEL).inc()
    text = encode_current(registry, openmetrics=openmetrics)
    assert "\n" not in text.split("# TYPE")[0].removesuffix("\n")  # HELP stays one line
    parsed = families(text, openmetrics=openmetrics)["messages"]
    assert parsed.documentation == AWKWARD_HELP
    assert parsed.samples[0].labels == {"text": AWKWARD_LABEL}


def test_stored_label_values_round_trip() -> None:
    sample = MetricSample(
        name="messages_total", timestamp=1.0, value=1, labels={"text": AWKWARD_LABEL},
        kind="counter", help=AWKWARD_HELP,
    )  # fmt: skip
    parsed = families(encode_metrics([sample]))["messages"]
    assert parsed.documentation == AWKWARD_HELP
    assert parsed.samples[0].labels == {"text": AWKWARD_LABEL}


# --- encode_current odds and ends ----------------------------------------------------------------


def test_empty_registry() -> None:
    assert encode_current(Registry()) == ""
    assert encode_current(Registry(), openmetrics=True) == "# EOF\n"


def test_family_without_help_is_described_by_its_name() -> None:
    # promtool's lint rejects a family without HELP; helpers create families without help.
    registry = Registry()
    registry.gauge("depth").set(1)
    assert encode_current(registry) == "# HELP depth depth\n# TYPE depth gauge\ndepth 1.0\n"


def test_encode_current_defaults_to_the_default_registry() -> None:
    name = "test_exposition_default_registry"
    try:
        counter(name, help="Default", where="here")
        assert f'{name}_total{{where="here"}} 1.0' in encode_current().splitlines()
    finally:
        default_registry.unregister(name)


def test_exposition_while_other_threads_add_series() -> None:
    registry = Registry()
    requests = registry.counter("requests", "Requests", labelnames=("path",))
    latency = registry.histogram("latency_seconds", "Latency", labelnames=("path",))

    def record() -> None:
        for i in range(3_000):
            requests.labels(path=str(i)).inc()
            latency.labels(path=str(i)).observe(0.1)

    worker = threading.Thread(target=record)
    worker.start()
    while worker.is_alive():  # series appear while the registry is being rendered
        assert encode_current(registry).startswith("# HELP requests_total Requests\n")
    worker.join()
    parsed = families(encode_current(registry))
    assert len(parsed["requests"].samples) == 3_000
    assert len(parsed["latency_seconds"].samples) == 3_000 * (15 + 2)


# --- encode_metrics --------------------------------------------------------------------------


def _point(name: str, timestamp: float, value: float, **fields: Any) -> MetricSample:
    return MetricSample(name=name, timestamp=timestamp, value=value, **fields)


def test_encode_metrics_keeps_the_latest_point_per_series() -> None:
    points = [
        _point("jobs_total", t, t * 10, labels={"queue": q}, kind="counter", help="Jobs")
        for t in (1.0, 5.0, 3.0, 2.0, 4.0)
        for q in ("mail", "sms")
    ]
    random.Random(7).shuffle(points)
    text = encode_metrics(points)
    assert values(families(text)["jobs"]) == {
        ("jobs_total", (("queue", "mail"),)): 50.0,
        ("jobs_total", (("queue", "sms"),)): 50.0,
    }


def test_encode_metrics_breaks_timestamp_ties_by_id() -> None:
    points = [
        _point("depth", 1.0, 3.0, kind="gauge").with_id(12),
        _point("depth", 1.0, 9.0, kind="gauge").with_id(30),
        _point("depth", 1.0, 5.0, kind="gauge").with_id(20),
    ]
    assert encode_metrics(points).splitlines()[-1] == "depth 9.0"


def test_encode_metrics_groups_families_by_kind() -> None:
    points = [
        _point("wait_seconds_sum", 1.0, 2.5, kind="histogram", help="Wait"),
        _point("wait_seconds_bucket", 1.0, 3, labels={"le": "+Inf"}, kind="histogram"),
        _point("jobs_total", 1.0, 4, kind="counter", help="Jobs"),
        _point("wait_seconds_count", 1.0, 3, kind="histogram"),
        _point("wait_seconds_bucket", 1.0, 1, labels={"le": "1"}, kind="histogram"),
        _point("wait_seconds_bucket", 1.0, 2, labels={"le": "2.5"}, kind="histogram"),
        _point("temperature", 1.0, 21.5),
    ]
    assert encode_metrics(points) == (
        "# HELP wait_seconds Wait\n"
        "# TYPE wait_seconds histogram\n"
        'wait_seconds_bucket{le="1.0"} 1.0\n'
        'wait_seconds_bucket{le="2.5"} 2.0\n'
        'wait_seconds_bucket{le="+Inf"} 3.0\n'
        "wait_seconds_count 3.0\n"
        "wait_seconds_sum 2.5\n"
        "# HELP jobs_total Jobs\n"
        "# TYPE jobs_total counter\n"
        "jobs_total 4.0\n"
        "# HELP temperature temperature\n"
        "# TYPE temperature untyped\n"
        "temperature 21.5\n"
    )


def test_encode_metrics_openmetrics() -> None:
    points = [
        _point("jobs", 1.0, 4, kind="counter", help="Jobs"),  # a counter stored without _total
        _point("temperature", 1.0, 21.5),
    ]
    text = encode_metrics(points, openmetrics=True)
    assert text == (
        "# HELP jobs Jobs\n"
        "# TYPE jobs counter\n"
        "jobs_total 4.0\n"
        "# HELP temperature temperature\n"
        "# TYPE temperature unknown\n"
        "temperature 21.5\n"
        "# EOF\n"
    )
    parsed = families(text, openmetrics=True)
    assert parsed["temperature"].type == "unknown"
    assert parsed["jobs"].samples[0].value == 4.0


def test_encode_metrics_newest_kind_wins_a_family_name() -> None:
    points = [
        _point("jobs_total", 1.0, 4, kind="counter"),
        _point("jobs", 2.0, 7, kind="gauge"),  # the metric was redefined later
    ]
    assert encode_metrics(points) == "# HELP jobs jobs\n# TYPE jobs gauge\njobs 7.0\n"


def test_encode_metrics_help_comes_from_the_newest_point_with_help() -> None:
    points = [
        _point("depth", 1.0, 1, kind="gauge", help="Old help"),
        _point("depth", 2.0, 1, kind="gauge", help="New help"),
        _point("depth", 3.0, 1, kind="gauge"),
    ]
    assert encode_metrics(points).splitlines()[0] == "# HELP depth New help"


def test_encode_metrics_of_a_snapshot_equals_the_live_text(full_registry: Registry) -> None:
    full_registry.unregister("request_duration_seconds")  # units are not stored with samples
    assert encode_metrics(full_registry.snapshot()) == encode_current(full_registry).replace(
        "# HELP queue_depth Queue depth\n# TYPE queue_depth gauge\n", ""
    )


def test_encode_metrics_of_nothing() -> None:
    assert encode_metrics([]) == ""
    assert encode_metrics(iter([]), openmetrics=True) == "# EOF\n"


# --- choose_exposition -----------------------------------------------------------------------

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "openmetrics"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("text/plain", False),
        ("text/plain;version=0.0.4", False),
        (PROMETHEUS_ACCEPT, True),
        (BROWSER_ACCEPT, False),
        ("application/openmetrics-text", True),
        ("Application/OpenMetrics-Text; Version=1.0.0", True),
        ("application/openmetrics-text;q=0,text/plain;q=0.1", False),
        ("application/openmetrics-text;q=0.3,text/plain;q=0.5", False),
        ("application/openmetrics-text;q=0.5,text/plain;q=0.5", False),
        ("text/*;q=0.2,application/openmetrics-text;q=0.5", True),
        ("application/*;q=0.6,text/plain;q=0.5", True),
        ("application/openmetrics-text;q=bogus,text/plain;q=0.1", False),
        ("application/json", False),
    ],
)
def test_choose_exposition(accept: str | None, openmetrics: bool) -> None:
    expected = CONTENT_TYPE_OPENMETRICS if openmetrics else CONTENT_TYPE_PROMETHEUS
    assert choose_exposition(accept) == (expected, openmetrics)


def test_content_types() -> None:
    assert CONTENT_TYPE_PROMETHEUS == "text/plain; version=0.0.4; charset=utf-8"
    assert CONTENT_TYPE_OPENMETRICS == (
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    )
