"""Store-and-forward export against a real loopback collector, with the faults collectors have.

Nothing is lost: a collector down for several intervals, an application restarted
with a backlog on SQLite, slow, malformed and failing answers; a refusal is
dropped and counted; memory stays bounded with a backlog of a million entries.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.e2e._export_support import PATIENCE, Collector, NdjsonExporter
else:
    from _export_support import PATIENCE, Collector, NdjsonExporter

from observabilipy.core import EmbeddedRuntime, Registry, info
from observabilipy.core.http.health import health_sync
from observabilipy.sqlite import SQLiteLogStorage

HERE = Path(__file__).resolve().parent

# Quick pacing: an outage spans many intervals and retries within a test's second.
FAST: dict[str, Any] = {
    "export_interval": 0.05,
    "export_backoff_initial": 0.01,
    "export_backoff_max": 0.05,
}


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[SQLiteLogStorage]:
    logs = SQLiteLogStorage(tmp_path / "obs.db", registry=Registry())
    yield logs
    logs.close_sync()


def metric(registry: Registry, name: str, **labels: str) -> float:
    for sample in registry.snapshot():
        if sample.name == name and sample.labels == labels:
            return sample.value
    return 0.0


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.01)


def test_a_collector_down_for_several_intervals_gets_everything_once_when_back(
    storage: SQLiteLogStorage, collector: Collector
) -> None:
    registry = Registry()
    exporter = NdjsonExporter(collector.url)
    failures = {"exporter": "ndjson", "signal": "logs", "reason": "retryable"}
    with EmbeddedRuntime(
        log_storage=storage, exporters=[exporter], registry=registry, export_batch_size=50, **FAST
    ) as runtime:
        storage.write_many_sync([info(f"before {n}") for n in range(120)])
        collector.wait_for(120)

        collector.down()
        for n in range(6):  # written across the outage, many intervals long
            storage.write_many_sync([info(f"during {n}.{k}") for k in range(40)])
            seen = metric(registry, "observabilipy_export_failures_total", **failures)
            wait_until(
                lambda: metric(registry, "observabilipy_export_failures_total", **failures) > seen  # noqa: B023
            )
        wait_until(lambda: runtime.status()["exporters"]["ndjson"]["backlog"] == 240)
        status, body = health_sync(runtime=runtime)
        component = json.loads(body)["components"]["runtime"]
        assert (status, component["status"]) == (200, "warn")
        assert "240 items wait in local storage" in component["warning"]
        assert collector.stored() == 120

        collector.up()
        collector.wait_for(360)
        wait_until(lambda: runtime.status()["exporters"]["ndjson"]["backlog"] == 0)
    assert collector.ids() == list(range(1, 361))  # every entry, once, in order
    assert storage.load_cursor_sync("ndjson") == 360
    labels = {"exporter": "ndjson", "signal": "logs"}
    assert metric(registry, "observabilipy_export_items_total", **labels) == 360
    assert metric(registry, "observabilipy_export_failures_total", **failures) >= 6


APP = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from _export_support import NdjsonExporter
    from observabilipy.core import EmbeddedRuntime, Registry, info
    from observabilipy.sqlite import SQLiteLogStorage

    path, url, first, count = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    storage = SQLiteLogStorage(path, registry=Registry())
    runtime = EmbeddedRuntime(
        log_storage=storage, exporters=[NdjsonExporter(url, timeout=0.5)], registry=Registry(),
        export_interval=0.05, export_backoff_initial=0.01, export_backoff_max=0.05,
    )
    runtime.start()
    storage.write_many_sync([info(f"entry {n}") for n in range(first, first + count)])
    storage.flush()
    print("written", flush=True)
    sys.stdin.readline()  # the test says when to exit (without stopping anything itself)
    """
)


def run_app(db: Path, url: str, first: int, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", APP, str(HERE), str(db), url, str(first), str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(app: subprocess.Popen[str]) -> str:
    assert app.stdout is not None
    assert app.stdout.readline() == "written\n"
    return app.communicate("exit\n", timeout=PATIENCE)[1]


def test_an_application_restarted_with_a_backlog_resumes_from_its_cursor(
    tmp_path: Path, collector: Collector
) -> None:
    db = tmp_path / "obs.db"
    collector.down()
    stderr = finish(run_app(db, collector.url, first=0, count=300))  # exits with a backlog
    # The last attempt at interpreter exit is refused (ConnectError): the entries stay stored.
    assert "ndjson could not deliver logs (" in stderr
    assert "they stay in local storage" in stderr
    assert collector.stored() == 0

    collector.up()
    restarted = run_app(db, collector.url, first=300, count=50)
    collector.wait_for(350)
    finish(restarted)
    assert collector.ids() == list(range(1, 351))  # resumed at 301: nothing sent twice


IN_MEMORY_APP = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from _export_support import NdjsonExporter
    from observabilipy.core import EmbeddedRuntime, InMemoryLogStorage, Registry, info

    storage = InMemoryLogStorage()
    runtime = EmbeddedRuntime(
        log_storage=storage, exporters=[NdjsonExporter(sys.argv[2])], registry=Registry(),
        export_interval=3600,
    )
    runtime.start()
    storage.write_many_sync([info(f"entry {n}") for n in range(25)])
    # Exits without stopping anything: the runtime's exit hook makes the last export.
    """
)


def test_the_last_export_at_interpreter_exit_resolves_the_host_and_delivers(
    collector: Collector,
) -> None:
    # A host name, not an address: resolving it needs asyncio's executor, which refuses
    # work once the interpreter exits. In memory, what that last export misses is lost.
    url = collector.url.replace("127.0.0.1", "localhost")
    done = subprocess.run(
        [sys.executable, "-c", IN_MEMORY_APP, str(HERE), url],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    assert done.returncode == 0, done.stderr
    assert "could not deliver" not in done.stderr
    assert collector.ids() == list(range(1, 26))


@pytest.mark.parametrize(
    "fault",
    [
        "slow",
        "garbage",
        "bad-json",
        ("status", 500, {}),
        ("status", 502, {}),
        ("status", 503, {"retry-after": "0.05"}),
        ("status", 429, {"retry-after": "0"}),
    ],
    ids=["slow", "garbage", "bad-json", "500", "502", "503-retry-after", "429"],
)
def test_slow_malformed_and_failing_answers_are_retried_without_loss(
    storage: SQLiteLogStorage, collector: Collector, fault: object
) -> None:
    collector.plan = [fault, fault]
    collector.slow_seconds = 0.5
    registry = Registry()
    exporter = NdjsonExporter(collector.url, timeout=0.2)
    storage.write_many_sync([info(f"entry {n}") for n in range(25)])
    with EmbeddedRuntime(
        log_storage=storage, exporters=[exporter], registry=registry, export_batch_size=10, **FAST
    ):
        collector.wait_for(25)
    assert collector.ids() == list(range(1, 26))
    assert collector.requests == 5  # two failed answers, then three batches
    # The exporter turns each (a timeout included) into a RetryableExportError.
    labels = {"exporter": "ndjson", "signal": "logs", "reason": "retryable"}
    assert metric(registry, "observabilipy_export_failures_total", **labels) == 2


def test_a_refused_batch_is_dropped_and_counted(
    storage: SQLiteLogStorage, collector: Collector
) -> None:
    collector.plan = [("status", 400, {})]
    registry = Registry()
    storage.write_many_sync([info(f"entry {n}") for n in range(25)])
    with EmbeddedRuntime(
        log_storage=storage,
        exporters=[NdjsonExporter(collector.url)],
        registry=registry,
        export_batch_size=10,
        **FAST,
    ) as runtime:
        collector.wait_for(15)
        wait_until(lambda: runtime.status()["exporters"]["ndjson"]["backlog"] == 0)
    assert collector.ids() == list(range(11, 26))  # the first batch was refused
    labels = {"exporter": "ndjson", "signal": "logs"}
    assert metric(registry, "observabilipy_export_dropped_total", **labels) == 10
    assert (
        metric(registry, "observabilipy_export_failures_total", reason="permanent", **labels) == 1
    )
    assert metric(registry, "observabilipy_export_items_total", **labels) == 15


MEMORY_APP = textwrap.dedent(
    """
    import resource, sys
    sys.path.insert(0, sys.argv[1])
    from _export_support import NdjsonExporter
    from observabilipy.core import EmbeddedRuntime, Registry
    from observabilipy.sqlite import SQLiteLogStorage

    storage = SQLiteLogStorage(sys.argv[2], registry=Registry())
    runtime = EmbeddedRuntime(
        log_storage=storage, exporters=[NdjsonExporter(sys.argv[3], timeout=30)],
        registry=Registry(), export_batch_size=int(sys.argv[4]),
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    exported = runtime.export_now()["ndjson"]["logs"]  # until the collector says 503
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    backlog = runtime.status()["exporters"]["ndjson"]["backlog"]
    runtime.stop()
    print(exported, backlog, (peak - before) * 1024)
    """
)

BACKLOG = 1_000_000
BATCH = 10_000
BATCHES = 20  # then the collector answers 503: enough to show whether memory grows


def test_memory_stays_bounded_with_a_backlog_of_a_million_entries(
    tmp_path: Path, collector: Collector
) -> None:
    db = tmp_path / "obs.db"
    SQLiteLogStorage(db, registry=Registry()).close_sync()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO logs (timestamp, level, message, attributes) "
            "SELECT 1700000000.0 + i, 'INFO', 'request handled in ' || i || ' ms', "
            """'{"path":"/api/orders","status":200}' FROM n""",
            (BACKLOG,),
        )
    conn.close()
    collector.plan = ["ok"] * BATCHES + [("status", 503, {})]
    child = subprocess.run(
        [sys.executable, "-c", MEMORY_APP, str(HERE), str(db), collector.url, str(BATCH)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.returncode == 0, child.stderr
    exported, backlog, growth = map(int, child.stdout.split())
    assert exported == BATCH * BATCHES
    assert backlog == BACKLOG - exported
    assert collector.ids() == list(range(1, exported + 1))
    # Reading the whole backlog into entries takes over 600 MiB, keeping what was
    # exported over 100 MiB; one batch of entries and its NDJSON a few MiB.
    assert growth < 64 * 1024 * 1024, f"resident memory grew by {growth / 2**20:.0f} MiB"
