"""What an exporter is, and how it tells the runtime whether a failed batch may be retried.

An exporter sends what local storage holds to central infrastructure (Pushgateway, Loki,
an OTLP collector, any HTTP endpoint).  The runtime reads each batch from storage behind
the exporter's own persisted cursor and hands it over as an async iterable; the exporter
returns when the batch is delivered, or raises:

- :class:`RetryableExportError` (connection refused, timeout, 5xx, 429, refused
  credentials, an answer it could not understand): the runtime keeps the cursor and
  tries the same batch again after an exponential backoff with jitter, or after
  ``retry_after`` seconds when the collector said so (``Retry-After``);
- :class:`PermanentExportError` (any other 4xx, such as 400 or 413: the collector refuses
  this data): the runtime drops the batch, counts it and logs the reason once, and
  moves on.

>>> error = export_error_for_status(503, retry_after="7")
>>> type(error).__name__, error.retry_after
('RetryableExportError', 7.0)
>>> type(export_error_for_status(400, reason="bad label")).__name__
'PermanentExportError'
>>> export_error_for_status(204) is None
True
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterable
from typing import Literal, Protocol, runtime_checkable

from observabilipy.core.errors import ObservabilityError
from observabilipy.core.models import LogEntry, MetricSample

__all__ = [
    "ExportError",
    "ExporterPort",
    "PermanentExportError",
    "RetryableExportError",
    "Signal",
    "export_error_for_status",
    "parse_retry_after",
]

# Client errors that mean "try again later" or "fix the exporter's settings", not "bad batch".
_RETRYABLE_CLIENT_ERRORS = frozenset({401, 403, 404, 408, 429})

#: What an exporter sends: log entries, metric samples, or both.
Signal = Literal["logs", "metrics"]


class ExportError(ObservabilityError):
    """A batch was not delivered; ``reason`` says why in words a log line can carry."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class RetryableExportError(ExportError):
    """The batch may succeed later: keep it and try again.

    ``retry_after`` is how long the collector asked us to wait, in seconds (None: it did
    not say, the runtime's backoff decides).
    """

    def __init__(
        self, reason: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(reason, status=status)
        self.retry_after = retry_after


class PermanentExportError(ExportError):
    """The collector refuses this batch for good: sending it again cannot help."""


@runtime_checkable
class ExporterPort(Protocol):
    """Sends batches read from local storage to somewhere else.

    ``name`` identifies the exporter in cursors, metrics and /health (two exporters of one
    runtime need different names).  ``signals`` says what it sends; the runtime reads
    only those.  Each ``export_*`` call gets one batch, oldest first, with ids set, and
    returns once the whole batch is delivered or raises an :class:`ExportError`.
    """

    name: str
    signals: frozenset[Signal]

    async def export_logs(self, entries: AsyncIterable[LogEntry]) -> None:
        """Deliver one batch of log entries."""

    async def export_metrics(self, samples: AsyncIterable[MetricSample]) -> None:
        """Deliver one batch of cumulative metric samples."""

    async def close(self) -> None:
        """Release connections; called once when the runtime stops."""


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date).

    Returns None when the header is missing or unreadable (the caller's backoff decides).

    >>> parse_retry_after("120")
    120.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0)
    10.0
    >>> parse_retry_after("soon") is None
    True
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        # Imported here: email.utils costs ~10 ms at start-up, and dates are the rare form.
        import email.utils

        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def export_error_for_status(
    status: int, *, reason: str = "", retry_after: str | None = None
) -> ExportError | None:
    """The error an HTTP answer with ``status`` means for a batch (None: delivered).

    2xx is success; 408, 429 and 5xx are retryable (honouring ``Retry-After``), and so are
    401, 403 and 404: they say the exporter is misconfigured (credentials, URL), not that
    this batch is bad, so the data waits in local storage until the configuration is
    fixed instead of being dropped batch after batch.  Any other status is permanent.
    Every HTTP exporter classifies answers here, so they all agree.

    >>> export_error_for_status(429, retry_after="3").retry_after
    3.0
    >>> type(export_error_for_status(401)).__name__
    'RetryableExportError'
    >>> str(export_error_for_status(413, reason="too large"))
    'HTTP 413: too large'
    """
    if 200 <= status < 300:
        return None
    message = f"HTTP {status}: {reason}" if reason else f"HTTP {status}"
    if status in _RETRYABLE_CLIENT_ERRORS or status >= 500:
        return RetryableExportError(
            message, status=status, retry_after=parse_retry_after(retry_after)
        )
    return PermanentExportError(message, status=status)
