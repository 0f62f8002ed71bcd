"""Push logs to Grafana Loki through its HTTP push API (JSON, gzip).

Loki indexes a log line by its *stream*: a small set of labels.  Labels must stay
few and of low cardinality (each distinct set is a new stream), so
:class:`LokiExporter` builds streams from static ``labels`` (service, env) plus
a short, explicit list of ``label_attributes`` (the level by default).  Every
other attribute goes with its line as structured metadata (queried like a label,
but without a stream per value), or, with ``structured_metadata=False``, into
the line itself as logfmt.

>>> from observabilipy.core.models import LogEntry
>>> exporter = LokiExporter(url="http://loki:3100", labels={"service": "shop"})
>>> entry = LogEntry(timestamp=1.5, level="warn", message="disk low", attributes={"free_mb": 12})
>>> exporter.push_body([entry.with_id(1)])
{'streams': [{'stream': {'service': 'shop', 'level': 'WARNING'}, 'values': [['1500000000', 'disk low', {'free_mb': '12'}]]}]}
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import Any, Final

import httpx

from observabilipy.core.errors import ConfigurationError, ValidationError
from observabilipy.core.models import AttributeValue, LogEntry, MetricSample, validate_label_name
from observabilipy.exporters._http import HTTPExporter, check_gzip, check_text, check_url

__all__ = ["LokiExporter", "logfmt_line"]

PUSH_PATH: Final = "/loki/api/v1/push"

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
_NOT_A_NAME_CHAR = re.compile(r"[^a-zA-Z0-9_]")
_LOGFMT_BARE = re.compile(r'[^\s"=\\]+\Z')

# One value of a stream's values list: [timestamp in ns (str), line] or with metadata.
_Value = list[Any]


def _text(value: AttributeValue) -> str:
    """An attribute value as Loki wants metadata and label values: text."""
    if isinstance(value, str):
        return value
    return "" if value is None else _encode(value)


@functools.lru_cache(maxsize=4096)
def _metadata_name(key: str) -> str:
    # LogQL filters metadata by label-like names: `| http_route="/x"`.  Attribute
    # keys such as "http.route" are made into such names ("http_route").
    name = _NOT_A_NAME_CHAR.sub("_", key)
    return "_" + name if not name or name[0].isdigit() else name


def _logfmt_value(value: AttributeValue) -> str:
    text = _text(value)
    if _LOGFMT_BARE.match(text):
        return text
    return _encode(text)  # JSON string quoting is logfmt's quoting


def logfmt_line(message: str, attributes: Mapping[str, AttributeValue]) -> str:
    """One logfmt line: ``msg`` then each attribute (what ``| logfmt`` parses in LogQL).

    >>> logfmt_line("disk low", {"free_mb": 12, "mount": "/var lib", "ok": False})
    'msg="disk low" free_mb=12 mount="/var lib" ok=false'
    """
    parts = [f"msg={_logfmt_value(message)}"]
    parts.extend(
        f"{_metadata_name(key)}={_logfmt_value(value)}" for key, value in attributes.items()
    )
    return " ".join(parts)


class LokiExporter(HTTPExporter):
    """Sends log entries to Loki's push API, ``POST /loki/api/v1/push``.

    ``url`` is Loki's address (``http://loki:3100``) or the full push URL.
    ``labels`` are the static stream labels of every entry (e.g.
    ``{"service": "shop", "env": "prod"}``).  ``label_attributes`` names what else
    becomes a stream label: ``"level"`` is the entry's level, any other name the
    attribute of that name, when an entry has it.  Keep it to low-cardinality
    values; a request id or user id as a label makes a stream per value, which
    Loki limits and slows down on.

    The remaining attributes go, with ``structured_metadata=True`` (the default),
    as the entry's structured metadata: the line stays the message as written,
    and LogQL filters on them (``| user="ada"``).  Loki 3 accepts structured
    metadata; an older Loki (or a schema before v13) answers 400, so set
    ``structured_metadata=False`` there, and the attributes are written into the
    line as logfmt (``msg="disk low" free_mb=12``, parsed by ``| logfmt``).

    Entries are grouped per stream and ordered by time within each; timestamps
    are nanosecond strings.  Entries of one stream sharing a timestamp are spread
    1 ns apart in id order, because Loki drops an entry whose timestamp and line
    equal another's; a retried batch gets the same timestamps, so Loki drops the
    repeats instead.

    ``tenant_id`` is sent as ``X-Scope-OrgID`` (multi-tenant Loki);
    ``basic_auth`` (user, password) or ``bearer_token`` authenticate (Grafana Cloud:
    basic auth with the instance id and a token); ``gzip`` compresses bodies
    (Loki decodes ``Content-Encoding: gzip``).

    >>> LokiExporter(url="http://loki:3100", labels={"service": "shop"}).push_url
    'http://loki:3100/loki/api/v1/push'
    >>> LokiExporter(url="http://loki:3100", labels={"service": "shop"}, label_attributes=("user.id",))
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: label_attributes: 'user.id' is not a valid label name; use letters, digits and '_', not starting with a digit
    """

    def __init__(
        self,
        *,
        url: str,
        labels: Mapping[str, str],
        label_attributes: Sequence[str] = ("level",),
        structured_metadata: bool = True,
        tenant_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
        bearer_token: str | None = None,
        gzip: bool = True,
        timeout: float = 10.0,
        name: str = "loki",
        client: httpx.AsyncClient | None = None,
    ) -> None:
        request_headers = dict(headers or {})
        if tenant_id is not None:
            request_headers["X-Scope-OrgID"] = check_text(tenant_id, "tenant_id")
        super().__init__(
            name=name,
            signals=frozenset({"logs"}),
            headers=request_headers,
            basic_auth=basic_auth,
            bearer_token=bearer_token,
            timeout=timeout,
            client=client,
        )
        base = str(check_url(url))
        self.push_url = base if base.endswith(PUSH_PATH) else base.rstrip("/") + PUSH_PATH
        self.labels = _check_labels(labels)
        self.label_attributes = _check_label_attributes(label_attributes, self.labels)
        if not self.labels and "level" not in self.label_attributes:
            raise ConfigurationError(
                "labels: Loki needs at least one label per stream; give static labels "
                "(e.g. {'service': 'shop'}) or keep 'level' in label_attributes"
            )
        if not isinstance(structured_metadata, bool):
            raise ConfigurationError(
                f"structured_metadata: must be True or False, got {structured_metadata!r}"
            )
        self.structured_metadata = structured_metadata
        self.gzip = check_gzip(gzip)
        # Attribute names promoted to labels ("level" is the entry's own field).
        self._promoted = tuple(name for name in self.label_attributes if name != "level")

    def push_body(self, entries: Iterable[LogEntry]) -> dict[str, Any]:
        """The push API's JSON document for ``entries``: ``{"streams": [...]}``.

        >>> from observabilipy.core.models import LogEntry
        >>> exporter = LokiExporter(url="http://loki:3100", labels={"app": "a"},
        ...                         label_attributes=(), structured_metadata=False)
        >>> same_time = [LogEntry(timestamp=2.0, level="info", message="tick").with_id(n) for n in (1, 2)]
        >>> exporter.push_body(same_time)["streams"][0]["values"]
        [['2000000000', 'msg=tick'], ['2000000001', 'msg=tick']]
        """
        streams: dict[tuple[str, ...], list[tuple[int, int, _Value]]] = {}
        with_level = "level" in self.label_attributes
        promoted = self._promoted
        for entry in entries:
            attributes = entry.attributes
            key = tuple(_text(attributes.get(name)) for name in promoted)
            if with_level:
                key += (entry.level,)
            rest = (
                {k: v for k, v in attributes.items() if k not in promoted}
                if promoted
                else attributes
            )
            if self.structured_metadata:
                value: _Value = [None, entry.message]
                if rest:
                    value.append({_metadata_name(k): _text(v) for k, v in rest.items()})
            else:
                value = [None, logfmt_line(entry.message, rest)]
            # Microseconds first: a float's nanosecond digits are noise, and whole
            # microseconds leave room for the 1 ns spreading below.
            stamp = round(entry.timestamp * 1_000_000) * 1000
            streams.setdefault(key, []).append((stamp, entry.id or 0, value))
        body = []
        for key, rows in streams.items():
            rows.sort(key=lambda row: (row[0], row[1]))
            previous = -1
            for stamp, _, value in rows:
                previous = stamp if stamp > previous else previous + 1
                value[0] = str(previous)
            body.append({"stream": self._stream_labels(key), "values": [row[2] for row in rows]})
        return {"streams": body}

    def _stream_labels(self, key: tuple[str, ...]) -> dict[str, str]:
        labels = dict(self.labels)
        names = [*self._promoted, "level"] if "level" in self.label_attributes else self._promoted
        # An attribute an entry lacks (or holds empty) is no label: Loki drops empty labels.
        labels.update((name, value) for name, value in zip(names, key, strict=True) if value)
        return labels

    async def export_logs(self, entries: AsyncIterable[LogEntry]) -> None:
        """Push one batch; an empty batch sends nothing.

        Raises RetryableExportError when Loki is unreachable or answers 429/5xx
        (``Retry-After`` honoured), PermanentExportError when it refuses the
        entries (400: too old, too long, structured metadata not enabled).
        """
        batch = [entry async for entry in entries]
        if not batch:
            return
        body = _encode(self.push_body(batch)).encode()
        await self.send(
            "POST", self.push_url, body, content_type="application/json", gzip=self.gzip
        )

    async def export_metrics(self, samples: AsyncIterable[MetricSample]) -> None:
        """Refused: Loki takes logs only (PermanentExportError)."""
        raise self.refuse("metrics")


def _check_labels(labels: object) -> dict[str, str]:
    if not isinstance(labels, Mapping):
        raise ConfigurationError(
            f"labels: must be a mapping of label names to str, got {type(labels).__name__}"
        )
    checked: dict[str, str] = {}
    for key, value in labels.items():
        try:
            validate_label_name(key, field="labels")
        except ValidationError as exc:
            raise ConfigurationError(str(exc)) from None
        if not isinstance(value, str) or not value:
            raise ConfigurationError(
                f"labels[{key!r}]: must be a non-empty str (Loki drops empty labels), got {value!r}"
            )
        checked[key] = value
    return checked


def _check_label_attributes(names: object, labels: Mapping[str, str]) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ConfigurationError(
            f"label_attributes: must be a sequence of names such as ('level',), got {names!r}"
        )
    checked: list[str] = []
    for name in names:
        try:
            validate_label_name(name, field="label_attributes")
        except ValidationError as exc:
            raise ConfigurationError(str(exc)) from None
        if name in labels:
            raise ConfigurationError(
                f"label_attributes: {name!r} is already a static label in labels; keep one"
            )
        if name in checked:
            raise ConfigurationError(f"label_attributes: {name!r} is listed twice")
        checked.append(name)
    return tuple(checked)
