"""The admin integration (``observabilipy.django.admin``) in a project with Django's admin.

The adapter's other tests configure Django in this process without a database
(conftest.py); the admin needs one (users, sessions), and Django's settings are
configured once per process.  So this module runs its project in a child
process: run as a script, it configures the admin, auth, sessions and an SQLite
file, creates a staff user and a user who is not staff, writes two log entries
and serves on loopback (wsgiref, threaded).  The tests are the admin's visitors,
with cookies, as a browser is:

- an anonymous visitor is redirected to the admin login, for the page and its API;
- a signed-in user who is not staff is redirected to the admin login too;
- a staff user sees the page (the widget, in the admin's look) and reads the API
  through it, answered as every adapter answers (400 naming a bad parameter);
- patterns given another admin site use its login and its index.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

STAFF = ("staff", "staff-password")
VISITOR = ("visitor", "visitor-password")
HOSTILE = "<img src=x onerror=alert(1)>"


# -- the child: a Django project with the admin --------------------------------------------


class _URLConf:
    """The child's URL conf (``ROOT_URLCONF`` may be any object with ``urlpatterns``)."""

    urlpatterns: ClassVar[list[Any]] = []


def _serve(port: int, database: str) -> None:
    """Configure the project, create its users and serve it on 127.0.0.1:``port``."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="only-for-tests",
        ALLOWED_HOSTS=["127.0.0.1"],
        ROOT_URLCONF=_URLConf,
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "observabilipy.django",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": database}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup()

    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.contrib.auth.views import LoginView
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from django.urls import include, path

    from observabilipy.core import InMemoryLogStorage, Registry, info, warning
    from observabilipy.core.http import ObservabilityAPI
    from observabilipy.django.admin import observability_admin_urls

    call_command("migrate", verbosity=0, interactive=False)
    users = get_user_model().objects
    users.create_user(STAFF[0], password=STAFF[1], is_staff=True)
    users.create_user(VISITOR[0], password=VISITOR[1])

    logs = InMemoryLogStorage()
    logs.write_sync(info("order 7 shipped", order=7))
    logs.write_sync(warning(HOSTILE))
    registry = Registry()
    registry.counter("orders_total", "Orders shipped.").inc(3)
    api = ObservabilityAPI(log_storage=logs, registry=registry)
    ops = admin.AdminSite(name="ops")

    _URLConf.urlpatterns = [
        path(
            "admin/observability/",
            include(observability_admin_urls(api=api, metric="orders_total", window_minutes=5)),
        ),
        path("admin/", admin.site.urls),
        path("ops/observability/", include(observability_admin_urls(ops, api=api, title="Ops"))),
        path("ops/", ops.urls),
        path("accounts/login/", LoginView.as_view(template_name="admin/login.html")),
    ]

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Requests are not logged: the output is for errors."""

    server = make_server(
        "127.0.0.1",
        port,
        get_wsgi_application(),
        server_class=Server,
        handler_class=QuietHandler,
    )
    server.serve_forever()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.argv[2])


# -- the tests ------------------------------------------------------------------------------

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.django._django_support import free_port, serve
else:
    from _django_support import free_port, serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The child project, serving; its base URL."""
    directory = tmp_path_factory.mktemp("django-admin")
    port = free_port()
    argv = [sys.executable, str(Path(__file__).resolve()), str(port), str(directory / "db")]
    with serve(argv, port, directory / "server.log", "/admin/login/"):
        yield f"http://127.0.0.1:{port}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer to look at, not to follow


class Visitor:
    """A browser's part here: cookies kept, redirects shown (status and Location)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirects()
        )

    def request(self, path: str, form: dict[str, str] | None = None) -> tuple[int, Any, str]:
        """GET ``path`` (POST ``form`` when given): status, headers, body text."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(self.base + path, data=data)
        if form is not None:
            request.add_header("Referer", self.base + path)  # Django's CSRF check wants one
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as refused:
            with refused:
                return refused.code, refused.headers, refused.read().decode()

    def log_in(self, login_path: str, user: tuple[str, str], next_path: str) -> int:
        """Fill in a login form as a person does; the status of the form's answer."""
        status, _, form = self.request(f"{login_path}?next={next_path}")
        assert status == 200, form
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
        assert token, form
        status, headers, _ = self.request(
            login_path,
            {
                "username": user[0],
                "password": user[1],
                "csrfmiddlewaretoken": token[1],
                "next": next_path,
            },
        )
        if status == 302:
            assert headers["Location"] == next_path
        return status


def _redirected_to_login(answer: tuple[int, Any, str], login: str, path: str) -> bool:
    status, headers, _ = answer
    quoted = urllib.parse.quote(path)
    return status == 302 and headers["Location"] == f"{login}?next={quoted}"


def test_anonymous_visitors_are_sent_to_the_admin_login(site: str) -> None:
    anonymous = Visitor(site)
    for path in ("/admin/observability/", "/admin/observability/api/logs"):
        answer = anonymous.request(path)
        assert _redirected_to_login(answer, "/admin/login/", path), answer[:2]
        assert "order 7 shipped" not in answer[2]


def test_users_who_are_not_staff_are_sent_to_the_admin_login(site: str) -> None:
    visitor = Visitor(site)
    # The admin's own form refuses them; the site's login view signs them in.
    assert visitor.log_in("/admin/login/", VISITOR, "/admin/") == 200
    assert visitor.log_in("/accounts/login/", VISITOR, "/admin/observability/") == 302
    for path in ("/admin/observability/", "/admin/observability/api/logs?q=order"):
        answer = visitor.request(path)
        assert _redirected_to_login(answer, "/admin/login/", path), answer[:2]
        assert "order 7 shipped" not in answer[2]


def test_staff_see_the_widget_in_the_admin(site: str) -> None:
    staff = Visitor(site)
    assert staff.log_in("/admin/login/", STAFF, "/admin/observability/") == 302
    status, headers, page = staff.request("/admin/observability/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "no-store" in headers["Cache-Control"]  # admin_view: never cached
    assert '<div class="observabilipy-widget" data-api="/admin/observability/api"' in page
    assert 'data-metric="orders_total" data-window="300"' in page
    assert '<a href="/admin/">Home</a>' in page  # the admin's breadcrumbs and look
    assert "<title>Observability | Django site admin</title>" in page
    assert 'id="user-tools"' in page
    assert "staff" in page
    assert "innerHTML" not in page  # the script renders data as text only


def test_staff_read_the_api_through_the_admin(site: str) -> None:
    staff = Visitor(site)
    staff.log_in("/admin/login/", STAFF, "/admin/observability/")
    status, headers, body = staff.request("/admin/observability/api/logs?min_level=warning")
    assert status == 200
    assert headers["Content-Type"].startswith("application/x-ndjson")
    [entry] = [json.loads(line) for line in body.splitlines()]
    assert (entry["level"], entry["message"]) == ("WARNING", HOSTILE)
    status, _, body = staff.request("/admin/observability/api/logs?after=1")
    assert [json.loads(line)["id"] for line in body.splitlines()] == [2]
    status, _, body = staff.request("/admin/observability/api/metrics/prometheus")
    assert status == 200
    assert "orders_total 3.0" in body
    status, _, body = staff.request("/admin/observability/api/health")
    assert status == 200
    assert json.loads(body)["status"] == "pass"
    status, _, body = staff.request("/admin/observability/api/logs?since=abc")
    assert status == 400
    assert json.loads(body)["parameter"] == "since"


def test_another_admin_site_uses_its_own_login_and_index(site: str) -> None:
    anonymous = Visitor(site)
    answer = anonymous.request("/ops/observability/")
    assert _redirected_to_login(answer, "/ops/login/", "/ops/observability/"), answer[:2]
    staff = Visitor(site)
    assert staff.log_in("/ops/login/", STAFF, "/ops/observability/") == 302
    status, _, page = staff.request("/ops/observability/")
    assert status == 200
    assert '<a href="/ops/">Home</a>' in page
    assert 'data-api="/ops/observability/api"' in page
    assert "<title>Ops | Django site admin</title>" in page
