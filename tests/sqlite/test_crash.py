"""Real processes: a writer killed mid-stream loses nothing acknowledged; readers and writers share a file."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from observabilipy.core import Registry
from observabilipy.sqlite import SCHEMA_VERSION, SQLiteLogStorage

_WRITER = """
    import sys
    from observabilipy.core import LogEntry, Registry
    from observabilipy.sqlite import SCHEMA_VERSION, SQLiteLogStorage

    path, every = sys.argv[1], int(sys.argv[2])
    storage = SQLiteLogStorage(path, registry=Registry(), flush_interval=0.005)
    seq = 0
    while True:
        for _ in range(every):
            storage.write_sync(LogEntry(timestamp=1.0 + seq, level="INFO", message="entry",
                                        attributes={"seq": seq, "pad": "x" * 200}))
            seq += 1
        if storage.flush(timeout=10.0):
            print(seq - 1, flush=True)  # every entry up to this one is committed
"""


def _spawn(tmp_path: Path, name: str, code: str, *args: str) -> subprocess.Popen[str]:
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(code), encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(("every", "acks_before_kill"), [(1, 40), (50, 25), (997, 6)])
def test_a_writer_killed_mid_stream_keeps_every_acknowledged_entry(
    tmp_path: Path, every: int, acks_before_kill: int
) -> None:
    path = tmp_path / "crash.db"
    writer = _spawn(tmp_path, "writer", _WRITER, str(path), str(every))
    assert writer.stdout is not None
    acknowledged = -1
    try:
        for _ in range(acks_before_kill):
            line = writer.stdout.readline()
            assert line, writer.stderr.read() if writer.stderr else "writer ended"
            acknowledged = int(line)
        writer.send_signal(signal.SIGKILL)  # it is writing the next batches right now
    finally:
        writer.kill()
        rest, errors = writer.communicate(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    # Acknowledgements printed before the kill landed count too.
    for line in rest.split():
        acknowledged = max(acknowledged, int(line))
    assert acknowledged >= acks_before_kill - 1, errors

    conn = sqlite3.connect(path)  # what a process opening the file after the crash sees
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = conn.execute(
        "SELECT id, json_extract(attributes, '$.seq') FROM logs ORDER BY id"
    ).fetchall()
    conn.close()
    seqs = [seq for _, seq in rows]
    assert seqs[: acknowledged + 1] == list(range(acknowledged + 1))
    assert seqs == list(range(len(seqs)))  # a prefix, nothing out of order or repeated
    assert [entry_id for entry_id, _ in rows] == list(range(1, len(rows) + 1))
    storage = SQLiteLogStorage(path, registry=Registry())  # and observabilipy carries on
    assert storage.count_sync() == len(rows)
    storage.close_sync()


_PRODUCER = """
    import sys
    from observabilipy.core import LogEntry, Registry
    from observabilipy.sqlite import SCHEMA_VERSION, SQLiteLogStorage

    path, worker, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    storage = SQLiteLogStorage(path, registry=Registry(), flush_interval=0.01)
    for seq in range(total):
        storage.write_sync(LogEntry(timestamp=float(seq), level="INFO", message=worker,
                                    attributes={"seq": seq}))
        if seq % 100 == 99:
            storage.flush()
    storage.close_sync()
    print("done", storage.dropped)
"""

_READER = """
    import asyncio, json, sys, time
    from observabilipy.core import Registry
    from observabilipy.sqlite import SCHEMA_VERSION, SQLiteLogStorage

    path, expected = sys.argv[1], int(sys.argv[2])
    storage = SQLiteLogStorage(path, registry=Registry())
    ids, seqs, reads, errors = [], {}, 0, []

    async def page_async(after):
        return [e async for e in storage.read(after=after, limit=400)]

    deadline = time.monotonic() + 60
    while len(ids) < expected and time.monotonic() < deadline:
        after = ids[-1] if ids else None
        try:
            page = list(storage.read_sync(after=after, limit=400)) if reads % 2 else asyncio.run(page_async(after))
        except Exception as exc:
            errors.append(repr(exc))
            page = []
        reads += 1
        for entry in page:
            ids.append(entry.id)
            seqs.setdefault(entry.message, []).append(entry.attributes["seq"])
        if not page:
            time.sleep(0.005)
    print(json.dumps({"ids": ids, "seqs": seqs, "reads": reads, "errors": errors}))
    storage.close_sync()
"""


def test_readers_read_while_other_processes_write(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"  # created by whichever process opens it first
    per_writer, writers = 1_500, 3
    processes = [
        _spawn(tmp_path, "reader", _READER, str(path), str(per_writer * writers)),
        *(
            _spawn(tmp_path, f"writer{n}", _PRODUCER, str(path), f"w{n}", str(per_writer))
            for n in range(writers)
        ),
    ]
    outputs = [process.communicate(timeout=90) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    for out, _ in outputs[1:]:
        assert out.split() == ["done", "0"]
    report = json.loads(outputs[0][0])
    assert report["errors"] == []
    assert report["reads"] > 1
    ids = report["ids"]
    assert ids == sorted(set(ids))  # increasing, never repeated, across every poll
    assert len(ids) == per_writer * writers
    for worker in range(writers):  # each writer's entries arrive in its own order
        assert report["seqs"][f"w{worker}"] == list(range(per_writer))


def test_processes_opening_a_new_file_at_once_create_it_once(
    tmp_path: Path, run_python: Callable[..., object]
) -> None:
    path = tmp_path / "new.db"
    code = """
        import sys
        from observabilipy.core import Registry, info
        from observabilipy.sqlite import SQLiteLogStorage, SQLiteMetricsStorage
        storage = SQLiteLogStorage(sys.argv[1], registry=Registry())
        SQLiteMetricsStorage(storage.database, registry=Registry())
        storage.write_sync(info("hello"), durable=True)
        storage.close_sync()
    """
    script = tmp_path / "opener.py"
    script.write_text(textwrap.dedent(code), encoding="utf-8")
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), str(path)], stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM observabilipy_meta").fetchall() == [
        (str(SCHEMA_VERSION),)
    ]
    assert conn.execute("SELECT count(*) FROM logs").fetchone() == (4,)
    conn.close()
