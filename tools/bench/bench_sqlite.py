"""SQLite storage: writes, the logging handler and NDJSON reads, beside their peers, in one run.

Run with ``python tools/bench/bench_sqlite.py`` (observabilipy-sqlite installed,
e.g. ``hatch run bench:python tools/bench/bench_sqlite.py``).  Each figure is
the best of 3 rounds on a fresh file in a temporary directory.  Prints the
figures, the ratios to the peers measured in the same run, and pass/fail for
each goal; exits 1 if a goal is missed.  (The NDJSON reads run 5 rounds,
alternating with their peer's.)

1. ``await storage.write(info(...))`` for 100,000 entries, timed until all
   are committed (flush included): goal 100,000 entries/s.  Peers: raw sqlite3
   ``executemany`` in transactions of 1,000 rows, and observabilipy 1.x's way
   (an aiosqlite connection and a commit per write) on 2,000 entries.
2. ``logging.info`` through ``ObservabilipyHandler`` into ``SQLiteLogStorage``:
   goal 50,000 records/s stored (timed until flushed), none lost.
3. ``read_ndjson_sync`` over 100,000 entries: goal 250,000 rows/s and 0.8 times
   a raw sqlite3 query building each row with SQL ``json_object()`` (the ratio
   of the reading thread's CPU time: the machine's other load cannot tilt it);
   peak memory (tracemalloc) for 10,000 and 100,000 rows must stay flat (goal:
   the larger read needs at most twice the memory of the smaller).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import aiosqlite

from observabilipy.core import ObservabilipyHandler, info
from observabilipy.core.metrics import Registry
from observabilipy.sqlite import SQLiteLogStorage
from observabilipy.sqlite.schema import ensure_schema

ENTRIES = 100_000
LEGACY_ENTRIES = 2_000
ROUNDS = 3
READ_ROUNDS = 5

WRITE_GOAL = 100_000.0
HANDLER_GOAL = 50_000.0
READ_GOAL = 250_000.0
READ_RATIO_GOAL = 0.8
MEMORY_GROWTH_GOAL = 2.0

_INSERT = "INSERT INTO logs (timestamp, level, message, attributes) VALUES (?, ?, ?, ?)"


def _entry(n: int) -> tuple[str, dict[str, object]]:
    return "request served", {"route": "/items", "status": 200, "n": n}


def _verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def _fresh(folder: Path, name: str) -> Path:
    path = folder / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _best(rounds: int, measure: Callable[[int], float]) -> float:
    """The highest rate of ``rounds`` runs (each on a fresh file)."""
    best = 0.0
    for number in range(rounds):
        gc.collect()
        best = max(best, measure(number))
    return best


# --- 1. writes ------------------------------------------------------------------------------------


def ours_async_writes(folder: Path) -> float:
    """``await storage.write(info(...))`` per entry, then flush: entries committed per second."""

    async def run(storage: SQLiteLogStorage) -> float:
        started = time.perf_counter()
        for n in range(ENTRIES):
            message, attributes = _entry(n)
            await storage.write(info(message, **attributes))
        if not await storage.aflush(timeout=120.0):
            raise RuntimeError("flush timed out")
        return ENTRIES / (time.perf_counter() - started)

    def measure(number: int) -> float:
        storage = SQLiteLogStorage(_fresh(folder, f"ours-{number}.db"), registry=Registry())
        try:
            rate = asyncio.run(run(storage))
            stored = storage.count_sync()
        finally:
            storage.close_sync()
        if stored != ENTRIES or storage.dropped:
            raise RuntimeError(f"stored {stored} of {ENTRIES} (dropped {storage.dropped})")
        return rate

    return _best(ROUNDS, measure)


def _raw_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    ensure_schema(conn, str(path))  # the same table and indexes as ours
    return conn


def raw_executemany(folder: Path) -> float:
    """Plain sqlite3: prepared tuples, executemany, one transaction per 1,000 rows."""
    now = time.time()
    rows = [
        (now + n * 1e-6, "INFO", "request served", f'{{"route":"/items","status":200,"n":{n}}}')
        for n in range(ENTRIES)
    ]

    def measure(number: int) -> float:
        conn = _raw_connection(_fresh(folder, f"raw-{number}.db"))
        started = time.perf_counter()
        for start in range(0, ENTRIES, 1_000):
            conn.execute("BEGIN")
            conn.executemany(_INSERT, rows[start : start + 1_000])
            conn.execute("COMMIT")
        rate = ENTRIES / (time.perf_counter() - started)
        conn.close()
        return rate

    return _best(ROUNDS, measure)


def legacy_per_write(folder: Path) -> float:
    """observabilipy 1.x: a new aiosqlite connection, INSERT and COMMIT for every write."""
    path = _fresh(folder, "legacy.db")
    _raw_connection(path).close()

    async def run() -> float:
        started = time.perf_counter()
        for n in range(LEGACY_ENTRIES):
            async with aiosqlite.connect(path) as conn:
                await conn.execute(_INSERT, (time.time(), "INFO", "request served", f'{{"n":{n}}}'))
                await conn.commit()
        return LEGACY_ENTRIES / (time.perf_counter() - started)

    return asyncio.run(run())


# --- 2. the logging handler -----------------------------------------------------------------------


def handler_into_sqlite(folder: Path) -> tuple[float, bool]:
    """logging.info through ObservabilipyHandler into SQLite: records stored per second."""
    complete = True

    def measure(number: int) -> float:
        nonlocal complete
        registry = Registry()
        storage = SQLiteLogStorage(_fresh(folder, f"handler-{number}.db"), registry=registry)
        # The handler's queue holds the whole burst (as in bench_logging.py): what is
        # measured is how fast records are stored, not how a short queue overflows.
        handler = ObservabilipyHandler(storage, queue_size=ENTRIES, registry=registry)
        logger = logging.getLogger(f"bench.sqlite.{number}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        started = time.perf_counter()
        for n in range(ENTRIES):
            logger.info("request %d served", n)
        flushed = handler.flush(timeout=120.0) and storage.flush(timeout=120.0)
        rate = ENTRIES / (time.perf_counter() - started)
        stored = storage.count_sync()
        if not flushed or stored != ENTRIES or handler.dropped or storage.dropped:
            print(
                f"   round {number}: flushed={flushed} stored={stored:,} of {ENTRIES:,} "
                f"(handler dropped {handler.dropped}, storage dropped {storage.dropped})"
            )
            complete = False
        logger.removeHandler(handler)
        handler.close()
        storage.close_sync()
        return rate

    return _best(ROUNDS, measure), complete


# --- 3. NDJSON reads ------------------------------------------------------------------------------

_RAW_NDJSON = (
    "SELECT json_object('id', id, 'timestamp', timestamp, 'level', level, 'message', message, "
    "'attributes', json(attributes)) FROM logs ORDER BY id"
)


def _filled(path: Path, rows: int) -> None:
    storage = SQLiteLogStorage(path, registry=Registry())
    storage.write_many_sync(
        info(message, **attributes) for message, attributes in map(_entry, range(rows))
    )
    storage.close_sync()


class _Rates(NamedTuple):
    ours: float  # rows/s, wall clock
    raw: float
    ours_cpu: float  # rows/s of the reading thread's CPU time
    raw_cpu: float
    size: int  # NDJSON bytes


def ndjson_rates(path: Path) -> _Rates:
    """Rows/s of read_ndjson_sync and of the raw query, rounds interleaved; NDJSON bytes.

    Both read on this thread (SQLite included), so this thread's CPU time is the
    work each does; the ratio is taken from it, as other processes busy on the
    machine stretch wall-clock rounds at random.
    """
    storage = SQLiteLogStorage(path, registry=Registry())
    conn = sqlite3.connect(path)

    def ours() -> int:
        return sum(len(chunk) for chunk in storage.read_ndjson_sync())

    def raw() -> int:
        # Plain sqlite3, SQL json_object() per row, joined into chunks of 1,000 lines.
        cursor = conn.execute(_RAW_NDJSON)
        size = 0
        while rows := cursor.fetchmany(1_000):
            size += len(("\n".join([row[0] for row in rows]) + "\n").encode())
        return size

    best = {ours: 0.0, raw: 0.0}
    best_cpu = {ours: 0.0, raw: 0.0}
    size = 0
    # Interleaved, so a busy moment of the machine does not favour one side.
    for _ in range(READ_ROUNDS):
        for read in (ours, raw):
            gc.collect()
            started, started_cpu = time.perf_counter(), time.thread_time()
            produced = read()
            cpu = time.thread_time() - started_cpu
            best[read] = max(best[read], ENTRIES / (time.perf_counter() - started))
            best_cpu[read] = max(best_cpu[read], ENTRIES / max(cpu, 1e-9))
            if read is ours:
                size = produced
    storage.close_sync()
    conn.close()
    return _Rates(best[ours], best[raw], best_cpu[ours], best_cpu[raw], size)


def ndjson_peak_memory(path: Path, rows: int) -> int:
    """Peak bytes Python allocates while reading ``rows`` entries as NDJSON."""
    storage = SQLiteLogStorage(path, registry=Registry())
    storage.count_sync()  # open the reader connection before measuring
    gc.collect()
    tracemalloc.start()
    try:
        for _chunk in storage.read_ndjson_sync(limit=rows):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        storage.close_sync()
    return peak


# --- report ---------------------------------------------------------------------------------------


def main() -> int:
    """Run the three comparisons; return 1 if a goal is missed."""
    print(
        f"SQLite storage, CPython {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
        f"aiosqlite {aiosqlite.__version__}, {os.cpu_count()} CPUs; best of {ROUNDS} rounds\n"
    )
    results: list[bool] = []
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)

        ours = ours_async_writes(folder)
        raw = raw_executemany(folder)
        legacy = legacy_per_write(folder)
        results.append(ours >= WRITE_GOAL)
        print(f"1. await storage.write(info(...)), {ENTRIES:,} entries, until committed")
        print(
            f"   SQLiteLogStorage                        {ours:>10,.0f} entries/s  "
            f"goal >= {WRITE_GOAL:,.0f}  {_verdict(ours >= WRITE_GOAL)}"
        )
        print(
            f"   raw sqlite3 executemany, 1,000 per tx   {raw:>10,.0f} rows/s     "
            f"ours / raw = {ours / raw:.2f}"
        )
        print(
            f"   1.x: aiosqlite connect+commit per write {legacy:>10,.0f} writes/s   "
            f"ours / 1.x = {ours / legacy:,.0f}x  ({LEGACY_ENTRIES:,} writes)"
        )

        rate, complete = handler_into_sqlite(folder)
        ok = rate >= HANDLER_GOAL and complete
        results.append(ok)
        print(f"\n2. logging.info -> ObservabilipyHandler -> SQLiteLogStorage, {ENTRIES:,} records")
        print(
            f"   stored until flushed                    {rate:>10,.0f} records/s  "
            f"goal >= {HANDLER_GOAL:,.0f}, none lost  "
            f"{'every record stored' if complete else 'RECORDS LOST'}  {_verdict(ok)}"
        )

        path = _fresh(folder, "read.db")
        _filled(path, ENTRIES)
        rates = ndjson_rates(path)
        ours_rate, raw_rate, size = rates.ours, rates.raw, rates.size
        cpu_ratio = rates.ours_cpu / rates.raw_cpu
        small = ndjson_peak_memory(path, ENTRIES // 10)
        large = ndjson_peak_memory(path, ENTRIES)
        speed_ok = ours_rate >= READ_GOAL
        ratio_ok = cpu_ratio >= READ_RATIO_GOAL
        memory_ok = large <= MEMORY_GROWTH_GOAL * small
        results += [speed_ok, ratio_ok, memory_ok]
        print(f"\n3. read_ndjson_sync, {ENTRIES:,} entries ({size / 1e6:.1f} MB of NDJSON)")
        print(
            f"   SQLiteLogStorage.read_ndjson_sync       {ours_rate:>10,.0f} rows/s     "
            f"goal >= {READ_GOAL:,.0f}  {_verdict(speed_ok)}"
        )
        print(
            f"   raw sqlite3 + SQL json_object()         {raw_rate:>10,.0f} rows/s     "
            f"ours / raw = {ours_rate / raw_rate:.2f} (wall clock)"
        )
        print(
            f"   by CPU time of the reading thread: ours {rates.ours_cpu:,.0f}, "
            f"raw {rates.raw_cpu:,.0f} rows/s, ours / raw = {cpu_ratio:.2f}  "
            f"goal >= {READ_RATIO_GOAL}  {_verdict(ratio_ok)}"
        )
        print(
            f"   peak memory (tracemalloc): {ENTRIES // 10:,} rows {small / 1024:,.0f} KiB, "
            f"{ENTRIES:,} rows {large / 1024:,.0f} KiB  "
            f"(x{large / small:.2f}, goal <= x{MEMORY_GROWTH_GOAL:g})  {_verdict(memory_ok)}"
        )
    passed = all(results)
    print("\nevery goal met" if passed else "\nGOALS MISSED")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
