"""The WSGI adapter: every conformance case, byte for byte, through create_wsgi_app.

The cases run through an in-test WSGI driver (a hand-built PEP 3333 environ with
the raw query bytes; the body read as sent and the response closed, as a server
does), with the app mounted three ways: by ``SCRIPT_NAME`` directly, by
:func:`observabilipy.wsgi.mount` in front of another app, and inside a Flask
application with werkzeug's ``DispatcherMiddleware``.  Each answer must pass the
case and equal what the core API answers (status, every core header, every byte).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import flask
import pytest
from werkzeug.middleware.dispatcher import DispatcherMiddleware

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.wsgi._wsgi_support import drive, ignore_start_response, make_environ
else:
    from _wsgi_support import drive, ignore_start_response, make_environ

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.http import ObservabilityAPI
from observabilipy.core.http.conformance import CASES, Answer, Case, build_api, core_answer
from observabilipy.core.models import LogEntry
from observabilipy.core.storage import InMemoryLogStorage
from observabilipy.wsgi import create_wsgi_app, environ_headers, mount, request_path

PREFIX = "/observability"

WSGIApp = Callable[..., Iterable[bytes]]


def assert_same_as_core(case: Case, answer: Answer) -> None:
    """The case passes and the answer is the core API's: status, its headers, its bytes."""
    case.verify(answer)
    reference = core_answer(case)
    assert answer.status == reference.status
    for name, value in reference.headers.items():
        assert answer.headers.get(name) == value, name
    assert answer.body == reference.body


def site(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The application the observability endpoints are mounted beside."""
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"the site"]


# -- the conformance table ---------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_case_with_script_name(case: Case) -> None:
    app = create_wsgi_app(build_api(case.api))
    environ = make_environ(case.method, PREFIX, case.path, case.query, dict(case.headers))
    assert_same_as_core(case, drive(app, environ))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_case_mounted(case: Case) -> None:
    app = mount(site, PREFIX, create_wsgi_app(build_api(case.api)))
    environ = make_environ(case.method, "", PREFIX + case.path, case.query, dict(case.headers))
    assert_same_as_core(case, drive(app, environ))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_case_in_flask(case: Case) -> None:
    flask_app = flask.Flask("site")

    @flask_app.get("/")
    def home() -> str:
        return "the site"

    flask_app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        flask_app.wsgi_app, {PREFIX: create_wsgi_app(build_api(case.api))}
    )
    environ = make_environ(case.method, "", PREFIX + case.path, case.query, dict(case.headers))
    assert_same_as_core(case, drive(flask_app, environ))


# -- what a single case cannot show --------------------------------------------------------


class _TrackedStorage(InMemoryLogStorage):
    """Knows whether the stream of its last read was closed."""

    closed: bool | None = None

    def read_sync(self, **filters: Any) -> Iterator[LogEntry]:
        entries = super().read_sync(**filters)
        self.closed = False

        def tracked() -> Iterator[LogEntry]:
            try:
                yield from entries
            finally:
                self.closed = True

        return tracked()


def _tracked_api() -> tuple[ObservabilityAPI, _TrackedStorage]:
    storage = _TrackedStorage()
    storage.write_many_sync(
        LogEntry(timestamp=float(n), level="INFO", message=f"entry {n}") for n in range(5000)
    )
    return ObservabilityAPI(log_storage=storage, gzip=False), storage


def test_a_body_closed_early_releases_the_storage_stream() -> None:
    api, storage = _tracked_api()
    app = create_wsgi_app(api)
    result = app(make_environ("GET", PREFIX, "/logs", b"limit=5000"), ignore_start_response)
    first = next(iter(result))
    assert first.startswith(b'{"id":1,')
    assert storage.closed is False, "the response streams: the storage is still being read"
    result.close()  # type: ignore[attr-defined]  # the client went away: the server closes
    assert storage.closed is True


def test_a_body_read_to_the_end_releases_the_storage_stream() -> None:
    api, storage = _tracked_api()
    answer = drive(create_wsgi_app(api), make_environ("GET", PREFIX, "/logs", b"limit=5000"))
    assert answer.body.count(b"\n") == 5000
    assert "content-length" not in answer.headers, "a long body streams"
    assert storage.closed is True


def test_the_raw_query_bytes_reach_the_api() -> None:
    # PEP 3333 gives QUERY_STRING as latin-1: the adapter must hand the API the
    # very bytes the client sent, so invalid UTF-8 is refused the same everywhere.
    app = create_wsgi_app(build_api("default"))
    answer = drive(app, make_environ("GET", PREFIX, "/logs", b"q=caf\xc3\xa9"))
    assert answer.status == 200
    assert [row["message"] for row in answer.ndjson()] == ["Café ✓ served"]
    answer = drive(app, make_environ("GET", PREFIX, "/logs", b"q=\xff"))
    assert (answer.status, answer.json()["parameter"]) == (400, "query")


def test_a_non_ascii_path_is_decoded_as_utf8() -> None:
    app = create_wsgi_app(build_api("default"))
    answer = drive(app, make_environ("GET", PREFIX, "/l\xc3\xb6gs"))
    assert answer.status == 404
    assert "/lögs" in answer.json()["message"]


def test_the_options_build_the_api() -> None:
    storage = InMemoryLogStorage()
    storage.write_sync(LogEntry(timestamp=1.0, level="ERROR", message="boom"))
    app = create_wsgi_app(log_storage=storage, gzip=False)
    answer = drive(app, make_environ("GET", "", "/logs"))
    assert [row["message"] for row in answer.ndjson()] == ["boom"]


def test_refuses_an_api_with_options_or_something_else() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        create_wsgi_app(ObservabilityAPI(), gzip=False)
    with pytest.raises(ConfigurationError, match="must be an ObservabilityAPI"):
        create_wsgi_app("api")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="log_storage"):
        create_wsgi_app(log_storage="nowhere")


def test_mount_refuses_the_root_and_normalises_the_prefix() -> None:
    with pytest.raises(ConfigurationError, match="prefix"):
        mount(site, "/", site)
    app = mount(site, "observability/", create_wsgi_app(build_api("default")))
    answer = drive(app, make_environ("GET", "", "/observability/health"))
    assert answer.json()["status"] == "pass"
    assert drive(app, make_environ("GET", "", "/")).body == b"the site"


def test_headers_and_path_helpers() -> None:
    environ = make_environ(
        "GET", "", "/x", headers={"Accept": "text/plain", "Content-Type": "a/b", "X-Api-Key": "k"}
    )
    environ["CONTENT_LENGTH"] = ""
    assert environ_headers(environ) == {
        "accept": "text/plain",
        "content-type": "a/b",
        "x-api-key": "k",
    }
    assert request_path({"PATH_INFO": "/\xff"}) == "/\ufffd"
    # A server that decoded the path itself (not PEP 3333): the text is kept.
    assert request_path({"PATH_INFO": "/€"}) == "/€"
