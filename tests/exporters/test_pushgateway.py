"""PushgatewayExporter against Debian's prometheus-pushgateway, started on a loopback port.

Each test pushes to its own job on one Pushgateway per module and reads the values
back from the Pushgateway's /metrics with prometheus_client's text parser, as
Prometheus would scrape them.  The binary is required: without it the tests fail
naming the Debian package.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.export import PermanentExportError, RetryableExportError
from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry, MetricSample
from observabilipy.exporters import PushgatewayExporter

if TYPE_CHECKING:
    from tests.exporters._exporters_support import (
        Answer,
        Process,
        Receiver,
        free_port,
        groups,
        pushed_families,
        pushgateway,
        values,
    )
else:
    from _exporters_support import (
        Answer,
        Process,
        Receiver,
        free_port,
        groups,
        pushed_families,
        pushgateway,
        values,
    )

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    with pushgateway(tmp_path_factory.mktemp("pushgateway")) as process:
        yield process


def url(gateway: Process) -> str:
    return f"http://127.0.0.1:{gateway.port}"


async def batch(samples: Iterable[MetricSample]) -> AsyncIterator[MetricSample]:
    """What the runtime hands an exporter: stored samples, oldest first."""
    for sample in samples:
        yield sample


def snapshots(registry: Registry, *timestamps: float) -> list[MetricSample]:
    """The registry's snapshot at each timestamp, with storage ids, as stored history."""
    history = [sample for t in timestamps for sample in registry.snapshot(timestamp=t)]
    return [sample.with_id(n) for n, sample in enumerate(history, start=1)]


async def test_the_latest_cumulative_values_are_pushed_with_their_types(gateway: Process) -> None:
    registry = Registry()
    jobs = registry.counter("report_rows", "Rows written.", labelnames=("table",))
    progress = registry.gauge("report_progress", "Share done.")
    latency = registry.histogram("report_step_seconds", "Step time.", buckets=(0.5, 2.0))
    jobs.labels(table="orders").inc(10)
    progress.set(0.25)
    latency.observe(0.1)
    history = snapshots(registry, T0)
    jobs.labels(table="orders").inc(5)
    jobs.labels(table="refunds").inc(2)
    progress.set(1.0)
    latency.observe(1.0)
    history += [s.with_id(100 + n) for n, s in enumerate(registry.snapshot(timestamp=T0 + 10))]

    exporter = PushgatewayExporter(
        url=url(gateway), job="report", grouping_key={"instance": "batch-7"}
    )
    await exporter.export_metrics(batch(history))
    await exporter.close()

    families = pushed_families(gateway.port, "report")
    assert families["report_rows"].type == "counter"
    assert values(families["report_rows"]) == {
        ("report_rows_total", (("table", "orders"),)): 15.0,
        ("report_rows_total", (("table", "refunds"),)): 2.0,
    }
    assert families["report_rows"].documentation == "Rows written."
    assert values(families["report_progress"]) == {("report_progress", ()): 1.0}
    assert families["report_step_seconds"].type == "histogram"
    assert values(families["report_step_seconds"]) == {
        ("report_step_seconds_bucket", (("le", "0.5"),)): 1.0,
        ("report_step_seconds_bucket", (("le", "2.0"),)): 2.0,
        ("report_step_seconds_bucket", (("le", "+Inf"),)): 2.0,
        ("report_step_seconds_count", ()): 2.0,
        ("report_step_seconds_sum", ()): 1.1,
    }
    every_sample = [s for family in families.values() for s in family.samples]
    assert {s.labels["instance"] for s in every_sample} == {"batch-7"}


async def test_put_replaces_the_group_and_post_only_the_names_pushed(gateway: Process) -> None:
    def gauge(name: str, value: float) -> MetricSample:
        return MetricSample(name=name, timestamp=T0, value=value, kind="gauge").with_id(1)

    first = PushgatewayExporter(url=url(gateway), job="semantics", method="POST")
    await first.export_metrics(batch([gauge("sem_a", 1.0), gauge("sem_b", 2.0)]))
    # POST from another pusher of the group: its name is replaced, the others stay.
    sharing = PushgatewayExporter(url=url(gateway), job="semantics", method="POST")
    await sharing.export_metrics(batch([gauge("sem_b", 20.0), gauge("sem_c", 3.0)]))
    assert {
        name: family.samples[0].value
        for name, family in pushed_families(gateway.port, "semantics").items()
    } == {"sem_a": 1.0, "sem_b": 20.0, "sem_c": 3.0}

    # PUT: the group becomes exactly what this exporter holds.
    owner = PushgatewayExporter(url=url(gateway), job="semantics", method="PUT")
    await owner.export_metrics(batch([gauge("sem_c", 30.0)]))
    families = pushed_families(gateway.port, "semantics")
    assert {name: family.samples[0].value for name, family in families.items()} == {"sem_c": 30.0}
    for exporter in (first, sharing, owner):
        await exporter.close()


async def test_a_batch_with_only_some_families_does_not_wipe_the_others_under_put(
    gateway: Process,
) -> None:
    registry = Registry()
    registry.counter("part_a", "A.").inc(1)
    registry.gauge("part_b", "B.").set(7)
    exporter = PushgatewayExporter(url=url(gateway), job="partial")
    first, second = registry.snapshot(timestamp=T0)
    # The runtime's batch boundary fell inside a snapshot: two batches, one family each.
    await exporter.export_metrics(batch([first.with_id(1)]))
    await exporter.export_metrics(batch([second.with_id(2)]))
    await exporter.close()
    families = pushed_families(gateway.port, "partial")
    assert values(families["part_a"]) == {("part_a_total", ()): 1.0}
    assert values(families["part_b"]) == {("part_b", ()): 7.0}


async def test_an_older_point_arriving_late_never_replaces_a_newer_one(gateway: Process) -> None:
    newer = MetricSample(name="late_total", timestamp=T0 + 5, value=9, kind="counter").with_id(2)
    older = MetricSample(name="late_total", timestamp=T0, value=4, kind="counter").with_id(1)
    exporter = PushgatewayExporter(url=url(gateway), job="late")
    await exporter.export_metrics(batch([newer]))
    await exporter.export_metrics(batch([older]))  # a retried, older batch
    await exporter.close()
    assert values(pushed_families(gateway.port, "late")["late"]) == {("late_total", ()): 9.0}


@pytest.mark.parametrize(
    ("grouping_key", "job"),
    [
        ({"path": "/var/backups/db", "zone": ""}, "backup"),
        ({"instance": "host:9000", "note": "a b%c"}, "cron/nightly"),
    ],
)
async def test_grouping_keys_with_slashes_empty_and_special_values_arrive_exactly(
    gateway: Process, grouping_key: dict[str, str], job: str
) -> None:
    sample = MetricSample(name="grouped_ok", timestamp=T0, value=1, kind="gauge").with_id(1)
    exporter = PushgatewayExporter(url=url(gateway), job=job, grouping_key=grouping_key)
    await exporter.export_metrics(batch([sample]))
    await exporter.close()
    assert {"job": job, **grouping_key} in groups(gateway.port)
    [pushed] = pushed_families(gateway.port, job)["grouped_ok"].samples
    # An empty label value is no label in Prometheus' data model (the Pushgateway
    # writes the empty instance it adds, prometheus_client reads it as "").
    assert {k: v for k, v in pushed.labels.items() if v} == {
        k: v for k, v in {"job": job, **grouping_key}.items() if v
    }


async def test_the_series_kept_are_bounded_by_max_series(gateway: Process) -> None:
    samples = [
        MetricSample(
            name="bounded", timestamp=T0 + n, value=n, labels={"n": str(n)}, kind="gauge"
        ).with_id(n + 1)
        for n in range(5)
    ]
    exporter = PushgatewayExporter(url=url(gateway), job="bounded", max_series=3)
    await exporter.export_metrics(batch(samples))
    await exporter.close()
    pushed = values(pushed_families(gateway.port, "bounded")["bounded"])
    # The least recently updated series are forgotten first.
    assert pushed == {("bounded", (("n", str(n)),)): float(n) for n in (2, 3, 4)}


async def test_a_push_inconsistent_with_another_group_is_refused_for_good(
    gateway: Process,
) -> None:
    # `clash_total` is a gauge in one group; a counter `clash` is exposed as
    # `clash_total` too: the Pushgateway refuses a second type for one name.
    gauge = MetricSample(name="clash_total", timestamp=T0, value=1, kind="gauge").with_id(1)
    counter = MetricSample(name="clash", timestamp=T0, value=1, kind="counter").with_id(1)
    first = PushgatewayExporter(url=url(gateway), job="clash-1")
    await first.export_metrics(batch([gauge]))
    second = PushgatewayExporter(url=url(gateway), job="clash-2")
    with pytest.raises(PermanentExportError) as caught:
        await second.export_metrics(batch([counter]))
    await first.close()
    await second.close()
    assert caught.value.status == 400
    assert "clash_total" in caught.value.reason  # the Pushgateway's explanation is kept


async def test_an_unreachable_pushgateway_is_retryable() -> None:
    exporter = PushgatewayExporter(url=f"http://127.0.0.1:{free_port()}", job="down")
    sample = MetricSample(name="up", timestamp=T0, value=1).with_id(1)
    with pytest.raises(RetryableExportError, match="cannot reach"):
        await exporter.export_metrics(batch([sample]))
    await exporter.close()


async def test_requests_carry_the_method_path_type_and_auth() -> None:
    with Receiver(lambda request: Answer(200)) as server:
        exporter = PushgatewayExporter(
            url=server.url("/prefix/"),
            job="auth",
            grouping_key={"instance": "h1"},
            method="POST",
            basic_auth=("pusher", "pw"),
        )
        sample = MetricSample(name="up", timestamp=T0, value=1, kind="gauge").with_id(1)
        await exporter.export_metrics(batch([sample]))
        await exporter.export_metrics(batch([]))  # nothing new: no request
        await exporter.close()
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/prefix/metrics/job/auth/instance/h1")
    assert request.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert request.headers["authorization"].startswith("Basic ")
    assert request.body.decode().endswith("up 1.0\n")


async def test_logs_are_refused() -> None:
    exporter = PushgatewayExporter(url="http://pushgateway:9091", job="x")
    assert exporter.signals == frozenset({"metrics"})

    async def entries() -> AsyncIterator[LogEntry]:
        yield LogEntry(timestamp=T0, level="info", message="x")

    with pytest.raises(PermanentExportError, match="sends metrics only"):
        await exporter.export_logs(entries())


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"url": "http://pg:9091/metrics/job/x"}, "url"),
        ({"job": ""}, "job"),
        ({"grouping_key": {"job": "y"}}, "grouping_key"),
        ({"grouping_key": {"bad-name": "y"}}, "grouping_key"),
        ({"grouping_key": {"instance": 3}}, "grouping_key['instance']"),
        ({"method": "DELETE"}, "method"),
        ({"max_series": 0}, "max_series"),
        ({"timeout": -1}, "timeout"),
    ],
)
def test_settings_are_checked_and_errors_name_the_argument(
    settings: dict[str, Any], field: str
) -> None:
    arguments: dict[str, Any] = {"url": "http://pushgateway:9091", "job": "x"}
    with pytest.raises(ConfigurationError) as caught:
        PushgatewayExporter(**{**arguments, **settings})
    assert str(caught.value).startswith(field + ":")


async def test_nan_and_infinite_values_arrive_as_such(gateway: Process) -> None:
    special = [
        MetricSample(name="special", timestamp=T0, value=v, labels={"v": text}, kind="gauge")
        for v, text in ((math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf"))
    ]
    exporter = PushgatewayExporter(url=url(gateway), job="special")
    await exporter.export_metrics(batch([s.with_id(n) for n, s in enumerate(special)]))
    await exporter.close()
    pushed = {
        s.labels["v"]: s.value for s in pushed_families(gateway.port, "special")["special"].samples
    }
    assert math.isnan(pushed["nan"])
    assert (pushed["inf"], pushed["-inf"]) == (math.inf, -math.inf)
