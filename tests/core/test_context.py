"""The log context: merging, restoring, and isolation between threads and tasks."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterator
from pathlib import PurePosixPath

import pytest

from observabilipy.core.context import (
    ContextProvider,
    clear_log_context,
    current_log_context,
    get_log_context,
    log_context,
    reset_log_context,
    set_log_context,
    update_log_context,
)
from observabilipy.core.errors import ValidationError

pytestmark = pytest.mark.core


@pytest.fixture(autouse=True)
def _fresh_context() -> Iterator[None]:
    """Each test starts empty and leaves nothing behind for the next one."""
    token = set_log_context({})
    yield
    reset_log_context(token)


def test_log_context_merges_into_the_outer_context_and_restores_it() -> None:
    with log_context(request_id="r-1", user="ada"):
        with log_context(user="bob", step="parse"):
            assert get_log_context() == {"request_id": "r-1", "user": "bob", "step": "parse"}
        assert get_log_context() == {"request_id": "r-1", "user": "ada"}
    assert get_log_context() == {}


def test_log_context_restores_the_outer_context_when_the_block_raises() -> None:
    with log_context(request_id="r-1"):
        with pytest.raises(KeyError), log_context(step="load"):
            raise KeyError("missing")
        assert get_log_context() == {"request_id": "r-1"}


def test_log_context_keeps_fields_set_by_the_caller_before_it() -> None:
    """The 1.x middleware bug: a scope replaced the caller's context instead of merging."""
    update_log_context(tenant="acme")
    with log_context(request_id="r-2"):
        assert get_log_context() == {"tenant": "acme", "request_id": "r-2"}
    assert get_log_context() == {"tenant": "acme"}


def test_changes_inside_a_block_are_undone_with_it() -> None:
    with log_context(request_id="r-1"):
        update_log_context(user="ada")
        assert get_log_context() == {"request_id": "r-1", "user": "ada"}
    assert get_log_context() == {}


def test_get_log_context_returns_a_copy() -> None:
    with log_context(user="ada"):
        copy = get_log_context()
        copy["user"] = "eve"
        copy["extra"] = 1
        assert get_log_context() == {"user": "ada"}


def test_current_log_context_is_the_live_mapping() -> None:
    with log_context(user="ada"):
        assert current_log_context() == {"user": "ada"}
        assert current_log_context() is current_log_context()
    assert current_log_context() == {}


def test_set_update_reset_and_clear() -> None:
    first = set_log_context({"job": "mail"}, attempt=1)
    assert get_log_context() == {"job": "mail", "attempt": 1}
    second = update_log_context(attempt=2, queue="q1")
    assert get_log_context() == {"job": "mail", "attempt": 2, "queue": "q1"}
    reset_log_context(second)
    assert get_log_context() == {"job": "mail", "attempt": 1}
    clear_log_context()
    assert get_log_context() == {}
    reset_log_context(first)
    assert get_log_context() == {}


def test_set_log_context_replaces_everything() -> None:
    update_log_context(stale="yes")
    set_log_context(fresh="yes")
    assert get_log_context() == {"fresh": "yes"}


def test_values_are_stored_as_log_attribute_values() -> None:
    with log_context(path=PurePosixPath("/srv"), ratio=float("nan"), count=3, flag=True):
        assert get_log_context() == {"path": "/srv", "ratio": "nan", "count": 3, "flag": True}


def test_a_non_str_key_is_refused_naming_the_context() -> None:
    with pytest.raises(ValidationError) as caught:
        set_log_context({1: "one"})  # type: ignore[dict-item]
    assert caught.value.field == "log_context"


def test_a_value_that_cannot_become_text_is_refused_at_the_call() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    with pytest.raises(ValidationError) as caught:
        log_context(thing=Unprintable())
    assert caught.value.field == "log_context['thing']"


def test_one_instance_can_be_entered_again_while_entered() -> None:
    scope = log_context(user="ada")
    with scope:
        with log_context(step="a"), scope:
            assert get_log_context() == {"user": "ada", "step": "a"}
        assert get_log_context() == {"user": "ada"}
    assert get_log_context() == {}


def test_decorator_sets_the_context_for_each_call_of_a_sync_function() -> None:
    @log_context(job="cleanup")
    def run(extra: int) -> dict[str, object]:
        """Doc kept."""
        return {**get_log_context(), "extra": extra}

    with log_context(request_id="r-3"):
        assert run(1) == {"request_id": "r-3", "job": "cleanup", "extra": 1}
        assert get_log_context() == {"request_id": "r-3"}
    assert run.__name__ == "run"
    assert run.__doc__ == "Doc kept."


async def test_decorator_covers_the_whole_run_of_an_async_function() -> None:
    @log_context(job="sync-users")
    async def run() -> dict[str, object]:
        await asyncio.sleep(0)
        return get_log_context()

    assert inspect.iscoroutinefunction(run)
    assert await run() == {"job": "sync-users"}
    assert get_log_context() == {}


def test_decorated_function_restores_the_context_when_it_raises() -> None:
    @log_context(job="x")
    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fail()
    assert get_log_context() == {}


async def test_async_with_and_plain_with_inside_async_code() -> None:
    async with log_context(request_id="r-4"):
        with log_context(step="db"):
            await asyncio.sleep(0)
            assert get_log_context() == {"request_id": "r-4", "step": "db"}
        assert get_log_context() == {"request_id": "r-4"}
    assert get_log_context() == {}


async def test_each_asyncio_task_sees_only_its_own_context() -> None:
    both_set = asyncio.Barrier(3)

    async def handle(request_id: str) -> dict[str, object]:
        with log_context(request_id=request_id):
            await both_set.wait()  # every task has set its field before any reads
            update_log_context(handled_by=request_id)
            await asyncio.sleep(0)
            return get_log_context()

    async def bystander() -> dict[str, object]:
        await both_set.wait()
        await asyncio.sleep(0)
        return get_log_context()

    with log_context(service="api"):
        results = await asyncio.gather(handle("a"), handle("b"), bystander())
        assert get_log_context() == {"service": "api"}
    assert list(results) == [
        {"service": "api", "request_id": "a", "handled_by": "a"},
        {"service": "api", "request_id": "b", "handled_by": "b"},
        {"service": "api"},
    ]


def test_each_thread_sees_only_its_own_context() -> None:
    all_set = threading.Barrier(3)
    seen: dict[str, dict[str, object]] = {}

    def work(name: str) -> None:
        with log_context(worker=name):
            all_set.wait(timeout=10)  # every thread has set its field before any reads
            seen[name] = get_log_context()

    def bystander() -> None:
        all_set.wait(timeout=10)
        seen["bystander"] = get_log_context()

    with log_context(main="yes"):
        threads = [threading.Thread(target=work, args=(n,)) for n in ("t1", "t2")]
        threads.append(threading.Thread(target=bystander))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert get_log_context() == {"main": "yes"}
    # A new thread starts with an empty context, not the one of the thread that made it.
    assert seen == {"t1": {"worker": "t1"}, "t2": {"worker": "t2"}, "bystander": {}}


def test_get_log_context_works_as_a_context_provider() -> None:
    provider: ContextProvider = get_log_context
    with log_context(trace_id="abc"):
        assert provider() == {"trace_id": "abc"}
