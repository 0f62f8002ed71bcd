"""Log helpers, log_exception, timed_log and get_logger."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import PurePosixPath

import pytest

from observabilipy.core.context import log_context, reset_log_context, set_log_context
from observabilipy.core.errors import ConfigurationError, ValidationError
from observabilipy.core.logs import (
    Logger,
    TimedLog,
    critical,
    debug,
    error,
    get_logger,
    info,
    log,
    log_exception,
    timed_log,
    warn,
    warning,
)
from observabilipy.core.models import LogEntry

pytestmark = pytest.mark.core


@pytest.fixture(autouse=True)
def _fresh_context() -> Iterator[None]:
    token = set_log_context({})
    yield
    reset_log_context(token)


class PaymentError(Exception):
    """An application error defined outside builtins."""


# --- helpers -----------------------------------------------------------------


def test_each_helper_writes_its_canonical_level() -> None:
    made = [debug("m"), info("m"), warning("m"), warn("m"), error("m"), critical("m")]
    assert [entry.level for entry in made] == [
        "DEBUG",
        "INFO",
        "WARNING",
        "WARNING",
        "ERROR",
        "CRITICAL",
    ]


def test_warn_writes_warning_not_warn() -> None:
    """1.x helpers wrote WARN, so `?level=warning` missed them."""
    assert warn("disk low").level == "WARNING"
    assert log("WARN", "disk low").level == "WARNING"


@pytest.mark.parametrize(
    ("given", "expected"),
    [("warn", "WARNING"), ("Error", "ERROR"), ("critical", "CRITICAL"), (10, "DEBUG")],
)
def test_log_normalises_the_level(given: str | int, expected: str) -> None:
    assert log(given, "m").level == expected


def test_an_unknown_level_is_refused_naming_level() -> None:
    with pytest.raises(ValidationError) as caught:
        log("verbose", "m")
    assert caught.value.field == "level"
    assert "WARNING" in caught.value.problem


def test_a_message_that_is_not_text_is_refused_naming_message() -> None:
    with pytest.raises(ValidationError) as caught:
        info(42)  # type: ignore[arg-type]
    assert caught.value.field == "message"


def test_entries_are_stamped_with_the_current_time() -> None:
    before = time.time()
    entry = info("now")
    after = time.time()
    assert before <= entry.timestamp <= after
    assert entry.id is None


def test_call_attributes_are_merged_over_the_log_context() -> None:
    with log_context(request_id="r-1", user="ada"):
        entry = info("login", user="bob", method="password")
    assert entry.attributes == {"request_id": "r-1", "user": "bob", "method": "password"}


def test_entry_attributes_are_not_shared_with_the_context() -> None:
    with log_context(request_id="r-1"):
        entry = info("x")
        entry.attributes["request_id"] = "changed"  # type: ignore[index]
        assert info("y").attributes == {"request_id": "r-1"}


def test_attribute_values_are_made_json_safe() -> None:
    entry = info(
        "values",
        path=PurePosixPath("/srv/app"),
        ratio=float("inf"),
        nothing=None,
        ok=True,
        count=3,
        share=0.5,
    )
    assert entry.attributes == {
        "path": "/srv/app",
        "ratio": "inf",
        "nothing": None,
        "ok": True,
        "count": 3,
        "share": 0.5,
    }


def test_level_and_message_can_be_attribute_names() -> None:
    entry = log("INFO", "tank", level=3, message="refill soon")
    assert entry.level == "INFO"
    assert entry.message == "tank"
    assert entry.attributes == {"level": 3, "message": "refill soon"}


def test_an_entry_equals_one_built_and_validated_by_the_model() -> None:
    entry = info("same", n=1)
    rebuilt = LogEntry(timestamp=entry.timestamp, level="info", message="same", attributes={"n": 1})
    assert entry == rebuilt


# --- log_exception -------------------------------------------------------------


def test_log_exception_describes_the_exception_being_handled() -> None:
    with log_context(request_id="r-5"):
        try:
            raise PaymentError("card declined")
        except PaymentError:
            entry = log_exception(order=42)
    assert entry.level == "ERROR"
    assert entry.message == "card declined"
    attributes = entry.attributes
    assert attributes["request_id"] == "r-5"
    assert attributes["order"] == 42
    assert attributes["exception.type"] == f"{__name__}.PaymentError"
    assert attributes["exception.message"] == "card declined"
    traceback_text = attributes["exception.traceback"]
    assert isinstance(traceback_text, str)
    assert traceback_text.startswith("Traceback (most recent call last):")
    assert "raise PaymentError" in traceback_text
    assert traceback_text.rstrip().endswith("PaymentError: card declined")


def test_log_exception_with_an_explicit_exception_message_and_level() -> None:
    problem = ValueError("bad row")
    entry = log_exception("import failed", exc=problem, level="warn")
    assert entry.level == "WARNING"
    assert entry.message == "import failed"
    assert entry.attributes["exception.type"] == "ValueError"
    assert entry.attributes["exception.message"] == "bad row"


def test_log_exception_of_an_exception_without_text_uses_its_type() -> None:
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        entry = log_exception()
    assert entry.message == "KeyboardInterrupt"
    assert entry.attributes["exception.message"] == ""


def test_log_exception_outside_an_except_block_says_how_to_fix_it() -> None:
    with pytest.raises(ValidationError) as caught:
        log_exception("nothing to see")
    assert caught.value.field == "exc"
    assert "except" in caught.value.problem


# --- timed_log ---------------------------------------------------------------


def test_timed_log_makes_an_entry_and_an_exit_entry() -> None:
    with log_context(request_id="r-6"), timed_log("load config", path="app.toml") as timed:
        assert len(timed.entries) == 1
    first, last = timed.entries
    assert (first.level, first.message) == ("INFO", "load config [entry]")
    assert first.attributes == {"request_id": "r-6", "path": "app.toml", "phase": "entry"}
    assert (last.level, last.message) == ("INFO", "load config [exit]")
    assert last.attributes["phase"] == "exit"
    assert last.attributes["path"] == "app.toml"
    elapsed = last.attributes["elapsed_seconds"]
    assert isinstance(elapsed, float)
    assert elapsed >= 0
    assert timed.elapsed_seconds == elapsed
    assert first.timestamp <= last.timestamp


def test_timed_log_makes_the_exit_entry_when_the_block_raises() -> None:
    problem = PaymentError("card declined")
    with pytest.raises(PaymentError) as caught, timed_log("charge", level="debug") as timed:
        raise problem
    assert caught.value is problem
    first, last = timed.entries
    assert first.level == "DEBUG"
    assert last.level == "ERROR"
    assert last.attributes["phase"] == "exit"
    assert last.attributes["error.type"] == f"{__name__}.PaymentError"
    assert last.attributes["error.message"] == "card declined"
    assert "elapsed_seconds" in last.attributes


async def test_timed_log_with_async_with() -> None:
    async with timed_log("fetch", url="/users") as timed:
        await asyncio.sleep(0)
    assert [e.attributes["phase"] for e in timed.entries] == ["entry", "exit"]
    assert timed.entries[1].level == "INFO"


async def test_timed_log_with_async_with_when_the_block_raises() -> None:
    async def slow_upstream() -> None:
        async with timed_log("fetch") as timed:
            received.append(timed)
            await asyncio.sleep(0)
            raise TimeoutError("upstream slow")

    received: list[TimedLog] = []
    with pytest.raises(TimeoutError):
        await slow_upstream()
    (timed,) = received
    assert timed.entries[1].level == "ERROR"
    assert timed.entries[1].attributes["error.type"] == "TimeoutError"


def test_timed_log_sends_each_entry_to_the_sink_as_it_is_made() -> None:
    received: list[LogEntry] = []
    with timed_log("step", sink=received.append) as timed:
        assert [e.attributes["phase"] for e in received] == ["entry"]
    assert received == timed.entries
    assert timed.dropped == 0


def test_timed_log_checks_its_arguments_before_the_block_runs() -> None:
    with pytest.raises(ValidationError) as caught:
        timed_log("step", level="loud")
    assert caught.value.field == "level"


def test_timed_log_survives_a_failing_sink(caplog: pytest.LogCaptureFixture) -> None:
    def broken(entry: LogEntry) -> None:
        raise OSError("disk full")

    with (
        caplog.at_level(logging.WARNING, logger="observabilipy"),
        timed_log("step", sink=broken) as timed,
    ):
        pass
    assert len(timed.entries) == 2
    assert timed.dropped == 2
    assert len(caplog.records) == 1


# --- get_logger --------------------------------------------------------------


def test_logger_entries_carry_name_context_bound_and_call_fields_in_that_order() -> None:
    logger = get_logger("billing", region="eu", user="bound")
    with log_context(request_id="r-7", user="context", region="context"):
        entry = logger.info("invoice sent", user="call")
    assert entry.attributes == {
        "request_id": "r-7",
        "user": "call",
        "region": "eu",
        "logger": "billing",
    }


def test_logger_methods_write_their_levels() -> None:
    logger = get_logger("app")
    made = [
        logger.debug("m"),
        logger.info("m"),
        logger.warning("m"),
        logger.warn("m"),
        logger.error("m"),
        logger.critical("m"),
        logger.log("fatal", "m"),
    ]
    assert [e.level for e in made] == [
        "DEBUG",
        "INFO",
        "WARNING",
        "WARNING",
        "ERROR",
        "CRITICAL",
        "CRITICAL",
    ]
    assert all(e.attributes == {"logger": "app"} for e in made)


def test_bind_returns_a_new_logger_and_leaves_the_old_one_unchanged() -> None:
    base = get_logger("api", service="users")
    request_logger = base.bind(request_id="r-8", service="users-v2")
    assert base.info("x").attributes == {"logger": "api", "service": "users"}
    assert request_logger.info("x").attributes == {
        "logger": "api",
        "service": "users-v2",
        "request_id": "r-8",
    }
    assert base.bound == {"service": "users"}
    assert request_logger.name == "api"


def test_logger_exception() -> None:
    logger = get_logger("worker", queue="mail")
    try:
        raise KeyError("missing")
    except KeyError:
        entry = logger.exception("job failed", job=3)
    assert entry.level == "ERROR"
    assert entry.message == "job failed"
    assert entry.attributes["logger"] == "worker"
    assert entry.attributes["job"] == 3
    assert entry.attributes["exception.type"] == "KeyError"


def test_logger_sends_entries_to_a_callable_sink() -> None:
    received: list[LogEntry] = []
    logger = get_logger("app", sink=received.append)
    returned = logger.info("hello")
    assert received == [returned]


def test_logger_sends_entries_to_an_object_with_write_sync() -> None:
    class Storage:
        def __init__(self) -> None:
            self.rows: list[LogEntry] = []

        def write_sync(self, entry: LogEntry) -> None:
            self.rows.append(entry)

    storage = Storage()
    logger = get_logger("app", sink=storage)
    logger.warn("careful")
    logger.bind(step=2).error("failed")
    assert [(e.level, e.message) for e in storage.rows] == [
        ("WARNING", "careful"),
        ("ERROR", "failed"),
    ]


def test_a_failing_sink_is_counted_warned_once_and_never_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    def broken(entry: LogEntry) -> None:
        nonlocal calls
        calls += 1
        raise OSError("database is locked")

    logger = get_logger("app", sink=broken)
    child = logger.bind(request_id="r-9")
    with caplog.at_level(logging.WARNING, logger="observabilipy"):
        entry = logger.info("one")
        child.info("two")
        child.error("three")
    assert entry.message == "one"
    assert calls == 3
    assert logger.dropped == 3
    assert child.dropped == 3
    assert len(caplog.records) == 1
    assert "database is locked" in caplog.records[0].getMessage()


def test_sink_failures_are_counted_exactly_across_threads() -> None:
    def broken(entry: LogEntry) -> None:
        raise RuntimeError("down")

    logger = get_logger("app", sink=broken)

    def hammer() -> None:
        for _ in range(500):
            logger.info("x")

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert logger.dropped == 2000


def test_a_logger_without_sink_has_nothing_dropped() -> None:
    assert get_logger("app").dropped == 0


def test_a_sink_that_cannot_take_entries_is_refused_at_creation() -> None:
    with pytest.raises(ConfigurationError, match="sink"):
        get_logger("app", sink=[])  # type: ignore[arg-type]


def test_an_async_sink_is_refused_with_the_fix() -> None:
    async def write(entry: LogEntry) -> None:
        return None

    with pytest.raises(ConfigurationError, match="write_sync"):
        get_logger("app", sink=write)


def test_name_and_sink_keywords_do_not_clash_with_bound_fields() -> None:
    logger = Logger("app", name="field", sink=None)
    assert logger.name == "app"
    assert logger.info("x").attributes == {"logger": "app", "name": "field"}
