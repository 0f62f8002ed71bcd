"""Response bodies of the HTTP API: JSON errors, and NDJSON pages as JSON documents.

``/logs/json`` and ``/metrics/json`` are built from the same NDJSON chunks as
``/logs`` and ``/metrics`` (from core's encoders or a storage's own fast NDJSON
reader): each line becomes an item of ``{"items": [...], "count": N,
"next_after": ID, "next": URL}``, streamed chunk by chunk.

- ``next_after``: the id to pass as ``after`` for the following page: the last
  item's id, or the ``after`` that was given when the page is empty (a poller
  keeps its place), or null;
- ``next``: the relative URL (a query, ``?...``, resolving against the page's own
  URL) of the following page when this page is full (``count == limit``, so more
  may follow), repeating the page's parameters with ``after=next_after`` and
  without ``offset``; null when the page ended before its limit.

>>> chunks = [b'{"id":3,"message":"a"}\\n{"id":4,', b'"message":"b"}\\n']
>>> b"".join(json_document(chunks, after=None, limit=2, carry=(("level", "info"),)))
b'{"items":[{"id":3,"message":"a"},{"id":4,"message":"b"}],"count":2,"next_after":4,"next":"?level=info&after=4"}'
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any, Final
from urllib.parse import quote, urlencode

__all__ = [
    "CONTENT_TYPE_JSON",
    "CONTENT_TYPE_NDJSON",
    "ajson_document",
    "json_bytes",
    "json_document",
]

CONTENT_TYPE_NDJSON: Final = "application/x-ndjson; charset=utf-8"
CONTENT_TYPE_JSON: Final = "application/json"

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def json_bytes(document: Any) -> bytes:
    """``document`` as compact UTF-8 JSON.

    >>> json_bytes({"error": "not_found", "path": "/lögs"})
    b'{"error":"not_found","path":"/l\\xc3\\xb6gs"}'
    """
    return _encode(document).encode()


class _Document:
    """Turns NDJSON chunks, split anywhere, into the chunks of one JSON document.

    Every newline but the stream's last becomes the comma between two items
    (a newline never occurs inside a JSON text, so this is exact); the last
    complete line is kept to read the final item's id.
    """

    __slots__ = ("_after", "_carry", "_held", "_last", "_limit", "_partial", "_started", "count")

    def __init__(self, after: int | None, limit: int, carry: tuple[tuple[str, str], ...]) -> None:
        self._after = after
        self._limit = limit
        self._carry = carry
        self.count = 0
        self._started = False
        self._held = b""  # the last byte seen, held back: the final newline is dropped
        self._last = b""  # the last complete line
        self._partial = b""  # the line still being received

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        self.count += chunk.count(b"\n")
        end = chunk.rfind(b"\n")
        if end >= 0:
            start = chunk.rfind(b"\n", 0, end) + 1
            self._last = self._partial + chunk[:end] if start == 0 else chunk[start:end]
            self._partial = chunk[end + 1 :]
        else:
            self._partial += chunk
        out = self._held + chunk[:-1].replace(b"\n", b",")
        self._held = chunk[-1:].replace(b"\n", b",")
        if not self._started:
            self._started = True
            out = b'{"items":[' + out
        return out

    def finish(self) -> bytes:
        head = b"" if self._started else b'{"items":['
        held = b"" if self._held == b"," else self._held
        if self._partial:  # a source whose last line lacks its newline
            self.count += 1
            self._last = self._partial
        next_after = json.loads(self._last)["id"] if self._last else self._after
        link = None
        if next_after is not None and 0 < self._limit <= self.count:
            link = "?" + urlencode((*self._carry, ("after", str(next_after))), quote_via=quote)
        tail = {"count": self.count, "next_after": next_after, "next": link}
        return head + held + b"]," + json_bytes(tail)[1:]


def json_document(
    chunks: Iterable[bytes], *, after: int | None, limit: int, carry: tuple[tuple[str, str], ...]
) -> Iterator[bytes]:
    """NDJSON ``chunks`` as the chunks of one page document (see the module docstring).

    ``after``, ``limit`` and ``carry`` are the page's cursor, limit and the
    parameters its next page repeats.

    >>> b"".join(json_document([], after=12, limit=100, carry=()))
    b'{"items":[],"count":0,"next_after":12,"next":null}'
    """
    document = _Document(after, limit, carry)
    for chunk in chunks:
        out = document.feed(chunk)
        if out:
            yield out
    yield document.finish()


async def ajson_document(
    chunks: AsyncIterable[bytes],
    *,
    after: int | None,
    limit: int,
    carry: tuple[tuple[str, str], ...],
) -> AsyncIterator[bytes]:
    """Async twin of :func:`json_document`: the same bytes for the same chunks.

    >>> import asyncio
    >>> async def page():
    ...     yield b'{"id":1}\\n'
    >>> async def main():
    ...     document = ajson_document(page(), after=None, limit=5, carry=())
    ...     return b"".join([chunk async for chunk in document])
    >>> asyncio.run(main())
    b'{"items":[{"id":1}],"count":1,"next_after":1,"next":null}'
    """
    document = _Document(after, limit, carry)
    async for chunk in chunks:
        out = document.feed(chunk)
        if out:
            yield out
    yield document.finish()
