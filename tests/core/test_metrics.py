"""The metric registry, families, children, helpers and timer."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import utils as prometheus_utils

from observabilipy.core.errors import ConfigurationError, ValidationError
from observabilipy.core.metrics import (
    DEFAULT_HISTOGRAM_BUCKETS,
    DEFAULT_REGISTRY,
    Counter,
    CounterChild,
    Gauge,
    Histogram,
    Registry,
    counter,
    default_registry,
    format_float,
    gauge,
    histogram,
    timer,
)
from observabilipy.core.models import MetricSample

pytestmark = pytest.mark.core

# prometheus_client's own float formatting (untyped, hence the annotation).
float_to_go_string: Callable[[float], str] = prometheus_utils.floatToGoString


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def default_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A metric name unique to the test, removed from the default registry afterwards."""
    name = "test_" + "".join(c if c.isalnum() else "_" for c in request.node.name)
    yield name
    default_registry.unregister(name)


# --- counters ------------------------------------------------------------------------------------


def test_counter_incremented_three_times_is_three(registry: Registry) -> None:
    jobs = registry.counter("jobs", "Jobs run")
    for _ in range(3):
        jobs.inc()
    assert jobs.value == 3.0


def test_counter_inc_adds_the_amount(registry: Registry) -> None:
    sent = registry.counter("bytes_sent", "Bytes", labelnames=("peer",))
    sent.labels(peer="a").inc(10)
    sent.labels(peer="a").inc(2.5)
    assert sent.labels(peer="a").value == 12.5


@pytest.mark.parametrize("amount", [-1, -0.001, math.nan, math.inf, -math.inf, "1", None])
def test_counter_refuses_negative_non_finite_and_non_numbers(
    registry: Registry, amount: object
) -> None:
    jobs = registry.counter("jobs", "Jobs run")
    jobs.inc()
    with pytest.raises(ValidationError) as caught:
        jobs.inc(amount)  # type: ignore[arg-type]
    assert caught.value.field == "amount"
    assert jobs.value == 1.0  # a refused increment changes nothing


def test_counter_family_drops_total_suffix(registry: Registry) -> None:
    assert registry.counter("jobs_total").name == "jobs"
    assert registry.counter("jobs_total") is registry.counter("jobs")
    assert registry.get("jobs_total") is registry.get("jobs")


# --- gauges ----------------------------------------------------------------------------------------


def test_gauge_set_inc_dec(registry: Registry) -> None:
    depth = registry.gauge("queue_depth", "Queue depth", labelnames=("queue",))
    mail = depth.labels(queue="mail")
    mail.set(10)
    mail.inc(5)
    mail.dec()
    assert mail.value == 14.0
    mail.set(math.inf)  # gauges may hold any float, as in Prometheus
    assert mail.value == math.inf


def test_gauge_set_to_current_time(registry: Registry) -> None:
    started = registry.gauge("started_at_seconds", "Start time")
    before = time.time()
    started.set_to_current_time()
    assert before <= started.value <= time.time()


@pytest.mark.parametrize("value", ["hot", None, object()])
def test_gauge_refuses_non_numbers(registry: Registry, value: object) -> None:
    temperature = registry.gauge("temperature_celsius", "Temperature")
    with pytest.raises(ValidationError) as caught:
        temperature.set(value)  # type: ignore[arg-type]
    assert caught.value.field == "value"


def test_gauge_multiprocess_mode_is_kept_and_checked(registry: Registry) -> None:
    assert registry.gauge("workers", multiprocess_mode="sum").multiprocess_mode == "sum"
    assert registry.gauge("memory_bytes").multiprocess_mode == "latest"
    with pytest.raises(ValidationError) as caught:
        registry.gauge("other", multiprocess_mode="livesum")
    assert caught.value.field == "multiprocess_mode"


# --- histograms ------------------------------------------------------------------------------------


def test_histogram_observed_three_times_counts_three_with_cumulative_buckets(
    registry: Registry,
) -> None:
    latency = registry.histogram("latency_seconds", "Latency", buckets=(0.1, 1.0, 10.0))
    for seconds in (0.05, 0.5, 5.0):
        latency.observe(seconds)
    assert latency.count == 3
    assert latency.sum == pytest.approx(5.55)
    assert latency.buckets == ((0.1, 1), (1.0, 2), (10.0, 3), (math.inf, 3))


def test_histogram_bucket_bound_is_inclusive(registry: Registry) -> None:
    latency = registry.histogram("latency_seconds", buckets=(1.0, 2.0))
    latency.observe(1.0)
    assert latency.buckets[0] == (1.0, 1)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "0.1"])
def test_histogram_refuses_non_finite_observations(registry: Registry, value: object) -> None:
    latency = registry.histogram("latency_seconds")
    with pytest.raises(ValidationError) as caught:
        latency.observe(value)  # type: ignore[arg-type]
    assert caught.value.field == "value"
    assert latency.count == 0


def test_histogram_default_buckets(registry: Registry) -> None:
    assert registry.histogram("latency_seconds").bounds == DEFAULT_HISTOGRAM_BUCKETS
    assert DEFAULT_HISTOGRAM_BUCKETS[0] == 0.005
    assert DEFAULT_HISTOGRAM_BUCKETS[-1] == math.inf


def test_histogram_appends_inf_bound(registry: Registry) -> None:
    assert registry.histogram("size_bytes", buckets=[10, 100]).bounds == (10.0, 100.0, math.inf)


@pytest.mark.parametrize("buckets", [(1.0, 0.5), (1.0, 1.0), (math.nan,), (True, 2), "123"])
def test_histogram_refuses_bad_buckets(registry: Registry, buckets: object) -> None:
    with pytest.raises(ValidationError) as caught:
        registry.histogram("size_bytes", buckets=buckets)  # type: ignore[arg-type]
    assert caught.value.field == "buckets"


def test_histogram_le_label_is_reserved(registry: Registry) -> None:
    with pytest.raises(ValidationError) as caught:
        registry.histogram("latency_seconds", labelnames=("le",))
    assert caught.value.field == "labelnames"
    assert "le" in str(caught.value)
    registry.counter("requests", labelnames=("le",))  # only histograms reserve it


# --- names and labels ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "2xx", "bad name", "bad-name", None])
def test_bad_metric_names_are_refused(registry: Registry, name: object) -> None:
    with pytest.raises(ValidationError) as caught:
        registry.counter(name)  # type: ignore[arg-type]
    assert caught.value.field == "name"


@pytest.mark.parametrize("labelname", ["2x", "bad-label", "__reserved", "a:b", ""])
def test_bad_label_names_are_refused(registry: Registry, labelname: str) -> None:
    with pytest.raises(ValidationError) as caught:
        registry.counter("requests", labelnames=("method", labelname))
    assert caught.value.field == "labelnames"


def test_labelnames_must_be_a_sequence_without_duplicates(registry: Registry) -> None:
    with pytest.raises(ValidationError, match="not a str"):
        registry.counter("requests", labelnames="method")
    with pytest.raises(ValidationError, match="twice"):
        registry.counter("requests", labelnames=("method", "method"))


def test_labels_by_name_or_position_give_the_same_series(registry: Registry) -> None:
    requests = registry.counter("requests", labelnames=("method", "status"))
    child = requests.labels(method="GET", status="200")
    assert requests.labels(status="200", method="GET") is child
    assert requests.labels("GET", "200") is child
    assert requests.labels("GET", 200) is child  # non-str values go through str()


def test_label_values_are_converted_with_str(registry: Registry) -> None:
    requests = registry.counter("requests", labelnames=("status", "cached"))
    requests.labels(status=200, cached=True).inc()
    assert requests.labels(status="200", cached="True").value == 1.0
    # 1 == 1.0 == True as dict keys: each still gets its own str() series.
    requests.labels(status=1, cached=1.0).inc()
    requests.labels(status=True, cached=1).inc()
    assert requests.labels(status="1", cached="1.0").value == 1.0
    assert requests.labels(status="True", cached="1").value == 1.0


def test_unhashable_label_values_are_converted(registry: Registry) -> None:
    requests = registry.counter("requests", labelnames=("tags",))
    requests.labels(tags=["a"]).inc()
    assert requests.labels(tags="['a']").value == 1.0


def test_missing_and_unexpected_label_names_are_named(registry: Registry) -> None:
    requests = registry.counter("requests", labelnames=("method", "status"))
    with pytest.raises(ValidationError) as caught:
        requests.labels(method="GET", code="200")
    assert caught.value.field == "labels"
    assert "missing ['status']" in str(caught.value)
    assert "unexpected ['code']" in str(caught.value)


def test_wrong_number_of_positional_label_values(registry: Registry) -> None:
    requests = registry.counter("requests", labelnames=("method", "status"))
    with pytest.raises(ValidationError, match="takes 2 label values"):
        requests.labels("GET")
    with pytest.raises(ValidationError, match="not both"):
        requests.labels("GET", status="200")


def test_family_without_labels_is_its_own_child(registry: Registry) -> None:
    jobs = registry.counter("jobs")
    jobs.inc()
    assert jobs.labels() is jobs.labels()
    assert jobs.labels().value == jobs.value == 1.0
    with pytest.raises(ValidationError, match="unexpected"):
        jobs.labels(queue="mail")


def test_labelled_family_needs_labels_before_recording(registry: Registry) -> None:
    requests = registry.counter("requests", labelnames=("method",))
    with pytest.raises(ValidationError) as caught:
        requests.inc()
    assert caught.value.field == "labels"
    assert ".labels(" in str(caught.value)


def test_unit_becomes_the_name_suffix(registry: Registry) -> None:
    assert registry.histogram("request_duration", unit="seconds").name == "request_duration_seconds"
    assert registry.gauge("memory_bytes", unit="bytes").name == "memory_bytes"
    assert registry.counter("sent_total", unit="bytes").name == "sent_bytes"
    with pytest.raises(ValidationError) as caught:
        registry.gauge("memory", unit="mega bytes")
    assert caught.value.field == "unit"


def test_help_must_be_text(registry: Registry) -> None:
    with pytest.raises(ValidationError) as caught:
        registry.counter("jobs", 3)  # type: ignore[arg-type]
    assert caught.value.field == "help"


# --- registry ----------------------------------------------------------------------------------


def test_get_or_create_returns_the_same_family(registry: Registry) -> None:
    first = registry.histogram("latency_seconds", "Latency", labelnames=("route",))
    assert registry.histogram("latency_seconds", labelnames=("route",)) is first
    assert registry.families() == [first]


def test_get_or_create_keeps_the_first_help_given(registry: Registry) -> None:
    jobs = registry.counter("jobs")
    assert registry.counter("jobs", "Jobs run").help == "Jobs run"
    assert registry.counter("jobs", "Something else") is jobs
    assert jobs.help == "Jobs run"


@pytest.mark.parametrize(
    ("second", "difference"),
    [
        (lambda r: r.gauge("jobs"), "kind 'counter', asked for 'gauge'"),
        (lambda r: r.histogram("jobs"), "kind 'counter', asked for 'histogram'"),
        (lambda r: r.counter("jobs", labelnames=("queue",)), "labelnames ()"),
    ],
)
def test_get_or_create_conflicts_name_the_difference(
    registry: Registry, second: object, difference: str
) -> None:
    registry.counter("jobs")
    with pytest.raises(
        ConfigurationError, match=difference.replace("(", r"\(").replace(")", r"\)")
    ):
        second(registry)  # type: ignore[operator]


def test_unit_conflict(registry: Registry) -> None:
    registry.histogram("wait_seconds")
    with pytest.raises(ConfigurationError, match="unit ''"):
        registry.histogram("wait_seconds", unit="seconds")


def test_histogram_bucket_conflict(registry: Registry) -> None:
    registry.histogram("latency_seconds", buckets=(1.0,))
    with pytest.raises(ConfigurationError, match="buckets"):
        registry.histogram("latency_seconds", buckets=(2.0,))


def test_gauge_mode_conflict(registry: Registry) -> None:
    registry.gauge("workers", multiprocess_mode="sum")
    with pytest.raises(ConfigurationError, match="multiprocess_mode"):
        registry.gauge("workers", multiprocess_mode="max")


def test_families_may_not_share_exposed_sample_names(registry: Registry) -> None:
    registry.counter("jobs")
    registry.histogram("latency")
    with pytest.raises(ConfigurationError, match="'jobs_total', already used by counter 'jobs'"):
        registry.gauge("jobs_total")
    with pytest.raises(ConfigurationError, match="'latency_count'"):
        registry.gauge("latency_count")


def test_direct_construction_registers_and_refuses_duplicates(registry: Registry) -> None:
    jobs = Counter("jobs", "Jobs run", registry=registry)
    assert registry.get("jobs") is jobs
    with pytest.raises(ConfigurationError, match=r"registry\.counter\(\.\.\.\)"):
        Counter("jobs", "Jobs run", registry=registry)


def test_direct_construction_without_registry_registers_nowhere() -> None:
    loose = Gauge("loose_gauge", registry=None)
    loose.set(1)
    assert default_registry.get("loose_gauge") is None


def test_default_registry(default_name: str) -> None:
    assert DEFAULT_REGISTRY is default_registry
    family = Histogram(default_name, "Defaults to the default registry")
    assert default_registry.get(default_name) is family


def test_unregister_and_clear(registry: Registry) -> None:
    registry.counter("jobs")
    registry.gauge("depth")
    registry.unregister("jobs_total")
    assert registry.get("jobs") is None
    registry.unregister("never_registered")  # nothing to do, no error
    registry.gauge("jobs_total")  # the name is free again
    registry.clear()
    assert registry.families() == []
    assert registry.snapshot() == []


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, None])
def test_registry_refuses_bad_series_limit(limit: object) -> None:
    with pytest.raises(ConfigurationError, match="max_series_per_family"):
        Registry(max_series_per_family=limit)  # type: ignore[arg-type]


# --- thread safety ---------------------------------------------------------------------------------


def _hammer(threads: int, work: Callable[[], None]) -> None:
    start = threading.Barrier(threads)

    def run() -> None:
        start.wait()
        work()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def test_threads_hammering_one_counter_lose_no_increment(registry: Registry) -> None:
    requests = registry.counter("requests", labelnames=("method",))

    def work() -> None:
        for _ in range(20_000):
            requests.labels(method="GET").inc()

    _hammer(8, work)
    assert requests.labels(method="GET").value == 8 * 20_000


def test_threads_hammering_one_histogram_lose_no_observation(registry: Registry) -> None:
    latency = registry.histogram("latency_seconds", buckets=(1.0,))

    def work() -> None:
        for _ in range(10_000):
            latency.observe(0.5)

    _hammer(8, work)
    assert latency.count == 80_000
    assert latency.sum == 40_000.0
    assert latency.buckets == ((1.0, 80_000), (math.inf, 80_000))


def test_threads_creating_one_series_share_it(registry: Registry) -> None:
    requests = registry.counter("requests", labelnames=("worker",))
    seen: list[CounterChild] = []

    def work() -> None:
        seen.append(requests.labels(worker="w1"))

    _hammer(8, work)
    assert len({id(child) for child in seen}) == 1


# --- cardinality guard -----------------------------------------------------------------------------


def _refused(registry: Registry, family: str) -> float:
    refusals = registry.get("observabilipy_series_refused")
    assert isinstance(refusals, Counter)
    return refusals.labels(family=family).value


def test_cardinality_guard_refuses_counts_warns_once_and_stays_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = Registry(max_series_per_family=3)
    requests = registry.counter("requests", labelnames=("path",))
    with caplog.at_level(logging.WARNING, logger="observabilipy"):
        for i in range(1_000):
            requests.labels(path=f"/item/{i}").inc()  # never raises
    snapshot = [s for s in registry.snapshot() if s.name == "requests_total"]
    assert sorted(s.labels["path"] for s in snapshot) == ["/item/0", "/item/1", "/item/2"]
    assert _refused(registry, "requests") == 997
    warnings = [r for r in caplog.records if r.name == "observabilipy"]
    assert len(warnings) == 1
    assert "'requests'" in warnings[0].getMessage()
    assert "3 series" in warnings[0].getMessage()
    assert len(requests._children) == 3
    assert len(requests._by_kwargs) <= 2 * 3


def test_cardinality_guard_keeps_recording_known_series() -> None:
    registry = Registry(max_series_per_family=1)
    requests = registry.counter("requests", labelnames=("path",))
    requests.labels(path="/").inc()
    requests.labels(path="/other").inc()
    requests.labels(path="/").inc()
    assert requests.labels(path="/").value == 2.0
    assert requests.labels(path="/other").value == 0.0  # the shared no-op child


def test_cardinality_guard_is_per_family() -> None:
    registry = Registry(max_series_per_family=1)
    first = registry.gauge("first", labelnames=("k",))
    second = registry.histogram("second", labelnames=("k",))
    for value in "abc":
        first.labels(k=value).set(1)
        second.labels(k=value).observe(1)
    assert _refused(registry, "first") == 2
    assert _refused(registry, "second") == 2
    assert second.labels(k="a").count == 1


def test_refused_series_helpers_record_nothing() -> None:
    registry = Registry(max_series_per_family=1)
    counter("hits", registry=registry, path="/")
    refused = counter("hits", registry=registry, path="/new")
    assert math.isnan(refused.value)
    assert refused.labels == {"path": "/new"}
    gauge("depth", 1, registry=registry, queue="a")
    assert math.isnan(gauge("depth", 1, registry=registry, queue="b").value)
    histogram("size", 1, registry=registry, kind="a")
    assert histogram("size", 1, registry=registry, kind="b") == []
    with timer("wait", registry=registry, step="a"), timer("wait", registry=registry, step="b"):
        pass
    assert _refused(registry, "wait") == 1


# --- helpers ---------------------------------------------------------------------------------------


def test_counter_helper_returns_cumulative_samples(registry: Registry) -> None:
    values = [counter("emails", registry=registry, provider="smtp").value for _ in range(3)]
    assert values == [1.0, 2.0, 3.0]
    sample = counter("emails_total", 2, registry=registry, help="Emails", provider="smtp")
    assert sample.name == "emails_total"
    assert sample.value == 5.0
    assert sample.labels == {"provider": "smtp"}
    assert sample.kind == "counter"
    assert sample.timestamp > 0
    sample.labels["provider"] = "changed"  # type: ignore[index]
    assert counter("emails", 0, registry=registry, provider="smtp").labels == {"provider": "smtp"}


def test_counter_helper_help_applies_on_creation(registry: Registry) -> None:
    assert counter("jobs", registry=registry, help="Jobs run").help == "Jobs run"
    assert registry.counter("jobs").help == "Jobs run"


def test_counter_helper_refuses_negative_value(registry: Registry) -> None:
    with pytest.raises(ValidationError) as caught:
        counter("jobs", -1, registry=registry)
    assert caught.value.field == "value"


def test_gauge_helper_sets_and_returns(registry: Registry) -> None:
    gauge("queue_length", 3, registry=registry, queue="mail")
    sample = gauge("queue_length", 7, registry=registry, queue="mail")
    assert (sample.name, sample.value, sample.labels, sample.kind) == (
        "queue_length",
        7.0,
        {"queue": "mail"},
        "gauge",
    )
    assert registry.gauge("queue_length", labelnames=("queue",)).labels("mail").value == 7.0


def test_histogram_helper_returns_the_series_cumulative_samples(registry: Registry) -> None:
    histogram("upload_seconds", 0.2, registry=registry, buckets=(0.5, 1.0), bucket="b1")
    samples = histogram("upload_seconds", 0.7, registry=registry, bucket="b1")
    assert [(s.name, s.labels, s.value) for s in samples] == [
        ("upload_seconds_bucket", {"bucket": "b1", "le": "0.5"}, 1.0),
        ("upload_seconds_bucket", {"bucket": "b1", "le": "1.0"}, 2.0),
        ("upload_seconds_bucket", {"bucket": "b1", "le": "+Inf"}, 2.0),
        ("upload_seconds_sum", {"bucket": "b1"}, pytest.approx(0.9)),
        ("upload_seconds_count", {"bucket": "b1"}, 2.0),
    ]
    assert {s.kind for s in samples} == {"histogram"}


def test_histogram_helper_bucket_conflict(registry: Registry) -> None:
    histogram("upload_seconds", 0.2, registry=registry, buckets=(0.5,))
    histogram("upload_seconds", 0.2, registry=registry, buckets=(0.5,))
    with pytest.raises(ConfigurationError, match="buckets"):
        histogram("upload_seconds", 0.2, registry=registry, buckets=(0.25,))


def test_helper_label_names_are_the_first_calls_sorted_keys(registry: Registry) -> None:
    counter("requests", registry=registry, status="200", method="GET")
    assert registry.counter("requests", labelnames=("method", "status")).labelnames == (
        "method",
        "status",
    )
    with pytest.raises(ValidationError) as caught:
        counter("requests", registry=registry, method="GET", code="200")
    assert caught.value.field == "labels"
    assert "['status']" in str(caught.value)
    assert "['code']" in str(caught.value)


def test_helper_on_a_family_of_another_kind(registry: Registry) -> None:
    registry.gauge("jobs")
    with pytest.raises(ConfigurationError, match="kind 'gauge', asked for 'counter'"):
        counter("jobs", registry=registry)


def test_helpers_default_to_the_default_registry(default_name: str) -> None:
    counter(default_name, kind="a")
    family = default_registry.get(default_name)
    assert isinstance(family, Counter)
    assert family.labels(kind="a").value == 1.0


def test_helpers_accept_label_values_of_any_type(registry: Registry) -> None:
    counter("responses", registry=registry, status=200)
    assert counter("responses", registry=registry, status="200").value == 2.0


# --- timer ---------------------------------------------------------------------------------------


def _timed(registry: Registry) -> Histogram:
    family = registry.get("work_seconds")
    assert isinstance(family, Histogram)
    return family


def test_timer_context_manager_records(registry: Registry) -> None:
    with timer("work_seconds", registry=registry, step="parse") as timed:
        pass
    child = _timed(registry).labels(step="parse")
    assert child.count == 1
    assert timed.elapsed is not None
    assert child.sum == timed.elapsed >= 0


def test_timer_records_when_the_block_raises(registry: Registry) -> None:
    error = RuntimeError("boom")
    with pytest.raises(RuntimeError) as caught, timer("work_seconds", registry=registry):
        raise error
    assert caught.value is error
    assert _timed(registry).count == 1


async def test_async_timer_records_when_the_block_raises(registry: Registry) -> None:
    async def block() -> None:
        async with timer("work_seconds", registry=registry):
            await asyncio.sleep(0)
            raise KeyError("missing")

    with pytest.raises(KeyError):
        await block()
    assert _timed(registry).count == 1


def test_timer_decorates_sync_functions(registry: Registry) -> None:
    @timer("work_seconds", registry=registry)
    def double(x: int) -> int:
        """Double x."""
        if x < 0:
            raise ValueError("negative")
        return 2 * x

    assert double(21) == 42
    with pytest.raises(ValueError, match="negative"):
        double(-1)
    assert _timed(registry).count == 2
    assert double.__name__ == "double"
    assert double.__doc__ == "Double x."


async def test_timer_decorates_async_functions(registry: Registry) -> None:
    @timer("work_seconds", registry=registry, kind="io")
    async def fetch(fail: bool) -> str:
        await asyncio.sleep(0)
        if fail:
            raise ConnectionError("down")
        return "rows"

    assert asyncio.iscoroutinefunction(fetch)
    assert await fetch(False) == "rows"
    with pytest.raises(ConnectionError):
        await fetch(True)
    assert _timed(registry).labels(kind="io").count == 2


def test_timer_does_not_swallow_base_exceptions(registry: Registry) -> None:
    @timer("work_seconds", registry=registry)
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert _timed(registry).count == 1


def test_histogram_time_methods(registry: Registry) -> None:
    family = registry.histogram("work_seconds", labelnames=("step",))
    with family.labels(step="a").time():
        pass
    solo = registry.histogram("solo_seconds")
    with solo.time():
        pass
    assert family.labels(step="a").count == solo.count == 1


# --- snapshot -------------------------------------------------------------------------------------


def test_snapshot_shape(registry: Registry) -> None:
    registry.counter("jobs", "Jobs run", labelnames=("queue",)).labels("mail").inc(3)
    registry.gauge("depth", "Queue depth").set(4)
    latency = registry.histogram("latency_seconds", "Latency", buckets=(0.005, 1, 1234567))
    latency.observe(0.5)
    samples = registry.snapshot(timestamp=1700000000.0)
    assert [(s.name, s.labels, s.value, s.kind, s.help) for s in samples] == [
        ("jobs_total", {"queue": "mail"}, 3.0, "counter", "Jobs run"),
        ("depth", {}, 4.0, "gauge", "Queue depth"),
        ("latency_seconds_bucket", {"le": "0.005"}, 0.0, "histogram", "Latency"),
        ("latency_seconds_bucket", {"le": "1.0"}, 1.0, "histogram", "Latency"),
        ("latency_seconds_bucket", {"le": "1.234567e+06"}, 1.0, "histogram", "Latency"),
        ("latency_seconds_bucket", {"le": "+Inf"}, 1.0, "histogram", "Latency"),
        ("latency_seconds_sum", {}, 0.5, "histogram", "Latency"),
        ("latency_seconds_count", {}, 1.0, "histogram", "Latency"),
    ]
    assert {s.timestamp for s in samples} == {1700000000.0}
    assert all(isinstance(s, MetricSample) and s.id is None for s in samples)


def test_snapshot_is_cumulative_over_time(registry: Registry) -> None:
    jobs = registry.counter("jobs")
    jobs.inc()
    first = registry.snapshot(timestamp=1.0)
    jobs.inc()
    second = registry.snapshot(timestamp=2.0)
    assert [s.value for s in first + second] == [1.0, 2.0]


def test_snapshot_labels_are_copies(registry: Registry) -> None:
    registry.counter("jobs", labelnames=("queue",)).labels("mail").inc()
    registry.snapshot()[0].labels["queue"] = "changed"  # type: ignore[index]
    assert registry.snapshot()[0].labels == {"queue": "mail"}


def test_snapshot_refuses_a_bad_timestamp(registry: Registry) -> None:
    with pytest.raises(ValidationError) as caught:
        registry.snapshot(timestamp=math.nan)
    assert caught.value.field == "timestamp"


@pytest.mark.parametrize(
    "value",
    [0.0, 3.0, 0.005, 1.0, 2.5, 1e-05, 999999.0, 1e6, 1234567.0, 1.5e15, 1e16, 1e300, 12345678.9],
)
def test_format_float_matches_prometheus_client(value: float) -> None:
    assert format_float(value) == float_to_go_string(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
        (3, "3.0"),
        (-2.5, "-2.5"),
        (-1234567.0, "-1.234567e+06"),  # Go's form for negatives too
    ],
)
def test_format_float_special_values(value: float, text: str) -> None:
    assert format_float(value) == text
