"""observabilipy-core: structured logs, typed cumulative metrics and storage, stdlib only.

Everything a service records goes through this package; the other observabilipy
distributions (SQLite storage, web adapters, exporters, dashboard, CLI) build on it.

>>> from observabilipy.core import Registry, encode_current, info
>>> registry = Registry()
>>> registry.counter("jobs", "Jobs done.").inc(3)
>>> print(encode_current(registry), end="")
# HELP jobs_total Jobs done.
# TYPE jobs_total counter
jobs_total 3.0
>>> info("job done", queue="mail").attributes
{'queue': 'mail'}
"""

from __future__ import annotations

from observabilipy.core.context import (
    ContextProvider,
    clear_log_context,
    get_log_context,
    log_context,
    reset_log_context,
    set_log_context,
    update_log_context,
)
from observabilipy.core.encoding import (
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
from observabilipy.core.errors import ConfigurationError, ObservabilityError, ValidationError
from observabilipy.core.export import (
    ExporterPort,
    ExportError,
    PermanentExportError,
    RetryableExportError,
    Signal,
    export_error_for_status,
    parse_retry_after,
)
from observabilipy.core.exporting import ExporterStatus
from observabilipy.core.exposition import (
    CONTENT_TYPE_OPENMETRICS,
    CONTENT_TYPE_PROMETHEUS,
    choose_exposition,
    encode_current,
    encode_metrics,
)
from observabilipy.core.handler import ObservabilipyHandler
from observabilipy.core.instrumentation import instrument
from observabilipy.core.levels import (
    CRITICAL,
    DEBUG,
    ERROR,
    INFO,
    LEVELS,
    WARNING,
    levels_at_or_above,
    normalize_level,
)
from observabilipy.core.logs import (
    Logger,
    critical,
    debug,
    error,
    get_logger,
    info,
    log,
    log_exception,
    timed_log,
    warn,
    warning,
)
from observabilipy.core.metrics import (
    DEFAULT_HISTOGRAM_BUCKETS,
    DEFAULT_REGISTRY,
    Counter,
    Gauge,
    Histogram,
    Registry,
    Timer,
    counter,
    default_registry,
    gauge,
    histogram,
    timer,
)
from observabilipy.core.models import (
    LevelRetentionPolicy,
    LogEntry,
    MetricSample,
    RetentionPolicy,
)
from observabilipy.core.ports import LogStoragePort, MetricsStoragePort
from observabilipy.core.retention import (
    apply_log_retention,
    apply_log_retention_sync,
    apply_metrics_retention,
    apply_metrics_retention_sync,
)
from observabilipy.core.runtime import EmbeddedRuntime
from observabilipy.core.storage import (
    InMemoryLogStorage,
    InMemoryMetricsStorage,
    RingBufferLogStorage,
    RingBufferMetricsStorage,
)

__all__ = [
    # models and errors
    "LogEntry",
    "MetricSample",
    "RetentionPolicy",
    "LevelRetentionPolicy",
    "ObservabilityError",
    "ValidationError",
    "ConfigurationError",
    # levels
    "DEBUG",
    "INFO",
    "WARNING",
    "ERROR",
    "CRITICAL",
    "LEVELS",
    "normalize_level",
    "levels_at_or_above",
    # metrics
    "Registry",
    "Counter",
    "Gauge",
    "Histogram",
    "Timer",
    "DEFAULT_REGISTRY",
    "default_registry",
    "DEFAULT_HISTOGRAM_BUCKETS",
    "counter",
    "gauge",
    "histogram",
    "timer",
    "instrument",
    # exposition
    "encode_current",
    "encode_metrics",
    "choose_exposition",
    "CONTENT_TYPE_PROMETHEUS",
    "CONTENT_TYPE_OPENMETRICS",
    # logs and context
    "log",
    "debug",
    "info",
    "warn",
    "warning",
    "error",
    "critical",
    "log_exception",
    "timed_log",
    "get_logger",
    "Logger",
    "log_context",
    "get_log_context",
    "set_log_context",
    "update_log_context",
    "reset_log_context",
    "clear_log_context",
    "ContextProvider",
    # storage
    "LogStoragePort",
    "MetricsStoragePort",
    "InMemoryLogStorage",
    "InMemoryMetricsStorage",
    "RingBufferLogStorage",
    "RingBufferMetricsStorage",
    # encoders
    "encode_logs_ndjson",
    "aencode_logs_ndjson",
    "encode_logs_json",
    "aencode_logs_json",
    "encode_metrics_ndjson",
    "aencode_metrics_ndjson",
    "encode_metrics_json",
    "aencode_metrics_json",
    "log_entry_to_dict",
    "metric_sample_to_dict",
    # retention, runtime, handler
    "apply_log_retention",
    "apply_log_retention_sync",
    "apply_metrics_retention",
    "apply_metrics_retention_sync",
    "EmbeddedRuntime",
    "ObservabilipyHandler",
    # export (store-and-forward to central infrastructure)
    "ExporterPort",
    "ExporterStatus",
    "Signal",
    "ExportError",
    "RetryableExportError",
    "PermanentExportError",
    "export_error_for_status",
    "parse_retry_after",
]
