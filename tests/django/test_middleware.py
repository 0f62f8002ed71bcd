"""The Django request middleware and ``instrument_view``, under WSGI and ASGI.

Each test gets a fresh registry and log storage through the ``OBSERVABILIPY``
setting (``override_settings`` rebuilds the telemetry), and a fresh test
client or ASGI handler (Django builds the middleware with the handler).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client, RequestFactory, override_settings

from observabilipy.core.context import get_log_context
from observabilipy.core.handler import ObservabilipyHandler
from observabilipy.core.http.telemetry import RequestTelemetry
from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry
from observabilipy.core.storage import InMemoryLogStorage
from observabilipy.django import ObservabilityMiddleware, instrument_view
from observabilipy.django.asgi import ASGIHandler

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.django._django_support import MIDDLEWARE, asgi_answer, client_answer
else:
    from _django_support import MIDDLEWARE, asgi_answer, client_answer


@dataclass
class Observed:
    registry: Registry
    logs: InMemoryLogStorage
    handler: ObservabilipyHandler

    def requests(self) -> dict[tuple[str, str, str], float]:
        """http_requests_total by (method, route, status)."""
        return {
            (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
            for s in self.registry.snapshot()
            if s.name == "http_requests_total"
        }

    def in_flight(self) -> float:
        [sample] = [s for s in self.registry.snapshot() if s.name == "http_requests_in_flight"]
        return sample.value

    def dropped(self) -> float:
        return sum(
            s.value
            for s in self.registry.snapshot()
            if s.name == "observabilipy_dropped_total" and s.labels["component"] == "http_telemetry"
        )

    def entries(self) -> list[LogEntry]:
        self.handler.flush()
        return list(self.logs.read_sync())


@pytest.fixture
def observed() -> Iterator[Observed]:
    registry, logs = Registry(), InMemoryLogStorage()
    handler = ObservabilipyHandler(logs, flush_interval=0.01)
    views_logger = logging.getLogger("tests.django.views")
    views_logger.addHandler(handler)
    views_logger.setLevel(logging.INFO)
    with override_settings(OBSERVABILIPY={"registry": registry, "log_storage": logs}):
        yield Observed(registry, logs, handler)
    views_logger.removeHandler(handler)
    handler.close()


def get(path: str, **headers: str) -> Any:
    return client_answer(Client(), "GET", path, headers=headers)


# -- route labels --------------------------------------------------------------------------


def test_the_route_pattern_is_the_label_never_the_path(observed: Observed) -> None:
    for user_id in (7, 8, 9):
        assert get(f"/users/{user_id}").json()["id"] == user_id
    assert observed.requests() == {("GET", "/users/<int:user_id>", "200"): 3.0}
    labels = {value for s in observed.registry.snapshot() for value in s.labels.values()}
    assert not any(label.startswith("/users/7") for label in labels)


def test_unmatched_requests_share_one_label(observed: Observed) -> None:
    for path in ("/nope", "/nope/again", "/users/abc", "/x" * 40):
        assert get(path).status == 404
    assert observed.requests() == {("GET", "<unmatched>", "404"): 4.0}


def test_a_matched_view_answering_404_keeps_its_route(observed: Observed) -> None:
    assert get("/missing/thing").status == 404
    assert observed.requests() == {("GET", "/missing/<slug:name>", "404"): 1.0}
    [entry] = [e for e in observed.entries() if e.message.startswith("GET ")]
    assert entry.level == "WARNING"
    assert "exception.type" not in entry.attributes


def test_regex_routes_are_labelled_by_their_pattern(observed: Observed) -> None:
    assert get("/legacy/2024/").status == 200
    [(_, route, _)] = observed.requests()
    assert route == "/legacy/(?P<year>[0-9]{4})/$"


def test_the_observability_endpoints_are_not_recorded_by_default(observed: Observed) -> None:
    assert get("/observability/metrics/prometheus").status == 200
    assert get("/observability").status == 404
    assert observed.requests() == {}


# -- request ids and the log context -----------------------------------------------------


def test_request_id_is_echoed_and_in_the_views_own_logs(observed: Observed) -> None:
    answer = get("/users/5", **{"X-Request-ID": "req-42"})
    assert answer.headers["x-request-id"] == "req-42"
    entries = observed.entries()
    view_entry = next(e for e in entries if e.message == "looking up user 5")
    assert view_entry.attributes["request_id"] == "req-42"
    request_entry = next(e for e in entries if e.message == "GET /users/<int:user_id> 200")
    assert request_entry.level == "INFO"
    assert request_entry.attributes["request_id"] == "req-42"
    assert request_entry.attributes["path"] == "/users/5"
    assert get_log_context() == {}, "the context is restored after the request"


def test_an_invalid_request_id_is_replaced(observed: Observed) -> None:
    answer = get("/users/5", **{"X-Request-ID": "a" * 129})
    assert len(answer.headers["x-request-id"]) == 32


# -- in flight, streaming, errors ----------------------------------------------------------


def test_a_streamed_response_is_in_flight_until_closed(observed: Observed) -> None:
    response = Client().get("/stream")
    assert observed.in_flight() == 1.0, "not yet sent"
    assert b"".join(response.streaming_content) == b"ab"  # the test client closes at the end
    assert observed.in_flight() == 0.0
    assert observed.requests() == {("GET", "/stream", "200"): 1.0}


def test_an_exception_is_recorded_as_500_and_raised(observed: Observed) -> None:
    with pytest.raises(RuntimeError, match="the view failed"):
        Client().get("/boom")  # the test client raises what the view raised
    answer = client_answer(Client(raise_request_exception=False), "GET", "/boom")
    assert answer.status == 500
    assert observed.requests() == {("GET", "/boom", "500"): 2.0}
    assert observed.in_flight() == 0.0
    entries = [e for e in observed.entries() if e.message == "GET /boom 500"]
    assert [e.level for e in entries] == ["ERROR", "ERROR"]
    assert entries[0].attributes["exception.type"] == "RuntimeError"


def test_a_storage_failure_never_reaches_the_client() -> None:
    class BrokenStorage(InMemoryLogStorage):
        def write_sync(self, entry: LogEntry) -> None:
            raise OSError("database is locked")

    registry = Registry()
    with override_settings(OBSERVABILIPY={"registry": registry, "log_storage": BrokenStorage()}):
        for user_id in range(3):
            answer = get(f"/users/{user_id}")
            assert (answer.status, answer.json()["id"]) == (200, user_id)
    observed = Observed(registry, InMemoryLogStorage(), ObservabilipyHandler(InMemoryLogStorage()))
    assert observed.requests() == {("GET", "/users/<int:user_id>", "200"): 3.0}
    assert observed.dropped() == 3.0
    observed.handler.close()


# -- under ASGI ----------------------------------------------------------------------------
# ASGIHandler() builds the middleware now, with the settings of the test; it is what
# get_asgi_application() returns after django.setup() (which would also reconfigure
# logging, closing every handler, the test's too).


async def test_asgi_async_and_sync_views_are_recorded(observed: Observed) -> None:
    app = ASGIHandler()
    answer = await asgi_answer(app, "GET", "/async-users/3", headers={"x-request-id": "as-1"})
    assert (answer.status, answer.headers["x-request-id"]) == (200, "as-1")
    assert (await asgi_answer(app, "GET", "/users/4")).status == 200
    assert (await asgi_answer(app, "GET", "/nowhere")).status == 404
    assert observed.requests() == {
        ("GET", "/async-users/<int:user_id>", "200"): 1.0,
        ("GET", "/users/<int:user_id>", "200"): 1.0,
        ("GET", "<unmatched>", "404"): 1.0,
    }
    entries = observed.entries()
    view_entry = next(e for e in entries if e.message == "looking up user 3 asynchronously")
    assert view_entry.attributes["request_id"] == "as-1"
    assert observed.in_flight() == 0.0


async def test_asgi_streaming_and_errors(observed: Observed) -> None:
    app = ASGIHandler()
    answer = await asgi_answer(app, "GET", "/async-stream")
    assert answer.body == b"ab"
    answer = await asgi_answer(app, "GET", "/async-boom")
    assert answer.status == 500
    assert observed.requests() == {
        ("GET", "/async-stream", "200"): 1.0,
        ("GET", "/async-boom", "500"): 1.0,
    }
    assert observed.in_flight() == 0.0
    [entry] = [e for e in observed.entries() if e.message == "GET /async-boom 500"]
    assert entry.attributes["exception.type"] == "RuntimeError"


async def test_stock_django_asgi_refuses_a_query_that_is_not_utf8_before_the_api() -> None:
    # Why observabilipy.django.asgi exists: Django's own handler answers its own
    # empty HTML 400; ours lets the API answer with the JSON naming the parameter.
    from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler

    stock = await asgi_answer(DjangoASGIHandler(), "GET", "/async/default/logs", b"q=\xff")
    ours = await asgi_answer(ASGIHandler(), "GET", "/async/default/logs", b"q=\xff")
    assert (stock.status, stock.headers["content-type"]) == (400, "text/html; charset=utf-8")
    assert (ours.status, ours.json()["parameter"]) == (400, "query")


# -- instrument_view -----------------------------------------------------------------------

WITHOUT_MIDDLEWARE = [m for m in MIDDLEWARE if "observabilipy" not in m]


def test_instrument_view_records_chosen_views(observed: Observed) -> None:
    with override_settings(MIDDLEWARE=WITHOUT_MIDDLEWARE):
        answer = get("/instrumented/5", **{"X-Request-ID": "inst-1"})
        assert (answer.body, answer.headers["x-request-id"]) == (b"5", "inst-1")
        assert get("/users/1").status == 200, "not instrumented: not recorded"
        assert get("/instrumented-missing").status == 404
    assert observed.requests() == {
        ("GET", "/instrumented/<int:item_id>", "200"): 1.0,
        ("GET", "/instrumented-missing", "404"): 1.0,
    }
    entry = next(e for e in observed.entries() if e.message == "instrumented view")
    assert entry.attributes["request_id"] == "inst-1"


async def test_instrument_view_async_under_asgi(observed: Observed) -> None:
    with override_settings(MIDDLEWARE=WITHOUT_MIDDLEWARE):
        app = ASGIHandler()
        answer = await asgi_answer(app, "GET", "/instrumented-async/9")
    assert answer.body == b"9"
    assert observed.requests() == {("GET", "/instrumented-async/{id}", "200"): 1.0}


def test_instrument_view_under_the_middleware_counts_once(observed: Observed) -> None:
    assert get("/instrumented/5").status == 200
    assert observed.requests() == {("GET", "/instrumented/<int:item_id>", "200"): 1.0}


def test_instrument_view_records_and_raises_an_exception() -> None:
    registry = Registry()
    telemetry = RequestTelemetry(registry=registry, logs=False)

    @instrument_view(telemetry=telemetry, route="/explode")
    def explode(request: Any) -> Any:
        raise KeyError("missing")

    with pytest.raises(KeyError):
        explode(RequestFactory().get("/explode"))
    assert [
        (s.labels["route"], s.labels["status"], s.value)
        for s in registry.snapshot()
        if s.name == "http_requests_total"
    ] == [("/explode", "500", 1.0)]


def test_the_middleware_takes_a_telemetry() -> None:
    registry = Registry()
    telemetry = RequestTelemetry(registry=registry, logs=False)

    def view(request: Any) -> Any:
        from django.http import HttpResponse

        return HttpResponse("ok")

    middleware = ObservabilityMiddleware(view, telemetry=telemetry)
    response = middleware(RequestFactory().get("/direct"))
    assert response.status_code == 200
    assert "x-request-id" in response
    assert [s.labels["route"] for s in registry.snapshot() if s.name == "http_requests_total"] == [
        "<unmatched>"
    ]
