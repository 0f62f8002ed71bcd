"""OTLP/JSON, standard library only: ExportLogsServiceRequest and ExportMetricsServiceRequest.

The OTLP specification's JSON encoding is the proto3 JSON mapping with three rules of
its own: field names in lowerCamelCase, trace and span ids as hex (not base64), enums
as integers.  64-bit integers (timestamps, counts, int attributes) are decimal strings.

Log records are written straight into the body text (one escaped string per field and
no intermediate dicts), which is what makes this encoder fast; metrics, far fewer,
are built as dicts and dumped once.

>>> codec = JsonCodec({"service.name": "shop"})
>>> from observabilipy.core.models import LogEntry
>>> body = codec.encode_logs([LogEntry(timestamp=1.5, level="warn", message="disk low", attributes={"free_mb": 12})])
>>> record = json.loads(body)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
>>> record["timeUnixNano"], record["severityNumber"], record["attributes"]
('1500000000', 13, [{'key': 'free_mb', 'value': {'intValue': '12'}}])
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any, Final

from observabilipy.core.models import AttributeValue, LogEntry
from observabilipy.otlp._config import SDK_VERSION, ResourceValue
from observabilipy.otlp._convert import (
    INT64_MAX,
    INT64_MIN,
    SEVERITY,
    SPAN_ID_KEY,
    TRACE_ID_KEY,
    HistogramPoint,
    Metric,
    NumberPoint,
    split_trace_context,
)

__all__ = ["JsonCodec", "any_value"]

_escape = encode_basestring
_AGGREGATION_TEMPORALITY_CUMULATIVE: Final = 2

# What follows the timestamps of a record: severity and the opening of its body.
_LEVEL_TEXT: Final = {
    level: f',"severityNumber":{number},"severityText":"{level}","body":{{"stringValue":'
    for level, number in SEVERITY.items()
}


def _double(value: float) -> float | str:
    """A double as proto3 JSON writes it: non-finite values are the strings NaN, Infinity."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def any_value(value: AttributeValue | ResourceValue) -> dict[str, Any]:
    """The OTLP AnyValue of an attribute value, of the matching kind.

    >>> any_value(True), any_value(3), any_value(0.5), any_value("x"), any_value(None)
    ({'boolValue': True}, {'intValue': '3'}, {'doubleValue': 0.5}, {'stringValue': 'x'}, {})
    >>> any_value(2**70)  # beyond int64: kept whole, as text
    {'stringValue': '1180591620717411303424'}
    """
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return {"intValue": str(value)}
        return {"stringValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": _double(value)}
    return {"stringValue": str(value)}


def _key_value_text(key: str, value: AttributeValue) -> str:
    """One KeyValue as JSON text, written directly: the hot path of log encoding."""
    # Exact type checks: bool is an int, and int subclasses are not ours to format.
    if type(value) is str:
        text = f'{{"stringValue":{_escape(value)}}}'
    elif type(value) is int and INT64_MIN <= value <= INT64_MAX:
        text = f'{{"intValue":"{value}"}}'
    elif type(value) is float:
        double = _double(value)
        text = (
            f'{{"doubleValue":{double!r}}}'
            if type(double) is float
            else f'{{"doubleValue":"{double}"}}'
        )
    elif value is True or value is False:
        text = '{"boolValue":true}' if value else '{"boolValue":false}'
    elif value is None:
        text = "{}"
    else:
        text = f'{{"stringValue":{_escape(str(value))}}}'
    return f'{{"key":{_escape(key)},"value":{text}}}'


def _attributes(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": any_value(value)} for key, value in attributes.items()]


class JsonCodec:
    """Encodes batches as OTLP/JSON and reads the collector's answers.

    ``resource`` is the resource's attributes; it is rendered once, here.
    """

    content_type: Final = "application/json"

    def __init__(self, resource: Mapping[str, ResourceValue]) -> None:
        resource_text = json.dumps(
            {"attributes": _attributes(resource)}, separators=(",", ":"), allow_nan=False
        )
        scope_text = json.dumps({"name": "observabilipy", "version": SDK_VERSION})
        self._logs_head = (
            f'{{"resourceLogs":[{{"resource":{resource_text},'
            f'"scopeLogs":[{{"scope":{scope_text},"logRecords":['
        )
        self._metrics_head = (
            f'{{"resourceMetrics":[{{"resource":{resource_text},'
            f'"scopeMetrics":[{{"scope":{scope_text},"metrics":'
        )

    def encode_logs(self, entries: Sequence[LogEntry]) -> bytes:
        """One ExportLogsServiceRequest holding every entry, in order.

        >>> body = JsonCodec({}).encode_logs([LogEntry(timestamp=2.0, level="INFO", message="hi")])
        >>> json.loads(body)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["body"]
        {'stringValue': 'hi'}
        """
        records = []
        for entry in entries:
            nanos = round(entry.timestamp * 1_000_000) * 1000  # to_unix_nano, inlined
            record = (
                f'{{"timeUnixNano":"{nanos}","observedTimeUnixNano":"{nanos}"'
                f"{_LEVEL_TEXT[entry.level]}{_escape(entry.message)}}}"
            )
            attributes = entry.attributes
            if attributes:
                pairs: Any = attributes.items()
                if TRACE_ID_KEY in attributes or SPAN_ID_KEY in attributes:
                    trace_id, span_id = split_trace_context(attributes)
                    if trace_id is not None:
                        record += f',"traceId":"{trace_id}"'
                    if span_id is not None:
                        record += f',"spanId":"{span_id}"'
                    moved = {
                        key
                        for key, found in ((TRACE_ID_KEY, trace_id), (SPAN_ID_KEY, span_id))
                        if found
                    }
                    pairs = [(key, value) for key, value in pairs if key not in moved]
                text = ",".join(
                    [
                        f'{{"key":{_escape(key)},"value":{{"stringValue":{_escape(value)}}}}}'
                        if type(value) is str
                        else _key_value_text(key, value)
                        for key, value in pairs
                    ]
                )
                record += f',"attributes":[{text}]}}'
            else:
                record += "}"
            records.append(record)
        body = self._logs_head + ",".join(records) + "]}]}]}"
        # A lone surrogate (undecodable bytes smuggled into a str) cannot be UTF-8.
        return body.encode("utf-8", "replace")

    def encode_metrics(self, metrics: Sequence[Metric]) -> bytes:
        """One ExportMetricsServiceRequest holding every metric."""
        rendered = [_metric(metric) for metric in metrics]
        text = json.dumps(rendered, separators=(",", ":"), allow_nan=False)
        return (self._metrics_head + text + "}]}]}").encode("utf-8", "replace")

    def partial_success(self, body: bytes, *, field: str) -> tuple[int, str]:
        """(rejected count, error message) of an Export*ServiceResponse; ValueError if unreadable.

        ``field`` is ``rejectedLogRecords`` or ``rejectedDataPoints``.

        >>> JsonCodec({}).partial_success(b'{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"too old"}}', field="rejectedLogRecords")
        (2, 'too old')
        >>> JsonCodec({}).partial_success(b"{}", field="rejectedLogRecords")
        (0, '')
        """
        answer = json.loads(body) if body.strip() else {}
        if not isinstance(answer, dict):
            raise ValueError(f"expected a JSON object, got {type(answer).__name__}")
        partial = answer.get("partialSuccess") or answer.get("partial_success") or {}
        if not isinstance(partial, dict):
            raise ValueError("partialSuccess is not an object")
        field_snake = (
            "rejected_log_records" if field == "rejectedLogRecords" else "rejected_data_points"
        )
        rejected = int(partial.get(field) or partial.get(field_snake) or 0)
        message = partial.get("errorMessage") or partial.get("error_message") or ""
        return rejected, str(message)


def _number_point(point: NumberPoint) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    if point.attributes:
        rendered["attributes"] = [
            {"key": key, "value": {"stringValue": value}} for key, value in point.attributes
        ]
    if point.start_ns is not None:
        rendered["startTimeUnixNano"] = str(point.start_ns)
    rendered["timeUnixNano"] = str(point.time_ns)
    rendered["asDouble"] = _double(point.value)
    return rendered


def _histogram_point(point: HistogramPoint) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    if point.attributes:
        rendered["attributes"] = [
            {"key": key, "value": {"stringValue": value}} for key, value in point.attributes
        ]
    rendered["startTimeUnixNano"] = str(point.start_ns)
    rendered["timeUnixNano"] = str(point.time_ns)
    rendered["count"] = str(point.count)
    if point.sum is not None:
        rendered["sum"] = _double(point.sum)
    rendered["bucketCounts"] = [str(count) for count in point.bucket_counts]
    rendered["explicitBounds"] = point.bounds
    return rendered


def _metric(metric: Metric) -> dict[str, Any]:
    rendered: dict[str, Any] = {"name": metric.name}
    if metric.description:
        rendered["description"] = metric.description
    if metric.shape == "histogram":
        rendered["histogram"] = {
            "dataPoints": [
                _histogram_point(p) for p in metric.points if isinstance(p, HistogramPoint)
            ],
            "aggregationTemporality": _AGGREGATION_TEMPORALITY_CUMULATIVE,
        }
        return rendered
    points = [_number_point(p) for p in metric.points if isinstance(p, NumberPoint)]
    if metric.shape == "sum":
        rendered["sum"] = {
            "dataPoints": points,
            "aggregationTemporality": _AGGREGATION_TEMPORALITY_CUMULATIVE,
            "isMonotonic": True,
        }
    else:
        rendered["gauge"] = {"dataPoints": points}
    return rendered
