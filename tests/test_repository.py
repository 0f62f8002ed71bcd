"""The repository's shape: one shared version, exact pins, and what each distribution ships.

The first half runs tools/bump_version.py on a throw-away copy of a packages/ tree; the
second holds this repository to DESIGN §1 (the version drift test among them).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = sorted(p.parent for p in ROOT.glob("packages/*/pyproject.toml"))


def _load_tool(name: str) -> ModuleType:
    """Import a script of tools/, which is not a package."""
    spec = importlib.util.spec_from_file_location(f"_tools_{name}", ROOT / "tools" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


bump_version = _load_tool("bump_version")
isolated_install = _load_tool("isolated_install")


# A fake tree: "{V}" marks every text the bump must change; the rest must stay as it is.
FAKE_TREE = {
    "pyproject.toml": """\
# The workspace root: never built.
[project]
name = "observabilipy-workspace"
version = "{V}"

[tool.example]
version = "9.9.9"  # not the project's version
""",
    "packages/observabilipy-core/pyproject.toml": """\
[build-system]
requires = ["hatchling>=1.26"]

[project]
name = "observabilipy-core"
version = "{V}"  # shared by every distribution
dependencies = []

[project.optional-dependencies]
testing = ["pytest>=8", 'pytest-asyncio>=0.24']
""",
    "packages/observabilipy-sqlite/pyproject.toml": """\
[project]
name = "observabilipy-sqlite"
version = '{V}'
dependencies = [
  "observabilipy-core=={V}",  # exact, as every sibling pin
  "aiosqlite==2.0.0",
  "observabilipyish==2.0.0",
]
""",
    "packages/observabilipy/pyproject.toml": """\
[project]
name = "observabilipy"
version = "{V}"
dependencies = [
  "observabilipy-core == {V}",
  "observabilipy-sqlite[fast]=={V}; python_version >= '3.11'",
]

[project.optional-dependencies]
all = ["Observabilipy_Core=={V}"]
""",
}


def _write_tree(root: Path, version: str) -> None:
    for relative, template in FAKE_TREE.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.replace("{V}", version))


def _read_tree(root: Path) -> dict[str, str]:
    return {relative: (root / relative).read_text() for relative in FAKE_TREE}


def _expected_tree(version: str) -> dict[str, str]:
    return {relative: text.replace("{V}", version) for relative, text in FAKE_TREE.items()}


def _run_bump(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "tools" / "bump_version.py"), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A consistent fake repository at version 2.0.0."""
    _write_tree(tmp_path, "2.0.0")
    return tmp_path


def test_bump_rewrites_every_version_and_sibling_pin_and_nothing_else(tree: Path) -> None:
    done = _run_bump("--root", tree, "2.1.0")

    assert done.returncode == 0, done.stderr
    assert _read_tree(tree) == _expected_tree("2.1.0")
    assert "every distribution is now at 2.1.0" in done.stdout


def test_bump_reaches_a_newly_added_distribution(tree: Path) -> None:
    new = tree / "packages" / "observabilipy-asgi" / "pyproject.toml"
    new.parent.mkdir()
    new.write_text(
        '[project]\nname = "observabilipy-asgi"\nversion = "2.0.0"\n'
        'dependencies = ["observabilipy-core==2.0.0"]\n'
    )

    assert bump_version.main(["--root", str(tree), "3.0.0"]) == 0

    assert new.read_text() == (
        '[project]\nname = "observabilipy-asgi"\nversion = "3.0.0"\n'
        'dependencies = ["observabilipy-core==3.0.0"]\n'
    )


def test_bump_repairs_drift(tree: Path) -> None:
    sqlite = tree / "packages" / "observabilipy-sqlite" / "pyproject.toml"
    sqlite.write_text(sqlite.read_text().replace("2.0.0", "1.9.0", 2))

    assert bump_version.main(["--root", str(tree), "2.1.0"]) == 0

    assert bump_version.find_drift(tree) == []
    assert _read_tree(tree) == _expected_tree("2.1.0")


@pytest.mark.parametrize("version", ["2.1.0rc1", "2.1.0.dev3", "2.1.0.post1", "1!3.0", "3"])
def test_bump_accepts_pep_440_versions(tree: Path, version: str) -> None:
    assert bump_version.main(["--root", str(tree), version]) == 0

    assert _read_tree(tree) == _expected_tree(version)
    assert bump_version.main(["--root", str(tree), "--check", "--expect", version]) == 0


@pytest.mark.parametrize("version", ["v2.1.0", "2.1.0-beta", "2.1.0+local", "02.1", "latest", ""])
def test_bump_refuses_what_is_not_a_canonical_public_version(
    tree: Path, version: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bump_version.main(["--root", str(tree), version]) == 2

    assert "not a public PEP 440 version" in capsys.readouterr().err
    assert _read_tree(tree) == _expected_tree("2.0.0")


def test_bump_writes_nothing_when_a_pin_is_not_exact(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The last manifest read: every other one could be rewritten, and must not be.
    sqlite = tree / "packages" / "observabilipy-sqlite" / "pyproject.toml"
    sqlite.write_text(
        sqlite.read_text().replace("observabilipy-core==2.0.0", "observabilipy-core~=2.0")
    )
    before = _read_tree(tree)

    assert bump_version.main(["--root", str(tree), "2.1.0"]) == 2

    assert _read_tree(tree) == before
    error = capsys.readouterr().err
    assert "observabilipy-core~=2.0" in error
    assert "observabilipy-core==<version>" in error


def test_check_passes_on_a_consistent_tree(tree: Path) -> None:
    done = _run_bump("--root", tree, "--check")

    assert done.returncode == 0
    assert done.stdout.startswith("ok: 4 manifests at 2.0.0")


def test_check_names_a_drifted_version(tree: Path) -> None:
    core = tree / "packages" / "observabilipy-core" / "pyproject.toml"
    core.write_text(core.read_text().replace('version = "2.0.0"', 'version = "2.0.1"'))

    done = _run_bump("--root", tree, "--check")

    assert done.returncode == 1
    assert (
        "packages/observabilipy-core/pyproject.toml: version 2.0.1, expected 2.0.0" in done.stdout
    )


@pytest.mark.parametrize("pin", ["observabilipy-core>=2.0.0", "observabilipy-core==1.9.0"])
def test_check_names_a_loose_or_stale_pin(
    tree: Path, pin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite = tree / "packages" / "observabilipy-sqlite" / "pyproject.toml"
    sqlite.write_text(sqlite.read_text().replace("observabilipy-core==2.0.0", pin))

    assert bump_version.main(["--root", str(tree), "--check"]) == 1

    out = capsys.readouterr().out
    assert f"requirement '{pin}' must pin exactly observabilipy-core==2.0.0" in out


def test_check_expect_holds_a_release_tag_to_the_version(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bump_version.main(["--root", str(tree), "--check", "--expect", "2.0.0"]) == 0
    assert bump_version.main(["--root", str(tree), "--check", "--expect", "2.0.1"]) == 1
    assert "version 2.0.0, expected 2.0.1" in capsys.readouterr().out


# This repository.


def _project(directory: Path) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((directory / "pyproject.toml").read_text())["project"]
    return project


def _requirements(project: dict[str, Any]) -> list[str]:
    extras = project.get("optional-dependencies", {}).values()
    return [*project.get("dependencies", []), *(r for extra in extras for r in extra)]


def _name(requirement: str) -> str:
    name: str = bump_version.requirement_name(requirement)
    return name


def test_every_distribution_carries_the_workspace_version() -> None:
    version = _project(ROOT)["version"]
    versions = {d.name: _project(d)["version"] for d in DISTRIBUTIONS}

    assert versions == dict.fromkeys(versions, version)


def test_every_sibling_requirement_pins_the_shared_version_of_an_existing_distribution() -> None:
    version = _project(ROOT)["version"]
    names = {isolated_install.normalize(_project(d)["name"]) for d in DISTRIBUTIONS}
    for directory in DISTRIBUTIONS:
        for requirement in _requirements(_project(directory)):
            if bump_version.is_observabilipy(_name(requirement)):
                assert bump_version.pinned_version(requirement) == version, (directory, requirement)
                assert _name(requirement) in names, (
                    f"{requirement} names no packages/* distribution"
                )


def test_the_drift_check_passes_on_this_repository() -> None:
    done = _run_bump("--check")

    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("directory", DISTRIBUTIONS, ids=lambda d: d.name)
def test_every_distribution_has_a_readme(directory: Path) -> None:
    assert (directory / "README.md").is_file()
    assert _project(directory)["readme"] == "README.md"


@pytest.mark.parametrize("directory", DISTRIBUTIONS, ids=lambda d: d.name)
def test_every_distribution_with_code_ships_py_typed(directory: Path) -> None:
    subpackages = [p for p in (directory / "src" / "observabilipy").glob("*") if p.is_dir()]
    for subpackage in subpackages:
        assert (subpackage / "py.typed").is_file(), f"add {subpackage.name}/py.typed"
    if _project(directory)["name"] != "observabilipy":  # the meta-package has no code
        assert subpackages


def test_observabilipy_stays_a_namespace_package() -> None:
    # PEP 420: one observabilipy/__init__.py would shadow every other distribution's part.
    assert list(ROOT.glob("packages/*/src/observabilipy/__init__.py")) == []


def test_core_requires_nothing() -> None:
    assert _project(ROOT / "packages" / "observabilipy-core")["dependencies"] == []


@pytest.mark.parametrize("directory", DISTRIBUTIONS, ids=lambda d: d.name)
def test_every_distribution_requires_only_what_design_allows(directory: Path) -> None:
    project = _project(directory)
    name = isolated_install.normalize(project["name"])
    allowed = isolated_install.ALLOWED_REQUIREMENTS.get(name)
    assert allowed is not None, f"add {name} to ALLOWED_REQUIREMENTS in tools/isolated_install.py"
    extras_allowed = allowed | isolated_install.ALLOWED_EXTRA_REQUIREMENTS.get(name, frozenset())

    assert {_name(r) for r in project.get("dependencies", [])} <= allowed
    for extra, requirements in project.get("optional-dependencies", {}).items():
        assert {_name(r) for r in requirements} <= extras_allowed, extra


# The isolated-install check's judgement of what an installation brought.


def _distribution(name: str, requires: set[str]) -> Any:
    return isolated_install.Distribution(
        name=name,
        directory=Path(),
        subpackage=name.removeprefix("observabilipy-"),
        requires=frozenset(requires),
        extra_requires=frozenset(),
    )


def _wheel(directory: Path, name: str) -> Path:
    wheel = directory / f"{name.replace('-', '_')}-2.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(
            f"{name.replace('-', '_')}-2.0.0.dist-info/RECORD", f"{name}.py,sha256=A,1\n"
        )
    return wheel


@pytest.fixture
def layout(tmp_path: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    distributions = {
        "observabilipy-core": _distribution("observabilipy-core", set()),
        "observabilipy-sqlite": _distribution(
            "observabilipy-sqlite", {"observabilipy-core", "aiosqlite"}
        ),
    }
    return distributions, {name: _wheel(tmp_path, name) for name in distributions}


def _ours(name: str, digest: str = "sha256=A") -> dict[str, Any]:
    return {"requires": [], "files": {f"{name}.py": digest}}


def _theirs(*requires: str) -> dict[str, Any]:
    return {"requires": list(requires), "files": {}}


def test_isolated_install_accepts_allowed_requirements_and_what_they_pull(
    layout: tuple[dict[str, Any], dict[str, Path]],
) -> None:
    distributions, wheels = layout
    installed = {
        "observabilipy-core": _ours("observabilipy-core"),
        "observabilipy-sqlite": _ours("observabilipy-sqlite"),
        "aiosqlite": _theirs("typing-extensions>=4", 'pytest; extra == "dev"'),
        "typing-extensions": _theirs(),
    }

    summary = isolated_install.check_dependencies(
        distributions["observabilipy-sqlite"], distributions, wheels, installed
    )

    assert summary == "2 ours, 2 others"


@pytest.mark.parametrize(
    ("installed", "problem"),
    [
        ({"observabilipy-core": _ours("observabilipy-core"), "six": _theirs()}, "pulled six"),
        (
            {"observabilipy-core": _ours("observabilipy-core", digest="sha256=B")},
            "observabilipy-core is not the wheel built here",
        ),
        (
            {"observabilipy-core": _ours("observabilipy-core"), "observabilipy-sqlite": _ours("x")},
            "installed observabilipy-sqlite, which it does not pin",
        ),
    ],
    ids=["third-party", "foreign-wheel", "unpinned-sibling"],
)
def test_isolated_install_refuses_what_core_must_not_bring(
    layout: tuple[dict[str, Any], dict[str, Path]], installed: dict[str, Any], problem: str
) -> None:
    distributions, wheels = layout

    with pytest.raises(isolated_install.StepError) as failure:
        isolated_install.check_dependencies(
            distributions["observabilipy-core"], distributions, wheels, installed
        )

    assert problem in failure.value.output


def test_isolated_install_refuses_a_requirement_design_does_not_allow(
    layout: tuple[dict[str, Any], dict[str, Path]],
) -> None:
    distributions, wheels = layout
    distributions["observabilipy-core"] = _distribution("observabilipy-core", {"httpx"})
    installed = {"observabilipy-core": _ours("observabilipy-core"), "httpx": _theirs()}

    with pytest.raises(isolated_install.StepError) as failure:
        isolated_install.check_dependencies(
            distributions["observabilipy-core"], distributions, wheels, installed
        )

    assert "observabilipy-core requires httpx, which DESIGN §1 does not allow" in str(
        failure.value.output
    )


def test_isolated_install_lists_the_distributions_for_the_ci_matrix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert isolated_install.main(["--list"]) == 0

    names = {isolated_install.normalize(_project(d)["name"]) for d in DISTRIBUTIONS}
    assert set(json.loads(capsys.readouterr().out)) == names
