"""OTLP/protobuf, with the message classes of opentelemetry-proto (the ``proto`` extra).

The same decisions as the JSON encoder (:mod:`observabilipy.otlp._convert`), written
as protobuf messages: byte ids instead of hex, integers instead of decimal strings.

>>> from observabilipy.core.models import LogEntry
>>> codec = ProtobufCodec({"service.name": "shop"})
>>> body = codec.encode_logs([LogEntry(timestamp=1.5, level="ERROR", message="boom")])
>>> request = ExportLogsServiceRequest.FromString(body)
>>> record = request.resource_logs[0].scope_logs[0].log_records[0]
>>> record.time_unix_nano, record.severity_number, record.body.string_value
(1500000000, 17, 'boom')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

try:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
        ExportLogsServiceResponse,
    )
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
        ExportMetricsServiceResponse,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
    from opentelemetry.proto.metrics.v1 import metrics_pb2
except ImportError as exc:  # pragma: no cover - exercised in an environment without the extra
    raise ImportError(
        'encoding="protobuf" needs opentelemetry-proto: pip install "observabilipy-otlp[proto]" '
        '(or use encoding="json", which needs nothing more)'
    ) from exc

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
    to_unix_nano,
)

__all__ = ["ExportLogsServiceRequest", "ExportMetricsServiceRequest", "ProtobufCodec"]

_CUMULATIVE: Final = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE


def _any_value(value: AttributeValue | ResourceValue) -> AnyValue:
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return AnyValue(int_value=value)
        return AnyValue(string_value=str(value))
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def _fill_labels(target: object, attributes: Sequence[tuple[str, str]]) -> None:
    add = target.add  # type: ignore[attr-defined]
    for key, value in attributes:
        add(key=key, value=AnyValue(string_value=value))


class ProtobufCodec:
    """Encodes batches as OTLP/protobuf and reads the collector's answers."""

    content_type: Final = "application/x-protobuf"

    def __init__(self, resource: Mapping[str, ResourceValue]) -> None:
        self._resource = [
            KeyValue(key=key, value=_any_value(value)) for key, value in resource.items()
        ]
        self._scope = InstrumentationScope(name="observabilipy", version=SDK_VERSION)

    def encode_logs(self, entries: Sequence[LogEntry]) -> bytes:
        """One ExportLogsServiceRequest holding every entry, in order."""
        request = ExportLogsServiceRequest()
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.extend(self._resource)
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.CopyFrom(self._scope)
        add_record = scope_logs.log_records.add
        for entry in entries:
            nanos = to_unix_nano(entry.timestamp)
            record = add_record(
                time_unix_nano=nanos,
                observed_time_unix_nano=nanos,
                severity_number=SEVERITY[entry.level],
                severity_text=entry.level,
                body=AnyValue(string_value=entry.message),
            )
            attributes = entry.attributes
            if not attributes:
                continue
            items: Iterable[tuple[str, AttributeValue]] = attributes.items()
            if TRACE_ID_KEY in attributes or SPAN_ID_KEY in attributes:
                trace_id, span_id = split_trace_context(attributes)
                if trace_id is not None:
                    record.trace_id = bytes.fromhex(trace_id)
                if span_id is not None:
                    record.span_id = bytes.fromhex(span_id)
                moved = {
                    key
                    for key, found in ((TRACE_ID_KEY, trace_id), (SPAN_ID_KEY, span_id))
                    if found
                }
                items = [(key, value) for key, value in attributes.items() if key not in moved]
            add_attribute = record.attributes.add
            for key, value in items:
                if type(value) is str:
                    add_attribute(key=key, value=AnyValue(string_value=value))
                else:
                    add_attribute(key=key, value=_any_value(value))
        return request.SerializeToString()

    def encode_metrics(self, metrics: Sequence[Metric]) -> bytes:
        """One ExportMetricsServiceRequest holding every metric."""
        request = ExportMetricsServiceRequest()
        resource_metrics = request.resource_metrics.add()
        resource_metrics.resource.attributes.extend(self._resource)
        scope_metrics = resource_metrics.scope_metrics.add()
        scope_metrics.scope.CopyFrom(self._scope)
        for metric in metrics:
            message = scope_metrics.metrics.add(name=metric.name, description=metric.description)
            if metric.shape == "histogram":
                message.histogram.aggregation_temporality = _CUMULATIVE
                for point in metric.points:
                    if isinstance(point, HistogramPoint):
                        self._histogram_point(message.histogram.data_points.add(), point)
                continue
            if metric.shape == "sum":
                message.sum.aggregation_temporality = _CUMULATIVE
                message.sum.is_monotonic = True
                add_point = message.sum.data_points.add
            else:
                message.gauge.SetInParent()  # an empty gauge is still a gauge
                add_point = message.gauge.data_points.add
            for point in metric.points:
                if isinstance(point, NumberPoint):
                    data_point = add_point(time_unix_nano=point.time_ns, as_double=point.value)
                    if point.start_ns is not None:
                        data_point.start_time_unix_nano = point.start_ns
                    _fill_labels(data_point.attributes, point.attributes)
        return request.SerializeToString()

    @staticmethod
    def _histogram_point(data_point: metrics_pb2.HistogramDataPoint, point: HistogramPoint) -> None:
        data_point.start_time_unix_nano = point.start_ns
        data_point.time_unix_nano = point.time_ns
        data_point.count = point.count
        if point.sum is not None:
            data_point.sum = point.sum
        data_point.bucket_counts.extend(point.bucket_counts)
        data_point.explicit_bounds.extend(point.bounds)
        _fill_labels(data_point.attributes, point.attributes)

    def partial_success(self, body: bytes, *, field: str) -> tuple[int, str]:
        """(rejected count, error message) of an Export*ServiceResponse; ValueError if unreadable.

        ``field`` is ``rejectedLogRecords`` or ``rejectedDataPoints``.
        """
        try:
            if field == "rejectedLogRecords":
                logs = ExportLogsServiceResponse.FromString(body)
                return logs.partial_success.rejected_log_records, logs.partial_success.error_message
            metrics = ExportMetricsServiceResponse.FromString(body)
            return (
                metrics.partial_success.rejected_data_points,
                metrics.partial_success.error_message,
            )
        except Exception as exc:  # protobuf's DecodeError is not a ValueError
            raise ValueError(f"not a protobuf Export*ServiceResponse ({exc})") from exc
