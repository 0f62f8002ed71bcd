"""observabilipy.otlp: send logs and metrics to any OpenTelemetry collector over OTLP/HTTP.

JSON encoding by default (standard library only); protobuf with
``pip install "observabilipy-otlp[proto]"``.  Configure with arguments or the standard
``OTEL_EXPORTER_OTLP_*`` / ``OTEL_SERVICE_NAME`` environment variables, and hand the
exporter to the runtime, which feeds it batches read from local storage::

    runtime = EmbeddedRuntime(log_storage=..., metrics_storage=...,
                              exporters=[OTLPExporter(service_name="shop")])

>>> from observabilipy.otlp import OTLPExporter
>>> OTLPExporter(endpoint="http://collector:4318", encoding="json", name="central")
OTLPExporter(name='central', logs='http://collector:4318/v1/logs' (json, none), metrics='http://collector:4318/v1/metrics' (json, none))
"""

from observabilipy.otlp.exporter import OTLPExporter

__all__ = ["OTLPExporter"]
