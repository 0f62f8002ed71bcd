"""The WSGI request middleware: route labels, request ids, in-flight, errors, failures.

Flask apps go through :func:`init_flask`; plain WSGI apps through
:class:`ObservabilityMiddleware` directly.  Requests are driven in-process as a
WSGI server would (the response closed at the end).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import flask
import pytest

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.wsgi._wsgi_support import drive, ignore_start_response, make_environ
else:
    from _wsgi_support import drive, ignore_start_response, make_environ

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.handler import ObservabilipyHandler
from observabilipy.core.http.telemetry import RequestTelemetry
from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry
from observabilipy.core.storage import InMemoryLogStorage
from observabilipy.wsgi import (
    ERROR_KEY,
    ROUTE_KEY,
    ObservabilityMiddleware,
    bottle_route,
    init_flask,
)

StartResponse = Callable[..., Any]


def requests_by_labels(registry: Registry) -> dict[tuple[str, str, str], float]:
    """http_requests_total by (method, route, status)."""
    return {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in registry.snapshot()
        if s.name == "http_requests_total"
    }


def in_flight(registry: Registry) -> float:
    [sample] = [s for s in registry.snapshot() if s.name == "http_requests_in_flight"]
    return sample.value


def dropped(registry: Registry) -> float:
    return sum(
        s.value
        for s in registry.snapshot()
        if s.name == "observabilipy_dropped_total" and s.labels["component"] == "http_telemetry"
    )


def get(app: Any, path: str, **headers: str) -> Any:
    return drive(app, make_environ("GET", "", path, headers=dict(headers)))


class _Logs(InMemoryLogStorage):
    pass


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def logs() -> InMemoryLogStorage:
    return InMemoryLogStorage()


@pytest.fixture
def app_logger(logs: InMemoryLogStorage) -> Iterator[tuple[logging.Logger, ObservabilipyHandler]]:
    """A logger the views log to, stored in ``logs`` (with the log context)."""
    handler = ObservabilipyHandler(logs, flush_interval=0.01)
    logger = logging.getLogger("tests.wsgi.views")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)
    handler.close()


def flask_app(logger: logging.Logger | None = None) -> Any:
    app = flask.Flask("shop")

    @app.get("/users/<int:user_id>")
    def user(user_id: int) -> dict[str, int]:
        if logger is not None:
            logger.info("looking up user %s", user_id)
        return {"id": user_id}

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("the view failed")

    @app.get("/stream")
    def stream() -> Any:
        def chunks() -> Iterator[bytes]:
            yield b"a"
            yield b"b"

        return flask.Response(chunks())

    return app


# -- route labels ------------------------------------------------------------------------


def test_flask_route_template_is_the_label_never_the_path(registry: Registry) -> None:
    app = flask_app()
    init_flask(app, registry=registry)
    for user_id in (7, 8, 9):
        assert get(app, f"/users/{user_id}").json() == {"id": user_id}
    counts = requests_by_labels(registry)
    assert counts == {("GET", "/users/<int:user_id>", "200"): 3.0}
    exposition_labels = {value for s in registry.snapshot() for value in s.labels.values()}
    assert not any(label.startswith("/users/7") for label in exposition_labels)


def test_unmatched_requests_share_one_label(registry: Registry) -> None:
    app = flask_app()
    init_flask(app, registry=registry)
    for path in ("/nope", "/nope/again", "/users/not-a-number", "/x" * 50):
        assert get(app, path).status == 404
    assert requests_by_labels(registry) == {("GET", "<unmatched>", "404"): 4.0}


def test_method_not_allowed_is_unmatched_and_methods_are_bounded(registry: Registry) -> None:
    app = flask_app()
    init_flask(app, registry=registry)
    assert drive(app, make_environ("POST", "", "/users/1")).status == 405
    assert drive(app, make_environ("BREW", "", "/users/1")).status == 405
    assert requests_by_labels(registry) == {
        ("POST", "<unmatched>", "405"): 1.0,
        ("OTHER", "<unmatched>", "405"): 1.0,
    }


def test_blueprint_routes_include_their_prefix(registry: Registry) -> None:
    app = flask.Flask("shop")
    api = flask.Blueprint("api", "shop", url_prefix="/api/v1")

    @api.get("/orders/<order_id>")
    def order(order_id: str) -> str:
        return order_id

    app.register_blueprint(api)
    init_flask(app, registry=registry)
    assert get(app, "/api/v1/orders/42").body == b"42"
    assert requests_by_labels(registry) == {("GET", "/api/v1/orders/<order_id>", "200"): 1.0}


def test_plain_wsgi_app_sets_its_route_in_the_environ(registry: Registry) -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        if environ["PATH_INFO"].startswith("/items/"):
            environ[ROUTE_KEY] = "/items/{id}"
            start_response("200 OK", [("content-type", "text/plain")])
            return [b"item"]
        start_response("404 Not Found", [("content-type", "text/plain")])
        return [b"no"]

    wrapped = ObservabilityMiddleware(app, registry=registry)
    get(wrapped, "/items/1")
    get(wrapped, "/items/2")
    get(wrapped, "/other")
    assert requests_by_labels(registry) == {
        ("GET", "/items/{id}", "200"): 2.0,
        ("GET", "<unmatched>", "404"): 1.0,
    }


def test_a_resolver_that_raises_means_unmatched(registry: Registry) -> None:
    def resolver(environ: dict[str, Any]) -> str | None:
        raise KeyError("route")

    wrapped = ObservabilityMiddleware(_hello, registry=registry, route_resolver=resolver)
    assert get(wrapped, "/").status == 200
    assert requests_by_labels(registry) == {("GET", "<unmatched>", "200"): 1.0}


def test_bottle_route_reads_the_matched_route() -> None:
    class Route:
        rule = "/hello/<name>"

    assert bottle_route({"bottle.route": Route()}) == "/hello/<name>"
    assert bottle_route({ROUTE_KEY: "/set"}) == "/set"
    assert bottle_route({}) is None


# -- request ids and the log context -----------------------------------------------------


def test_request_id_is_echoed_and_in_the_views_own_logs(
    registry: Registry,
    logs: InMemoryLogStorage,
    app_logger: tuple[logging.Logger, ObservabilipyHandler],
) -> None:
    logger, handler = app_logger
    app = flask_app(logger)
    init_flask(app, registry=registry, log_storage=logs)
    answer = get(app, "/users/5", **{"X-Request-Id": "req-42"})
    assert answer.headers["x-request-id"] == "req-42"
    handler.flush()
    entries = list(logs.read_sync())
    view_entry = next(e for e in entries if e.message == "looking up user 5")
    assert view_entry.attributes["request_id"] == "req-42"
    request_entry = next(e for e in entries if e.message == "GET /users/<int:user_id> 200")
    assert request_entry.level == "INFO"
    assert request_entry.attributes["request_id"] == "req-42"
    assert request_entry.attributes["path"] == "/users/5"
    assert request_entry.attributes["status"] == 200


def test_a_missing_or_invalid_request_id_is_replaced(registry: Registry) -> None:
    app = ObservabilityMiddleware(_hello, registry=registry)
    generated = get(app, "/").headers["x-request-id"]
    assert len(generated) == 32
    forged = get(app, "/", **{"X-Request-Id": "abc\r\nx-admin: 1"}).headers["x-request-id"]
    assert forged != generated
    assert len(forged) == 32
    assert "\n" not in forged


def test_the_log_context_is_restored_after_the_request(registry: Registry) -> None:
    from observabilipy.core.context import get_log_context, log_context

    app = ObservabilityMiddleware(_hello, registry=registry)
    with log_context(job="outer"):
        get(app, "/")
        assert get_log_context() == {"job": "outer"}
    assert get_log_context() == {}


def test_an_app_that_sets_its_own_request_id_header_keeps_it(registry: Registry) -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("X-Request-ID", "mine")])
        return [b""]

    answer = get(ObservabilityMiddleware(app, registry=registry), "/")
    assert answer.headers["x-request-id"] == "mine"


def test_request_ids_off_adds_no_header(registry: Registry) -> None:
    answer = get(ObservabilityMiddleware(_hello, registry=registry, request_ids=False), "/")
    assert "x-request-id" not in answer.headers


# -- in flight, streaming and close ------------------------------------------------------


def test_in_flight_counts_until_the_response_is_closed(registry: Registry) -> None:
    seen: list[float] = []

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        seen.append(in_flight(registry))
        yield b"part 1"
        seen.append(in_flight(registry))
        yield b"part 2"

    wrapped = ObservabilityMiddleware(app, registry=registry)
    result = wrapped(make_environ("GET", "", "/"), ignore_start_response)
    assert b"".join(result) == b"part 1part 2"
    assert in_flight(registry) == 1.0, "the server has not closed the response yet"
    assert requests_by_labels(registry) == {}
    result.close()  # type: ignore[attr-defined]
    assert seen == [1.0, 1.0]
    assert in_flight(registry) == 0.0
    assert requests_by_labels(registry) == {("GET", "<unmatched>", "200"): 1.0}


def test_flask_streaming_response_is_recorded_when_closed(registry: Registry) -> None:
    app = flask_app()
    init_flask(app, registry=registry)
    assert get(app, "/stream").body == b"ab"
    assert in_flight(registry) == 0.0
    assert requests_by_labels(registry) == {("GET", "/stream", "200"): 1.0}


def test_a_response_abandoned_early_is_closed_and_recorded(registry: Registry) -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"first"
            yield b"second"

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Body:
        start_response("200 OK", [])
        return Body()

    result = ObservabilityMiddleware(app, registry=registry)(
        make_environ("GET", "", "/"), ignore_start_response
    )
    assert next(iter(result)) == b"first"
    result.close()  # type: ignore[attr-defined]  # the client went away
    assert closed == [True]
    assert in_flight(registry) == 0.0
    assert requests_by_labels(registry) == {("GET", "<unmatched>", "200"): 1.0}


def test_excluded_paths_are_not_wrapped_or_recorded(registry: Registry) -> None:
    result = [b"untouched"]

    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        return result

    wrapped = ObservabilityMiddleware(
        app, registry=registry, exclude_paths=("/health", "/static/*")
    )
    assert wrapped(make_environ("GET", "", "/static/app.css"), ignore_start_response) is result
    assert wrapped(make_environ("GET", "", "/health"), ignore_start_response) is result
    assert requests_by_labels(registry) == {}


def test_the_whole_path_includes_the_script_name(
    registry: Registry, logs: InMemoryLogStorage
) -> None:
    wrapped = ObservabilityMiddleware(
        _hello, registry=registry, log_storage=logs, exclude_paths=("/app/private",)
    )
    drive(wrapped, make_environ("GET", "/app", "/private"))
    drive(wrapped, make_environ("GET", "/app", "/caf\xc3\xa9"))
    [entry] = list(logs.read_sync())
    assert entry.attributes["path"] == "/app/café"


# -- errors ------------------------------------------------------------------------------


def test_an_exception_is_recorded_as_500_and_raised_again(
    registry: Registry, logs: InMemoryLogStorage
) -> None:
    app = flask_app()
    app.config["PROPAGATE_EXCEPTIONS"] = True
    init_flask(app, registry=registry, log_storage=logs)
    with pytest.raises(RuntimeError, match="the view failed"):
        get(app, "/boom")
    assert requests_by_labels(registry) == {("GET", "/boom", "500"): 1.0}
    assert in_flight(registry) == 0.0
    [entry] = list(logs.read_sync())
    assert entry.level == "ERROR"
    assert entry.attributes["exception.type"] == "RuntimeError"


def test_flask_handling_the_exception_itself_is_a_500_response(
    registry: Registry, logs: InMemoryLogStorage
) -> None:
    app = flask_app()
    init_flask(app, registry=registry, log_storage=logs)
    assert get(app, "/boom").status == 500
    assert requests_by_labels(registry) == {("GET", "/boom", "500"): 1.0}
    [entry] = list(logs.read_sync())
    assert (entry.level, entry.attributes["exception.type"]) == ("ERROR", "RuntimeError")
    assert entry.attributes["exception.message"] == "the view failed"


def test_an_exception_answered_by_the_app_itself_is_named(
    registry: Registry, logs: InMemoryLogStorage
) -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        environ[ERROR_KEY] = LookupError("the cache is gone")
        start_response("503 Service Unavailable", [])
        return [b"sorry"]

    get(ObservabilityMiddleware(app, registry=registry, log_storage=logs), "/")
    [entry] = list(logs.read_sync())
    assert entry.attributes["exception.type"] == "LookupError"


def test_an_exception_while_the_body_streams_is_recorded_and_raised(registry: Registry) -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"first"
            raise OSError("the disk went away")

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Body:
        start_response("200 OK", [])
        return Body()

    wrapped = ObservabilityMiddleware(app, registry=registry)
    with pytest.raises(OSError, match="the disk went away"):
        drive(wrapped, make_environ("GET", "", "/"))
    assert closed == [True], "the server's close() reaches the app's response"
    assert requests_by_labels(registry) == {("GET", "<unmatched>", "500"): 1.0}
    assert in_flight(registry) == 0.0


def test_an_exception_in_close_is_recorded_and_raised(registry: Registry) -> None:
    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"done"

        def close(self) -> None:
            raise ValueError("close failed")

    def app(environ: dict[str, Any], start_response: StartResponse) -> Body:
        start_response("200 OK", [])
        return Body()

    with pytest.raises(ValueError, match="close failed"):
        get(ObservabilityMiddleware(app, registry=registry), "/")
    assert requests_by_labels(registry) == {("GET", "<unmatched>", "500"): 1.0}
    assert in_flight(registry) == 0.0


def test_an_app_that_never_starts_a_response_counts_as_500(registry: Registry) -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        return []

    wrapped = ObservabilityMiddleware(app, registry=registry)
    result = wrapped(make_environ("GET", "", "/"), ignore_start_response)
    list(result)
    result.close()  # type: ignore[attr-defined]
    assert requests_by_labels(registry) == {("GET", "<unmatched>", "500"): 1.0}


def test_a_storage_failure_never_reaches_the_client(registry: Registry) -> None:
    class BrokenStorage(InMemoryLogStorage):
        def write_sync(self, entry: LogEntry) -> None:
            raise OSError("database is locked")

    app = flask_app()
    init_flask(app, registry=registry, log_storage=BrokenStorage())
    for user_id in range(3):
        answer = get(app, f"/users/{user_id}")
        assert (answer.status, answer.json()) == (200, {"id": user_id})
    assert requests_by_labels(registry) == {("GET", "/users/<int:user_id>", "200"): 3.0}
    assert dropped(registry) == 3.0


def test_start_response_with_exc_info_replaces_the_status(registry: Registry) -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        try:
            raise KeyError("late")
        except KeyError:
            import sys

            start_response("503 Service Unavailable", [], sys.exc_info())
        return [b"sorry"]

    wrapped = ObservabilityMiddleware(app, registry=registry)
    calls: list[str] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
    ) -> Callable[[bytes], object]:
        calls.append(status)
        return lambda data: None

    result = wrapped(make_environ("GET", "", "/"), start_response)
    list(result)
    result.close()  # type: ignore[attr-defined]
    assert calls == ["200 OK", "503 Service Unavailable"]
    assert requests_by_labels(registry) == {("GET", "<unmatched>", "503"): 1.0}


# -- configuration -----------------------------------------------------------------------


def test_a_telemetry_is_shared_or_built_from_options() -> None:
    registry = Registry()
    telemetry = RequestTelemetry(registry=registry, logs=False)
    wrapped = ObservabilityMiddleware(_hello, telemetry=telemetry)
    assert wrapped.telemetry is telemetry
    get(wrapped, "/")
    assert requests_by_labels(registry) == {("GET", "<unmatched>", "200"): 1.0}
    with pytest.raises(ConfigurationError, match="not both"):
        ObservabilityMiddleware(_hello, telemetry=telemetry, logs=False)
    with pytest.raises(ConfigurationError, match="RequestTelemetry"):
        ObservabilityMiddleware(_hello, telemetry="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="route_resolver"):
        ObservabilityMiddleware(_hello, route_resolver="flask")  # type: ignore[arg-type]


def _hello(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"hello"]
