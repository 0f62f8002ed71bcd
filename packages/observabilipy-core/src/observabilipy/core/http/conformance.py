"""The HTTP API's conformance cases: requests, the answers they must get, the data behind them.

Every adapter (ASGI, WSGI, FastAPI, Django) must answer these cases exactly as
the core API does; core's own tests run them through ``handle_sync`` and
``handle``.  The module ships with core (as the storage contract suite does) so
that each adapter's tests can import it when that distribution is installed alone.

A :class:`Case` names the API it needs (:func:`build_api` makes a fresh one, with
known data), the request (method, path below the mount prefix, raw query
string, headers) and the expected status; :meth:`Case.verify` checks an
:class:`Answer` (status, lower-case headers, the body bytes exactly as sent:
do not let an HTTP client undo ``content-encoding``).  In an adapter's tests::

    from observabilipy.core.http.conformance import CASES, Answer, build_api

    @pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
    def test_conformance(case):
        app = create_asgi_app(build_api(case.api))          # the adapter under test
        status, headers, body = send(app, case.method, "/prefix" + case.path,
                                     case.query, case.headers)
        case.verify(Answer(status, headers, body))

:func:`core_answer` gives what the core API answers, for comparing headers and
bytes one by one (an adapter may add headers of its own, such as ``date``).
The checks raise AssertionError and need nothing beyond the standard library.
Send ``query`` as it is: some cases hold bytes a client library would refuse or
re-encode (a raw ``\xff``, a lone ``%``), and ``path`` may be empty (the mount
prefix itself) or end with ``/``.

>>> case = next(case for case in CASES if case.id == "logs-level-alias")
>>> case.query, case.status
(b'level=warn', 200)
>>> case.verify(core_answer(case))
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from observabilipy.core.encoding import log_entry_to_dict
from observabilipy.core.http.access import basic_auth, bearer_token
from observabilipy.core.http.api import ObservabilityAPI, Request
from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry, MetricSample
from observabilipy.core.runtime import EmbeddedRuntime
from observabilipy.core.storage import InMemoryLogStorage, InMemoryMetricsStorage

__all__ = [
    "APIS",
    "CASES",
    "EXPOSITION_OPENMETRICS",
    "EXPOSITION_TEXT",
    "LOGS",
    "SAMPLES",
    "Answer",
    "Case",
    "build_api",
    "core_answer",
]

# -- the data every API is built with -------------------------------------------------

#: Log entries of the "default" API; they get ids 1 to 7, in this order.
#: Equal timestamps on purpose: the id cursor must never skip or repeat them.
LOGS: Final = (
    LogEntry(timestamp=100.0, level="DEBUG", message="boot sequence started"),
    LogEntry(
        timestamp=101.0, level="INFO", message="User Alice logged in", attributes={"user": "alice"}
    ),
    LogEntry(timestamp=101.0, level="WARN", message="disk low", attributes={"free_mb": 12}),
    LogEntry(
        timestamp=101.0,
        level="ERROR",
        message="payment failed",
        attributes={"order": 7, "retry": True},
    ),
    LogEntry(
        timestamp=102.0, level="INFO", message="user BOB logged in", attributes={"user": "bob"}
    ),
    LogEntry(timestamp=103.0, level="CRITICAL", message="database down"),
    LogEntry(timestamp=104.0, level="INFO", message="Café ✓ served", attributes={"items": 2.5}),
)

#: Metric samples of the "default" API (ids 1 to 8): a time series of cumulative points.
SAMPLES: Final = (
    MetricSample(
        name="jobs_total",
        timestamp=100.0,
        value=1,
        labels={"queue": "mail"},
        kind="counter",
        help="Jobs run.",
    ),
    MetricSample(name="temperature_celsius", timestamp=100.0, value=21.5, kind="gauge"),
    MetricSample(
        name="jobs_total",
        timestamp=110.0,
        value=3,
        labels={"queue": "mail"},
        kind="counter",
        help="Jobs run.",
    ),
    MetricSample(name="temperature_celsius", timestamp=110.0, value=float("nan"), kind="gauge"),
    MetricSample(
        name="latency_seconds_bucket",
        timestamp=110.0,
        value=2,
        labels={"le": "0.5"},
        kind="histogram",
    ),
    MetricSample(
        name="latency_seconds_bucket",
        timestamp=110.0,
        value=3,
        labels={"le": "+Inf"},
        kind="histogram",
    ),
    MetricSample(name="latency_seconds_count", timestamp=110.0, value=3, kind="histogram"),
    MetricSample(name="latency_seconds_sum", timestamp=110.0, value=2.5, kind="histogram"),
)

#: What ``/metrics/prometheus`` shows for the "default" API's registry.
EXPOSITION_TEXT: Final = """\
# HELP jobs_total Jobs run.
# TYPE jobs_total counter
jobs_total{queue="mail"} 3.0
# HELP temperature_celsius Temperature.
# TYPE temperature_celsius gauge
temperature_celsius 21.5
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.5"} 2.0
latency_seconds_bucket{le="+Inf"} 3.0
latency_seconds_count 3.0
latency_seconds_sum 2.5
"""

#: The same in OpenMetrics 1.0.
EXPOSITION_OPENMETRICS: Final = """\
# HELP jobs Jobs run.
# TYPE jobs counter
jobs_total{queue="mail"} 3.0
# HELP temperature_celsius Temperature.
# TYPE temperature_celsius gauge
temperature_celsius 21.5
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.5"} 2.0
latency_seconds_bucket{le="+Inf"} 3.0
latency_seconds_count 3.0
latency_seconds_sum 2.5
# EOF
"""

TOKEN: Final = "s3cret-token"
USERNAME: Final = "ops"
PASSWORD: Final = "pässword"  # non-ASCII on purpose: Basic credentials are UTF-8
API_KEY: Final = "key-1"
BULK_LOGS: Final = 3000  # entries in the "bulk" API: several encoder chunks of NDJSON
MIDSTREAM_FAILS_AFTER: Final = 2000  # entries the "midstream" storage yields before failing
PROMETHEUS_ACCEPT: Final = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
BROWSER_ACCEPT: Final = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def _registry() -> Registry:
    registry = Registry()
    registry.counter("jobs", "Jobs run.", labelnames=("queue",)).labels(queue="mail").inc(3)
    registry.gauge("temperature_celsius", "Temperature.").set(21.5)
    latency = registry.histogram("latency_seconds", "Latency.", buckets=(0.5,))
    for seconds in (0.25, 0.25, 2.0):
        latency.observe(seconds)
    return registry


def _log_storage(entries: tuple[LogEntry, ...] = LOGS) -> InMemoryLogStorage:
    storage = InMemoryLogStorage()
    storage.write_many_sync(entries)
    return storage


def _metrics_storage() -> InMemoryMetricsStorage:
    storage = InMemoryMetricsStorage()
    storage.write_many_sync(SAMPLES)
    return storage


def _bulk_entries() -> tuple[LogEntry, ...]:
    return tuple(
        LogEntry(
            timestamp=1000.0 + n, level="INFO", message=f"request {n} served", attributes={"n": n}
        )
        for n in range(BULK_LOGS)
    )


class _BrokenLogStorage(InMemoryLogStorage):
    """Every read fails, as a locked or vanished database would."""

    def read_sync(self, **filters: Any) -> Iterator[LogEntry]:
        raise OSError("disk I/O error")

    def read(self, **filters: Any) -> Any:
        raise OSError("disk I/O error")


class _BrokenMetricsStorage(InMemoryMetricsStorage):
    """Every read and the merged exposition fail."""

    def read_sync(self, **filters: Any) -> Iterator[MetricSample]:
        raise OSError("disk I/O error")

    def read(self, **filters: Any) -> Any:
        raise OSError("disk I/O error")

    def exposition(self, *, registry: Registry | None = None, openmetrics: bool = False) -> str:
        raise OSError("disk I/O error")


class _MidstreamFailingStorage(InMemoryLogStorage):
    """Yields ``MIDSTREAM_FAILS_AFTER`` entries, then fails: the response has begun."""

    def read_sync(self, **filters: Any) -> Iterator[LogEntry]:
        entries = super().read_sync(**filters)

        def failing() -> Iterator[LogEntry]:
            for count, entry in enumerate(entries, 1):
                yield entry
                if count == MIDSTREAM_FAILS_AFTER:
                    raise OSError("disk I/O error")

        return failing()

    def read(self, **filters: Any) -> Any:
        entries = self.read_sync(**filters)

        async def failing() -> Any:
            for entry in entries:
                yield entry

        return failing()


class _MergedExpositionStorage(InMemoryMetricsStorage):
    """Has ``exposition()``, as the SQLite storage merging several processes does."""

    def exposition(self, *, registry: Registry | None = None, openmetrics: bool = False) -> str:
        given = "with" if registry is not None else "without"
        family = "merged" if openmetrics else "merged_total"
        text = (
            f"# HELP {family} Merged by the storage, {given} the live registry.\n"
            f"# TYPE {family} counter\nmerged_total 42.0\n"
        )
        return text + "# EOF\n" if openmetrics else text


class _FastReaderStorage(InMemoryLogStorage):
    """Has its own NDJSON readers, as the SQLite storage does; its rows say so."""

    def read_ndjson_sync(self, **filters: Any) -> Iterator[bytes]:
        for entry in self.read_sync(**filters):
            row = log_entry_to_dict(entry) | {"source": "storage"}
            yield json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"

    def read_ndjson(self, **filters: Any) -> Any:
        rows = self.read_ndjson_sync(**filters)

        async def stream() -> Any:
            for row in rows:
                yield row

        return stream()


def _raises() -> bool:
    raise RuntimeError("cache unreachable")


async def _async_false() -> bool:
    return False


async def _async_true() -> bool:
    return True


def _api_key_check(request: Request) -> bool:
    return request.headers.get("x-api-key") == API_KEY


async def _async_api_key_check(request: Request) -> bool:
    return request.headers.get("x-api-key") == API_KEY


def _raising_check(request: Request) -> bool:
    raise RuntimeError("token service unreachable")


def _default(**options: Any) -> ObservabilityAPI:
    return ObservabilityAPI(
        log_storage=_log_storage(),
        metrics_storage=_metrics_storage(),
        registry=_registry(),
        **options,
    )


#: API name -> a function building that API afresh (the name says what differs).
APIS: Final[Mapping[str, Callable[[], ObservabilityAPI]]] = {
    "default": _default,
    "small-pages": lambda: _default(max_limit=5, default_limit=2),
    "bulk": lambda: ObservabilityAPI(
        log_storage=_log_storage(_bulk_entries()), registry=_registry()
    ),
    "bulk-no-gzip": lambda: ObservabilityAPI(
        log_storage=_log_storage(_bulk_entries()), registry=_registry(), gzip=False
    ),
    "no-storage": lambda: ObservabilityAPI(registry=_registry()),
    "bearer": lambda: _default(access=bearer_token(TOKEN)),
    # The dashboard turned off answers the same whether or not it is installed.
    "no-dashboard": lambda: _default(dashboard=False, access=bearer_token(TOKEN)),
    "bearer-private-health": lambda: _default(access=bearer_token(TOKEN), health_public=False),
    "basic": lambda: _default(access=basic_auth(USERNAME, PASSWORD)),
    "callable": lambda: _default(access=_api_key_check),
    "async-callable": lambda: _default(access=_async_api_key_check),
    "access-raises": lambda: _default(access=_raising_check),
    "health-checks": lambda: _default(
        health_checks={"sync_ok": lambda: True, "async_ok": _async_true}
    ),
    "health-failing": lambda: _default(
        health_checks={"sync_ok": lambda: True, "sync_raises": _raises, "async_false": _async_false}
    ),
    "runtime-stopped": lambda: _default(runtime=EmbeddedRuntime(registry=Registry())),
    "broken": lambda: ObservabilityAPI(
        log_storage=_BrokenLogStorage(),
        metrics_storage=_BrokenMetricsStorage(),
        registry=_registry(),
    ),
    "midstream": lambda: ObservabilityAPI(log_storage=_midstream_storage(), gzip=False),
    "merged-exposition": lambda: ObservabilityAPI(
        metrics_storage=_MergedExpositionStorage(), registry=_registry()
    ),
    "fast-reader": lambda: ObservabilityAPI(log_storage=_fast_reader_storage()),
}


def _midstream_storage() -> _MidstreamFailingStorage:
    storage = _MidstreamFailingStorage()
    storage.write_many_sync(_bulk_entries())
    return storage


def _fast_reader_storage() -> _FastReaderStorage:
    storage = _FastReaderStorage()
    storage.write_many_sync(LOGS)
    return storage


def build_api(name: str) -> ObservabilityAPI:
    """A fresh API of the kind ``name`` (a key of :data:`APIS`), holding its known data.

    >>> build_api("default").handle_sync(Request("GET", "/health")).status
    200
    """
    return APIS[name]()


# -- answers and cases ----------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What came back: status, headers (lower-case names) and the body as sent.

    >>> Answer(200, {"content-type": "application/json"}, b'{"a":1}').json()
    {'a': 1}
    """

    status: int
    headers: Mapping[str, str]
    body: bytes

    def content(self) -> bytes:
        """The body with its content-encoding undone."""
        if self.headers.get("content-encoding") == "gzip":
            return gzip.decompress(self.body)
        return self.body

    def json(self) -> Any:
        """The body as one JSON document."""
        return json.loads(self.content())

    def ndjson(self) -> list[Any]:
        """The body as NDJSON: every line a JSON value, every line ended by a newline."""
        content = self.content()
        _expect(not content or content.endswith(b"\n"), "NDJSON must end with a newline")
        return [json.loads(line) for line in content.splitlines()]

    def text(self) -> str:
        """The body as UTF-8 text."""
        return self.content().decode()


Check = Callable[[Answer], None]


@dataclass(frozen=True)
class Case:
    """One request to an API built by :func:`build_api` and the answer it must get."""

    id: str
    path: str
    query: bytes = b""
    status: int = 200
    check: Check | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "GET"
    api: str = "default"

    @property
    def request(self) -> Request:
        """The request as the core API takes it."""
        return Request(self.method, self.path, self.query, self.headers)

    def verify(self, answer: Answer) -> None:
        """Raise AssertionError unless ``answer`` is what this case must get."""
        _equal(answer.status, self.status, f"{self.id}: status")
        _equal(answer.headers.get("cache-control"), "no-store", f"{self.id}: cache-control")
        _equal(answer.headers.get("x-content-type-options"), "nosniff", f"{self.id}: nosniff")
        if self.method == "HEAD":
            _equal(answer.body, b"", f"{self.id}: HEAD body")
        elif "content-length" in answer.headers:
            _equal(int(answer.headers["content-length"]), len(answer.body), "content-length")
        if self.method != "HEAD" and answer.status >= 400 and self.path != "/health":
            _equal(answer.headers.get("content-type"), "application/json", "error content-type")
            error = answer.json()
            _expect(isinstance(error.get("error"), str), f"{self.id}: an error code")
            _expect(isinstance(error.get("message"), str), f"{self.id}: an error message")
        if self.check is not None:
            self.check(answer)


def core_answer(case: Case, api: ObservabilityAPI | None = None) -> Answer:
    """What the core API (``handle_sync``) answers to ``case``: the reference for adapters.

    >>> core_answer(next(case for case in CASES if case.id == "not-found")).status
    404
    """
    api = build_api(case.api) if api is None else api
    response = api.handle_sync(case.request)
    return Answer(response.status, dict(response.headers), b"".join(response.body))


# -- checks ---------------------------------------------------------------------------


def _expect(condition: bool, message: str) -> None:
    # Not `assert`: these checks must also hold under `python -O`.
    if not condition:
        raise AssertionError(message)


def _equal(actual: object, expected: object, what: str) -> None:
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def _all(*checks: Check) -> Check:
    def check(answer: Answer) -> None:
        for one in checks:
            one(answer)

    return check


def _header(name: str, value: str | None) -> Check:
    """Header ``name`` is ``value`` (None: absent)."""

    def check(answer: Answer) -> None:
        _equal(answer.headers.get(name), value, f"header {name}")

    return check


def _has(name: str) -> Check:
    def check(answer: Answer) -> None:
        _expect(name in answer.headers, f"header {name} is present")

    return check


def _log_rows(ids: tuple[int, ...]) -> list[dict[str, Any]]:
    return [log_entry_to_dict(LOGS[n - 1].with_id(n)) for n in ids]


def _logs(*ids: int) -> Check:
    """NDJSON holding exactly the entries of LOGS with these ids, in this order."""

    def check(answer: Answer) -> None:
        _equal(answer.headers.get("content-type"), "application/x-ndjson; charset=utf-8", "type")
        _equal(answer.ndjson(), _log_rows(ids), "log entries")

    return check


def _samples(*ids: int) -> Check:
    """NDJSON holding exactly the samples of SAMPLES with these ids (NaN as "NaN")."""

    def check(answer: Answer) -> None:
        _equal(answer.headers.get("content-type"), "application/x-ndjson; charset=utf-8", "type")
        _equal([row["id"] for row in answer.ndjson()], list(ids), "sample ids")
        for row in answer.ndjson():
            sample = SAMPLES[row["id"] - 1]
            value = "NaN" if sample.value != sample.value else sample.value
            _equal(
                (row["name"], row["timestamp"], row["value"], row["labels"], row["kind"]),
                (sample.name, sample.timestamp, value, dict(sample.labels), sample.kind),
                f"sample {row['id']}",
            )

    return check


def _page(ids: tuple[int, ...], next_after: int | None, next_link: str | None) -> Check:
    """A JSON page of these item ids, with its cursor and next link."""

    def check(answer: Answer) -> None:
        _equal(answer.headers.get("content-type"), "application/json", "content-type")
        document = answer.json()
        _equal(sorted(document), ["count", "items", "next", "next_after"], "document keys")
        _equal([item["id"] for item in document["items"]], list(ids), "item ids")
        _equal(document["count"], len(ids), "count")
        _equal(document["next_after"], next_after, "next_after")
        _equal(document["next"], next_link, "next")

    return check


def _log_page(*ids: int, next_after: int | None = None, next_link: str | None = None) -> Check:
    def check(answer: Answer) -> None:
        _page(ids, next_after, next_link)(answer)
        _equal(answer.json()["items"], _log_rows(ids), "items")

    return check


def _bad(parameter: str, *mentions: str) -> Check:
    """A 400 body naming ``parameter``; its message or allowed text mentions each of ``mentions``."""

    def check(answer: Answer) -> None:
        error = answer.json()
        _equal(sorted(error), ["allowed", "error", "message", "parameter"], "400 body keys")
        _equal(error["error"], "invalid_parameter", "error")
        _equal(error["parameter"], parameter, "parameter")
        _expect(bool(error["allowed"]), "allowed must say what is accepted")
        for text in mentions:
            _expect(text in error["message"] + error["allowed"], f"the 400 body mentions {text!r}")

    return check


def _error(code: str) -> Check:
    def check(answer: Answer) -> None:
        _equal(answer.json()["error"], code, "error code")

    return check


def _message(message: str) -> Check:
    """A ``not_found`` error with this message."""

    def check(answer: Answer) -> None:
        _equal(answer.json(), {"error": "not_found", "message": message}, "error")

    return check


def _text(expected: str, content_type: str) -> Check:
    def check(answer: Answer) -> None:
        _equal(answer.headers.get("content-type"), content_type, "content-type")
        _equal(answer.text(), expected, "exposition")

    return check


_TEXT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_OPENMETRICS_TYPE: Final = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def _gzipped(answer: Answer) -> None:
    _equal(answer.headers.get("content-encoding"), "gzip", "content-encoding")
    _expect("accept-encoding" in answer.headers.get("vary", ""), "vary names accept-encoding")
    _expect(answer.body[:2] == b"\x1f\x8b", "the body is gzip")


def _plain(answer: Answer) -> None:
    _equal(answer.headers.get("content-encoding"), None, "content-encoding")


def _bulk_lines(count: int) -> Check:
    def check(answer: Answer) -> None:
        rows = answer.ndjson()
        _equal([row["id"] for row in rows], list(range(1, count + 1)), "bulk ids")
        _equal(rows[-1]["message"], f"request {count - 1} served", "last message")

    return check


def _bulk_page(answer: Answer) -> None:
    document = answer.json()
    _equal(document["count"], BULK_LOGS, "count")
    _equal(document["items"][-1]["attributes"], {"n": BULK_LOGS - 1}, "last item")
    _equal(document["next"], f"?limit={BULK_LOGS}&after={BULK_LOGS}", "next")


def _midstream(answer: Answer) -> None:
    rows = answer.ndjson()  # complete lines only, each one valid JSON
    _expect(0 < len(rows) < MIDSTREAM_FAILS_AFTER, "the body ends early, on a line boundary")
    _equal([row["id"] for row in rows], list(range(1, len(rows) + 1)), "ids before the failure")


def _health(status: str, **components: dict[str, Any]) -> Check:
    """The health document: overall status; each named component holds these items."""

    def check(answer: Answer) -> None:
        _equal(answer.headers.get("content-type"), "application/json", "content-type")
        document = answer.json()
        _equal(document["status"], status, "health status")
        _equal(sorted(document["components"]), sorted(components), "components")
        for name, expected in components.items():
            got = document["components"][name]
            _equal({key: got.get(key) for key in expected}, expected, f"component {name}")

    return check


def _fast_rows(via_storage: bool) -> Check:
    def check(answer: Answer) -> None:
        rows = (
            answer.ndjson()
            if answer.headers["content-type"].startswith("application/x-nd")
            else answer.json()["items"]
        )
        _expect(bool(rows), "rows")
        _expect(
            all(("source" in row) == via_storage for row in rows),
            "rows come from the storage's own NDJSON reader"
            if via_storage
            else "rows come from core's encoder",
        )

    return check


_PASS: Final = {"status": "pass"}
_BEARER: Final = {"authorization": f"Bearer {TOKEN}"}
_BASIC: Final = {
    "authorization": "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
}
_GZIP: Final = {"accept-encoding": "gzip, deflate"}


def _bad_cases(path: str, parameters: list[tuple[str, bytes, str, tuple[str, ...]]]) -> list[Case]:
    return [
        Case(f"bad-{name}{path.replace('/', '-')}", path, query, 400, _bad(parameter, *mentions))
        for name, query, parameter, mentions in parameters
    ]


_BAD_LOG_PARAMETERS: Final = [
    ("since-text", b"since=abc", "since", ("'abc'",)),
    ("since-nan", b"since=nan", "since", ()),
    ("since-inf", b"since=inf", "since", ()),
    ("since-overflow", b"since=1e999", "since", ("finite",)),
    ("since-negative", b"since=-1", "since", (">= 0",)),
    ("since-fullwidth-digit", b"since=%EF%BC%91", "since", ()),
    ("after-text", b"after=x", "after", ()),
    ("after-negative", b"after=-1", "after", ()),
    ("after-fraction", b"after=1.5", "after", ()),
    ("after-overflow", b"after=99999999999999999999", "after", ()),
    ("limit-negative", b"limit=-1", "limit", ()),
    ("limit-above-maximum", b"limit=1000000000", "limit", ("10000",)),
    ("limit-text", b"limit=ten", "limit", ()),
    ("offset-negative", b"offset=-1", "offset", ()),
    ("level-bogus", b"level=bogus", "level", ("WARN", "'bogus'")),
    ("min-level-bogus", b"min_level=loud", "min_level", ("CRITICAL",)),
    ("level-numeric", b"level=40", "level", ()),
    ("since-twice", b"since=1&since=2", "since", ("once",)),
    ("limit-twice", b"limit=1&limit=1", "limit", ("once",)),
    ("query-invalid-utf8", b"q=%FF%FE", "query", ("UTF-8",)),
    ("query-raw-invalid-utf8", b"q=\xff", "query", ("UTF-8",)),
    ("query-bad-escape", b"q=100%", "query", ("%",)),
    ("query-bad-escape-hex", b"q=%zz", "query", ("%",)),
]

_BAD_METRICS_PARAMETERS: Final = [
    ("name-space", b"name=bad+name", "name", ("'bad name'",)),
    ("name-digit-first", b"name=1abc", "name", ()),
    ("name-emoji", b"name=%F0%9F%98%80", "name", ()),
    ("since-text", b"since=abc", "since", ()),
    ("after-text", b"after=x", "after", ()),
    ("limit-above-maximum", b"limit=10001", "limit", ("10000",)),
    ("name-twice", b"name=up&name=up", "name", ("once",)),
    ("query-invalid-utf8", b"name=%C3", "query", ("UTF-8",)),
]


#: Every conformance case: the happy paths, paging, negotiation, gzip, access,
#: health, the bad-input matrix, routing errors and storage failures.
CASES: Final[tuple[Case, ...]] = (
    # /logs: every entry, exact rows; the filters one by one
    Case(
        "logs-all",
        "/logs",
        check=_all(_logs(1, 2, 3, 4, 5, 6, 7), _plain, _has("content-length")),
    ),
    Case("logs-level-alias", "/logs", b"level=warn", check=_logs(3)),
    Case("logs-level-canonical", "/logs", b"level=WARNING", check=_logs(3)),
    Case("logs-level-any-case", "/logs", b"level=Error", check=_logs(4)),
    Case("logs-min-level", "/logs", b"min_level=error", check=_logs(4, 6)),
    Case("logs-min-level-alias", "/logs", b"min_level=WARN", check=_logs(3, 4, 6)),
    Case("logs-level-and-min-level", "/logs", b"level=info&min_level=error", check=_logs()),
    Case("logs-since-exclusive", "/logs", b"since=101", check=_logs(5, 6, 7)),
    Case("logs-since-fraction", "/logs", b"since=100.5", check=_logs(2, 3, 4, 5, 6, 7)),
    Case("logs-since-exponent", "/logs", b"since=1.02e2", check=_logs(6, 7)),
    Case("logs-after", "/logs", b"after=3", check=_logs(4, 5, 6, 7)),
    Case("logs-after-equal-timestamps", "/logs", b"after=2&limit=1", check=_logs(3)),
    Case("logs-limit", "/logs", b"limit=2", check=_logs(1, 2)),
    Case(
        "logs-limit-zero", "/logs", b"limit=0", check=_all(_logs(), _header("content-length", "0"))
    ),
    Case("logs-offset", "/logs", b"offset=2&limit=2", check=_logs(3, 4)),
    Case("logs-offset-past-end", "/logs", b"offset=50", check=_logs()),
    Case("logs-q-ignores-case", "/logs", b"q=LOGGED+IN", check=_logs(2, 5)),
    Case("logs-q-percent-encoded", "/logs", b"q=caf%C3%89", check=_logs(7)),
    Case("logs-q-offset-limit", "/logs", b"q=logged%20in&offset=1&limit=1", check=_logs(5)),
    Case("logs-q-with-level", "/logs", b"q=in&level=info", check=_logs(2, 5)),
    Case("logs-q-no-match", "/logs", b"q=nothing+like+this", check=_logs()),
    Case(
        "logs-unknown-parameters-ignored",
        "/logs",
        b"_=1700000000&foo=bar&foo=baz",
        check=_logs(1, 2, 3, 4, 5, 6, 7),
    ),
    Case(
        "logs-empty-values-ignored",
        "/logs",
        b"level=&limit=&since=",
        check=_logs(1, 2, 3, 4, 5, 6, 7),
    ),
    Case("logs-trailing-slash", "/logs/", b"limit=1", check=_logs(1)),
    Case(
        "logs-head",
        "/logs",
        method="HEAD",
        check=_header("content-type", "application/x-ndjson; charset=utf-8"),
    ),
    Case("logs-default-limit", "/logs", api="small-pages", check=_logs(1, 2)),
    # /logs/json: one document with the cursor and the next page's URL
    Case("logs-json-all", "/logs/json", check=_log_page(1, 2, 3, 4, 5, 6, 7, next_after=7)),
    Case(
        "logs-json-first-page",
        "/logs/json",
        b"level=info&limit=2",
        check=_log_page(2, 5, next_after=5, next_link="?level=info&limit=2&after=5"),
    ),
    Case(
        "logs-json-last-page",
        "/logs/json",
        b"level=info&limit=2&after=5",
        check=_log_page(7, next_after=7),
    ),
    Case("logs-json-empty-keeps-cursor", "/logs/json", b"after=7", check=_log_page(next_after=7)),
    Case("logs-json-empty", "/logs/json", b"level=debug&since=100", check=_log_page()),
    Case(
        "logs-json-offset",
        "/logs/json",
        b"offset=5&limit=1",
        check=_log_page(6, next_after=6, next_link="?limit=1&after=6"),
    ),
    Case(
        "logs-json-next-repeats-filters",
        "/logs/json",
        b"q=caf%C3%A9&since=100&limit=1",
        check=_log_page(7, next_after=7, next_link="?since=100&q=caf%C3%A9&limit=1&after=7"),
    ),
    Case(
        "logs-json-default-limit",
        "/logs/json",
        api="small-pages",
        check=_log_page(1, 2, next_after=2, next_link="?after=2"),
    ),
    Case("logs-json-limit-zero", "/logs/json", b"limit=0", check=_log_page()),
    # /metrics and /metrics/json: the stored history
    Case(
        "metrics-all",
        "/metrics",
        check=_all(_samples(1, 2, 3, 4, 5, 6, 7, 8), _header("vary", "accept, accept-encoding")),
    ),
    Case("metrics-name-counter-family", "/metrics", b"name=jobs", check=_samples(1, 3)),
    Case("metrics-name-sample", "/metrics", b"name=jobs_total", check=_samples(1, 3)),
    Case("metrics-name-histogram", "/metrics", b"name=latency_seconds", check=_samples(5, 6, 7, 8)),
    Case("metrics-since", "/metrics", b"since=100", check=_samples(3, 4, 5, 6, 7, 8)),
    Case("metrics-after-limit", "/metrics", b"after=2&limit=2", check=_samples(3, 4)),
    Case("metrics-offset", "/metrics", b"offset=6", check=_samples(7, 8)),
    Case("metrics-level-is-unknown-here", "/metrics", b"level=bogus&limit=1", check=_samples(1)),
    Case(
        "metrics-json", "/metrics/json", b"name=temperature_celsius", check=_page((2, 4), 4, None)
    ),
    Case(
        "metrics-json-next",
        "/metrics/json",
        b"limit=3",
        check=_page((1, 2, 3), 3, "?limit=3&after=3"),
    ),
    # /metrics negotiates: a scraper gets the exposition, everyone else NDJSON
    Case(
        "metrics-accept-text-plain",
        "/metrics",
        headers={"accept": "text/plain;version=0.0.4"},
        check=_all(_text(EXPOSITION_TEXT, _TEXT_TYPE), _header("vary", "accept, accept-encoding")),
    ),
    Case(
        "metrics-accept-prometheus",
        "/metrics",
        headers={"accept": PROMETHEUS_ACCEPT},
        check=_text(EXPOSITION_OPENMETRICS, _OPENMETRICS_TYPE),
    ),
    Case(
        "metrics-accept-openmetrics",
        "/metrics",
        headers={"accept": "application/openmetrics-text"},
        check=_text(EXPOSITION_OPENMETRICS, _OPENMETRICS_TYPE),
    ),
    Case(
        "metrics-accept-browser",
        "/metrics",
        headers={"accept": BROWSER_ACCEPT},
        check=_samples(1, 2, 3, 4, 5, 6, 7, 8),
    ),
    Case(
        "metrics-accept-anything",
        "/metrics",
        headers={"accept": "*/*"},
        check=_samples(1, 2, 3, 4, 5, 6, 7, 8),
    ),
    Case(
        "metrics-accept-json",
        "/metrics",
        headers={"accept": "application/json, text/plain;q=0.9"},
        check=_samples(1, 2, 3, 4, 5, 6, 7, 8),
    ),
    Case(
        "metrics-accept-ndjson",
        "/metrics",
        headers={"accept": "application/x-ndjson"},
        check=_samples(1, 2, 3, 4, 5, 6, 7, 8),
    ),
    Case(
        "metrics-exposition-ignores-parameters",
        "/metrics",
        b"since=abc",
        headers={"accept": "text/plain"},
        check=_text(EXPOSITION_TEXT, _TEXT_TYPE),
    ),
    # /metrics/prometheus: the registry's live values (or the storage's merged view)
    Case(
        "prometheus-text",
        "/metrics/prometheus",
        check=_all(_text(EXPOSITION_TEXT, _TEXT_TYPE), _header("vary", "accept, accept-encoding")),
    ),
    Case(
        "prometheus-openmetrics",
        "/metrics/prometheus",
        headers={"accept": PROMETHEUS_ACCEPT},
        check=_text(EXPOSITION_OPENMETRICS, _OPENMETRICS_TYPE),
    ),
    Case(
        "prometheus-text-preferred",
        "/metrics/prometheus",
        headers={"accept": "text/plain, application/openmetrics-text;q=0.5"},
        check=_text(EXPOSITION_TEXT, _TEXT_TYPE),
    ),
    Case(
        "prometheus-head",
        "/metrics/prometheus",
        method="HEAD",
        check=_header("content-length", str(len(EXPOSITION_TEXT))),
    ),
    Case(
        "prometheus-merged-by-storage",
        "/metrics/prometheus",
        api="merged-exposition",
        check=_text(
            "# HELP merged_total Merged by the storage, with the live registry.\n# TYPE merged_total counter\nmerged_total 42.0\n",
            _TEXT_TYPE,
        ),
    ),
    Case(
        "prometheus-merged-openmetrics",
        "/metrics/prometheus",
        api="merged-exposition",
        headers={"accept": "application/openmetrics-text"},
        check=_text(
            "# HELP merged Merged by the storage, with the live registry.\n# TYPE merged counter\nmerged_total 42.0\n# EOF\n",
            _OPENMETRICS_TYPE,
        ),
    ),
    Case(
        "prometheus-without-storage",
        "/metrics/prometheus",
        api="no-storage",
        check=_text(EXPOSITION_TEXT, _TEXT_TYPE),
    ),
    Case(
        "metrics-scrape-without-storage",
        "/metrics",
        api="no-storage",
        headers={"accept": "text/plain"},
        check=_text(EXPOSITION_TEXT, _TEXT_TYPE),
    ),
    # gzip: large streams compressed, small bodies and refusals not
    Case(
        "gzip-stream",
        "/logs",
        b"limit=3000",
        api="bulk",
        headers=_GZIP,
        check=_all(_gzipped, _header("content-length", None), _bulk_lines(BULK_LOGS)),
    ),
    Case(
        "gzip-document",
        "/logs/json",
        b"limit=3000",
        api="bulk",
        headers=_GZIP,
        check=_all(_gzipped, _bulk_page),
    ),
    Case(
        "gzip-any-coding",
        "/logs",
        b"limit=3000",
        api="bulk",
        headers={"accept-encoding": "*"},
        check=_all(_gzipped, _bulk_lines(BULK_LOGS)),
    ),
    Case(
        "gzip-q-zero",
        "/logs",
        b"limit=3000",
        api="bulk",
        headers={"accept-encoding": "gzip;q=0, br"},
        check=_all(_plain, _bulk_lines(BULK_LOGS)),
    ),
    Case(
        "gzip-not-asked",
        "/logs",
        b"limit=3000",
        api="bulk",
        check=_all(_plain, _header("vary", "accept-encoding"), _bulk_lines(BULK_LOGS)),
    ),
    Case(
        "gzip-small-body",
        "/logs",
        b"limit=1",
        api="bulk",
        headers=_GZIP,
        check=_all(_plain, _bulk_lines(1)),
    ),
    Case(
        "gzip-small-known-body",
        "/logs",
        b"limit=12",
        api="bulk",
        headers=_GZIP,
        check=_all(_gzipped, _has("content-length"), _bulk_lines(12)),
    ),
    Case(
        "gzip-disabled",
        "/logs",
        b"limit=3000",
        api="bulk-no-gzip",
        headers=_GZIP,
        check=_all(_plain, _header("vary", None), _bulk_lines(BULK_LOGS)),
    ),
    Case(
        "gzip-error-too-small",
        "/logs",
        b"limit=-1",
        api="bulk",
        headers=_GZIP,
        status=400,
        check=_plain,
    ),
    Case(
        "gzip-head",
        "/logs",
        b"limit=3000",
        method="HEAD",
        api="bulk",
        headers=_GZIP,
        check=_header("content-encoding", "gzip"),
    ),
    # access control
    Case("bearer-ok", "/logs", b"limit=1", api="bearer", headers=_BEARER, check=_logs(1)),
    Case(
        "bearer-missing",
        "/logs",
        api="bearer",
        status=401,
        check=_all(
            _error("unauthorized"), _header("www-authenticate", 'Bearer realm="observabilipy"')
        ),
    ),
    Case(
        "bearer-wrong", "/logs", api="bearer", headers={"authorization": "Bearer guess"}, status=401
    ),
    Case(
        "bearer-wrong-scheme",
        "/logs",
        api="bearer",
        headers={"authorization": f"Basic {TOKEN}"},
        status=401,
    ),
    Case("bearer-before-parameters", "/logs", b"since=abc", api="bearer", status=401),
    Case("bearer-prometheus", "/metrics/prometheus", api="bearer", status=401),
    Case(
        "bearer-health-public",
        "/health",
        api="bearer",
        check=_health("pass", log_storage=_PASS, metrics_storage=_PASS),
    ),
    Case("bearer-health-private", "/health", api="bearer-private-health", status=401),
    Case("bearer-health-private-ok", "/health", api="bearer-private-health", headers=_BEARER),
    Case("basic-ok", "/logs", b"limit=1", api="basic", headers=_BASIC, check=_logs(1)),
    Case(
        "basic-wrong",
        "/logs",
        api="basic",
        headers={"authorization": "Basic b3BzOndyb25n"},
        status=401,
        check=_header("www-authenticate", 'Basic realm="observabilipy", charset="UTF-8"'),
    ),
    Case("basic-garbage", "/logs", api="basic", headers={"authorization": "Basic %%%"}, status=401),
    Case("basic-missing", "/metrics/json", api="basic", status=401),
    Case(
        "callable-ok",
        "/logs",
        b"limit=1",
        api="callable",
        headers={"x-api-key": API_KEY},
        check=_logs(1),
    ),
    Case(
        "callable-denied",
        "/logs",
        api="callable",
        headers={"x-api-key": "other"},
        status=401,
        check=_header("www-authenticate", 'Bearer realm="observabilipy"'),
    ),
    Case(
        "async-callable-ok",
        "/logs",
        b"limit=1",
        api="async-callable",
        headers={"x-api-key": API_KEY},
        check=_logs(1),
    ),
    Case("async-callable-denied", "/logs", api="async-callable", status=401),
    Case(
        "access-check-raises",
        "/logs",
        api="access-raises",
        status=503,
        check=_error("access_check_failed"),
    ),
    Case("not-found-before-access", "/nope", api="bearer", status=404),
    # /health
    Case("health", "/health", check=_health("pass", log_storage=_PASS, metrics_storage=_PASS)),
    Case("health-head", "/health", method="HEAD"),
    Case(
        "health-custom-checks",
        "/health",
        api="health-checks",
        check=_health(
            "pass", log_storage=_PASS, metrics_storage=_PASS, sync_ok=_PASS, async_ok=_PASS
        ),
    ),
    Case(
        "health-failing-checks",
        "/health",
        api="health-failing",
        status=503,
        check=_health(
            "fail",
            log_storage=_PASS,
            metrics_storage=_PASS,
            sync_ok=_PASS,
            sync_raises={"status": "fail", "error": "RuntimeError: cache unreachable"},
            async_false={"status": "fail", "error": "returned False"},
        ),
    ),
    Case(
        "health-runtime-stopped",
        "/health",
        api="runtime-stopped",
        status=503,
        check=_health(
            "fail",
            log_storage=_PASS,
            metrics_storage=_PASS,
            runtime={
                "status": "fail",
                "running": False,
                "last_snapshot": None,
                "consecutive_failures": 0,
            },
        ),
    ),
    Case(
        "health-storage-down",
        "/health",
        api="broken",
        status=503,
        check=_health(
            "fail",
            log_storage={"status": "fail", "error": "OSError: disk I/O error"},
            metrics_storage={"status": "fail", "error": "OSError: disk I/O error"},
        ),
    ),
    Case("health-nothing-configured", "/health", api="no-storage", check=_health("pass")),
    # the bad-input matrix: 400 naming the parameter and what is allowed
    *_bad_cases("/logs", _BAD_LOG_PARAMETERS),
    *_bad_cases("/logs/json", _BAD_LOG_PARAMETERS[:6]),
    *_bad_cases("/metrics", _BAD_METRICS_PARAMETERS),
    *_bad_cases("/metrics/json", _BAD_METRICS_PARAMETERS[:3]),
    # routes and methods
    Case("not-found", "/nope", status=404, check=_error("not_found")),
    Case("not-found-root", "/", status=404),
    Case("not-found-empty", "", status=404),
    Case("not-found-below-route", "/logs/everything", status=404),
    # Every adapter hands /dashboard and the paths below it to the API (which serves the
    # dashboard when observabilipy-dashboard is installed); off, they are not found,
    # before any access check.
    Case(
        "not-found-dashboard",
        "/dashboard",
        api="no-dashboard",
        status=404,
        check=_message("the dashboard is turned off (ObservabilityAPI(dashboard=False))"),
    ),
    Case("not-found-dashboard-file", "/dashboard/app.js", api="no-dashboard", status=404),
    Case("not-found-dashboard-slash", "/dashboard/", api="no-dashboard", status=404),
    Case("not-found-method-too", "/nope", method="POST", status=404),
    Case(
        "method-post",
        "/logs",
        method="POST",
        status=405,
        check=_all(_error("method_not_allowed"), _header("allow", "GET, HEAD")),
    ),
    Case(
        "method-delete-health",
        "/health",
        method="DELETE",
        status=405,
        check=_header("allow", "GET, HEAD"),
    ),
    Case("method-put-prometheus", "/metrics/prometheus", method="PUT", status=405),
    Case("method-options", "/metrics", method="OPTIONS", status=405),
    Case("no-log-storage", "/logs", api="no-storage", status=404, check=_error("not_found")),
    Case("no-metrics-storage", "/metrics", api="no-storage", status=404),
    Case("no-metrics-storage-json", "/metrics/json", api="no-storage", status=404),
    # storages that fail: 503 before the first byte; a clean early end after it
    Case(
        "storage-down-logs", "/logs", api="broken", status=503, check=_error("storage_unavailable")
    ),
    Case(
        "storage-down-logs-json",
        "/logs/json",
        api="broken",
        status=503,
        check=_error("storage_unavailable"),
    ),
    Case("storage-down-logs-q", "/logs", b"q=x", api="broken", status=503),
    Case(
        "storage-down-metrics",
        "/metrics",
        api="broken",
        status=503,
        check=_error("storage_unavailable"),
    ),
    Case(
        "storage-down-exposition",
        "/metrics/prometheus",
        api="broken",
        status=503,
        check=_error("storage_unavailable"),
    ),
    Case("storage-down-bad-parameter-first", "/logs", b"limit=-1", api="broken", status=400),
    Case(
        "storage-fails-midstream",
        "/logs",
        b"limit=3000",
        api="midstream",
        check=_all(_header("content-length", None), _midstream),
    ),
    # a storage with its own NDJSON reader is used when nothing needs filtering here
    Case(
        "fast-reader", "/logs", b"level=info", api="fast-reader", check=_fast_rows(via_storage=True)
    ),
    Case(
        "fast-reader-json",
        "/logs/json",
        b"limit=2",
        api="fast-reader",
        check=_all(_fast_rows(via_storage=True), _page((1, 2), 2, "?limit=2&after=2")),
    ),
    Case(
        "fast-reader-not-for-q",
        "/logs",
        b"q=logged",
        api="fast-reader",
        check=_fast_rows(via_storage=False),
    ),
    Case(
        "fast-reader-not-for-offset",
        "/logs",
        b"offset=1",
        api="fast-reader",
        check=_fast_rows(via_storage=False),
    ),
)
