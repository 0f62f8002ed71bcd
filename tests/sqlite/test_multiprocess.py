"""Many processes, one truth: exposition merged over a shared SQLite file, and compaction.

The first tests store snapshots through real storages into a real file, each
under the incarnation (pid, host, start) a rule needs, with live and ended
helper processes for the pids; the last ones run real OS processes: workers
counting with the runtime, one of them restarted, a fresh process reading the
exact totals, and live workers holding gauges.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from observabilipy.core.metrics import Registry
from observabilipy.sqlite.metrics import SQLiteMetricsStorage
from observabilipy.sqlite.multiprocess import RETIRED, compact, encode_exposition

WORKERS = Path(__file__).with_name("_workers.py")
HOST = socket.gethostname()
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian package 'prometheus'; .ci/run installs it)",
)
needs_posix = pytest.mark.skipif(os.name != "posix", reason="liveness is judged by pid on POSIX")

Series = tuple[str, frozenset[tuple[str, str]]]


# --- helpers --------------------------------------------------------------------------------------


def parse(text: str, *, openmetrics: bool = False) -> dict[Series, float]:
    """{(sample name, labels): value} of an exposition text, read by prometheus_client."""
    families = (parse_openmetrics if openmetrics else parse_text)(text)
    return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}


def promtool_check(text: str) -> None:
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"promtool says:\n{result.stdout}{result.stderr}\n---\n{text}"


def s(name: str, **labels: str) -> Series:
    return name, frozenset(labels.items())


def put(
    path: Path,
    process: str,
    registry: Registry,
    timestamp: float,
    *,
    pid: int,
    hostname: str = HOST,
    started: float | None = None,
) -> None:
    """Store ``registry``'s snapshot as incarnation ``process`` of ``pid`` on ``hostname``.

    The rows are written by a real storage, then given the incarnation's name.
    ``started`` defaults to now (after ``pid``'s process started: it is alive).
    """
    writer = SQLiteMetricsStorage(path, registry=registry)
    writer.write_many_sync(registry.snapshot(timestamp))
    writer.close_sync()
    conn = sqlite3.connect(path)
    with conn:
        for table in ("metric_latest", "metric_samples"):
            conn.execute(
                f"UPDATE {table} SET process = ? WHERE process = ?", (process, writer.process)
            )
        conn.execute(
            "UPDATE metric_processes SET process = ?, hostname = ?, pid = ?, started = ? "
            "WHERE process = ?",
            (process, hostname, pid, time.time() if started is None else started, writer.process),
        )
    conn.close()


def rows(path: Path, sql: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def recorded(jobs: dict[str, float], observed: Iterable[float] = ()) -> Registry:
    """A registry with ``jobs`` counted per queue and ``observed`` in a histogram (if any)."""
    registry = Registry()
    counter = registry.counter("jobs", "Jobs done", labelnames=("queue",))
    for queue, amount in jobs.items():
        counter.labels(queue=queue).inc(amount)
    if observed:
        latency = registry.histogram("job_seconds", "Job duration", buckets=(0.5, 1.0))
        for value in observed:
            latency.observe(value)
    return registry


def exposition_without_compacting(path: Path) -> str:
    """The exposition as a process that cannot write sees it (so it folds nothing)."""
    reader = SQLiteMetricsStorage(path, read_only=True)
    try:
        return encode_exposition(reader)
    finally:
        reader.close_sync()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "obs.db"


@pytest.fixture
def storage(path: Path) -> Iterator[SQLiteMetricsStorage]:
    storage = SQLiteMetricsStorage(path)
    yield storage
    storage.close_sync()


def started_process() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"])


@pytest.fixture
def live_pids() -> Iterator[list[int]]:
    """Pids of three processes that stay alive during the test."""
    children = [started_process() for _ in range(3)]
    yield [child.pid for child in children]
    for child in children:
        child.kill()
        child.wait()


def ended_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    child = started_process()
    child.kill()
    child.wait()
    return child.pid


# --- summing counters and histograms --------------------------------------------------------------


def test_counters_and_histograms_are_summed_over_incarnations(
    path: Path, storage: SQLiteMetricsStorage, live_pids: list[int]
) -> None:
    put(path, "a", recorded({"mail": 3, "sms": 1}, [0.25, 2.0]), 10.0, pid=live_pids[0])
    put(path, "b", recorded({"mail": 4}, [0.75]), 20.0, pid=live_pids[1])
    put(path, "c", recorded({"sms": 10}), 30.0, pid=live_pids[2], hostname="elsewhere")

    values = parse(encode_exposition(storage))

    assert values == {
        s("jobs_total", queue="mail"): 7.0,
        s("jobs_total", queue="sms"): 11.0,
        s("job_seconds_bucket", le="0.5"): 1.0,
        s("job_seconds_bucket", le="1.0"): 2.0,
        s("job_seconds_bucket", le="+Inf"): 3.0,
        s("job_seconds_count"): 3.0,
        s("job_seconds_sum"): 3.0,
    }


def test_histogram_lines_are_ordered_per_series(
    path: Path, storage: SQLiteMetricsStorage, live_pids: list[int]
) -> None:
    registry = Registry()
    sizes = registry.histogram("size_bytes", "Sizes", labelnames=("kind",), buckets=(10, 1e6))
    sizes.labels(kind="a").observe(5)
    sizes.labels(kind="b").observe(2e6)
    put(path, "a", registry, 1.0, pid=live_pids[0])

    lines = encode_exposition(storage).splitlines()

    assert lines == [
        "# HELP size_bytes Sizes",
        "# TYPE size_bytes histogram",
        'size_bytes_bucket{kind="a",le="10.0"} 1.0',
        'size_bytes_bucket{kind="a",le="1e+06"} 1.0',
        'size_bytes_bucket{kind="a",le="+Inf"} 1.0',
        'size_bytes_count{kind="a"} 1.0',
        'size_bytes_sum{kind="a"} 5.0',
        'size_bytes_bucket{kind="b",le="10.0"} 0.0',
        'size_bytes_bucket{kind="b",le="1e+06"} 0.0',
        'size_bytes_bucket{kind="b",le="+Inf"} 1.0',
        'size_bytes_count{kind="b"} 1.0',
        'size_bytes_sum{kind="b"} 2e+06',
    ]


def test_awkward_labels_help_and_units_pass_promtool_and_both_parsers(
    path: Path, storage: SQLiteMetricsStorage, live_pids: list[int]
) -> None:
    awkward = 'say "hi" \\ then\nleave, é ☃'
    registry = Registry()
    sent = registry.counter("sent", 'Help with \\ and\n"quotes"', labelnames=("to",))
    sent.labels(awkward).inc(2)
    wait = registry.histogram("wait", "Wait", unit="seconds", labelnames=("to",))
    wait.labels(awkward).observe(1)
    registry.gauge("temperature", labelnames=("room",)).labels(awkward).set(-1.5e7)
    put(path, "a", registry, 1.0, pid=live_pids[0])
    put(path, "b", registry, 2.0, pid=live_pids[1])

    text = encode_exposition(storage)
    openmetrics = encode_exposition(storage, openmetrics=True)

    assert parse(text)[s("sent_total", to=awkward)] == 4.0
    assert parse(openmetrics, openmetrics=True)[s("wait_seconds_count", to=awkward)] == 2.0
    assert parse(text)[s("temperature", room=awkward)] == -1.5e7
    assert "# UNIT wait_seconds seconds" in openmetrics
    assert openmetrics.endswith("# EOF\n")
    assert "# TYPE sent counter" in openmetrics
    assert "# TYPE sent_total counter" in text
    if PROMTOOL is not None:
        promtool_check(text)


def test_rows_of_a_redefined_kind_are_left_out(
    path: Path, storage: SQLiteMetricsStorage, live_pids: list[int]
) -> None:
    # An old deploy had `jobs` as a gauge; the newest writer says counter: one TYPE is shown.
    old = Registry()
    old.gauge("jobs", "Jobs").set(99)
    put(path, "old", old, 1.0, pid=live_pids[0])
    put(path, "new", recorded({"mail": 2}), 2.0, pid=live_pids[1])

    text = encode_exposition(storage)

    assert parse(text) == {s("jobs_total", queue="mail"): 2.0}
    assert text.count("# TYPE ") == 1


def test_exposition_reads_latest_points_never_the_history(
    path: Path, storage: SQLiteMetricsStorage, live_pids: list[int]
) -> None:
    put(path, "a", recorded({"mail": 1}, [0.25]), 1.0, pid=live_pids[0])
    put(path, "b", gauges(1.0), 1.0, pid=live_pids[1])
    tables: set[str] = set()

    def note_reads(action: int, table: str | None, *_: object) -> int:
        if action == sqlite3.SQLITE_READ and table is not None:
            tables.add(table)
        return sqlite3.SQLITE_OK

    # The reader connection of this thread is the one the exposition uses.
    storage.database.read(lambda conn: conn.set_authorizer(note_reads))
    try:
        encode_exposition(storage)
    finally:
        storage.database.read(lambda conn: conn.set_authorizer(None))

    assert tables == {"metric_latest", "metric_families", "metric_processes"}


def test_an_empty_file_exposes_nothing(storage: SQLiteMetricsStorage) -> None:
    assert encode_exposition(storage) == ""
    assert encode_exposition(storage, openmetrics=True) == "# EOF\n"


# --- gauges ---------------------------------------------------------------------------------------

MODES = {f"{mode}_mode": mode for mode in ("sum", "max", "min", "latest", "all")}


def gauges(value: float) -> Registry:
    """A registry with one gauge per multiprocess mode, each set to ``value``."""
    registry = Registry()
    for name, mode in MODES.items():
        registry.gauge(name, f"{mode} gauge", multiprocess_mode=mode).set(value)
    return registry


def test_gauge_modes_combine_live_processes(
    path: Path, storage: SQLiteMetricsStorage, live_pids: list[int]
) -> None:
    first, second, third = live_pids
    put(path, "a", gauges(1.0), 10.0, pid=first)
    put(path, "b", gauges(5.0), 30.0, pid=second)
    put(path, "c", gauges(3.0), 20.0, pid=third)
    put(path, "gone", gauges(100.0), 40.0, pid=ended_pid())

    values = parse(encode_exposition(storage))

    # The ended process's gauges do not count, except `latest`: its value was the newest.
    assert values == {
        s("sum_mode"): 9.0,
        s("max_mode"): 5.0,
        s("min_mode"): 1.0,
        s("latest_mode"): 100.0,
        s("all_mode", process=str(first)): 1.0,
        s("all_mode", process=str(second)): 5.0,
        s("all_mode", process=str(third)): 3.0,
    }


def test_nan_makes_a_sum_nan_and_is_skipped_by_max_and_min(
    path: Path, storage: SQLiteMetricsStorage, live_pids: list[int]
) -> None:
    put(path, "a", gauges(math.nan), 10.0, pid=live_pids[0])
    put(path, "b", gauges(2.0), 5.0, pid=live_pids[1])

    values = parse(encode_exposition(storage))

    assert math.isnan(values[s("sum_mode")])
    assert values[s("max_mode")] == values[s("min_mode")] == 2.0
    assert math.isnan(values[s("latest_mode")])


def test_mode_all_names_other_hosts_processes_by_host_and_pid(
    path: Path, storage: SQLiteMetricsStorage
) -> None:
    # A pid of another host may equal one of ours: the label keeps the two series apart.
    put(path, "here", gauges(1.0), 1.0, pid=os.getpid())
    put(path, "there", gauges(2.0), 1.0, pid=os.getpid(), hostname='far "away"')

    text = encode_exposition(storage)

    assert parse(text)[s("all_mode", process=str(os.getpid()))] == 1.0
    assert parse(text)[s("all_mode", process=f'far "away"/{os.getpid()}')] == 2.0
    if PROMTOOL is not None:
        promtool_check(text)


# --- this process, live -----------------------------------------------------------------------------


def test_own_registry_replaces_own_stored_rows(
    path: Path, storage: SQLiteMetricsStorage, live_pids: list[int]
) -> None:
    put(path, "other", recorded({"mail": 10}, [0.25]), 1.0, pid=live_pids[0])
    mine = recorded({"mail": 5, "sms": 1}, [2.0])
    storage.write_many_sync(mine.snapshot())  # stored under this process's incarnation
    storage.database.flush()
    mine.counter("jobs", labelnames=("queue",)).labels(queue="mail").inc(2)  # not snapshotted
    mine.histogram("job_seconds", buckets=(0.5, 1.0)).observe(0.75)

    file_only = parse(encode_exposition(storage))
    live = parse(encode_exposition(storage, registry=mine))

    assert file_only[s("jobs_total", queue="mail")] == 15.0
    assert live[s("jobs_total", queue="mail")] == 17.0  # 10 + 7, the stored 5 not counted twice
    assert live[s("jobs_total", queue="sms")] == 1.0
    assert live[s("job_seconds_count")] == 3.0
    assert live[s("job_seconds_bucket", le="0.5")] == 1.0
    assert live[s("job_seconds_bucket", le="1.0")] == 2.0
    assert live[s("job_seconds_sum")] == 3.0


def test_own_registry_gauges_join_each_mode(
    path: Path, storage: SQLiteMetricsStorage, live_pids: list[int]
) -> None:
    put(path, "a", gauges(1.0), 10.0, pid=live_pids[0])
    put(path, "b", gauges(5.0), 20.0, pid=live_pids[1])
    mine = Registry()
    for name, mode in MODES.items():
        mine.gauge(name, f"{mode} gauge", multiprocess_mode=mode).set(7.0)
    mine.gauge("mine_only", "Only here").set(-2)

    values = parse(encode_exposition(storage, registry=mine))

    assert values == {
        s("sum_mode"): 13.0,
        s("max_mode"): 7.0,
        s("min_mode"): 1.0,
        s("latest_mode"): 7.0,  # as of now: newer than any stored point
        s("all_mode", process=str(live_pids[0])): 1.0,
        s("all_mode", process=str(live_pids[1])): 5.0,
        s("all_mode", process=str(os.getpid())): 7.0,
        s("mine_only"): -2.0,
    }


# --- compaction -----------------------------------------------------------------------------------


def test_compact_folds_dead_incarnations_and_keeps_the_totals(
    path: Path, storage: SQLiteMetricsStorage, live_pids: list[int]
) -> None:
    put(path, "dead-1", recorded({"mail": 3}, [0.25]), 1.0, pid=ended_pid())
    put(path, "dead-2", recorded({"mail": 4, "sms": 2}, [2.0]), 2.0, pid=ended_pid())
    put(path, "live", recorded({"mail": 5}), 3.0, pid=live_pids[0])
    put(path, "remote", recorded({"sms": 7}), 4.0, pid=ended_pid(), hostname="far")
    put(path, "dead-g", gauges(4.0), 50.0, pid=ended_pid())
    before = exposition_without_compacting(path)

    assert compact(storage) == 3
    assert compact(storage) == 0

    assert encode_exposition(storage) == before
    processes = {row[0] for row in rows(path, "SELECT process FROM metric_processes")}
    assert processes == {"live", "remote", RETIRED}
    retired = {
        (name, text): value
        for name, text, value in rows(
            path, f"SELECT name, label_text, value FROM metric_latest WHERE process = '{RETIRED}'"
        )
    }
    assert retired[("jobs_total", 'queue="mail"')] == 7.0
    assert retired[("jobs_total", 'queue="sms"')] == 2.0
    assert retired[("job_seconds_count", "")] == 2.0
    # Only `latest` gauges outlive their process.
    assert retired[("latest_mode", "")] == 4.0
    assert ("sum_mode", "") not in retired


def test_folding_again_adds_to_the_retired_totals(
    path: Path, storage: SQLiteMetricsStorage
) -> None:
    put(path, "first", recorded({"mail": 3}), 1.0, pid=ended_pid())
    assert compact(storage) == 1
    put(path, "second", recorded({"mail": 4}), 2.0, pid=ended_pid())
    put(path, "new-gauge", gauges(2.0), 9.0, pid=ended_pid())
    put(path, "old-gauge", gauges(1.0), 0.5, pid=ended_pid())
    assert compact(storage) == 3

    values = parse(encode_exposition(storage))

    assert values[s("jobs_total", queue="mail")] == 7.0
    assert values[s("latest_mode")] == 2.0  # the newer of the two folded values


def test_an_older_incarnation_of_a_reused_pid_is_dead(
    path: Path, storage: SQLiteMetricsStorage, live_pids: list[int]
) -> None:
    # The incarnation was made before the process now holding its pid started.
    pid = live_pids[0]
    put(path, "before-reuse", recorded({"mail": 3}), 1.0, pid=pid, started=time.time() - 3600)
    put(path, "reused", recorded({"mail": 4}), 2.0, pid=pid)

    assert compact(storage) == 1

    assert {row[0] for row in rows(path, "SELECT process FROM metric_processes")} == {
        "reused",
        RETIRED,
    }
    assert parse(encode_exposition(storage))[s("jobs_total", queue="mail")] == 7.0


def test_this_process_is_never_folded(path: Path, storage: SQLiteMetricsStorage) -> None:
    registry = recorded({"mail": 1})
    storage.write_many_sync(registry.snapshot())
    storage.database.flush()
    # A later incarnation registered with our pid (another storage object, say).
    put(path, "newer", gauges(1.0), 1.0, pid=os.getpid(), started=time.time() + 60)

    compact(storage)

    assert storage.process in {row[0] for row in rows(path, "SELECT process FROM metric_processes")}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux process start times")
def test_two_storages_of_one_process_are_both_alive(path: Path) -> None:
    # Each storage is an incarnation of this process: neither may be folded while
    # the other writes, or its next snapshot would be counted twice.
    first, second = Registry(), Registry()
    first.counter("a", "A").inc()
    second.counter("b", "B").inc()
    a, b = SQLiteMetricsStorage(path, registry=first), SQLiteMetricsStorage(path, registry=second)
    try:
        a.write_many_sync(first.snapshot(), durable=True)
        b.write_many_sync(second.snapshot(), durable=True)
        assert compact(b) == 0
        a.write_many_sync(first.snapshot(), durable=True)

        assert parse(encode_exposition(b)) == {s("a_total"): 1.0, s("b_total"): 1.0}
    finally:
        a.close_sync()
        b.close_sync()


def test_a_new_storage_compacts_the_file(path: Path, storage: SQLiteMetricsStorage) -> None:
    put(path, "dead", recorded({"mail": 3}), 1.0, pid=ended_pid())
    fresh = SQLiteMetricsStorage(path)
    try:
        assert parse(encode_exposition(fresh)) == {s("jobs_total", queue="mail"): 3.0}
        fresh.database.flush()
    finally:
        fresh.close_sync()

    assert {row[0] for row in rows(path, "SELECT process FROM metric_processes")} == {RETIRED}


# --- real processes -------------------------------------------------------------------------------

# What each worker process records: {queue: {"jobs": increments, "observed": observations}}.
# Worker 2 is restarted midway: one process records its first half, a new one the second.
PLANS = [
    [{"mail": {"jobs": 30, "observed": 12}, "sms": {"jobs": 11, "observed": 5}}],
    [{"mail": {"jobs": 17, "observed": 20}, "sms": {"jobs": 40, "observed": 3}}],
    [
        {"mail": {"jobs": 25, "observed": 7}, "sms": {"jobs": 9, "observed": 10}},
        {"mail": {"jobs": 13, "observed": 6}, "sms": {"jobs": 21, "observed": 4}},
    ],
    [{"mail": {"jobs": 8, "observed": 30}, "sms": {"jobs": 26, "observed": 14}}],
]
# As in _workers.py: the histogram's bounds, and the values each queue's observations cycle through.
BUCKETS = (0.5, 1.0, 2.5)
OBSERVED = (0.25, 0.75, 2.0, 4.0)


def expected_totals() -> dict[Series, float]:
    """The exact exposition the plans must add up to."""
    jobs: dict[str, int] = {}
    observed: dict[str, list[float]] = {}
    for worker in PLANS:
        for plan in worker:
            for queue, n in plan.items():
                jobs[queue] = jobs.get(queue, 0) + n["jobs"]
                values = [OBSERVED[k % len(OBSERVED)] for k in range(n["observed"])]
                observed.setdefault(queue, []).extend(values)
    totals = {s("jobs_total", queue=queue): float(n) for queue, n in jobs.items()}
    for queue, values in observed.items():
        for bound, le in zip((*BUCKETS, math.inf), ("0.5", "1.0", "2.5", "+Inf"), strict=True):
            totals[s("job_seconds_bucket", queue=queue, le=le)] = float(
                sum(v <= bound for v in values)
            )
        totals[s("job_seconds_count", queue=queue)] = float(len(values))
        totals[s("job_seconds_sum", queue=queue)] = sum(values)
    return totals


def worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKERS), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    return out


def run_workers(path: Path) -> None:
    """Run each worker's plans; a worker's next plan runs in a new process once the last ends.

    The replacement process is started (imports done) beforehand and told to go
    when its predecessor has ended, as a process manager replaces a worker.
    """
    running = [worker("count", str(path), json.dumps(plans[0])) for plans in PLANS]
    standby = [
        [worker("count", str(path), json.dumps(plan), "standby") for plan in plans[1:]]
        for plans in PLANS
    ]
    for index, replacements in enumerate(standby):
        for replacement in replacements:
            finish(running[index])  # the worker ends (its runtime takes a last snapshot) ...
            assert replacement.stdin is not None
            replacement.stdin.write("go\n")  # ... and a new process takes over
            replacement.stdin.flush()
            running[index] = replacement
    for process in running:
        finish(process)


class WorkerRun(NamedTuple):
    """What the four workers left: the file, the test process's polls, a fresh process's texts."""

    path: Path
    polls: list[dict[Series, float]]
    text: str
    openmetrics: str


@pytest.fixture(scope="module")
def worker_run(tmp_path_factory: pytest.TempPathFactory) -> WorkerRun:
    """Four worker processes count into one file, one of them restarted midway.

    Meanwhile the test process polls the exposition (and folds ended
    incarnations, the restarted worker's first run among them).  Then a fresh
    process that recorded nothing prints the exposition, in both formats.
    """
    path = tmp_path_factory.mktemp("workers") / "obs.db"
    storage = SQLiteMetricsStorage(path)
    polls: list[dict[Series, float]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            polls.append(parse(encode_exposition(storage)))
            compact(storage, wait=False)
            time.sleep(0.01)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        run_workers(path)
    finally:
        done.set()
        poller.join()
        storage.close_sync()
    text = finish(worker("expose", str(path)))
    openmetrics = finish(worker("expose", str(path), "openmetrics"))
    return WorkerRun(path, polls, text, openmetrics)


@pytest.fixture
def run_copy(worker_run: WorkerRun, tmp_path: Path) -> Iterator[SQLiteMetricsStorage]:
    """A storage on a copy of the workers' file, for a test that changes it."""
    copy = tmp_path / "copy.db"
    source, target = sqlite3.connect(worker_run.path), sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.close()
    storage = SQLiteMetricsStorage(copy)
    yield storage
    storage.close_sync()


def test_a_fresh_process_sees_the_exact_totals(worker_run: WorkerRun) -> None:
    assert parse(worker_run.text) == expected_totals()
    assert parse(worker_run.openmetrics, openmetrics=True) == expected_totals()
    # Five incarnations wrote: the four workers and the restarted one's successor.
    assert rows(worker_run.path, "SELECT count(DISTINCT process) FROM metric_samples") == [(5,)]


@needs_promtool
def test_the_workers_exposition_passes_promtool(worker_run: WorkerRun) -> None:
    promtool_check(worker_run.text)


def test_no_counter_goes_down_while_workers_run_and_restart(worker_run: WorkerRun) -> None:
    # The polls saw the work in progress ...
    mail = s("jobs_total", queue="mail")
    assert any(0 < poll.get(mail, 0) < expected_totals()[mail] for poll in worker_run.polls)
    # ... and no counter, bucket or count ever went down.
    for earlier, later in itertools.pairwise(worker_run.polls):
        for series, value in earlier.items():
            assert later.get(series, 0.0) >= value, series


def test_folding_the_ended_workers_keeps_the_totals(
    worker_run: WorkerRun, run_copy: SQLiteMetricsStorage
) -> None:
    compact(run_copy)  # every worker has ended (some may have been folded already)

    assert parse(encode_exposition(run_copy)) == expected_totals()
    processes = run_copy.database.read(
        lambda conn: conn.execute("SELECT DISTINCT process FROM metric_latest").fetchall()
    )
    assert processes == [(RETIRED,)]


def test_a_live_worker_adds_what_it_has_not_snapshotted_yet(
    run_copy: SQLiteMetricsStorage,
) -> None:
    # This process joins as a worker: it snapshots 5 jobs, then does 2 more.
    mine = Registry()
    jobs = mine.counter("jobs", "Jobs done", labelnames=("queue",)).labels(queue="mail")
    jobs.inc(5)
    run_copy.write_many_sync(mine.snapshot())
    jobs.inc(2)
    mail = s("jobs_total", queue="mail")

    assert parse(encode_exposition(run_copy))[mail] == expected_totals()[mail] + 5
    live = parse(encode_exposition(run_copy, registry=mine))
    assert live == {**expected_totals(), mail: expected_totals()[mail] + 7}


@needs_posix
def test_gauges_of_live_worker_processes(path: Path, storage: SQLiteMetricsStorage) -> None:
    values = (1.0, 5.0, 3.0)  # written in this order: the last one is the latest
    workers = []
    for value in values:
        process = worker("gauge", str(path), str(value))
        assert process.stdout is not None
        assert process.stdout.readline().startswith("ready")
        workers.append(process)
    pids = [str(process.pid) for process in workers]
    try:
        assert parse(encode_exposition(storage)) == {
            s("sum_mode"): 9.0,
            s("max_mode"): 5.0,
            s("min_mode"): 1.0,
            s("latest_mode"): 3.0,
            **{s("all_mode", process=pid): value for pid, value in zip(pids, values, strict=True)},
        }
        finish(workers[2])  # the latest writer ends: its `latest` value stays

        assert parse(encode_exposition(storage)) == {
            s("sum_mode"): 6.0,
            s("max_mode"): 5.0,
            s("min_mode"): 1.0,
            s("latest_mode"): 3.0,
            s("all_mode", process=pids[0]): 1.0,
            s("all_mode", process=pids[1]): 5.0,
        }
        assert compact(storage) == 1
        finish(workers[0])
        finish(workers[1])
        assert compact(storage) == 2
        assert parse(encode_exposition(storage)) == {s("latest_mode"): 3.0}
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()
                process.communicate()
