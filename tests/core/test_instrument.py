"""@instrument: counts, durations, and a wrapped function that behaves as before."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.instrumentation import instrument
from observabilipy.core.metrics import Registry, default_registry

pytestmark = pytest.mark.core


@pytest.fixture
def registry() -> Registry:
    return Registry()


def calls_of(registry: Registry, name: str, status: str, **labels: str) -> float:
    family = registry.counter(f"{name}_calls_total", labelnames=("status", *labels))
    value: float = family.labels(status=status, **labels).value
    return value


def durations_of(registry: Registry, name: str, **labels: str) -> Any:
    return registry.histogram(f"{name}_duration_seconds", labelnames=tuple(labels)).labels(**labels)


def test_success_is_counted_and_timed_and_the_value_returned_as_is(registry: Registry) -> None:
    result = object()

    @instrument("lookup", registry=registry)
    def lookup() -> object:
        return result

    assert lookup() is result
    assert lookup() is result
    assert calls_of(registry, "lookup", "success") == 2
    assert calls_of(registry, "lookup", "error") == 0
    timing = durations_of(registry, "lookup")
    assert timing.count == 2
    assert timing.sum >= 0


def test_an_exception_is_counted_as_error_and_re_raised_unchanged(registry: Registry) -> None:
    problem = ValueError("bad order")

    @instrument("place_order", registry=registry)
    def place_order() -> None:
        raise problem

    with pytest.raises(ValueError) as caught:
        place_order()
    assert caught.value is problem
    # The traceback still reaches the line that raised.
    assert caught.traceback[-1].name == "place_order"
    assert calls_of(registry, "place_order", "error") == 1
    assert calls_of(registry, "place_order", "success") == 0
    assert durations_of(registry, "place_order").count == 1


def test_keyboard_interrupt_propagates_and_is_not_counted(registry: Registry) -> None:
    @instrument("interactive", registry=registry)
    def interactive() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interactive()
    assert calls_of(registry, "interactive", "error") == 0
    assert calls_of(registry, "interactive", "success") == 0
    assert durations_of(registry, "interactive").count == 0


def test_system_exit_propagates(registry: Registry) -> None:
    @instrument("shutdown", registry=registry)
    def shutdown() -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit) as caught:
        shutdown()
    assert caught.value.code == 3


async def test_async_functions_stay_coroutine_functions_and_are_counted(
    registry: Registry,
) -> None:
    @instrument("fetch", registry=registry)
    async def fetch(user_id: int) -> dict[str, int]:
        await asyncio.sleep(0)
        return {"id": user_id}

    assert inspect.iscoroutinefunction(fetch)
    assert await fetch(7) == {"id": 7}
    assert calls_of(registry, "fetch", "success") == 1
    assert durations_of(registry, "fetch").count == 1


async def test_async_errors_are_counted_and_re_raised(registry: Registry) -> None:
    problem = ConnectionError("upstream down")

    @instrument("fetch", registry=registry)
    async def fetch() -> None:
        await asyncio.sleep(0)
        raise problem

    with pytest.raises(ConnectionError) as caught:
        await fetch()
    assert caught.value is problem
    assert calls_of(registry, "fetch", "error") == 1


async def test_cancellation_propagates_and_is_not_counted(registry: Registry) -> None:
    started = asyncio.Event()

    @instrument("wait_forever", registry=registry)
    async def wait_forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(wait_forever())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls_of(registry, "wait_forever", "error") == 0
    assert calls_of(registry, "wait_forever", "success") == 0


def test_fixed_labels_and_custom_names(registry: Registry) -> None:
    @instrument(
        registry=registry,
        labels={"queue": "mail"},
        counter_name="jobs_processed_total",
        histogram_name="job_seconds",
        buckets=(0.5, 1.0),
    )
    def process() -> str:
        return "done"

    process()
    counter = registry.counter("jobs_processed_total", labelnames=("status", "queue"))
    assert counter.labels(status="success", queue="mail").value == 1
    histogram = registry.histogram("job_seconds", labelnames=("queue",), buckets=(0.5, 1.0))
    assert histogram.labels(queue="mail").count == 1
    names = {sample.name for sample in registry.snapshot()}
    assert {"jobs_processed_total", "job_seconds_bucket", "job_seconds_count"} <= names
    buckets = {
        sample.labels["le"] for sample in registry.snapshot() if sample.name == "job_seconds_bucket"
    }
    assert buckets == {"0.5", "1.0", "+Inf"}


def test_name_prefix_with_labels(registry: Registry) -> None:
    @instrument("render", registry=registry, labels={"template": "home"})
    def render() -> str:
        return "<html>"

    render()
    assert calls_of(registry, "render", "success", template="home") == 1
    assert durations_of(registry, "render", template="home").count == 1


def test_bare_decorator_names_metrics_after_module_and_qualified_name() -> None:
    @instrument
    def bare_decorator_target() -> int:
        return 5

    assert bare_decorator_target() == 5
    expected = (
        __name__.replace(".", "_")
        + "_test_bare_decorator_names_metrics_after_module_and_qualified_name"
        + "_locals_bare_decorator_target"
    )
    assert calls_of(default_registry, expected, "success") == 1


def test_functools_wraps_keeps_name_doc_and_signature(registry: Registry) -> None:
    @instrument("documented", registry=registry)
    def documented(a: int, *, b: str = "x") -> str:
        """Say what it does."""
        return f"{a}{b}"

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Say what it does."
    assert str(inspect.signature(documented)) == "(a: 'int', *, b: 'str' = 'x') -> 'str'"
    assert documented(1, b="y") == "1y"


def test_methods_can_be_instrumented(registry: Registry) -> None:
    class Cart:
        def __init__(self) -> None:
            self.items = 2

        @instrument("cart_total", registry=registry)
        def total(self, price: float) -> float:
            return self.items * price

    assert Cart().total(1.5) == 3.0
    assert calls_of(registry, "cart_total", "success") == 1


def test_families_are_created_at_decoration_time(registry: Registry) -> None:
    @instrument("not_called_yet", registry=registry)
    def not_called_yet() -> None:
        return None

    names = {sample.name for sample in registry.snapshot()}
    assert "not_called_yet_calls_total" in names
    assert "not_called_yet_duration_seconds_count" in names


def test_decorating_twice_with_one_name_shares_the_families(registry: Registry) -> None:
    @instrument("shared", registry=registry)
    def first() -> None:
        return None

    @instrument("shared", registry=registry)
    def second() -> None:
        return None

    first()
    second()
    assert calls_of(registry, "shared", "success") == 2


def test_concurrent_calls_are_all_counted(registry: Registry) -> None:
    @instrument("hot", registry=registry)
    def hot() -> None:
        return None

    def hammer() -> None:
        for _ in range(1000):
            hot()

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert calls_of(registry, "hot", "success") == 4000
    assert durations_of(registry, "hot").count == 4000


def test_a_status_label_is_refused(registry: Registry) -> None:
    with pytest.raises(ConfigurationError, match="status"):
        instrument("x", registry=registry, labels={"status": "ok"})(lambda: None)


def test_generator_functions_are_refused(registry: Registry) -> None:
    def numbers() -> Iterator[int]:
        yield 1

    with pytest.raises(ConfigurationError, match="generator"):
        instrument("numbers", registry=registry)(numbers)


def test_a_failure_to_record_never_reaches_the_caller(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    @instrument("fragile", registry=registry)
    def fragile() -> str:
        return "still works"

    child = registry.counter("fragile_calls_total", labelnames=("status",)).labels(status="success")

    def broken_inc(self: object, amount: float = 1.0) -> None:
        raise RuntimeError("metrics broke")

    monkeypatch.setattr(type(child), "inc", broken_inc)
    # The module, not the function of the same name a package import could expose.
    monkeypatch.setattr(importlib.import_module(instrument.__module__), "_reported", False)
    with caplog.at_level(logging.WARNING, logger="observabilipy"):
        assert fragile() == "still works"
        assert fragile() == "still works"
    assert [r.getMessage() for r in caplog.records] == [
        "instrument could not record a call; metrics are incomplete"
    ]
