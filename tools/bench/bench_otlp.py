"""OTLP/HTTP log export: observabilipy-otlp vs opentelemetry-sdk's OTLP HTTP log exporter.

Run with ``hatch run bench:python tools/bench/bench_otlp.py``.

A receiver in its own process plays the collector on 127.0.0.1: it reads each
request, counts its log records (parsing protobuf with opentelemetry-proto, counting
OTLP/JSON records by their key) and answers 200, so every figure is records
*delivered*.  Each side
encodes the same records (a message and four attributes) from objects already in
memory, as an exporter gets them:

1. ``OTLPExporter.export_logs`` on batches of 512 LogEntry, JSON and protobuf;
2. the SDK's ``OTLPLogExporter.export`` on batches of 512 ReadableLogRecord (512 is
   its BatchLogRecordProcessor's default batch size): the like-for-like comparison;
3. the SDK as users get it: ``Logger.emit`` of a burst into a BatchLogRecordProcessor
   with its defaults, then ``force_flush``; records/s delivered, and drops counted.

Goal: ours >= 1.0x the SDK's records/s.  Exits 1 if a goal is missed.
"""

from __future__ import annotations

import asyncio
import gzip
import importlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

# Run as a script: make the repository root importable for the shared helpers.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.bench._common import Row, report

RECORDS = 100_000
BURST = 200_000  # the burst DESIGN.md §9 measured the SDK's defaults with
BATCH = 512
ROUNDS = 3
HOST = "127.0.0.1"


# --- The receiver, in its own process ---------------------------------------------------------


def _count_records(body: bytes, content_type: str) -> int:
    # Cheap on purpose, so the receiver never is what is measured: OTLP/JSON is counted
    # by its one-per-record key (the tests decode every payload fully); protobuf is
    # parsed by opentelemetry-proto's C extension, which is fast enough.
    if content_type == "application/json":
        return body.count(b'"observedTimeUnixNano":')
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
    )

    request = ExportLogsServiceRequest.FromString(body)
    return sum(len(scope.log_records) for rl in request.resource_logs for scope in rl.scope_logs)


def receive() -> None:
    """Serve OTLP/HTTP on a free loopback port (printed first), counting log records."""
    received = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal received
        try:
            while request_line := await reader.readline():
                headers = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if request_line.startswith(b"GET /count"):
                    answer, content_type = str(received).encode(), "text/plain"
                else:
                    if headers.get("content-encoding") == "gzip":
                        body = gzip.decompress(body)
                    content_type = headers.get("content-type", "application/x-protobuf")
                    received += _count_records(body, content_type)
                    answer = b""
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
                    % (content_type.encode(), len(answer), answer)
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, HOST, 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def received(port: int) -> int:
    """How many log records the receiver has counted so far."""
    return int(httpx.get(f"http://{HOST}:{port}/count").text)


# --- The same records, as each side gets them -------------------------------------------------


def _attributes(n: int) -> dict[str, Any]:
    return {"logger": "shop.checkout", "request_id": f"r-{n}", "status": 200, "duration_ms": 12.5}


def our_entries(count: int) -> list[Any]:
    """LogEntry objects with ids, as storage hands them to an exporter."""
    from observabilipy.core.models import LogEntry

    now = time.time()
    return [
        LogEntry(
            timestamp=now + n / 1e6,
            level="INFO",
            message=f"order {n} paid",
            attributes=_attributes(n),
        ).with_id(n + 1)
        for n in range(count)
    ]


def _sdk() -> SimpleNamespace:
    """The opentelemetry-sdk names used here, imported by name: the bench env has the SDK,
    the lint env (which type-checks this file) does not."""
    found = SimpleNamespace()
    for module, names in {
        "opentelemetry._logs": ["SeverityNumber"],
        "opentelemetry.sdk._logs": ["LoggerProvider"],
        "opentelemetry.sdk._logs.export": [
            "BatchLogRecordProcessor",
            "InMemoryLogRecordExporter",
            "LogRecordExportResult",
            "SimpleLogRecordProcessor",
        ],
        "opentelemetry.sdk.resources": ["Resource"],
        "opentelemetry.exporter.otlp.proto.http._log_exporter": ["OTLPLogExporter"],
    }.items():
        imported = importlib.import_module(module)
        for name in names:
            setattr(found, name, getattr(imported, name))
    return found


def sdk_records(count: int) -> list[Any]:
    """The SDK's ReadableLogRecords of the same records, made by its own Logger."""
    sdk = _sdk()
    memory = sdk.InMemoryLogRecordExporter()
    provider = sdk.LoggerProvider(resource=sdk.Resource.create({"service.name": "bench"}))
    provider.add_log_record_processor(sdk.SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("shop.checkout")
    now = time.time_ns()
    for n in range(count):
        logger.emit(
            timestamp=now + n * 1000,
            severity_number=sdk.SeverityNumber.INFO,
            severity_text="INFO",
            body=f"order {n} paid",
            attributes=_attributes(n),
        )
    records = list(memory.get_finished_logs())
    provider.shutdown()
    return records


def _batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


# --- The timed runs ----------------------------------------------------------------------------


async def _aiter(items: Sequence[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


def time_ours(port: int, entries: list[Any], *, encoding: str, batch: int) -> float:
    """Seconds to export every entry with OTLPExporter (all delivered, or it fails)."""
    from observabilipy.otlp import OTLPExporter

    async def run() -> float:
        exporter = OTLPExporter(
            endpoint=f"http://{HOST}:{port}",
            encoding=encoding,  # type: ignore[arg-type]
            service_name="bench",
            signals=["logs"],
        )
        batches = _batches(entries, batch)
        await exporter.export_logs(_aiter(batches[0]))  # connect before timing
        start = time.perf_counter()
        for chunk in batches:
            await exporter.export_logs(_aiter(chunk))
        elapsed = time.perf_counter() - start
        await exporter.close()
        return elapsed

    return _checked(port, len(entries) + min(batch, len(entries)), lambda: asyncio.run(run()))


def time_sdk_export(port: int, records: list[Any], *, batch: int) -> float:
    """Seconds for the SDK's OTLPLogExporter.export over the same batches."""
    sdk = _sdk()

    def run() -> float:
        exporter = sdk.OTLPLogExporter(endpoint=f"http://{HOST}:{port}/v1/logs")
        batches = _batches(records, batch)
        exporter.export(batches[0])
        start = time.perf_counter()
        for chunk in batches:
            if exporter.export(chunk) is not sdk.LogRecordExportResult.SUCCESS:
                raise RuntimeError("the SDK exporter reported a failure")
        elapsed = time.perf_counter() - start
        exporter.shutdown()
        return elapsed

    return _checked(port, len(records) + min(batch, len(records)), run)


def run_sdk_defaults(port: int, count: int) -> tuple[float, int]:
    """(seconds, records delivered) for a burst through BatchLogRecordProcessor's defaults."""
    sdk = _sdk()
    provider = sdk.LoggerProvider(resource=sdk.Resource.create({"service.name": "bench"}))
    provider.add_log_record_processor(
        sdk.BatchLogRecordProcessor(sdk.OTLPLogExporter(endpoint=f"http://{HOST}:{port}/v1/logs"))
    )
    logger = provider.get_logger("shop.checkout")
    before = received(port)
    start = time.perf_counter()
    for n in range(count):
        logger.emit(
            severity_number=sdk.SeverityNumber.INFO,
            severity_text="INFO",
            body=f"order {n} paid",
            attributes=_attributes(n),
        )
    provider.force_flush()
    elapsed = time.perf_counter() - start
    provider.shutdown()
    return elapsed, received(port) - before


def _checked(port: int, expected: int, run: Callable[[], float]) -> float:
    before = received(port)
    elapsed = run()
    delivered = received(port) - before
    if delivered != expected:
        raise RuntimeError(f"the receiver counted {delivered} records, expected {expected}")
    return elapsed


def main() -> int:
    """Run every comparison, print records/s and ratios; return 1 if a goal is missed."""
    receiver = subprocess.Popen(
        [sys.executable, __file__, "--receive"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline())
        entries = our_entries(RECORDS)
        records = sdk_records(RECORDS)
        best: dict[str, float] = {}
        runs: dict[str, Callable[[], float]] = {
            "ours json": lambda: time_ours(port, entries, encoding="json", batch=BATCH),
            "ours protobuf": lambda: time_ours(port, entries, encoding="protobuf", batch=BATCH),
            "sdk export": lambda: time_sdk_export(port, records, batch=BATCH),
            "ours json, 5,000 per batch": lambda: time_ours(
                port, entries, encoding="json", batch=5000
            ),
        }
        for _ in range(ROUNDS):  # alternate, so a busy moment does not favour one side
            for label, run in runs.items():
                best[label] = min(best.get(label, float("inf")), run())
        burst_seconds, delivered = run_sdk_defaults(port, BURST)
    finally:
        receiver.kill()
        receiver.wait()

    print(
        f"{RECORDS:,} log records (message + 4 attributes), batches of {BATCH}, best of {ROUNDS}:"
    )
    print(f"{'exporter':<44} {'records/s':>10}")
    for label, seconds in best.items():
        print(f"{label:<44} {RECORDS / seconds:>10,.0f}")
    dropped = BURST - delivered
    print(
        f"{'sdk BatchLogRecordProcessor defaults, burst':<44} "
        f"{delivered / burst_seconds:>10,.0f}  ({BURST:,} emitted, {delivered:,} delivered, "
        f"{dropped:,} dropped = {dropped / BURST:.1%})"
    )
    print()
    per_record = {label: seconds / RECORDS * 1e9 for label, seconds in best.items()}
    sdk_defaults = burst_seconds / max(delivered, 1) * 1e9
    rows = [
        Row(
            "export, json vs sdk export (per record)",
            per_record["ours json"],
            per_record["sdk export"],
            1.0,
        ),
        Row(
            "export, protobuf vs sdk export (per record)",
            per_record["ours protobuf"],
            per_record["sdk export"],
            1.0,
        ),
        Row(
            "export, json vs sdk defaults (per delivered)",
            per_record["ours json"],
            sdk_defaults,
            1.0,
        ),
    ]
    return 0 if report(rows, peer="opentelemetry-sdk") else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--receive"]:
        receive()
    else:
        sys.exit(main())
