"""Post logs and metrics as JSON to any HTTP endpoint: a log shipper, a webhook, your own service.

The bodies are what observabilipy's own HTTP API serves, byte for byte (the same
encoders make them): NDJSON as ``GET /logs`` and ``GET /metrics`` answer, or one
JSON document as ``GET /logs/json`` does.  Whatever reads one reads the other.

>>> exporter = HTTPJSONExporter(url="https://ingest.example.com/{signal}")
>>> exporter.url_for("logs"), exporter.url_for("metrics")
('https://ingest.example.com/logs', 'https://ingest.example.com/metrics')
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Collection, Mapping
from typing import Final, Literal, cast, get_args

import httpx

from observabilipy.core.encoding import (
    encode_logs_json,
    encode_logs_ndjson,
    encode_metrics_json,
    encode_metrics_ndjson,
)
from observabilipy.core.errors import ConfigurationError
from observabilipy.core.export import Signal
from observabilipy.core.models import LogEntry, MetricSample
from observabilipy.exporters._http import HTTPExporter, check_gzip, check_url

__all__ = ["SIGNAL_HEADER", "HTTPJSONExporter"]

#: Header naming what a request carries ("logs" or "metrics"), for a receiver with one URL.
SIGNAL_HEADER: Final = "X-Observabilipy-Signal"

_CONTENT_TYPES: Final = {"ndjson": "application/x-ndjson", "json": "application/json"}


class HTTPJSONExporter(HTTPExporter):
    """POSTs each batch to ``url`` as NDJSON (one object per line) or one JSON document.

    ``body="ndjson"`` (default) sends one object per line, as ``GET /logs``
    streams them: ``{"id":1,"timestamp":1.5,"level":"INFO","message":...,"attributes":{...}}``
    (and ``{"id":..,"name":..,"timestamp":..,"value":..,"labels":{..},"kind":..}`` for
    metrics), with ``Content-Type: application/x-ndjson``.  ``body="json"`` sends
    ``{"items": [...], "count": N, "next_after": LAST_ID}`` as ``GET /logs/json``
    does, with ``Content-Type: application/json``.

    ``signals`` says what it sends.  A ``{signal}`` in ``url`` becomes ``logs`` or
    ``metrics``, to post each to its own URL; without it both go to ``url`` and
    the ``X-Observabilipy-Signal`` header tells them apart (it is sent either way).
    Items keep their storage ``id``, so a receiver can drop a batch it already
    has when a retry repeats it.

    ``gzip=True`` compresses the body (``Content-Encoding: gzip``); it is off by
    default because not every receiver decodes compressed requests.  ``headers``,
    ``basic_auth`` or ``bearer_token`` go on every request.

    >>> HTTPJSONExporter(url="http://sink:8080/in", signals=("traces",))
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: signals: must name 'logs' and/or 'metrics', got ('traces',)
    """

    def __init__(
        self,
        *,
        url: str,
        headers: Mapping[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
        bearer_token: str | None = None,
        body: Literal["ndjson", "json"] = "ndjson",
        signals: Collection[str] = ("logs", "metrics"),
        gzip: bool = False,
        timeout: float = 10.0,
        name: str = "http",
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if (
            isinstance(signals, str)
            or not isinstance(signals, Collection)
            or not signals
            or not set(signals) <= set(get_args(Signal))
        ):
            raise ConfigurationError(f"signals: must name 'logs' and/or 'metrics', got {signals!r}")
        super().__init__(
            name=name,
            signals=cast(frozenset[Signal], frozenset(signals)),
            headers=headers,
            basic_auth=basic_auth,
            bearer_token=bearer_token,
            timeout=timeout,
            client=client,
        )
        if not isinstance(url, str):
            raise ConfigurationError(f"url: must be a str URL, got {type(url).__name__}")
        # httpx would percent-encode the braces: check the URL as it will be used.
        for signal in self.signals:
            check_url(url.replace("{signal}", signal))
        if body not in _CONTENT_TYPES:
            raise ConfigurationError(f"body: must be 'ndjson' or 'json', got {body!r}")
        self.url = url
        self.body = body
        self.gzip = check_gzip(gzip)

    def url_for(self, signal: Signal) -> str:
        """Where batches of ``signal`` are posted."""
        return self.url.replace("{signal}", signal)

    async def export_logs(self, entries: AsyncIterable[LogEntry]) -> None:
        """Post one batch of log entries; an empty batch sends nothing."""
        if "logs" not in self.signals:
            raise self.refuse("logs")
        batch = [entry async for entry in entries]
        if batch:
            encode = encode_logs_ndjson if self.body == "ndjson" else encode_logs_json
            await self._post("logs", b"".join(encode(batch)))

    async def export_metrics(self, samples: AsyncIterable[MetricSample]) -> None:
        """Post one batch of metric samples; an empty batch sends nothing."""
        if "metrics" not in self.signals:
            raise self.refuse("metrics")
        batch = [sample async for sample in samples]
        if batch:
            encode = encode_metrics_ndjson if self.body == "ndjson" else encode_metrics_json
            await self._post("metrics", b"".join(encode(batch)))

    async def _post(self, signal: Signal, body: bytes) -> None:
        # The whole batch is encoded before sending (the runtime's batch size bounds
        # it): a receiver gets a Content-Length, not a chunked stream.
        await self.send(
            "POST",
            self.url_for(signal),
            body,
            content_type=_CONTENT_TYPES[self.body],
            gzip=self.gzip,
            headers={SIGNAL_HEADER: signal},
        )
