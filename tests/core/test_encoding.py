"""NDJSON and JSON encoders: valid JSON always, streamed in bounded chunks."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Iterable
from typing import Any, TypeVar

import pytest

from observabilipy.core.encoding import (
    CHUNK_SIZE,
    aencode_logs_json,
    aencode_logs_ndjson,
    aencode_metrics_json,
    aencode_metrics_ndjson,
    encode_logs_json,
    encode_logs_ndjson,
    encode_metrics_json,
    encode_metrics_ndjson,
    log_entry_to_dict,
    metric_sample_to_dict,
)
from observabilipy.core.models import LogEntry, MetricSample, _trusted_log_entry
from observabilipy.core.storage import InMemoryLogStorage, InMemoryMetricsStorage

pytestmark = pytest.mark.core

_T = TypeVar("_T")


def _entries(count: int, message: str = "request handled") -> list[LogEntry]:
    return [
        LogEntry(
            timestamp=1_700_000_000.0 + n,
            level="info",
            message=f"{message} {n}",
            attributes={"n": n, "path": "/api"},
        ).with_id(n + 1)
        for n in range(count)
    ]


async def _aiter(items: Iterable[_T]) -> AsyncIterator[_T]:
    for item in items:
        yield item


async def _achunks(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


def _ndjson_rows(chunks: list[bytes]) -> list[dict[str, Any]]:
    text = b"".join(chunks).decode("utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def _strict_loads(data: bytes) -> Any:
    def refuse(token: str) -> None:
        raise AssertionError(f"bare {token} in JSON output")

    return json.loads(data, parse_constant=refuse)


def test_log_ndjson_lines_parse_back_to_the_entries() -> None:
    entries = _entries(3)
    rows = _ndjson_rows(list(encode_logs_ndjson(entries)))
    assert rows == [log_entry_to_dict(entry) for entry in entries]
    assert rows[1] == {
        "id": 2,
        "timestamp": 1_700_000_001.0,
        "level": "INFO",
        "message": "request handled 1",
        "attributes": {"n": 1, "path": "/api"},
    }


def test_unicode_is_utf8_and_each_row_stays_one_line() -> None:
    entry = LogEntry(
        timestamp=1.0,
        level="error",
        message='naïve 日本 ✓ "quoted"\nsecond line \u2028',
        attributes={"user": "Zoë"},
    )
    [chunk] = encode_logs_ndjson([entry])
    assert "日本".encode() in chunk
    assert chunk.count(b"\\u") == 1  # only the line separator is escaped
    # Newline and U+2028 are escaped, so even str.splitlines() sees one row.
    assert len(chunk.decode().splitlines()) == 1
    [row] = _ndjson_rows([chunk])
    assert row["message"] == entry.message
    assert row["attributes"] == {"user": "Zoë"}


def test_non_finite_metric_values_become_strings_never_bare_tokens() -> None:
    samples = [
        MetricSample(name="ratio", timestamp=1.0, value=value, kind="gauge").with_id(n)
        for n, value in enumerate([math.nan, math.inf, -math.inf, 0.5, -0.0], start=1)
    ]
    ndjson = b"".join(encode_metrics_ndjson(samples))
    values = [_strict_loads(line)["value"] for line in ndjson.splitlines()]
    assert values == ["NaN", "+Inf", "-Inf", 0.5, -0.0]
    document = _strict_loads(b"".join(encode_metrics_json(samples)))
    assert [item["value"] for item in document["items"]] == ["NaN", "+Inf", "-Inf", 0.5, -0.0]


def test_a_non_finite_attribute_from_an_unvalidated_source_stays_valid_json() -> None:
    # Storage backends rebuild entries without validation; a NaN that got into
    # a database must not turn into invalid JSON on the way out.
    entry = _trusted_log_entry(1.0, "INFO", "m", {"ratio": math.nan, "ok": 1}, 5)
    [row] = _ndjson_rows(list(encode_logs_ndjson([entry])))
    assert row["attributes"] == {"ratio": "nan", "ok": 1}
    document = _strict_loads(b"".join(encode_logs_json([entry])))
    assert document["items"][0]["attributes"]["ratio"] == "nan"


def test_metric_dict_has_every_field() -> None:
    sample = MetricSample(
        name="http_requests_total",
        timestamp=2.0,
        value=3,
        labels={"method": "GET"},
        kind="counter",
    ).with_id(11)
    assert metric_sample_to_dict(sample) == {
        "id": 11,
        "name": "http_requests_total",
        "timestamp": 2.0,
        "value": 3.0,
        "labels": {"method": "GET"},
        "kind": "counter",
    }


def test_large_inputs_stream_in_bounded_chunks() -> None:
    entries = _entries(20_000, message="x" * 40)
    chunks = list(encode_logs_ndjson(entries))
    assert len(chunks) > 10
    # A chunk closes at the first row past CHUNK_SIZE characters.
    longest_row = max(len(line) for line in b"".join(chunks).splitlines())
    assert max(len(chunk) for chunk in chunks) <= CHUNK_SIZE + longest_row + 1
    assert all(chunk.endswith(b"\n") for chunk in chunks)  # never a row split in two
    assert [row["id"] for row in _ndjson_rows(chunks)] == list(range(1, 20_001))


def test_large_json_document_streams_and_parses_whole() -> None:
    entries = _entries(20_000)
    chunks = list(encode_logs_json(entries))
    assert len(chunks) > 10
    document = _strict_loads(b"".join(chunks))
    assert document["count"] == 20_000
    assert document["next_after"] == 20_000
    assert [item["id"] for item in document["items"]] == list(range(1, 20_001))


def test_encoders_consume_their_input_lazily() -> None:
    produced = 0

    def endless() -> Iterable[LogEntry]:
        nonlocal produced
        while True:
            produced += 1
            yield LogEntry(timestamp=1.0, level="info", message="y" * 100)

    first = next(encode_logs_ndjson(endless()))
    assert len(first) >= CHUNK_SIZE
    assert produced < 2 * CHUNK_SIZE // 100


def test_empty_inputs() -> None:
    assert list(encode_logs_ndjson([])) == []
    assert list(encode_metrics_ndjson([])) == []
    for encoded in (encode_logs_json([]), encode_metrics_json([])):
        assert json.loads(b"".join(encoded)) == {"items": [], "count": 0, "next_after": None}


def test_json_document_next_after_is_the_last_id_for_paging() -> None:
    storage = InMemoryLogStorage()
    storage.write_many_sync(_entries(5))
    first = json.loads(b"".join(encode_logs_json(storage.read_sync(limit=3))))
    assert (first["count"], first["next_after"]) == (3, 3)
    second = json.loads(
        b"".join(encode_logs_json(storage.read_sync(after=first["next_after"], limit=3)))
    )
    assert [item["message"] for item in second["items"]] == [
        "request handled 3",
        "request handled 4",
    ]
    assert second["next_after"] == 5


async def test_async_encoders_match_the_sync_ones() -> None:
    entries = _entries(3_000)
    samples = [
        MetricSample(name="up", timestamp=float(n), value=n, labels={"job": "ü"}).with_id(n)
        for n in range(3_000)
    ]
    assert await _achunks(aencode_logs_ndjson(_aiter(entries))) == list(encode_logs_ndjson(entries))
    assert await _achunks(aencode_logs_json(_aiter(entries))) == list(encode_logs_json(entries))
    assert await _achunks(aencode_metrics_ndjson(_aiter(samples))) == list(
        encode_metrics_ndjson(samples)
    )
    assert await _achunks(aencode_metrics_json(_aiter(samples))) == list(
        encode_metrics_json(samples)
    )


async def test_async_encoders_stream_straight_from_storage() -> None:
    storage = InMemoryMetricsStorage()
    storage.write_many_sync(
        MetricSample(name="jobs_total", timestamp=1.0, value=n, kind="counter") for n in range(3)
    )
    body = b"".join(await _achunks(aencode_metrics_json(storage.read(name="jobs"))))
    document = json.loads(body)
    assert [item["value"] for item in document["items"]] == [0.0, 1.0, 2.0]
    assert document["next_after"] == 3
    assert await _achunks(aencode_logs_ndjson(_aiter([]))) == []
    empty = b"".join(await _achunks(aencode_logs_json(_aiter([]))))
    assert json.loads(empty) == {"items": [], "count": 0, "next_after": None}
