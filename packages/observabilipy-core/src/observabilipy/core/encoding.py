"""NDJSON and JSON for logs and metrics, as byte chunks an HTTP response can stream.

Each encoder takes entries (or samples) one at a time and yields UTF-8 chunks
of about 64 KiB, so encoding a million rows needs the memory of one chunk.
Sync encoders take any iterable, the ``a``-prefixed ones an async iterable.

- NDJSON: one JSON object per line, every line ending in ``\\n``;
- JSON: one document, ``{"items": [...], "count": N, "next_after": ID}``, where
  ``next_after`` is the last item's id (``null`` when there is none): pass it
  back as ``after`` to get the next page.

The output is compact, keeps non-ASCII text as UTF-8 and never holds a bare
``NaN`` or ``Infinity`` (which JSON lacks): non-finite metric values become the
strings ``"NaN"``, ``"+Inf"`` and ``"-Inf"``, as in Prometheus' own JSON API.

>>> from observabilipy.core.models import LogEntry
>>> entry = LogEntry(timestamp=1.5, level="warn", message="disk löw", attributes={"free_mb": 12})
>>> [chunk.decode() for chunk in encode_logs_ndjson([entry.with_id(1)])]
['{"id":1,"timestamp":1.5,"level":"WARNING","message":"disk löw","attributes":{"free_mb":12}}\\n']
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import Any, TypeVar

from observabilipy.core.models import LogEntry, MetricSample

_T = TypeVar("_T", LogEntry, MetricSample)

# Characters gathered before a chunk is yielded: near 64 KiB of mostly-ASCII
# output, large enough that per-chunk costs (encode, a socket write) vanish.
CHUNK_SIZE = 64 * 1024

# allow_nan=False: a non-finite float that slipped past the models raises here
# (and is then repaired) instead of becoming invalid JSON.  default=str: the
# same for a value of a type JSON lacks.
_encode = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=str
).encode

_NON_FINITE = {math.inf: "+Inf", -math.inf: "-Inf"}

# JSON allows these raw inside strings, but str.splitlines() and older JavaScript
# end a line at them; escaped, every NDJSON row stays one line for any reader.
_LINE_BREAKS = ("\x85", "\u2028", "\u2029")


def _utf8(text: str) -> bytes:
    for mark in _LINE_BREAKS:
        if mark in text:
            text = text.replace(mark, f"\\u{ord(mark):04x}")
    return text.encode()


def _metric_value(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return _NON_FINITE.get(value, "NaN")


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its text."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    return value


def log_entry_to_dict(entry: LogEntry) -> dict[str, Any]:
    """The JSON object for one log entry.

    >>> from observabilipy.core.models import LogEntry
    >>> log_entry_to_dict(LogEntry(timestamp=2.0, level="info", message="hi").with_id(3))
    {'id': 3, 'timestamp': 2.0, 'level': 'INFO', 'message': 'hi', 'attributes': {}}
    """
    return {
        "id": entry.id,
        "timestamp": entry.timestamp,
        "level": entry.level,
        "message": entry.message,
        "attributes": entry.attributes,
    }


def metric_sample_to_dict(sample: MetricSample) -> dict[str, Any]:
    """The JSON object for one metric sample; non-finite values become text.

    >>> from observabilipy.core.models import MetricSample
    >>> metric_sample_to_dict(MetricSample(name="temp", timestamp=1.0, value=float("inf")))
    {'id': None, 'name': 'temp', 'timestamp': 1.0, 'value': '+Inf', 'labels': {}, 'kind': 'untyped'}
    """
    return {
        "id": sample.id,
        "name": sample.name,
        "timestamp": sample.timestamp,
        "value": _metric_value(sample.value),
        "labels": sample.labels,
        "kind": sample.kind,
    }


def _log_json(entry: LogEntry) -> str:
    row = log_entry_to_dict(entry)
    try:
        return _encode(row)
    except ValueError:  # a non-finite float attribute from an unvalidated source
        return _encode(_json_safe(row))


def _metric_json(sample: MetricSample) -> str:
    return _encode(metric_sample_to_dict(sample))


def _ndjson(items: Iterable[_T], to_json: Callable[[_T], str]) -> Iterator[bytes]:
    lines: list[str] = []
    size = 0
    for item in items:
        line = to_json(item)
        lines.append(line)
        size += len(line) + 1
        if size >= CHUNK_SIZE:
            lines.append("")
            yield _utf8("\n".join(lines))
            lines = []
            size = 0
    if lines:
        lines.append("")
        yield _utf8("\n".join(lines))


async def _andjson(items: AsyncIterable[_T], to_json: Callable[[_T], str]) -> AsyncIterator[bytes]:
    lines: list[str] = []
    size = 0
    async for item in items:
        line = to_json(item)
        lines.append(line)
        size += len(line) + 1
        if size >= CHUNK_SIZE:
            lines.append("")
            yield _utf8("\n".join(lines))
            lines = []
            size = 0
    if lines:
        lines.append("")
        yield _utf8("\n".join(lines))


class _Document:
    """Builds the chunks of one ``{"items": [...], ...}`` document, item by item."""

    __slots__ = ("_parts", "_size", "_started", "count", "last_id")

    def __init__(self) -> None:
        self.count = 0
        self.last_id: int | None = None
        self._parts: list[str] = []
        self._size = 0
        self._started = False

    def add(self, text: str, item_id: int | None) -> bytes | None:
        """Take one item's JSON; return a chunk when enough has gathered."""
        self._parts.append(text)
        self._size += len(text) + 1
        self.count += 1
        self.last_id = item_id
        if self._size < CHUNK_SIZE:
            return None
        return _utf8(self._take())

    def _take(self) -> str:
        if self._started:
            head = "," if self._parts else ""
        else:
            head = '{"items":['
            self._started = True
        body = ",".join(self._parts)
        self._parts = []
        self._size = 0
        return head + body

    def finish(self) -> bytes:
        """The last chunk: remaining items, then count and next_after."""
        tail = f'],"count":{self.count},"next_after":{_encode(self.last_id)}}}'
        return _utf8(self._take() + tail)


def _json_document(items: Iterable[_T], to_json: Callable[[_T], str]) -> Iterator[bytes]:
    document = _Document()
    for item in items:
        chunk = document.add(to_json(item), item.id)
        if chunk is not None:
            yield chunk
    yield document.finish()


async def _ajson_document(
    items: AsyncIterable[_T], to_json: Callable[[_T], str]
) -> AsyncIterator[bytes]:
    document = _Document()
    async for item in items:
        chunk = document.add(to_json(item), item.id)
        if chunk is not None:
            yield chunk
    yield document.finish()


def encode_logs_ndjson(entries: Iterable[LogEntry]) -> Iterator[bytes]:
    """Log entries as NDJSON chunks (one object per line).

    >>> from observabilipy.core.models import LogEntry
    >>> list(encode_logs_ndjson([LogEntry(timestamp=1.0, level="info", message="hi")]))
    [b'{"id":null,"timestamp":1.0,"level":"INFO","message":"hi","attributes":{}}\\n']
    >>> list(encode_logs_ndjson([]))
    []
    """
    return _ndjson(entries, _log_json)


def aencode_logs_ndjson(entries: AsyncIterable[LogEntry]) -> AsyncIterator[bytes]:
    """Async twin of :func:`encode_logs_ndjson`, for an async iterable of entries.

    >>> import asyncio
    >>> from observabilipy.core.models import LogEntry
    >>> async def entries():
    ...     yield LogEntry(timestamp=1.0, level="info", message="hi").with_id(1)
    >>> async def main():
    ...     return [chunk async for chunk in aencode_logs_ndjson(entries())]
    >>> asyncio.run(main())
    [b'{"id":1,"timestamp":1.0,"level":"INFO","message":"hi","attributes":{}}\\n']
    """
    return _andjson(entries, _log_json)


def encode_logs_json(entries: Iterable[LogEntry]) -> Iterator[bytes]:
    """Log entries as one JSON document, in chunks: items, count and next_after.

    >>> from observabilipy.core.models import LogEntry
    >>> entry = LogEntry(timestamp=1.0, level="info", message="hi").with_id(7)
    >>> b"".join(encode_logs_json([entry]))
    b'{"items":[{"id":7,"timestamp":1.0,"level":"INFO","message":"hi","attributes":{}}],"count":1,"next_after":7}'
    >>> b"".join(encode_logs_json([]))
    b'{"items":[],"count":0,"next_after":null}'
    """
    return _json_document(entries, _log_json)


def aencode_logs_json(entries: AsyncIterable[LogEntry]) -> AsyncIterator[bytes]:
    """Async twin of :func:`encode_logs_json`.

    >>> import asyncio
    >>> async def nothing():
    ...     return
    ...     yield
    >>> async def main():
    ...     return b"".join([chunk async for chunk in aencode_logs_json(nothing())])
    >>> asyncio.run(main())
    b'{"items":[],"count":0,"next_after":null}'
    """
    return _ajson_document(entries, _log_json)


def encode_metrics_ndjson(samples: Iterable[MetricSample]) -> Iterator[bytes]:
    """Metric samples as NDJSON chunks; NaN and infinities become strings.

    >>> from observabilipy.core.models import MetricSample
    >>> nan = MetricSample(name="ratio", timestamp=1.0, value=float("nan"), kind="gauge")
    >>> list(encode_metrics_ndjson([nan.with_id(2)]))
    [b'{"id":2,"name":"ratio","timestamp":1.0,"value":"NaN","labels":{},"kind":"gauge"}\\n']
    """
    return _ndjson(samples, _metric_json)


def aencode_metrics_ndjson(samples: AsyncIterable[MetricSample]) -> AsyncIterator[bytes]:
    """Async twin of :func:`encode_metrics_ndjson`.

    >>> import asyncio
    >>> from observabilipy.core.models import MetricSample
    >>> async def samples():
    ...     yield MetricSample(name="up", timestamp=1.0, value=1, kind="gauge")
    >>> async def main():
    ...     return [chunk async for chunk in aencode_metrics_ndjson(samples())]
    >>> asyncio.run(main())
    [b'{"id":null,"name":"up","timestamp":1.0,"value":1.0,"labels":{},"kind":"gauge"}\\n']
    """
    return _andjson(samples, _metric_json)


def encode_metrics_json(samples: Iterable[MetricSample]) -> Iterator[bytes]:
    """Metric samples as one JSON document, in chunks: items, count and next_after.

    >>> from observabilipy.core.models import MetricSample
    >>> up = MetricSample(name="up", timestamp=1.0, value=1, labels={"job": "api"}).with_id(4)
    >>> b"".join(encode_metrics_json([up]))
    b'{"items":[{"id":4,"name":"up","timestamp":1.0,"value":1.0,"labels":{"job":"api"},"kind":"untyped"}],"count":1,"next_after":4}'
    """
    return _json_document(samples, _metric_json)


def aencode_metrics_json(samples: AsyncIterable[MetricSample]) -> AsyncIterator[bytes]:
    """Async twin of :func:`encode_metrics_json`.

    >>> import asyncio
    >>> from observabilipy.core.models import MetricSample
    >>> async def samples():
    ...     yield MetricSample(name="up", timestamp=1.0, value=float("-inf")).with_id(9)
    >>> async def main():
    ...     return b"".join([chunk async for chunk in aencode_metrics_json(samples())])
    >>> asyncio.run(main())
    b'{"items":[{"id":9,"name":"up","timestamp":1.0,"value":"-Inf","labels":{},"kind":"untyped"}],"count":1,"next_after":9}'
    """
    return _ajson_document(samples, _metric_json)
