"""Bad files fail at open naming the path; read-only, full or locked files cost writes, never the app."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from observabilipy.core import ObservabilipyHandler, Registry, info
from observabilipy.core.testing import sample
from observabilipy.sqlite import (
    SQLiteDatabase,
    SQLiteLogStorage,
    SQLiteMetricsStorage,
    SQLiteStorageError,
)
from observabilipy.sqlite import schema as schema_module
from observabilipy.sqlite.schema import Migration

Connect = Callable[[Path], sqlite3.Connection]

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
NOBODY = 65534


def _dropped(registry: Registry) -> dict[str, float]:
    if registry.get("observabilipy_dropped_total") is None:
        return {}
    family = registry.counter("observabilipy_dropped_total", labelnames=("component", "reason"))
    return {
        child._labels["reason"]: child.value
        for child in family._children_snapshot()
        if child._labels["component"] == "sqlite_writer"
    }


def _filled(path: Path, entries: int = 3) -> None:
    storage = SQLiteLogStorage(path, registry=Registry())
    storage.write_many_sync(info("kept", n=n) for n in range(entries))
    storage.close_sync()


# --- files that are not usable databases ----------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [os.urandom(16_384), b"this is a text file, not a database\n" * 200],
    ids=["random bytes", "text"],
)
@pytest.mark.parametrize("opener", [SQLiteDatabase, SQLiteLogStorage, SQLiteMetricsStorage])
def test_a_file_that_is_not_a_database_fails_at_open_naming_it(
    db_path: Path, content: bytes, opener: Callable[[Path], object]
) -> None:
    db_path.write_bytes(content)
    with pytest.raises(SQLiteStorageError) as caught:
        opener(db_path)
    assert caught.value.path == str(db_path)
    assert str(db_path) in str(caught.value)
    assert "not a SQLite database, or is corrupt" in str(caught.value)
    assert db_path.read_bytes() == content  # nothing was written into it


def test_a_database_with_a_damaged_schema_page_fails_at_open(db_path: Path) -> None:
    _filled(db_path)
    damaged = bytearray(db_path.read_bytes())
    damaged[100:1_000] = os.urandom(900)  # page 1 after the header: the schema b-tree
    db_path.write_bytes(bytes(damaged))
    with pytest.raises(SQLiteStorageError, match="corrupt") as caught:
        SQLiteLogStorage(db_path)
    assert str(db_path) in str(caught.value)


def test_a_folder_or_a_missing_folder_fails_at_open(tmp_path: Path) -> None:
    with pytest.raises(SQLiteStorageError, match="is a directory") as caught:
        SQLiteDatabase(tmp_path)
    assert caught.value.path == str(tmp_path)
    missing = tmp_path / "no such folder" / "obs.db"
    with pytest.raises(SQLiteStorageError, match="cannot be opened") as caught:
        SQLiteDatabase(missing)
    assert caught.value.path == str(missing)


def test_an_empty_file_becomes_a_database(db_path: Path) -> None:
    db_path.write_bytes(b"")
    storage = SQLiteLogStorage(db_path, registry=Registry())
    storage.write_sync(info("hi"))
    assert storage.count_sync() == 1
    storage.close_sync()


# --- read_only=True -------------------------------------------------------------------------------


def test_read_only_reads_and_drops_writes_with_one_warning(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _filled(db_path)
    registry = Registry()
    database = SQLiteDatabase(db_path, read_only=True, registry=registry)
    logs = SQLiteLogStorage(database)
    metrics = SQLiteMetricsStorage(database, registry=registry)
    assert database.read_only
    assert [e.attributes["n"] for e in logs.read_sync()] == [0, 1, 2]
    logs.write_sync(info("dropped"))
    logs.write_many_sync([info("dropped")] * 3)
    metrics.write_sync(sample("up", 1.0, 1, "gauge"))

    async def async_writes() -> int:
        await logs.write(info("dropped"), durable=True)
        return await logs.count()

    assert asyncio.run(async_writes()) == 3
    assert database.flush()
    assert logs.dropped == 6
    assert _dropped(registry) == {"read_only": 6.0}
    with pytest.raises(SQLiteStorageError, match="read_only"):
        logs.delete_oldest_sync(1)
    assert capsys.readouterr().err.count("dropping every write") == 1
    database.close()


def test_read_only_needs_an_existing_current_file(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SQLiteStorageError, match="does not exist"):
        SQLiteDatabase(db_path, read_only=True)
    assert not db_path.exists()
    _filled(db_path)
    upgraded = [
        *schema_module.MIGRATIONS,
        Migration(schema_module.SCHEMA_VERSION + 1, "later", lambda conn, path: None),
    ]
    monkeypatch.setattr(schema_module, "MIGRATIONS", upgraded)
    with pytest.raises(
        SQLiteStorageError,
        match=f"older than {schema_module.SCHEMA_VERSION + 1} and the file is opened read_only",
    ):
        SQLiteDatabase(db_path, read_only=True)


def test_a_logging_handler_into_a_read_only_database_never_raises(db_path: Path) -> None:
    _filled(db_path)
    registry = Registry()
    storage = SQLiteLogStorage(db_path, read_only=True, registry=registry)
    handler = ObservabilipyHandler(storage, registry=registry)
    logger = logging.getLogger("test.sqlite.read_only")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for n in range(10):
            logger.error("lost %d", n)
        assert handler.flush(timeout=5.0)
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert storage.dropped == 10
    assert storage.count_sync() == 3
    storage.close_sync()


# --- a read-only location, for real ---------------------------------------------------------------

_READ_ONLY_CHILD = """
    import json, os, sys
    from observabilipy.core import Registry, info
    from observabilipy.sqlite import SQLiteLogStorage

    path, as_nobody = sys.argv[1], sys.argv[2] == "1"
    if as_nobody:  # root ignores permissions: become a user they apply to
        os.setgid(65534)
        os.setuid(65534)
    registry = Registry()
    storage = SQLiteLogStorage(path, registry=registry, busy_timeout=0.5)
    for n in range(5):
        storage.write_sync(info("lost", n=n))
    storage.write_many_sync([info("lost")] * 5)
    flushed = storage.flush(timeout=5.0)
    family = registry.get("observabilipy_dropped_total")
    reasons = {c._labels["reason"]: c.value for c in family._children_snapshot()} if family else {}
    print(json.dumps({"flushed": flushed, "dropped": storage.dropped, "reasons": reasons,
                      "read_only": storage.database.read_only}))
    storage.close_sync()
"""


@pytest.fixture
def shared_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder the child's user can reach: as root, the child runs as nobody, for whom
    tmp_path's parents (0o700) are closed, so the folder is made in the system's temp dir."""
    folder = Path(tempfile.mkdtemp(prefix="observabilipy-read-only-")) if IS_ROOT else tmp_path
    folder.chmod(0o755)
    yield folder
    folder.chmod(0o755)
    if IS_ROOT:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("what", ["folder and file", "file"])
def test_a_read_only_location_drops_writes_and_the_app_keeps_running(
    shared_folder: Path, run_python: Callable[..., object], what: str
) -> None:
    path = shared_folder / "obs.db"
    _filled(path)
    path.chmod(0o444)
    if what == "folder and file":
        shared_folder.chmod(0o555)  # no file can be made there: not even SQLite's -shm
    elif IS_ROOT:
        os.chown(shared_folder, NOBODY, NOBODY)  # the folder is theirs, the file is not
    result = run_python(_READ_ONLY_CHILD, str(path), "1" if IS_ROOT else "0")
    report = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert report["dropped"] == 10
    assert report["reasons"] == {"read_only": 10.0}
    stderr = result.stderr  # type: ignore[attr-defined]
    assert stderr.count("observabilipy:") in (1, 2)  # one warning (and one at open)
    assert "Traceback" not in stderr
    shared_folder.chmod(0o755)
    path.chmod(0o644)
    storage = SQLiteLogStorage(path, registry=Registry())
    assert storage.count_sync() == 3  # nothing was written, nothing damaged
    storage.close_sync()


# --- a full disk ----------------------------------------------------------------------------------

_FULL_DISK_CHILD = """
    import json, os, resource, signal, sys
    from observabilipy.core import Registry, info
    from observabilipy.sqlite import SQLiteLogStorage

    # A file size limit makes writes past it fail with EFBIG, as a full disk fails them
    # with ENOSPC (SIGXFSZ would kill the process instead).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    path = sys.argv[1]
    registry = Registry()
    storage = SQLiteLogStorage(path, registry=registry, flush_interval=0.01)
    storage.write_many_sync(info("before", n=n) for n in range(100))
    assert storage.flush()
    largest = max(os.path.getsize(path + suffix) for suffix in ("", "-wal") if os.path.exists(path + suffix))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (largest + 8192, hard))
    flushes = []
    for n in range(10):  # the application goes on writing
        storage.write_many_sync(info("x" * 2000, n=n) for _ in range(50))
        flushes.append(storage.flush(timeout=5.0))
    during = storage.dropped
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # room again
    storage.write_sync(info("after"))
    recovered = storage.flush(timeout=5.0)
    family = registry.get("observabilipy_dropped_total")
    print(json.dumps({
        "flushes": flushes, "dropped": during, "recovered": recovered,
        "count": storage.count_sync(), "after": storage.dropped,
        "reasons": {c._labels["reason"]: c.value for c in family._children_snapshot()},
        "integrity": storage.database.read(lambda c: c.execute("PRAGMA integrity_check").fetchone()[0]),
    }))
    storage.close_sync()
"""


def test_a_full_disk_drops_writes_and_recovers_when_there_is_room(
    db_path: Path, run_python: Callable[..., object]
) -> None:
    result = run_python(_FULL_DISK_CHILD, str(db_path))
    report = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert not any(report["flushes"])  # each flush returned (False: its writes were lost)
    assert report["dropped"] == 500
    assert report["after"] == 500
    assert report["recovered"]
    assert report["count"] == 101
    assert set(report["reasons"]) <= {"io_error", "disk_full"}
    assert sum(report["reasons"].values()) == 500
    assert report["integrity"] == "ok"
    stderr = result.stderr  # type: ignore[attr-defined]
    assert stderr.count("could not write") == 1  # one warning per streak
    assert stderr.count("succeed again (500 items were dropped)") == 1


# --- a locked database ----------------------------------------------------------------------------


def test_a_locked_database_costs_the_batch_and_the_writer_goes_on(
    db_path: Path, raw_connection: Connect, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Registry()
    storage = SQLiteLogStorage(db_path, busy_timeout=0.1, registry=registry)
    storage.write_sync(info("first"), durable=True)
    blocker = raw_connection(db_path)
    blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    storage.write_many_sync([info("lost")] * 3)
    assert not storage.flush(timeout=5.0)
    assert _dropped(registry) == {"busy": 3.0}
    blocker.execute("ROLLBACK")
    storage.write_sync(info("second"))
    assert storage.flush()
    assert [e.message for e in storage.read_sync()] == ["first", "second"]
    err = capsys.readouterr().err
    assert "could not write 3 items" in err
    assert "succeed again (3 items were dropped)" in err
    storage.close_sync()


def test_flush_never_blocks_longer_than_its_timeout(db_path: Path, raw_connection: Connect) -> None:
    storage = SQLiteLogStorage(db_path, busy_timeout=30.0, registry=Registry())
    blocker = raw_connection(db_path)
    blocker.execute("BEGIN IMMEDIATE")
    storage.write_sync(info("waits"))
    assert not storage.flush(timeout=0.2)  # the writer waits for the lock: flush gives up
    assert not storage.flush(timeout=30.0)  # still stalled: answers at once
    blocker.execute("ROLLBACK")
    storage.write_sync(info("after"))
    # Until the writer finishes the batch it was stuck in, flush answers False at once;
    # then it waits again.
    for _ in range(100):
        if storage.flush(timeout=1.0):
            break
        time.sleep(0.05)
    assert storage.count_sync() == 2
    storage.close_sync()


# --- interpreter exit -----------------------------------------------------------------------------

_EXIT_CHILD = """
    import sqlite3, sys
    import observabilipy.sqlite.database as database
    from observabilipy.core import Registry, info
    from observabilipy.sqlite import SQLiteLogStorage

    path, locked = sys.argv[1], sys.argv[2] == "1"
    database._EXIT_TIMEOUT = 1.0  # the exit budget, shortened for the test
    storage = SQLiteLogStorage(path, registry=Registry(), flush_interval=60.0, busy_timeout=60.0)
    if locked:
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
    storage.write_many_sync(info("queued", n=n) for n in range(1000))
    print("exiting", flush=True)
    # no close(): the exit hook commits what is queued, within its budget
"""


def test_queued_writes_are_committed_at_exit(
    db_path: Path, run_python: Callable[..., object]
) -> None:
    run_python(_EXIT_CHILD, str(db_path), "0")
    storage = SQLiteLogStorage(db_path, registry=Registry())
    assert storage.count_sync() == 1000
    storage.close_sync()


def test_a_stuck_database_never_holds_the_process_at_exit(
    db_path: Path, run_python: Callable[..., object]
) -> None:
    # The writer waits 60 s for a lock that is never released; exit must not.
    result = run_python(_EXIT_CHILD, str(db_path), "1", timeout=20.0)
    assert result.returncode == 0  # type: ignore[attr-defined]
    assert "exiting" in result.stdout  # type: ignore[attr-defined]
