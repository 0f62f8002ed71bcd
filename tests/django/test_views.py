"""The Django adapter: every conformance case, byte for byte, through sync and async views.

Sync views run under Django's test client (WSGI requests; the raw query bytes
passed as ``QUERY_STRING``, latin-1, as WSGI does); async views run under
Django's ASGI handler (``observabilipy.django.asgi``), driven in-process with
a hand-built ASGI scope holding the raw query bytes.  Both stacks include the
usual middleware (security, common with ``APPEND_SLASH``, CSRF, clickjacking)
and observabilipy's own.  Each answer must pass the case and equal the core
API's answer (status, every core header, every byte).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.http import ObservabilityAPI, bearer_token
from observabilipy.core.http.conformance import CASES, Answer, Case, core_answer
from observabilipy.core.metrics import Registry
from observabilipy.core.models import LogEntry
from observabilipy.core.storage import InMemoryLogStorage, InMemoryMetricsStorage
from observabilipy.django import conf, observability_urls
from observabilipy.django.asgi import ASGIHandler, get_asgi_application
from observabilipy.django.views import sync_view

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.django._django_support import asgi_answer, client_answer
else:
    from _django_support import asgi_answer, client_answer


def assert_same_as_core(case: Case, answer: Answer) -> None:
    """The case passes and the answer is the core API's: status, its headers, its bytes."""
    case.verify(answer)
    reference = core_answer(case)
    assert answer.status == reference.status
    for name, value in reference.headers.items():
        assert answer.headers.get(name) == value, name
    assert answer.body == reference.body


@pytest.fixture(scope="module")
def asgi_app() -> ASGIHandler:
    return get_asgi_application()


# -- the conformance table ---------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_case_sync_view(case: Case) -> None:
    answer = client_answer(
        Client(), case.method, f"/sync/{case.api}{case.path}", case.query, case.headers
    )
    assert_same_as_core(case, answer)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
async def test_case_async_view_under_asgi(case: Case, asgi_app: ASGIHandler) -> None:
    answer = await asgi_answer(
        asgi_app, case.method, f"/async/{case.api}{case.path}", case.query, case.headers
    )
    assert_same_as_core(case, answer)


# -- mounting, settings and Django's own middleware --------------------------------------


def test_append_slash_never_redirects_the_api() -> None:
    client = Client()
    answer = client_answer(client, "GET", "/sync/default/logs/", b"limit=1")
    assert answer.status == 200, "the API's /logs/ is /logs"
    answer = client_answer(client, "GET", "/sync/default/nope")
    assert (answer.status, answer.json()["error"]) == (404, "not_found")
    # Outside the API, CommonMiddleware still does its job.
    assert client.get("/legacy/2024").status_code == 301


def test_post_gets_the_apis_405_not_a_csrf_403() -> None:
    client = Client(enforce_csrf_checks=True)
    answer = client_answer(client, "POST", "/sync/default/logs")
    assert (answer.status, answer.headers["allow"]) == (405, "GET, HEAD")


def test_the_settings_api_is_served_under_its_prefix() -> None:
    logs = InMemoryLogStorage()
    logs.write_sync(LogEntry(timestamp=1.0, level="WARNING", message="disk low"))
    with override_settings(OBSERVABILIPY={"log_storage": logs, "registry": Registry()}):
        answer = client_answer(Client(), "GET", "/observability/logs", b"level=warn")
        assert [row["message"] for row in answer.ndjson()] == ["disk low"]
        assert client_answer(Client(), "GET", "/observability").status == 404
        assert reverse("observabilipy", kwargs={"path": "/health"}) == "/observability/health"


def test_the_settings_access_check_guards_the_api() -> None:
    with override_settings(OBSERVABILIPY={"access": bearer_token("t0ken"), "health_public": False}):
        assert client_answer(Client(), "GET", "/observability/health").status == 401
        answer = client_answer(
            Client(), "GET", "/observability/health", headers={"authorization": "Bearer t0ken"}
        )
        assert answer.status == 200


def test_settings_name_parts_by_dotted_path() -> None:
    with override_settings(
        OBSERVABILIPY={
            "log_storage": "observabilipy.core.storage.InMemoryLogStorage",
            "metrics_storage": "observabilipy.core.storage.InMemoryMetricsStorage",
            "health_checks": {"always": "builtins.bool"},
        }
    ):
        api = conf.get_api()
        assert conf.get_api() is api, "built once"
        answer = client_answer(Client(), "GET", "/observability/health")
        document = answer.json()
        assert set(document["components"]) >= {"log_storage", "metrics_storage", "always"}


def test_an_api_given_by_the_settings_is_served() -> None:
    api = ObservabilityAPI(registry=Registry(), gzip=False)
    with override_settings(OBSERVABILIPY={"api": api}):
        assert conf.get_api() is api
    with (
        override_settings(OBSERVABILIPY={"api": api, "gzip": False}),
        pytest.raises(ConfigurationError, match="'api' is given, so gzip"),
    ):
        conf.get_api()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"log_storag": None}, "unknown key 'log_storag'"),
        ({"log_storage": "no.such.module.logs"}, "log_storage"),
        ({"log_storage": 42}, "must be a LogStoragePort"),
        ({"registry": "observabilipy.core.storage.InMemoryLogStorage"}, "must be a Registry"),
        ({"runtime": {"snapshot_interval": 0}}, "snapshot_interval"),
        ({"runtime": {"tick": 1}}, "runtime"),
        ({"telemetry": {"exclude_paths": "/health"}}, "exclude_paths"),
        ({"telemetry": {"colour": "red"}}, "telemetry"),
        ({"max_limit": 0}, "max_limit"),
        ({"health_checks": ["x"]}, "health_checks"),
        ({"prefix": 7}, "prefix"),
    ],
)
def test_a_wrong_setting_is_named(setting: dict[str, Any], message: str) -> None:
    with override_settings(OBSERVABILIPY=setting), pytest.raises(ConfigurationError, match=message):
        _build_everything()


def _build_everything() -> None:
    """What the settings build: the API, the request telemetry, and the prefix they name."""
    conf.get_api()
    conf.get_telemetry()
    conf.prefix()


def test_a_setting_that_is_not_a_dict_is_refused() -> None:
    with (
        override_settings(OBSERVABILIPY=["log_storage"]),
        pytest.raises(ConfigurationError, match="must be a dict"),
    ):
        conf.get_api()


def test_observability_urls_builds_from_options_or_refuses_both() -> None:
    metrics = InMemoryMetricsStorage()
    [pattern] = observability_urls(metrics_storage=metrics, prefix="ops")
    assert pattern.pattern.match("ops/metrics") is not None
    with pytest.raises(ConfigurationError, match="not both"):
        observability_urls(ObservabilityAPI(), gzip=False)
    with pytest.raises(ConfigurationError, match="must be an ObservabilityAPI"):
        sync_view("api")  # type: ignore[arg-type]


# -- streaming and closing ---------------------------------------------------------------


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


def test_a_streamed_body_closed_early_releases_the_storage() -> None:
    storage = _TrackedStorage()
    storage.write_many_sync(
        LogEntry(timestamp=float(n), level="INFO", message=f"entry {n}") for n in range(5000)
    )
    view = sync_view(ObservabilityAPI(log_storage=storage, gzip=False))
    from django.test import RequestFactory

    request = RequestFactory().get("/logs", QUERY_STRING="limit=5000")
    response = view(request, path="/logs")
    assert response.streaming
    first = next(iter(response.streaming_content))
    assert json.loads(first.split(b"\n")[0])["id"] == 1
    assert storage.closed is False
    response.close()  # what the WSGI server does when the client goes away
    assert storage.closed is True
