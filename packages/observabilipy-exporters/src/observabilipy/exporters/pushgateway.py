"""Push metrics to a Prometheus Pushgateway, for jobs Prometheus cannot scrape.

A Pushgateway holds, per *group* (the job name plus a grouping key such as
``instance``), the last values pushed to it, and Prometheus scrapes them from
there.  It wants current values, not history: :class:`PushgatewayExporter`
keeps the latest cumulative point of every series it has seen and pushes all of
them, as Prometheus text, on every batch.

>>> exporter = PushgatewayExporter(url="http://pushgateway:9091", job="nightly-report",
...                                grouping_key={"instance": "worker-1"})
>>> exporter.group_url
'http://pushgateway:9091/metrics/job/nightly-report/instance/worker-1'
"""

from __future__ import annotations

import base64
import logging
from collections import OrderedDict
from collections.abc import AsyncIterable, Mapping
from typing import Final, Literal
from urllib.parse import quote

import httpx

from observabilipy.core.errors import ConfigurationError, ValidationError
from observabilipy.core.exposition import CONTENT_TYPE_PROMETHEUS, encode_metrics
from observabilipy.core.models import LogEntry, MetricSample, validate_label_name
from observabilipy.exporters._http import HTTPExporter, check_url

__all__ = ["PushgatewayExporter", "grouping_path"]

_logger = logging.getLogger("observabilipy.exporters")

#: Series kept (and pushed) at most, by default: far above a service's usual count.
DEFAULT_MAX_SERIES: Final = 10_000

_SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


def _path_segment(name: str, value: str) -> str:
    # A '/' would split the path and an empty value would vanish when the path is
    # cleaned; the Pushgateway reads `name@base64/<urlsafe base64>` for both
    # (an empty value is a single '=').
    if value == "" or "/" in value:
        encoded = base64.urlsafe_b64encode(value.encode()).decode("ascii") or "="
        return f"{name}@base64/{encoded}"
    return f"{name}/{quote(value, safe='')}"


def grouping_path(job: str, grouping_key: Mapping[str, str] | None = None) -> str:
    """The Pushgateway path of a group: ``/metrics/job/<job>{/<label>/<value>}``.

    Values holding a ``/`` (and empty values) are written ``<label>@base64/<value>``,
    as the Pushgateway documents; others are percent-encoded.

    >>> grouping_path("backup", {"instance": "db-1"})
    '/metrics/job/backup/instance/db-1'
    >>> grouping_path("backup", {"path": "/var/lib", "zone": ""})
    '/metrics/job/backup/path@base64/L3Zhci9saWI=/zone@base64/='
    """
    parts = ["/metrics", _path_segment("job", job)]
    parts.extend(_path_segment(name, value) for name, value in (grouping_key or {}).items())
    return "/".join(parts)


class PushgatewayExporter(HTTPExporter):
    """Sends metrics to the Pushgateway group ``job`` + ``grouping_key``.

    ``url`` is the Pushgateway's address (``http://pushgateway:9091``, with a path
    prefix if it sits behind one).  ``grouping_key`` adds labels that identify the
    group, typically ``{"instance": hostname}``; the Pushgateway attaches them
    (and ``job``) to every pushed series, so scrape it with ``honor_labels: true``.

    Every batch updates a map of the latest cumulative point per series (name and
    labels) and the *whole map* is pushed, so a batch that carries only some
    families never makes the others disappear, and after a Pushgateway restart
    (without persistence) the next push restores everything.  The map holds at
    most ``max_series`` series; beyond that the one updated longest ago is
    forgotten (with one warning), which bounds memory whatever the registry does.

    ``method`` decides what a push replaces in the group:

    - ``"PUT"`` (default): the whole group.  This exporter owns the group: a series
      pushed there by anything else disappears at the next push.  Give every
      process its own group (an ``instance`` in ``grouping_key``).
    - ``"POST"``: only the metrics with the names pushed.  Several pushers may share
      the group, each replacing its own metric names only.

    ``headers``, ``basic_auth`` (user, password) and ``bearer_token`` go on every
    request; ``timeout`` is in seconds.  ``client`` lends an ``httpx.AsyncClient``
    (proxies, TLS settings) that the exporter will not close.

    >>> PushgatewayExporter(url="http://pushgateway:9091", job="etl", method="PATCH")
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: method: must be 'PUT' or 'POST', got 'PATCH'
    """

    def __init__(
        self,
        *,
        url: str,
        job: str,
        grouping_key: Mapping[str, str] | None = None,
        method: Literal["PUT", "POST"] = "PUT",
        headers: Mapping[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
        bearer_token: str | None = None,
        timeout: float = 10.0,
        max_series: int = DEFAULT_MAX_SERIES,
        name: str = "pushgateway",
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            name=name,
            signals=frozenset({"metrics"}),
            headers=headers,
            basic_auth=basic_auth,
            bearer_token=bearer_token,
            timeout=timeout,
            client=client,
        )
        base = check_url(url)
        if "/metrics/job" in base.path:
            raise ConfigurationError(
                f"url: give the Pushgateway's address only (e.g. 'http://pushgateway:9091'), "
                f"and the group as job= and grouping_key=; got {url!r}"
            )
        if not isinstance(job, str) or not job:
            raise ConfigurationError(f"job: must be a non-empty str, got {job!r}")
        self.grouping_key = _check_grouping_key(grouping_key)
        if method not in ("PUT", "POST"):
            raise ConfigurationError(f"method: must be 'PUT' or 'POST', got {method!r}")
        if isinstance(max_series, bool) or not isinstance(max_series, int) or max_series < 1:
            raise ConfigurationError(f"max_series: must be a positive int, got {max_series!r}")
        self.job = job
        self.method = method
        self.max_series = max_series
        self.group_url = str(base).rstrip("/") + grouping_path(job, self.grouping_key)
        self._latest: OrderedDict[_SeriesKey, MetricSample] = OrderedDict()
        self._warned_full = False

    async def export_metrics(self, samples: AsyncIterable[MetricSample]) -> None:
        """Fold the batch into the latest values and push them all to the group.

        An empty batch pushes nothing.  Raises RetryableExportError when the
        Pushgateway is unreachable or answers 5xx/429, PermanentExportError when
        it refuses the metrics (400: e.g. inconsistent with another group's).
        """
        received = 0
        async for sample in samples:
            received += 1
            self._keep(sample)
        if not received:
            return
        body = encode_metrics(self._latest.values()).encode()
        await self.send(self.method, self.group_url, body, content_type=CONTENT_TYPE_PROMETHEUS)

    async def export_logs(self, entries: AsyncIterable[LogEntry]) -> None:
        """Refused: a Pushgateway holds metrics only (PermanentExportError)."""
        raise self.refuse("logs")

    def _keep(self, sample: MetricSample) -> None:
        key = (sample.name, tuple(sorted(sample.labels.items())))
        held = self._latest.get(key)
        if held is not None:
            # A batch is in id order, but a retried or resumed one may carry older
            # points: never replace a newer value with an older one.
            if (held.timestamp, held.id or 0) > (sample.timestamp, sample.id or 0):
                return
            self._latest.move_to_end(key)
        self._latest[key] = sample
        if len(self._latest) > self.max_series:
            self._latest.popitem(last=False)
            if not self._warned_full:
                self._warned_full = True
                _logger.warning(
                    "%s: more than max_series=%d series; the least recently updated are "
                    "no longer pushed (raise max_series, or lower label cardinality)",
                    self.name,
                    self.max_series,
                )


def _check_grouping_key(grouping_key: object) -> dict[str, str]:
    if grouping_key is None:
        return {}
    if not isinstance(grouping_key, Mapping):
        raise ConfigurationError(
            f"grouping_key: must be a mapping of label names to str, got {type(grouping_key).__name__}"
        )
    checked: dict[str, str] = {}
    for key, value in grouping_key.items():
        try:
            validate_label_name(key, field="grouping_key")
        except ValidationError as exc:
            raise ConfigurationError(str(exc)) from None
        if key == "job":
            raise ConfigurationError("grouping_key: 'job' is set by job=, not in grouping_key")
        if not isinstance(value, str):
            raise ConfigurationError(
                f"grouping_key[{key!r}]: must be a str, got {type(value).__name__} {value!r}"
            )
        checked[key] = value
    return checked
