"""The files observabilipy-dashboard ships: small, offline, linked consistently, safe with data."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources

import pytest

from observabilipy.dashboard import CONTENT_SECURITY_POLICY, asset, asset_names, page, total_size

STATIC = resources.files("observabilipy.dashboard").joinpath("static")
SHIPPED = sorted(entry.name for entry in STATIC.iterdir() if entry.is_file())
SCRIPTS = [name for name in SHIPPED if name.endswith(".js")]


def text(name: str) -> str:
    return STATIC.joinpath(name).read_text(encoding="utf-8")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data


def parsed_page() -> _Tags:
    tags = _Tags()
    tags.feed(page().body.decode())
    return tags


def test_everything_shipped_is_under_300_kb() -> None:
    size = sum(len(STATIC.joinpath(name).read_bytes()) for name in SHIPPED)
    assert size == total_size()
    assert size < 300_000


def test_every_shipped_file_is_served() -> None:
    assert sorted([*asset_names(), "index.html"]) == SHIPPED


def test_the_page_runs_under_its_policy_no_inline_script_style_or_handler() -> None:
    tags = parsed_page()
    assert tags.script_text.strip() == ""
    scripts = [attrs for tag, attrs in tags.tags if tag == "script"]
    assert scripts == [{"type": "module", "src": "dashboard/app.js"}]
    for tag, attrs in tags.tags:
        assert tag != "style"
        assert not any(name.startswith("on") or name == "style" for name in attrs), (tag, attrs)
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "'unsafe-eval'" not in CONTENT_SECURITY_POLICY


def test_links_are_relative_to_the_mount_and_name_shipped_files() -> None:
    """Relative links keep working below any mount prefix, and nothing comes from elsewhere."""
    linked = [
        attrs.get("href") or attrs.get("src")
        for tag, attrs in parsed_page().tags
        if tag in ("script", "link")
    ]
    assert linked, "the page links its files"
    for link in linked:
        assert link is not None
        assert link.startswith("dashboard/"), link
        assert asset(link.removeprefix("dashboard/")) is not None, link


@pytest.mark.parametrize("name", SCRIPTS)
def test_module_imports_name_shipped_files(name: str) -> None:
    for imported in re.findall(r"^import .* from \"([^\"]+)\";$", text(name), re.MULTILINE):
        assert imported.startswith("./"), imported
        assert asset(imported.removeprefix("./")) is not None, imported


@pytest.mark.parametrize("name", SHIPPED)
def test_nothing_is_fetched_from_another_host(name: str) -> None:
    content = text(name)
    # The one absolute URL allowed is the SVG namespace, which is never fetched.
    content = content.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not re.search(r"https?:|//[a-z0-9.-]+\.[a-z]{2,}/", content), name
    if name.endswith(".css"):
        assert "@import" not in content
        assert "url(" not in content


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_never_turn_data_into_markup_or_code(name: str) -> None:
    content = text(name)
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "Function(",
    ):
        assert sink not in content, (name, sink)
