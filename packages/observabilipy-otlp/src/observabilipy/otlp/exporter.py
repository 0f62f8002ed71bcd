"""OTLPExporter: logs and metrics to any OpenTelemetry collector over OTLP/HTTP.

Each ``export_logs`` / ``export_metrics`` call sends its whole batch as one POST to
``<endpoint>/v1/logs`` or ``<endpoint>/v1/metrics`` and returns when the collector
accepted it, or raises what the runtime needs to decide:

- :class:`~observabilipy.core.export.RetryableExportError`: connection refused, no
  answer within the timeout, 408, 429, 5xx (with the ``Retry-After`` the collector
  sent), or an answer that is not an OTLP response;
- :class:`~observabilipy.core.export.PermanentExportError`: any other 4xx, the
  collector refusing this data (the runtime drops the batch and counts it).

A *partial success* (the collector kept the batch but rejected some records) is not
an error: sending the batch again would duplicate what it kept.  The rejected count
is added to :attr:`OTLPExporter.rejected_log_records` or
:attr:`OTLPExporter.rejected_data_points` and logged as a warning.

>>> exporter = OTLPExporter(endpoint="http://collector:4318", service_name="shop")
>>> exporter.logs_url, exporter.metrics_url
('http://collector:4318/v1/logs', 'http://collector:4318/v1/metrics')
>>> exporter.resource["service.name"], sorted(exporter.signals)
('shop', ['logs', 'metrics'])
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import time
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Final, Literal, Protocol

import httpx

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.export import (
    PermanentExportError,
    RetryableExportError,
    Signal,
    export_error_for_status,
)
from observabilipy.core.models import LogEntry, MetricSample
from observabilipy.otlp._config import (
    SDK_VERSION,
    Encoding,
    ResourceValue,
    SignalTarget,
    resolve_resource,
    resolve_target,
)
from observabilipy.otlp._convert import Metric, MetricGrouper
from observabilipy.otlp._json import JsonCodec

__all__ = ["OTLPExporter"]

logger = logging.getLogger("observabilipy.otlp")

USER_AGENT: Final = f"observabilipy-otlp/{SDK_VERSION}"
_GZIP_LEVEL: Final = 6  # zlib's default: most of level 9's ratio at a fraction of its time
_REJECTED_FIELD: Final[dict[str, str]] = {
    "logs": "rejectedLogRecords",
    "metrics": "rejectedDataPoints",
}


class _Codec(Protocol):
    @property
    def content_type(self) -> str: ...

    def encode_logs(self, entries: list[LogEntry]) -> bytes: ...
    def encode_metrics(self, metrics: list[Metric]) -> bytes: ...
    def partial_success(self, body: bytes, *, field: str) -> tuple[int, str]: ...


def _codec(encoding: Encoding, resource: Mapping[str, ResourceValue]) -> _Codec:
    if encoding == "protobuf":
        # Imported only when asked for: its ImportError names the extra to install.
        from observabilipy.otlp._protobuf import ProtobufCodec

        return ProtobufCodec(resource)
    return JsonCodec(resource)


class OTLPExporter:
    """Sends log entries and metric samples to an OTLP/HTTP endpoint.

    Every argument is optional; each one given wins over its environment variable
    (see the package README for the full list):

    - ``endpoint``: the collector's base URL (``OTEL_EXPORTER_OTLP_ENDPOINT``, default
      ``http://localhost:4318``); ``/v1/logs`` and ``/v1/metrics`` are appended.  The
      per-signal ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` / ``..._METRICS_ENDPOINT`` are
      full URLs, used as they are.
    - ``encoding``: ``"json"`` (the default, standard library only) or ``"protobuf"``
      (needs ``pip install "observabilipy-otlp[proto]"``); ``OTEL_EXPORTER_OTLP_PROTOCOL``.
    - ``headers``: sent with every request (``OTEL_EXPORTER_OTLP_HEADERS``), e.g. an
      API key.
    - ``service_name`` and ``resource_attributes``: the resource (``OTEL_SERVICE_NAME``,
      ``OTEL_RESOURCE_ATTRIBUTES``).
    - ``timeout``: seconds per request (``OTEL_EXPORTER_OTLP_TIMEOUT`` in ms, default 10 s).
    - ``compression``: ``"gzip"`` or ``"none"`` (``OTEL_EXPORTER_OTLP_COMPRESSION``);
      none by default, as the specification says: gzip costs CPU to save bandwidth,
      worth it when the collector is across a network, not when it is a sidecar.
    - ``name``: the exporter's name in the runtime's cursors, metrics and /health.
    - ``signals``: what to send, both by default.
    - ``client``: an ``httpx.AsyncClient`` of yours (TLS settings, proxies); it is
      used as given and not closed by :meth:`close`.

    >>> OTLPExporter(endpoint="localhost:4318")
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: endpoint: 'localhost:4318' is not an http(s) URL; expected something like 'http://localhost:4318' (OTLP/HTTP, usually port 4318)
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        encoding: Literal["json", "protobuf"] | None = None,
        headers: Mapping[str, str] | None = None,
        service_name: str | None = None,
        resource_attributes: Mapping[str, ResourceValue] | None = None,
        timeout: float | None = None,
        compression: Literal["gzip", "none"] | None = None,
        name: str = "otlp",
        signals: Iterable[Signal] = ("logs", "metrics"),
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"name: must be a non-empty str, got {name!r}")
        chosen = frozenset(signals)
        if not chosen or not chosen <= {"logs", "metrics"}:
            raise ConfigurationError(
                f"signals: {sorted(chosen)!r} is not a non-empty subset of ['logs', 'metrics']"
            )
        if client is not None and not isinstance(client, httpx.AsyncClient):
            raise ConfigurationError(
                f"client: must be an httpx.AsyncClient, got {type(client).__name__}"
            )
        self.name = name
        self.signals: frozenset[Signal] = chosen
        #: The resource attributes sent with every request.
        self.resource = resolve_resource(
            service_name=service_name, resource_attributes=resource_attributes
        )
        self._targets: dict[str, SignalTarget] = {}
        self._codecs: dict[str, _Codec] = {}
        signal: Signal
        for signal in sorted(chosen):
            target = resolve_target(
                signal,
                endpoint=endpoint,
                encoding=encoding,
                headers=headers,
                timeout=timeout,
                compression=compression,
            )
            self._targets[signal] = target
            self._codecs[signal] = _codec(target.encoding, self.resource)
        self._grouper = MetricGrouper(created_ns=time.time_ns())
        self._own_client = client is None
        self._client = client
        self._client_loop: asyncio.AbstractEventLoop | None = None
        #: Log records the collector accepted the batch of but rejected (partial success).
        self.rejected_log_records = 0
        #: Metric data points the collector rejected the same way.
        self.rejected_data_points = 0

    @property
    def logs_url(self) -> str | None:
        """Where log batches go (None when this exporter does not send logs)."""
        target = self._targets.get("logs")
        return target.url if target else None

    @property
    def metrics_url(self) -> str | None:
        """Where metric batches go (None when this exporter does not send metrics)."""
        target = self._targets.get("metrics")
        return target.url if target else None

    def __repr__(self) -> str:
        targets = ", ".join(
            f"{signal}={target.url!r} ({target.encoding}, {target.compression})"
            for signal, target in self._targets.items()
        )
        return f"OTLPExporter(name={self.name!r}, {targets})"

    async def export_logs(self, entries: AsyncIterable[LogEntry]) -> None:
        """Send one batch of log entries as one ExportLogsServiceRequest."""
        batch = [entry async for entry in entries]
        if batch:
            await self._send("logs", self._codec_for("logs").encode_logs(batch), len(batch))

    async def export_metrics(self, samples: AsyncIterable[MetricSample]) -> None:
        """Send one batch of metric samples as one ExportMetricsServiceRequest.

        A histogram point cut in two by the end of a batch waits for the rest in the
        next one (see :mod:`observabilipy.otlp._convert`).
        """
        codec = self._codec_for("metrics")
        grouped = self._grouper.group([sample async for sample in samples])
        if grouped.points:
            await self._send("metrics", codec.encode_metrics(grouped.metrics), grouped.points)
        self._grouper.commit(grouped)  # only once delivered: a retry groups the same way

    async def close(self) -> None:
        """Close the HTTP client this exporter made (a client passed in stays open)."""
        if not self._own_client:
            return
        client, loop = self._client, self._client_loop
        self._client = self._client_loop = None
        # A client made in another (perhaps closed) loop cannot be closed from this one.
        if client is not None and loop is asyncio.get_running_loop():
            await client.aclose()

    def _codec_for(self, signal: str) -> _Codec:
        codec = self._codecs.get(signal)
        if codec is None:
            raise PermanentExportError(
                f"{self.name}: this exporter sends {sorted(self.signals)}, not {signal}; "
                f"add it to signals= to send it"
            )
        return codec

    def _http_client(self) -> httpx.AsyncClient:
        if not self._own_client:
            assert self._client is not None
            return self._client
        # An httpx client belongs to the event loop it first connected in.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = httpx.AsyncClient(headers={"User-Agent": USER_AGENT})
            self._client_loop = loop
        return self._client

    async def _send(self, signal: str, body: bytes, items: int) -> None:
        target = self._targets[signal]
        codec = self._codecs[signal]
        headers = {**target.headers, "Content-Type": codec.content_type}
        if target.compression == "gzip":
            body = gzip.compress(body, compresslevel=_GZIP_LEVEL, mtime=0)
            headers["Content-Encoding"] = "gzip"
        url = target.url
        try:
            async with asyncio.timeout(target.timeout):
                response = await self._http_client().post(
                    url, content=body, headers=headers, timeout=target.timeout
                )
        except (TimeoutError, httpx.TimeoutException):
            raise RetryableExportError(
                f"POST {url}: no answer within {target.timeout:g} s; "
                "raise timeout= or OTEL_EXPORTER_OTLP_TIMEOUT (ms) if the collector is slow"
            ) from None
        except httpx.HTTPError as exc:
            raise RetryableExportError(f"POST {url}: {type(exc).__name__}: {exc}") from exc
        answer_type = _media_type(response)
        if not 200 <= response.status_code < 300:
            reason = _status_message(response.content, answer_type) or response.reason_phrase
            error = export_error_for_status(
                response.status_code,
                reason=f"POST {url}: {reason}",
                retry_after=response.headers.get("retry-after"),
            )
            assert error is not None
            raise error
        self._read_partial_success(signal, codec, response, answer_type, items)

    def _read_partial_success(
        self,
        signal: str,
        codec: _Codec,
        response: httpx.Response,
        answer_type: str,
        items: int,
    ) -> None:
        body = response.content
        if not body.strip():
            return
        url = response.request.url
        if answer_type and answer_type != codec.content_type:
            raise RetryableExportError(
                f"POST {url}: HTTP {response.status_code} answered with {answer_type}, not an "
                f"OTLP response ({codec.content_type}); is this a collector's OTLP/HTTP receiver?",
                status=response.status_code,
            )
        try:
            rejected, message = codec.partial_success(body, field=_REJECTED_FIELD[signal])
        except ValueError as exc:
            raise RetryableExportError(
                f"POST {url}: HTTP {response.status_code} with an answer that is not an "
                f"OTLP response: {exc}",
                status=response.status_code,
            ) from None
        if rejected <= 0 and not message:
            return
        if signal == "logs":
            self.rejected_log_records += max(rejected, 0)
        else:
            self.rejected_data_points += max(rejected, 0)
        logger.warning(
            "OTLP collector at %s kept the batch but rejected %d of %d %s: %s",
            url,
            rejected,
            items,
            "log records" if signal == "logs" else "data points",
            message or "(no reason given)",
        )


def _media_type(response: httpx.Response) -> str:
    content_type: str = response.headers.get("content-type", "")
    return content_type.split(";")[0].strip().lower()


def _status_message(body: bytes, media_type: str) -> str:
    """The ``message`` of the google.rpc.Status an OTLP collector answers a failure with.

    >>> _status_message(b'{"code": 3, "message": "bad timestamp"}', "application/json")
    'bad timestamp'
    >>> _status_message(bytes([0x08, 0x03, 0x12, 0x03]) + b"bad", "application/x-protobuf")
    'bad'
    >>> _status_message(b"upstream gone", "text/plain")
    'upstream gone'
    """
    if media_type == "application/json":
        try:
            answer = json.loads(body)
        except ValueError:
            return ""
        message = answer.get("message") if isinstance(answer, dict) else None
        return message if isinstance(message, str) else ""
    if media_type == "application/x-protobuf":
        return _protobuf_status_message(body)
    if media_type.startswith("text/"):
        return body[:200].decode("utf-8", "replace").strip()
    return ""


def _protobuf_status_message(body: bytes) -> str:
    # google.rpc.Status is not in opentelemetry-proto: read its field 2 (message, a
    # length-delimited string) from the wire format, which needs no dependency.
    position = 0
    try:
        while position < len(body):
            tag, position = _varint(body, position)
            number, wire_type = tag >> 3, tag & 7
            if wire_type == 0:
                _, position = _varint(body, position)
            elif wire_type == 2:
                length, position = _varint(body, position)
                if number == 2:
                    return body[position : position + length].decode("utf-8", "replace")
                position += length
            else:
                return ""
    except IndexError:
        return ""
    return ""


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
