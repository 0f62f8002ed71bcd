"""ObservabilipyHandler: records arrive structured; storage trouble never reaches the caller."""

from __future__ import annotations

import asyncio
import gc
import logging
import logging.config
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import PurePosixPath

import pytest

from observabilipy.core.context import log_context
from observabilipy.core.errors import ConfigurationError
from observabilipy.core.handler import ObservabilipyHandler
from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry
from observabilipy.core.storage import InMemoryLogStorage

pytestmark = pytest.mark.core

# Guards against a hang in the code under test; never reached when it works.
PATIENCE = 10.0


class BlockingStorage(InMemoryLogStorage):
    """Writes block until ``release`` is set; ``entered`` tells a write has begun."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.written = threading.Event()

    def write_many_sync(self, entries: Iterable[LogEntry]) -> None:
        batch = list(entries)
        self.entered.set()
        self.release.wait(PATIENCE)
        super().write_many_sync(batch)
        self.written.set()


class FailingStorage(InMemoryLogStorage):
    """Raises for the first ``failures`` writes, then stores normally."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def write_many_sync(self, entries: Iterable[LogEntry]) -> None:
        batch = list(entries)
        if self.failures > 0:
            self.failures -= 1
            raise OSError("disk full")
        super().write_many_sync(batch)


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class AppError(Exception):
    pass


@pytest.fixture
def storage() -> InMemoryLogStorage:
    return InMemoryLogStorage()


@pytest.fixture
def registry() -> Registry:
    return Registry()


MakeLogger = Callable[[ObservabilipyHandler], logging.Logger]


@pytest.fixture
def make_logger(request: pytest.FixtureRequest) -> Iterator[MakeLogger]:
    """Attach a handler to a logger of this test only; detach and close it afterwards."""
    attached: list[tuple[logging.Logger, ObservabilipyHandler]] = []

    def attach(handler: ObservabilipyHandler) -> logging.Logger:
        logger = logging.getLogger(f"test.{request.node.name}.{len(attached)}")
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(handler)
        attached.append((logger, handler))
        return logger

    yield attach
    for logger, handler in attached:
        logger.removeHandler(handler)
        handler.close(timeout=1.0)


def dropped(registry: Registry, reason: str) -> float:
    for sample in registry.snapshot():
        if sample.name == "observabilipy_dropped_total" and sample.labels == {
            "component": "logging_handler",
            "reason": reason,
        }:
            return sample.value
    raise AssertionError(f"no dropped counter for reason {reason!r}")


def stored(storage: InMemoryLogStorage) -> list[LogEntry]:
    return list(storage.read_sync())


def info_record(message: str) -> logging.LogRecord:
    return logging.makeLogRecord(
        {"msg": message, "name": "test", "levelno": logging.INFO, "levelname": "INFO"}
    )


# --- what a stored entry holds --------------------------------------------------------------------


def test_record_fields_become_attributes(
    storage: InMemoryLogStorage, make_logger: MakeLogger
) -> None:
    handler = ObservabilipyHandler(storage)
    logger = make_logger(handler)
    before = time.time()
    logger.info("user %s logged in", "ada", extra={"user_id": 7, "path": PurePosixPath("/x")})
    after = time.time()
    assert handler.flush()

    [entry] = stored(storage)
    assert entry.level == "INFO"
    assert entry.message == "user ada logged in"
    assert before <= entry.timestamp <= after
    attributes = entry.attributes
    assert attributes["logger"] == logger.name
    assert attributes["module"] == "test_handler"
    assert attributes["funcName"] == "test_record_fields_become_attributes"
    assert isinstance(attributes["lineno"], int)
    assert attributes["pathname"] == __file__
    assert attributes["threadName"] == threading.current_thread().name
    assert attributes["process"] == os.getpid()
    assert attributes["user_id"] == 7
    assert attributes["path"] == "/x"  # not JSON: stored as its text
    assert "exception.type" not in attributes


def test_message_is_taken_when_logged_not_when_written(
    storage: InMemoryLogStorage, make_logger: MakeLogger
) -> None:
    handler = ObservabilipyHandler(storage, flush_interval=60)
    logger = make_logger(handler)
    items = ["a"]
    logger.info("items: %s", items)
    items.append("b")  # after the call: must not show in the stored message
    assert handler.flush()
    assert stored(storage)[0].message == "items: ['a']"


def test_exception_is_stored_as_type_message_and_traceback(
    storage: InMemoryLogStorage, make_logger: MakeLogger
) -> None:
    logger = make_logger(ObservabilipyHandler(storage))
    try:
        raise ValueError("bad input")
    except ValueError:
        logger.exception("parsing failed")
    try:
        raise AppError("quota")
    except AppError as exc:
        logger.warning("app said no", exc_info=exc)
    logger.handlers[0].flush()

    parsing, app = stored(storage)
    assert parsing.level == "ERROR"
    assert parsing.message == "parsing failed"
    assert parsing.attributes["exception.type"] == "ValueError"
    assert parsing.attributes["exception.message"] == "bad input"
    traceback_text = parsing.attributes["exception.traceback"]
    assert isinstance(traceback_text, str)
    assert traceback_text.startswith("Traceback (most recent call last):")
    assert "ValueError: bad input" in traceback_text
    assert app.attributes["exception.type"] == f"{__name__}.AppError"


def test_exc_info_without_an_exception_adds_nothing(
    storage: InMemoryLogStorage, make_logger: MakeLogger
) -> None:
    logger = make_logger(ObservabilipyHandler(storage))
    logger.error("no exception here", exc_info=True)
    logger.handlers[0].flush()
    assert "exception.type" not in stored(storage)[0].attributes


def test_stack_info(storage: InMemoryLogStorage, make_logger: MakeLogger) -> None:
    logger = make_logger(ObservabilipyHandler(storage))
    logger.info("where am I", stack_info=True)
    logger.handlers[0].flush()
    stack = stored(storage)[0].attributes["stack_info"]
    assert isinstance(stack, str)
    assert stack.startswith("Stack (most recent call last):")


def test_log_context_is_captured_when_logged(
    storage: InMemoryLogStorage, make_logger: MakeLogger
) -> None:
    handler = ObservabilipyHandler(storage, flush_interval=60)
    logger = make_logger(handler)
    with log_context(request_id="r-1"):
        logger.info("inside")
    logger.info("outside")
    assert handler.flush()
    inside, outside = stored(storage)
    assert inside.attributes["request_id"] == "r-1"
    assert "request_id" not in outside.attributes


def test_context_provider_fields_and_precedence(
    storage: InMemoryLogStorage, make_logger: MakeLogger
) -> None:
    def provider() -> dict[str, object]:
        return {"trace_id": "t-1", "who": "provider", "logger": "provider"}

    logger = make_logger(ObservabilipyHandler(storage, context_provider=provider))
    with log_context(who="context", where="context"):
        logger.info("hi", extra={"where": "extra"})
    logger.handlers[0].flush()
    attributes = stored(storage)[0].attributes
    assert attributes["trace_id"] == "t-1"
    # per call beats per scope beats per handler beats the record's own fields
    assert attributes["where"] == "extra"
    assert attributes["who"] == "context"
    assert attributes["logger"] == "provider"


def test_failing_context_provider_is_reported_and_the_record_kept(
    storage: InMemoryLogStorage, make_logger: MakeLogger, capsys: pytest.CaptureFixture[str]
) -> None:
    def provider() -> dict[str, object]:
        raise KeyError("no trace")

    handler = ObservabilipyHandler(storage, context_provider=provider)
    logger = make_logger(handler)
    logger.info("still here")  # must not raise
    assert handler.flush()
    [entry] = stored(storage)
    assert entry.message == "still here"
    assert "--- Logging error ---" in capsys.readouterr().err
    assert handler.dropped == 0


def test_include_keeps_only_listed_attributes(
    storage: InMemoryLogStorage, make_logger: MakeLogger
) -> None:
    logger = make_logger(ObservabilipyHandler(storage, include={"logger", "user"}))
    logger.info("hi", extra={"user": "ada", "secret": "s3cr3t"})
    logger.handlers[0].flush()
    assert dict(stored(storage)[0].attributes) == {"logger": logger.name, "user": "ada"}


def test_exclude_drops_attributes(storage: InMemoryLogStorage, make_logger: MakeLogger) -> None:
    handler = ObservabilipyHandler(storage, exclude={"pathname", "process", "secret"})
    logger = make_logger(handler)
    logger.info("hi", extra={"secret": "s3cr3t", "user": "ada"})
    handler.flush()
    attributes = stored(storage)[0].attributes
    assert {"pathname", "process", "secret"}.isdisjoint(attributes)
    assert attributes["user"] == "ada"
    assert attributes["lineno"]


def test_formatter_when_set_makes_the_message(
    storage: InMemoryLogStorage, make_logger: MakeLogger
) -> None:
    handler = ObservabilipyHandler(storage)
    handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
    logger = make_logger(handler)
    logger.info("hello")
    handler.flush()
    assert stored(storage)[0].message == f"[{logger.name}] hello"


def test_handler_filters_and_level_apply(
    storage: InMemoryLogStorage, make_logger: MakeLogger
) -> None:
    handler = ObservabilipyHandler(storage, level=logging.INFO)
    handler.addFilter(lambda record: "secret" not in record.getMessage())
    logger = make_logger(handler)
    logger.debug("too quiet")
    logger.info("a secret")
    logger.info("kept")
    handler.flush()
    assert [entry.message for entry in stored(storage)] == ["kept"]


@pytest.mark.parametrize(
    ("levelname", "levelno", "expected"),
    [
        ("WARN", 30, "WARNING"),
        ("warning", 30, "WARNING"),
        ("FATAL", 50, "CRITICAL"),
        ("TRACE", 5, "DEBUG"),
        ("NOTICE", 25, "INFO"),
        ("Level 45", 45, "ERROR"),
        ("APOCALYPSE", 60, "CRITICAL"),
    ],
)
def test_levels_are_normalised_custom_ones_by_number(
    storage: InMemoryLogStorage, levelname: str, levelno: int, expected: str
) -> None:
    handler = ObservabilipyHandler(storage)
    handler.handle(logging.makeLogRecord({"msg": "m", "levelname": levelname, "levelno": levelno}))
    handler.close()
    assert [entry.level for entry in stored(storage)] == [expected]


# --- flush, batches, threads, event loops ---------------------------------------------------------


def test_flush_writes_everything_in_order_across_batches(
    storage: InMemoryLogStorage, make_logger: MakeLogger
) -> None:
    handler = ObservabilipyHandler(storage, batch_size=7, flush_interval=60)
    logger = make_logger(handler)
    for n in range(100):
        logger.info("n=%d", n)
    assert handler.flush() is True
    assert [entry.message for entry in stored(storage)] == [f"n={n}" for n in range(100)]
    assert handler.pending == 0


def test_a_full_batch_is_written_without_flush(make_logger: MakeLogger) -> None:
    storage = BlockingStorage()
    storage.release.set()
    logger = make_logger(ObservabilipyHandler(storage, batch_size=3, flush_interval=60))
    for n in range(3):
        logger.info("n=%d", n)
    assert storage.entered.wait(PATIENCE)


def test_many_threads_lose_nothing(storage: InMemoryLogStorage, make_logger: MakeLogger) -> None:
    handler = ObservabilipyHandler(storage, queue_size=100_000, batch_size=50)
    logger = make_logger(handler)

    def work(worker: int) -> None:
        for n in range(500):
            logger.info("w%d n%d", worker, n)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert handler.flush()
    messages = [entry.message for entry in stored(storage)]
    assert len(messages) == 4000
    assert set(messages) == {f"w{w} n{n}" for w in range(8) for n in range(500)}
    assert handler.dropped == 0


async def test_works_inside_a_running_event_loop(
    storage: InMemoryLogStorage, make_logger: MakeLogger
) -> None:
    handler = ObservabilipyHandler(storage)
    logger = make_logger(handler)

    async def task(n: int) -> None:
        with log_context(task=n):
            await asyncio.sleep(0)
            logger.info("from task %d", n)

    await asyncio.gather(*(task(n) for n in range(5)))
    assert await asyncio.to_thread(handler.flush)
    assert sorted((e.message, e.attributes["task"]) for e in stored(storage)) == [
        (f"from task {n}", n) for n in range(5)
    ]


# --- failures never reach the caller --------------------------------------------------------------


def test_storage_failure_drops_counted_warns_once_and_writer_recovers(
    make_logger: MakeLogger, registry: Registry, capfd: pytest.CaptureFixture[str]
) -> None:
    storage = FailingStorage(failures=2)
    handler = ObservabilipyHandler(storage, registry=registry, flush_interval=60)
    logger = make_logger(handler)

    logger.error("lost 1")
    logger.error("lost 2")
    assert handler.flush()  # the failed batch counts as handled
    logger.error("lost 3")
    assert handler.flush()
    logger.error("kept")
    assert handler.flush()

    assert [entry.message for entry in stored(storage)] == ["kept"]
    assert handler.dropped == 3
    assert dropped(registry, "storage_error") == 3
    err = capfd.readouterr().err
    assert err.count("could not write") == 1  # one warning per failure streak
    assert "OSError: disk full" in err
    assert err.count("succeed again (3 records were dropped)") == 1


def test_queue_full_drops_new_records_and_bounds_memory(
    make_logger: MakeLogger, registry: Registry
) -> None:
    storage = BlockingStorage()
    handler = ObservabilipyHandler(storage, queue_size=10, batch_size=1, registry=registry)
    logger = make_logger(handler)
    logger.info("in the writer's hands")
    assert storage.entered.wait(PATIENCE)  # the writer is stuck in write_many_sync
    for n in range(25):
        logger.info("queued %d", n)  # never blocks
    assert handler.pending == 10
    assert handler.dropped == 15
    assert dropped(registry, "queue_full") == 15

    storage.release.set()
    assert handler.flush()
    messages = [entry.message for entry in stored(storage)]
    assert messages == ["in the writer's hands"] + [f"queued {n}" for n in range(10)]


def test_flush_and_close_return_when_storage_hangs(make_logger: MakeLogger) -> None:
    storage = BlockingStorage()
    handler = ObservabilipyHandler(storage, batch_size=1)
    logger = make_logger(handler)
    try:
        logger.info("stuck")
        assert storage.entered.wait(PATIENCE)
        assert handler.flush(timeout=0.05) is False
        assert handler.flush(timeout=PATIENCE) is False  # known stalled: no second wait
        handler.close(timeout=0.05)
        logger.info("after close")  # the writer is stuck: ignored, never blocks
    finally:
        storage.release.set()
    assert storage.written.wait(PATIENCE)
    assert [entry.message for entry in stored(storage)] == ["stuck"]


def test_a_record_after_close_reopens_the_handler(
    storage: InMemoryLogStorage, make_logger: MakeLogger
) -> None:
    # logging.config.dictConfig() (uvicorn calls it at start-up) closes every
    # handler but leaves it attached: what is logged next must still be stored.
    handler = ObservabilipyHandler(storage)
    logger = make_logger(handler)
    logger.info("before")
    handler.close()
    logger.info("after")
    assert handler.flush(timeout=PATIENCE)
    assert [entry.message for entry in stored(storage)] == ["before", "after"]
    handler.close()


def test_dict_config_does_not_silence_an_attached_handler(
    storage: InMemoryLogStorage, make_logger: MakeLogger
) -> None:
    handler = ObservabilipyHandler(storage)
    logger = make_logger(handler)
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    logger.info("after dictConfig")
    assert handler.flush(timeout=PATIENCE)
    assert [entry.message for entry in stored(storage)] == ["after dictConfig"]
    handler.close()


def test_unstorable_record_is_a_counted_drop(
    storage: InMemoryLogStorage, make_logger: MakeLogger, registry: Registry
) -> None:
    handler = ObservabilipyHandler(storage, registry=registry)
    logger = make_logger(handler)
    logger.info("bad", extra={"thing": Unprintable()})
    logger.info("good")
    assert handler.flush()
    assert [entry.message for entry in stored(storage)] == ["good"]
    assert dropped(registry, "invalid_record") == 1


def test_bad_format_arguments_go_to_handle_error_not_the_caller(
    storage: InMemoryLogStorage,
    make_logger: MakeLogger,
    registry: Registry,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = ObservabilipyHandler(storage, registry=registry)
    logger = make_logger(handler)
    logger.info("%d items", "three")  # must not raise
    handler.flush()
    assert stored(storage) == []
    assert dropped(registry, "invalid_record") == 1
    assert "--- Logging error ---" in capsys.readouterr().err


def test_storage_that_logs_does_not_feed_itself(
    storage: InMemoryLogStorage, make_logger: MakeLogger
) -> None:
    class ChattyStorage(InMemoryLogStorage):
        def write_many_sync(self, entries: Iterable[LogEntry]) -> None:
            batch = list(entries)
            chatty.warning("writing %d entries", len(batch))  # goes back to the same handler
            super().write_many_sync(batch)

    storage = ChattyStorage()
    handler = ObservabilipyHandler(storage, batch_size=1)
    chatty = make_logger(handler)
    chatty.info("one")
    chatty.info("two")
    assert handler.flush()
    assert handler.flush()
    assert [entry.message for entry in stored(storage)] == ["one", "two"]
    assert handler.pending == 0


# --- lifecycle ------------------------------------------------------------------------------------


def test_close_is_idempotent_and_leaves_the_storage_open(storage: InMemoryLogStorage) -> None:
    handler = ObservabilipyHandler(storage)
    handler.handle(info_record("last words"))
    handler.close()
    handler.close()
    assert [entry.message for entry in stored(storage)] == ["last words"]
    assert storage.count_sync() == 1  # still usable: the handler did not close it


def test_a_forgotten_handler_is_collected_and_its_thread_ends(storage: InMemoryLogStorage) -> None:
    handler = ObservabilipyHandler(storage, flush_interval=60)
    handler.handle(info_record("written on the way out"))
    writer_threads = {t for t in threading.enumerate() if t.name == "observabilipy-log-writer"}
    del handler
    gc.collect()
    for thread in writer_threads:
        thread.join(PATIENCE)
    assert [entry.message for entry in stored(storage)] == ["written on the way out"]
    assert not any(thread.is_alive() for thread in writer_threads)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"queue_size": 0}, "queue_size"),
        ({"batch_size": True}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"flush_interval": 0}, "flush_interval"),
        ({"flush_interval": float("nan")}, "flush_interval"),
        ({"include": "logger"}, "include"),
        ({"exclude": [1]}, "exclude"),
        ({"context_provider": {"a": 1}}, "context_provider"),
    ],
)
def test_bad_settings_name_the_parameter(
    storage: InMemoryLogStorage, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"^{field}: "):
        ObservabilipyHandler(storage, **kwargs)  # type: ignore[arg-type]


CHILD_PRELUDE = """
import logging, sys
from observabilipy.core.handler import ObservabilipyHandler
from observabilipy.core.storage import InMemoryLogStorage

class PrintingStorage(InMemoryLogStorage):
    def write_many_sync(self, entries):
        for entry in entries:
            print("stored:", entry.message, flush=True)
"""


def run_child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,  # a hang fails the test instead of blocking the suite
    )


def test_queued_records_are_written_at_interpreter_exit() -> None:
    child = run_child(
        """
        handler = ObservabilipyHandler(PrintingStorage(), flush_interval=3600)
        logging.getLogger().addHandler(handler)
        for n in range(3):
            logging.getLogger().warning("bye %d", n)
        """
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == ["stored: bye 0", "stored: bye 1", "stored: bye 2"]


def test_exit_is_not_held_up_by_a_hung_storage() -> None:
    child = run_child(
        """
        import threading
        import observabilipy.core.handler as handler_module
        handler_module._EXIT_TIMEOUT = 0.2  # keep the test short

        class HungStorage(InMemoryLogStorage):
            def write_many_sync(self, entries):
                print("writing", flush=True)
                threading.Event().wait()

        handler = ObservabilipyHandler(HungStorage(), flush_interval=3600)
        logging.getLogger().addHandler(handler)
        logging.getLogger().warning("never stored")
        print("main done", flush=True)
        """
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == ["main done", "writing"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # 3.12+: fork with threads running
def test_forked_child_gets_its_own_writer(storage: InMemoryLogStorage) -> None:
    handler = ObservabilipyHandler(storage, flush_interval=60)
    try:
        handler.handle(info_record("parent"))
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            code = 1
            try:
                pending_ok = handler.pending == 0
                handler.handle(info_record("child"))
                flushed = handler.flush(timeout=PATIENCE)
                messages = [entry.message for entry in storage.read_sync()]
                code = 0 if pending_ok and flushed and messages == ["child"] else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert handler.flush()
        assert [entry.message for entry in stored(storage)] == ["parent"]
    finally:
        handler.close()
