"""The dashboard guides and examples, without a browser (tests/browser runs them in Chromium).

- Every code block of the dashboard guides but the shell commands (and the Python
  blocks, which tests/test_docs.py runs) names the example it comes from in a
  ``<!-- from examples/... -->`` comment, and is that example's text (indentation
  aside): the guides cannot drift from what the tests run.
- The examples load nothing from a CDN and never hand data to ``innerHTML``.
- examples/chartjs_dashboard/serve.py refuses to start without its libraries, saying
  how to install them.
- examples/django_admin_integration.py serves the observability page to its admin
  after the admin login, and refuses anonymous visitors.
"""

from __future__ import annotations

import http.cookiejar
import importlib.util
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GUIDES = [
    ROOT / "docs" / name
    for name in (
        "dashboards.md",
        "log-viewer.md",
        "dashboards-react.md",
        "dashboards-django-admin.md",
    )
]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
SOURCE = re.compile(r"<!-- from (\S+) -->\n\Z")
#: Blocks that are not excerpts: commands to type, and Python that tests/test_docs.py runs.
NOT_EXCERPTS = frozenset({"sh", "python"})


def _blocks() -> list[tuple[str, str, str | None]]:
    """(where, block, the file its comment names) for each excerpt of the guides."""
    found = []
    for guide in GUIDES:
        text = guide.read_text("utf-8")
        for number, match in enumerate(FENCE.finditer(text), 1):
            if match.group(1) in NOT_EXCERPTS:
                continue
            source = SOURCE.search(text, 0, match.start())
            found.append(
                (f"{guide.name}#{number}", match.group(2), source.group(1) if source else None)
            )
    return found


def appears(block: str, text: str) -> bool:
    """True when ``block``'s lines are consecutive lines of ``text``, all indented alike.

    >>> appears("b\\n  c\\n", "a\\n    b\\n      c\\n")
    True
    >>> appears("b\\nc\\n", "a\\n    b\\n  c\\n")
    False
    """
    wanted = block.rstrip("\n").split("\n")
    lines = text.split("\n")
    for start in range(len(lines) - len(wanted) + 1):
        first = lines[start]
        if not first.endswith(wanted[0]):
            continue
        indent = first[: len(first) - len(wanted[0])]
        if indent.strip():
            continue
        if all(
            line == indent + want or (want == "" and line.strip() == "")
            for line, want in zip(lines[start : start + len(wanted)], wanted, strict=True)
        ):
            return True
    return False


@pytest.mark.parametrize(("where", "block", "source"), _blocks(), ids=[b[0] for b in _blocks()])
def test_guide_blocks_are_excerpts_of_the_examples(
    where: str, block: str, source: str | None
) -> None:
    assert source is not None, f"{where}: put <!-- from examples/... --> before the block"
    path = ROOT / source
    assert path.is_file(), f"{where}: {source} does not exist"
    assert appears(block, path.read_text("utf-8")), f"{where} is not a part of {source}"


def test_every_guide_has_excerpts() -> None:
    sources = {source for _, _, source in _blocks()}
    assert {
        "examples/chartjs_dashboard.html",
        "examples/chartjs_dashboard/prometheus.yml",
        "examples/react_dashboard/src/LogTable.jsx",
        "examples/django_admin_integration.py",
    } <= sources


def test_the_pages_load_nothing_from_elsewhere_and_render_data_as_text() -> None:
    page = (EXAMPLES / "chartjs_dashboard.html").read_text("utf-8")
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert len(scripts) == 3
    assert all(src.startswith("chartjs_dashboard/node_modules/") for src in scripts)
    widget = (
        ROOT / "packages/observabilipy-django/src/observabilipy/django/templates"
        "/observabilipy/admin/widget.html"
    ).read_text("utf-8")
    react = [path.read_text("utf-8") for path in (EXAMPLES / "react_dashboard/src").iterdir()]
    for source in [page, widget, *react]:
        assert "innerHTML" not in source
        assert "https://" not in source
    assert "textContent" in page
    assert "textContent" in widget


def test_the_chartjs_server_says_how_to_install_its_libraries(tmp_path: Path) -> None:
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("aiosqlite") is None:
        pytest.skip("needs pip install uvicorn observabilipy-sqlite")
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "chartjs_dashboard" / "serve.py"),
            "--node-modules",
            str(tmp_path / "node_modules"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "chart.js/dist/chart.umd.js is missing: run `npm ci` in" in result.stderr


# -- the Django admin example ---------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # look at a redirect, do not follow it


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_django_admin_example_shows_the_page_to_its_admin_only(tmp_path: Path) -> None:
    pytest.importorskip("django")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [
        sys.executable,
        str(EXAMPLES / "django_admin_integration.py"),
        "--port",
        str(port),
        "--password",
        "s3cret",
        "--db",
        str(tmp_path / "admin.db"),
    ]
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirects()
    )

    def get(path: str, form: dict[str, str] | None = None) -> tuple[int, Any, str]:
        data = urllib.parse.urlencode(form).encode() if form else None
        request = urllib.request.Request(base + path, data=data, headers={"Referer": base + "/"})
        try:
            with opener.open(request, timeout=10) as response:
                return response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as answer:
            with answer:
                return answer.code, answer.headers, answer.read().decode()

    with (tmp_path / "server.log").open("wb") as log:
        server = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    status, _, form = get("/admin/login/")
                    break
                except OSError:
                    assert server.poll() is None, (tmp_path / "server.log").read_text()
                    assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                    time.sleep(0.2)
            status, headers, _ = get("/admin/observability/api/logs")
            assert status == 302
            assert headers["Location"].startswith("/admin/login/?next=")

            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
            assert token
            credentials = {"username": "admin", "password": "s3cret"}
            form_data = {**credentials, "csrfmiddlewaretoken": token[1], "next": "/admin/"}
            status, _, _ = get("/admin/login/", form_data)
            assert status == 302  # signed in
            status, _, page = get("/admin/observability/")
            assert status == 200
            assert 'data-api="/admin/observability/api"' in page
            deadline = time.monotonic() + 30
            while "job 1 done" not in get("/admin/observability/api/logs?q=job")[2]:
                assert time.monotonic() < deadline, "the worker's logs never showed"
                time.sleep(0.2)
        finally:
            server.terminate()
            server.wait(timeout=15)
