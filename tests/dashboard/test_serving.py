"""How core's HTTP API serves the dashboard once observabilipy-dashboard is installed.

Only core and the dashboard are needed: requests go to ``handle_sync`` and
``handle`` directly, which every adapter translates to (the browser tests load
the page through uvicorn and wsgiref in Chromium).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import sys
from collections.abc import Mapping

import pytest

from observabilipy.core.http import ObservabilityAPI, Request, basic_auth, bearer_token
from observabilipy.core.models import LogEntry
from observabilipy.core.storage import InMemoryLogStorage
from observabilipy.dashboard import CONTENT_SECURITY_POLICY, asset, asset_names, page

TOKEN = "s3cret"


def get(
    api: ObservabilityAPI, path: str, headers: Mapping[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    response = api.handle_sync(Request(method, path, b"", dict(headers or {})))
    return response.status, dict(response.headers), b"".join(response.body)


def aget(
    api: ObservabilityAPI, path: str, headers: Mapping[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    async def main() -> tuple[int, dict[str, str], bytes]:
        response = await api.handle(Request(method, path, b"", dict(headers or {})))
        return response.status, dict(response.headers), b"".join([c async for c in response.body])

    return asyncio.run(main())


def shipped(name: str) -> bytes:
    """The bytes of the dashboard file ``name``."""
    found = asset(name)
    assert found is not None, name
    return found.body


def test_the_page_is_html_under_a_strict_content_security_policy() -> None:
    status, headers, body = get(ObservabilityAPI(), "/dashboard")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    policy = dict(
        directive.strip().split(" ", 1) for directive in CONTENT_SECURITY_POLICY.split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"  # no inline script, no eval
    assert policy["connect-src"] == "'self'"
    assert headers["etag"] == page().etag
    assert headers["cache-control"] == "no-cache"
    assert headers["x-content-type-options"] == "nosniff"
    assert int(headers["content-length"]) == len(body)
    assert body == page().body


@pytest.mark.parametrize(
    "name", ["app.js", "api.js", "chart.js", "logs.js", "metrics.js", "style.css", "favicon.svg"]
)
def test_every_file_is_served_with_its_type(name: str) -> None:
    status, headers, body = get(ObservabilityAPI(gzip=False), "/dashboard/" + name)
    expected = {
        "js": "text/javascript; charset=utf-8",
        "css": "text/css; charset=utf-8",
        "svg": "image/svg+xml",
    }[name.rsplit(".", 1)[1]]
    assert (status, headers["content-type"], body) == (200, expected, shipped(name))
    assert headers["etag"].startswith('W/"')
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard",
        "/dashboard/app.js",
        "/dashboard/",
        "/dashboard/nope.js",
        "/dashboard/index.html",
    ],
)
@pytest.mark.parametrize("headers", [{}, {"accept-encoding": "gzip"}])
def test_sync_and_async_answer_the_same(path: str, headers: dict[str, str]) -> None:
    api = ObservabilityAPI()
    assert get(api, path, headers) == aget(api, path, headers)


def test_a_revalidation_with_the_etag_gets_304_without_a_body() -> None:
    api = ObservabilityAPI()
    etag = get(api, "/dashboard/app.js")[1]["etag"]
    for tag in (etag, etag.removeprefix("W/"), f'"other", {etag}', "*"):
        status, headers, body = get(api, "/dashboard/app.js", {"if-none-match": tag})
        assert (status, body) == (304, b"")
        assert headers["etag"] == etag
        assert "content-length" not in headers
    assert get(api, "/dashboard/app.js", {"if-none-match": '"stale"'})[0] == 200


def test_files_are_gzip_compressed_for_clients_that_accept_it() -> None:
    status, headers, body = get(
        ObservabilityAPI(), "/dashboard/app.js", {"accept-encoding": "gzip"}
    )
    assert (status, headers["content-encoding"]) == (200, "gzip")
    assert headers["vary"] == "accept-encoding"
    assert gzip.decompress(body) == shipped("app.js")
    assert int(headers["content-length"]) == len(body)


def test_a_trailing_slash_redirects_to_the_page_relatively() -> None:
    status, headers, body = get(ObservabilityAPI(), "/dashboard/")
    # Relative: the redirect stays below whatever prefix the API is mounted at.
    assert (status, headers["location"], body) == (308, "../dashboard", b"")


@pytest.mark.parametrize(
    "path",
    ["/dashboard/nope.js", "/dashboard/index.html", "/dashboard/../app.js", "/dashboard/x/app.js"],
)
def test_anything_else_below_the_dashboard_is_not_found(path: str) -> None:
    status, headers, body = get(ObservabilityAPI(), path)
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"] == "not_found"


def test_head_answers_the_headers_and_other_methods_are_refused() -> None:
    api = ObservabilityAPI(gzip=False)
    status, headers, body = get(api, "/dashboard", method="HEAD")
    assert (status, body, headers["content-length"]) == (200, b"", str(len(page().body)))
    status, headers, _ = get(api, "/dashboard/app.js", method="POST")
    assert (status, headers["allow"]) == (405, "GET, HEAD")


def test_with_a_bearer_token_the_page_is_refused_and_becomes_the_sign_in() -> None:
    storage = InMemoryLogStorage()
    storage.write_sync(LogEntry(timestamp=1.0, level="INFO", message="private"))
    api = ObservabilityAPI(log_storage=storage, access=bearer_token(TOKEN))

    status, headers, body = get(api, "/dashboard")
    assert status == 401
    assert headers["www-authenticate"] == 'Bearer realm="observabilipy"'
    # The page, not data: its script asks for the token and sends it as a header.
    assert (headers["content-type"], body) == ("text/html; charset=utf-8", page().body)
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert headers["cache-control"] == "no-store"

    assert get(api, "/dashboard", {"authorization": f"Bearer {TOKEN}"})[0] == 200
    # Data stays behind the check; the page's own code does not (it holds no data).
    assert get(api, "/logs")[0] == 401
    assert get(api, "/logs", {"authorization": f"Bearer {TOKEN}"})[2].count(b"private") == 1
    for name in asset_names():
        assert get(api, "/dashboard/" + name)[0] == 200


def test_with_basic_auth_the_browser_is_challenged() -> None:
    api = ObservabilityAPI(access=basic_auth("ops", "hunter2"))
    status, headers, _ = get(api, "/dashboard")
    assert (status, headers["www-authenticate"]) == (
        401,
        'Basic realm="observabilipy", charset="UTF-8"',
    )
    good = "Basic " + base64.b64encode(b"ops:hunter2").decode()
    assert get(api, "/dashboard", {"authorization": good})[0] == 200


def test_an_access_check_that_raises_still_fails_closed() -> None:
    def broken(request: Request) -> bool:
        raise RuntimeError("auth service down")

    status, _, body = get(ObservabilityAPI(access=broken), "/dashboard")
    assert (status, json.loads(body)["error"]) == (503, "access_check_failed")


def test_turned_off_it_is_not_found_before_any_access_check() -> None:
    def never(request: Request) -> bool:
        raise AssertionError("the access check ran")

    api = ObservabilityAPI(dashboard=False, access=never)
    for path in ("/dashboard", "/dashboard/app.js"):
        status, headers, body = get(api, path)
        assert (status, headers["content-type"]) == (404, "application/json")
        assert json.loads(body) == {
            "error": "not_found",
            "message": "the dashboard is turned off (ObservabilityAPI(dashboard=False))",
        }


def test_not_installed_it_is_not_found_with_the_command_that_installs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules makes the import fail as if the distribution were absent.
    monkeypatch.setitem(sys.modules, "observabilipy.dashboard", None)
    status, _, body = get(ObservabilityAPI(), "/dashboard")
    assert status == 404
    assert json.loads(body) == {
        "error": "not_found",
        "message": "the dashboard is not installed: pip install observabilipy-dashboard",
    }
    assert aget(ObservabilityAPI(), "/dashboard/app.js")[0] == 404


def test_the_data_routes_keep_their_rules() -> None:
    status, headers, _ = get(ObservabilityAPI(), "/health")
    assert (status, headers["cache-control"]) == (200, "no-store")
    assert "content-security-policy" not in headers
    assert get(ObservabilityAPI(), "/dashboards")[0] == 404
