"""observabilipy-exporters: push logs and metrics to Pushgateway, Loki or any HTTP/JSON endpoint.

Each exporter implements :class:`~observabilipy.core.export.ExporterPort`; give them
to the runtime (``EmbeddedRuntime(exporters=[...])``), which reads batches from local
storage behind a cursor per exporter and retries what fails, so an outage of the
collector loses nothing that retention still holds.

- :class:`PushgatewayExporter`: metrics to a Prometheus Pushgateway (PUT or POST);
- :class:`LokiExporter`: logs to Grafana Loki's push API (JSON, gzip, structured metadata);
- :class:`HTTPJSONExporter`: logs and metrics as NDJSON or JSON to any URL.

>>> from observabilipy.core.export import ExporterPort
>>> exporter = LokiExporter(url="http://loki:3100", labels={"service": "shop"})
>>> isinstance(exporter, ExporterPort), sorted(exporter.signals)
(True, ['logs'])
"""

from __future__ import annotations

from observabilipy.exporters.http_json import SIGNAL_HEADER, HTTPJSONExporter
from observabilipy.exporters.loki import LokiExporter, logfmt_line
from observabilipy.exporters.pushgateway import PushgatewayExporter, grouping_path

__all__ = [
    "SIGNAL_HEADER",
    "HTTPJSONExporter",
    "LokiExporter",
    "PushgatewayExporter",
    "grouping_path",
    "logfmt_line",
]
