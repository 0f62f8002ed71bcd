"""Install each distribution alone in a fresh venv, import it and run its own tests.

DESIGN §1: every distribution installs and passes its tests with only its declared
dependencies. For each distribution in ``packages/*`` (or those named) this tool:

1. builds its wheel, and those of the siblings it pins (they resolve from these wheels,
   never from the workspace's editable installs);
2. installs the wheel into a fresh venv in a temporary directory, with ``--find-links``
   to the wheels just built and pip's normal index for everything else;
3. checks what got installed: exactly the siblings it pins, as built here, and no
   third-party distribution beyond what DESIGN §1 allows it (core: nothing but itself);
4. imports every module of the installed subpackage(s) from outside the repository; a
   module may instead raise ImportError naming the pip command that installs its extra;
5. installs the test-only requirements and runs ``tests/<sub>/`` from a copy outside the
   repository, so that only the installed wheel is importable. The meta-package has no
   tests of its own: it passes when it pulls its pinned distributions and they import.

Usage::

    python tools/isolated_install.py                      # every distribution
    python tools/isolated_install.py observabilipy-core   # only those named
    python tools/isolated_install.py --list               # the names, as JSON (CI matrix)

It uses uv when uv is on PATH (fast, with uv's cache), else venv and pip (pip's cache).
It prints a summary table and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import traceback
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
META = "observabilipy"

# DESIGN §1: what each distribution may require. tests/test_repository.py holds every
# pyproject.toml to these two tables, and this tool holds every installation to the first.
ALLOWED_REQUIREMENTS: dict[str, frozenset[str]] = {
    "observabilipy-core": frozenset(),
    "observabilipy-sqlite": frozenset({"observabilipy-core", "aiosqlite"}),
    "observabilipy-asgi": frozenset({"observabilipy-core"}),
    "observabilipy-fastapi": frozenset({"observabilipy-core", "observabilipy-asgi", "fastapi"}),
    "observabilipy-wsgi": frozenset({"observabilipy-core"}),
    "observabilipy-django": frozenset({"observabilipy-core", "django"}),
    "observabilipy-exporters": frozenset({"observabilipy-core", "httpx"}),
    "observabilipy-otlp": frozenset({"observabilipy-core", "httpx"}),
    "observabilipy-dashboard": frozenset({"observabilipy-core"}),
    # The issue asks for click; `serve` shows the dashboard too.
    "observabilipy-cli": frozenset(
        {
            "observabilipy-core",
            "observabilipy-sqlite",
            "observabilipy-dashboard",
            "httpx",
            "click",
        }
    ),
    META: frozenset(
        {
            "observabilipy-core",
            "observabilipy-sqlite",
            "observabilipy-asgi",
            "observabilipy-dashboard",
        }
    ),
}
# What their extras may add besides (this tool installs no extras; the meta-package's
# extras are other distributions).
ALLOWED_EXTRA_REQUIREMENTS: dict[str, frozenset[str]] = {
    "observabilipy-core": frozenset({"pytest", "pytest-asyncio"}),
    "observabilipy-otlp": frozenset({"opentelemetry-proto"}),
    "observabilipy-cli": frozenset({"textual"}),
    META: frozenset(ALLOWED_REQUIREMENTS) - {META},
}

# What tests/<sub>/ imports beyond the distribution itself. pytest-asyncio is always
# needed: the root pytest settings the tests run with configure it.
BASE_TEST_REQUIREMENTS = ("pytest>=8", "pytest-asyncio>=0.24")
TEST_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "observabilipy-core": ("prometheus-client>=0.20",),
    "observabilipy-sqlite": ("prometheus-client>=0.20",),
    "observabilipy-asgi": ("httpx>=0.27", "uvicorn>=0.30", "starlette>=0.36"),
    "observabilipy-fastapi": ("httpx>=0.27", "uvicorn>=0.30"),
    "observabilipy-wsgi": ("flask>=3", "gunicorn>=22"),
    "observabilipy-django": ("gunicorn>=22", "uvicorn>=0.30"),
    "observabilipy-exporters": ("prometheus-client>=0.20",),
    "observabilipy-otlp": ("opentelemetry-proto>=1.20",),
    "observabilipy-dashboard": ("httpx>=0.27",),
    "observabilipy-cli": ("textual>=0.80",),
}

STEPS = ("build", "install", "dependencies", "imports", "tests")
COMMAND_TIMEOUT = 900  # seconds; a hung step fails instead of blocking CI forever
OUTPUT_TAIL = 60  # lines of a failing command's output to print

_REQUIREMENT_NAME_RE = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
_PYTEST_SUMMARY_RE = re.compile(r"(\d+ \w+(?:, \d+ \w+)*) in [\d.]+s")

# Run by the venv's interpreter: every installed distribution, with its requirements and,
# for ours, the hash of every file (to prove they are the wheels built here).
_INSTALLED_PROBE = """
import importlib.metadata, json, re
found = {}
for dist in importlib.metadata.distributions():
    name = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
    ours = name == "observabilipy" or name.startswith("observabilipy-")
    files = [f for f in dist.files or [] if ours and f.hash]
    found[name] = {
        "requires": dist.requires or [],
        "files": {str(f): f"{f.hash.mode}={f.hash.value}" for f in files},
    }
print(json.dumps(found))
"""

# Run by the venv's interpreter with package names as arguments: import every module,
# report the import errors (with the missing module's name) and where packages were found.
_IMPORT_PROBE = """
import importlib, json, os, pkgutil, sys
prefix = os.path.realpath(sys.prefix) + os.sep
report = {"imported": [], "unimportable": {}, "failed": {}, "outside": []}
for top in sys.argv[1:]:
    names = [top]
    try:
        package = importlib.import_module(top)
        walk = pkgutil.walk_packages(package.__path__, top + ".", onerror=lambda name: None)
        names += [info.name for info in walk]
    except Exception:
        pass
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            report["unimportable"][name] = {"missing": error.name, "error": repr(error)}
            continue
        except Exception as error:
            report["failed"][name] = repr(error)
            continue
        report["imported"].append(name)
        for place in list(getattr(module, "__path__", [])) or [module.__file__ or ""]:
            if not os.path.realpath(place).startswith(prefix):
                report["outside"].append(f"{name}: {place}")
print(json.dumps(report))
"""

# Written next to the copied tests: the session stops unless it imports the installed wheel.
_CONFTEST = """
import os
import sys
from importlib import import_module

_prefix = os.path.realpath(sys.prefix) + os.sep
_outside = [
    place
    for place in import_module(PACKAGE).__path__
    if not os.path.realpath(place).startswith(_prefix)
]
if _outside:
    raise RuntimeError(f"{PACKAGE} was imported from {_outside}, not from the venv under test")
"""


class StepError(Exception):
    """A step of the check failed; ``output`` says why, at length."""

    def __init__(self, summary: str, output: str = "") -> None:
        super().__init__(summary)
        self.summary = summary
        self.output = output or summary


@dataclass(frozen=True)
class Distribution:
    """One distribution of ``packages/*``, as its pyproject.toml declares it."""

    name: str
    directory: Path
    subpackage: str | None  # "core" for observabilipy-core; None for the meta-package
    requires: frozenset[str]  # normalized names of its required distributions
    extra_requires: frozenset[str]  # and of those its extras add


@dataclass
class Result:
    """What happened to one distribution: a detail per step run, and the failure if any."""

    name: str
    details: dict[str, str] = field(default_factory=dict)
    failure: StepError | None = None
    failed_step: str = ""
    seconds: float = 0.0


def normalize(name: str) -> str:
    """Return the PEP 503 normal form of a distribution name.

    >>> normalize("Observabilipy_Core")
    'observabilipy-core'
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """Return the normalized name of a PEP 508 requirement.

    >>> requirement_name("observabilipy-core[testing]==2.0.0")
    'observabilipy-core'
    """
    match = _REQUIREMENT_NAME_RE.match(requirement)
    if match is None:
        raise ValueError(f"cannot read the requirement {requirement!r}")
    return normalize(match[1])


def is_observabilipy(name: str) -> bool:
    """Tell whether a normalized distribution name is one of this repository's.

    >>> is_observabilipy("observabilipy-core"), is_observabilipy("attrs")
    (True, False)
    """
    return name == META or name.startswith(META + "-")


def discover(root: Path = ROOT) -> dict[str, Distribution]:
    """Return every distribution in ``root/packages/*``, by normalized name."""
    found = {}
    for pyproject in sorted(root.glob("packages/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        name = normalize(project["name"])
        source = pyproject.parent / "src" / "observabilipy"
        subpackages = sorted(
            p.name for p in source.glob("*") if p.is_dir() and p.name.isidentifier()
        )
        if len(subpackages) > 1:
            raise SystemExit(
                f"{pyproject.parent}: one subpackage per distribution, not {subpackages}"
            )
        extras = project.get("optional-dependencies", {}).values()
        found[name] = Distribution(
            name=name,
            directory=pyproject.parent,
            subpackage=subpackages[0] if subpackages else None,
            requires=frozenset(requirement_name(r) for r in project.get("dependencies", [])),
            extra_requires=frozenset(requirement_name(r) for extra in extras for r in extra),
        )
    return found


def closure(name: str, distributions: dict[str, Distribution]) -> set[str]:
    """Return ``name`` and every distribution of ours it requires, directly or not."""
    found = {name}
    pending = [name]
    while pending:
        for required in distributions[pending.pop()].requires:
            if is_observabilipy(required) and required not in found:
                if required not in distributions:
                    raise StepError(f"requires {required}, which is not in packages/")
                found.add(required)
                pending.append(required)
    return found


@dataclass(frozen=True)
class Tools:
    """The commands this run uses: uv when given, else the venv module and pip."""

    python: str
    uv: str | None
    workdir: Path

    @property
    def wheels(self) -> Path:
        """The directory every built wheel lands in (pip's --find-links)."""
        return self.workdir / "wheels"

    def run(self, command: Sequence[str | Path], *, cwd: Path | None = None) -> str:
        """Run a command outside the repository; return its output or raise StepError."""
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"}
        }
        argv = [str(part) for part in command]
        try:
            done = subprocess.run(
                argv,
                cwd=cwd or self.workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise StepError(f"timed out after {COMMAND_TIMEOUT}s", " ".join(argv)) from error
        output = done.stdout + done.stderr
        if done.returncode != 0:
            raise StepError(f"exit {done.returncode}", f"$ {' '.join(argv)}\n{output}")
        return done.stdout

    @property
    def builder(self) -> Path:
        """The venv whose pip builds wheels when uv is not used."""
        return self.workdir / "builder"

    def prepare_builds(self) -> None:
        """Make ready for builds: without uv, a venv with pip (an env made by uv has none)."""
        self.wheels.mkdir(exist_ok=True)
        if not self.uv:
            self.create_venv(self.builder)

    def build(self, distribution: Distribution) -> Path:
        """Build one wheel into its own directory; copy it to ``wheels``; return it."""
        out = self.workdir / "build" / distribution.name
        command: list[str | Path]
        if self.uv:
            command = [self.uv, "build", "--wheel", "--python", self.python, "--out-dir", out]
        else:
            pip: list[str | Path] = [venv_python(self.builder), "-m", "pip"]
            command = [*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", out]
        self.run([*command, distribution.directory])
        (wheel,) = out.glob("*.whl")
        return Path(shutil.copy2(wheel, self.wheels))

    def create_venv(self, path: Path) -> Path:
        """Create a fresh venv; return its interpreter."""
        if self.uv:
            self.run([self.uv, "venv", "--quiet", "--python", self.python, path])
        else:
            self.run([self.python, "-m", "venv", path])
        return venv_python(path)

    def install(self, python: Path, *requirements: str | Path) -> None:
        """Install into the venv of ``python``, finding our distributions among the wheels."""
        if self.uv:
            command: list[str | Path] = [self.uv, "pip", "install", "--python", python]
        else:
            command = [python, "-m", "pip", "install", "--quiet"]
        self.run([*command, "--find-links", self.wheels, *requirements])

    def probe(self, python: Path, script: str, *args: str) -> Any:
        """Run a probe script in isolated mode with the venv's interpreter; return its JSON."""
        return json.loads(self.run([python, "-I", "-c", script, *args]))


def venv_python(venv: Path) -> Path:
    """Return the interpreter of a venv."""
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def wheel_hashes(wheel: Path) -> dict[str, str]:
    """Return each file a wheel installs into site-packages, with its RECORD hash."""
    with zipfile.ZipFile(wheel) as archive:
        (record,) = (n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
        rows = csv.reader(io.StringIO(archive.read(record).decode()))
        # Files under <name>.data/ (scripts, headers, data) are installed elsewhere.
        return {
            path: digest
            for path, digest, *_ in rows
            if digest and not path.split("/", 1)[0].endswith(".data")
        }


def check_dependencies(
    distribution: Distribution,
    distributions: dict[str, Distribution],
    wheels: dict[str, Path],
    installed: dict[str, Any],
) -> str:
    """Check what installing ``distribution`` brought; return a summary or raise StepError."""
    expected = closure(distribution.name, distributions)
    ours = {name for name in installed if is_observabilipy(name)}
    problems = [f"did not install {name}, which it pins" for name in sorted(expected - ours)]
    problems += [f"installed {name}, which it does not pin" for name in sorted(ours - expected)]
    for name in sorted(expected & ours):
        files = installed[name]["files"]
        if any(files.get(path) != digest for path, digest in wheel_hashes(wheels[name]).items()):
            problems.append(f"installed {name} is not the wheel built here (from an index?)")
    roots = set()
    for name in sorted(expected):
        allowed = ALLOWED_REQUIREMENTS.get(name)
        if allowed is None:
            problems.append(f"{name} is missing from ALLOWED_REQUIREMENTS in this tool")
            continue
        for required in sorted(distributions[name].requires - allowed):
            problems.append(f"{name} requires {required}, which DESIGN §1 does not allow it")
        roots |= {r for r in distributions[name].requires & allowed if not is_observabilipy(r)}
    reachable = _reachable(roots, installed)
    others = {name for name in installed if not is_observabilipy(name)}
    for name in sorted(others - reachable):
        problems.append(f"pulled {name}, which none of its allowed requirements needs")
    if problems:
        raise StepError(f"{len(problems)} problem(s)", "\n".join(problems))
    return f"{len(ours)} ours, {len(others)} others"


def _reachable(roots: set[str], installed: dict[str, Any]) -> set[str]:
    """Return the installed distributions ``roots`` require, directly or not (extras aside)."""
    found: set[str] = set()
    pending = [name for name in roots if name in installed]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found.add(name)
        for requirement in installed[name]["requires"]:
            # Requirements of the distribution's own extras are not installed.
            if not re.search(r"extra\s*==", requirement):
                required = requirement_name(requirement)
                if required in installed:
                    pending.append(required)
    return found


def check_imports(tools: Tools, python: Path, packages: list[str], extras: set[str]) -> str:
    """Import every module of ``packages`` in the venv; return a summary or raise StepError.

    A module may fail to import for want of an optional extra: when its ImportError names
    the pip command that fixes it (DESIGN §1), or when the missing module is one of the
    ``extras`` requirements. Any other failure is an error, e.g. an undeclared dependency.
    """
    report = tools.probe(python, _IMPORT_PROBE, *packages)
    problems = [f"import {name}: {error}" for name, error in report["failed"].items()]
    problems += [f"not from the venv: {where}" for where in report["outside"]]
    hinted = unhinted = 0
    for name, failure in report["unimportable"].items():
        missing = normalize((failure["missing"] or "").partition(".")[0])
        if "pip install" in failure["error"]:
            hinted += 1
        elif missing in extras:
            unhinted += 1
        else:
            problems.append(f"import {name}: {failure['error']}")
    if problems:
        raise StepError(f"{len(problems)} problem(s)", "\n".join(problems))
    summary = f"{len(report['imported'])} modules"
    if hinted or unhinted:
        summary += f", {hinted + unhinted} skipped (need an extra"
        summary += f"; {unhinted} without a pip hint)" if unhinted else ")"
    return summary


def run_tests(tools: Tools, python: Path, distribution: Distribution, workdir: Path) -> str:
    """Run ``tests/<sub>/`` against the installed wheel; return pytest's summary."""
    sub = distribution.subpackage
    source = ROOT / "tests" / str(sub)
    if not source.is_dir():
        raise StepError(f"no tests/{sub}/: every distribution ships its own tests")
    tools.install(python, *BASE_TEST_REQUIREMENTS, *TEST_REQUIREMENTS.get(distribution.name, ()))
    # The root pytest settings, verbatim; a copy of the tests next to them, outside the
    # repository, so that nothing but the installed wheel can be imported.
    run_dir = workdir / "run"
    (run_dir / "tests").mkdir(parents=True)
    shutil.copy2(ROOT / "pyproject.toml", run_dir / "pyproject.toml")
    if (ROOT / "tests" / "conftest.py").is_file():
        shutil.copy2(ROOT / "tests" / "conftest.py", run_dir / "tests" / "conftest.py")
    shutil.copytree(
        source, run_dir / "tests" / str(sub), ignore=shutil.ignore_patterns("__pycache__")
    )
    (run_dir / "conftest.py").write_text(f"PACKAGE = 'observabilipy.{sub}'\n{_CONFTEST}")
    pytest: list[str | Path] = [python, "-m", "pytest", "-p", "no:cacheprovider", f"tests/{sub}"]
    try:
        output = tools.run(pytest, cwd=run_dir)
    except StepError as error:
        summaries = _PYTEST_SUMMARY_RE.findall(error.output)
        raise StepError(summaries[-1] if summaries else error.summary, error.output) from None
    summaries = _PYTEST_SUMMARY_RE.findall(output)
    return summaries[-1] if summaries else "passed"


class Check:
    """The steps after the build for one distribution, in a working directory of its own."""

    def __init__(
        self,
        distribution: Distribution,
        distributions: dict[str, Distribution],
        wheels: dict[str, Path],
        tools: Tools,
    ) -> None:
        self.distribution = distribution
        self.distributions = distributions
        self.wheels = wheels
        self.tools = tools
        self.workdir = tools.workdir / distribution.name
        self.python = Path()
        self.installed: dict[str, Any] = {}

    def run(self) -> Result:
        """Run every step until one fails; never raise."""
        started = time.monotonic()
        result = Result(self.distribution.name, details={"build": "ok"})
        steps: list[tuple[str, Callable[[], str]]] = [
            ("install", self.install),
            ("dependencies", self.dependencies),
            ("imports", self.imports),
            ("tests", self.tests),
        ]
        for step, action in steps:
            try:
                result.details[step] = action()
            except StepError as failure:
                result.failure, result.failed_step = failure, step
            except Exception as error:  # a bug here must not hide the other distributions
                summary = f"{type(error).__name__}: {error}"
                result.failure = StepError(summary, traceback.format_exc())
                result.failed_step = step
            if result.failure:
                result.details[step] = f"FAILED: {result.failure.summary}"
                break
        result.seconds = time.monotonic() - started
        return result

    def install(self) -> str:
        """Install the wheel alone into a fresh venv; keep what it added to the venv."""
        self.python = self.tools.create_venv(self.workdir / "venv")
        baseline = set(self.tools.probe(self.python, _INSTALLED_PROBE))
        self.tools.install(self.python, self.wheels[self.distribution.name])
        installed = self.tools.probe(self.python, _INSTALLED_PROBE)
        self.installed = {k: v for k, v in installed.items() if k not in baseline}
        return "ok"

    def dependencies(self) -> str:
        """Check that exactly the pinned siblings and allowed third parties came along."""
        return check_dependencies(
            self.distribution, self.distributions, self.wheels, self.installed
        )

    def imports(self) -> str:
        """Import every module of this distribution (of each it pulls, for the meta-package)."""
        own = self.distribution
        members = [
            self.distributions[name] for name in sorted(self.installed) if is_observabilipy(name)
        ]
        walked = [own] if own.subpackage else [m for m in members if m.subpackage]
        packages = [f"observabilipy.{m.subpackage}" for m in walked]
        extras = set().union(*(m.extra_requires for m in walked))
        return check_imports(self.tools, self.python, packages, extras)

    def tests(self) -> str:
        """Run the distribution's own tests against the installed wheel."""
        if self.distribution.subpackage is None:
            return "none (meta)"
        return run_tests(self.tools, self.python, self.distribution, self.workdir)


def build_all(
    names: set[str], distributions: dict[str, Distribution], tools: Tools, jobs: int
) -> tuple[dict[str, Path], dict[str, StepError]]:
    """Build the wheels of ``names``; return the wheels, and why the others failed."""

    def build(name: str) -> Path | StepError:
        try:
            return tools.build(distributions[name])
        except StepError as error:
            return error

    try:
        tools.prepare_builds()
    except StepError as error:
        return {}, dict.fromkeys(names, error)
    wheels, errors = {}, {}
    ordered = sorted(names)
    with ThreadPoolExecutor(jobs) as pool:
        for name, built in zip(ordered, pool.map(build, ordered), strict=True):
            if isinstance(built, Path):
                wheels[name] = built
            else:
                errors[name] = built
    return wheels, errors


def check_all(
    selected: list[str], distributions: dict[str, Distribution], tools: Tools, jobs: int
) -> list[Result]:
    """Build what ``selected`` needs, then check each; print each result as it comes."""
    needs: dict[str, set[str]] = {}
    results = []
    for name in selected:
        try:
            needs[name] = closure(name, distributions)
        except StepError as error:
            results.append(_failed_build(name, error))
    wheels, errors = build_all(set().union(*needs.values()), distributions, tools, jobs)
    checks = []
    for name, members in needs.items():
        broken = sorted(members & errors.keys())
        if broken:
            cause = errors[broken[0]]
            results.append(
                _failed_build(name, StepError(f"{broken[0]} did not build", cause.output))
            )
        else:
            checks.append(Check(distributions[name], distributions, wheels, tools))
    for result in results:
        _report(result)
    with ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(check.run) for check in checks]
        for future in as_completed(futures):
            results.append(future.result())
            _report(results[-1])
    return sorted(results, key=lambda result: result.name)


def _failed_build(name: str, failure: StepError) -> Result:
    """Return the result of a distribution whose wheel, or a sibling's, could not be built."""
    return Result(
        name, details={"build": f"FAILED: {failure.summary}"}, failure=failure, failed_step="build"
    )


def _report(result: Result) -> None:
    """Print one distribution's outcome, with the tail of the failing output."""
    if result.failure is None:
        print(f"{result.name}: ok ({result.seconds:.1f}s)", flush=True)
        return
    print(f"{result.name}: FAILED at {result.failed_step}: {result.failure.summary}")
    tail = result.failure.output.rstrip().splitlines()[-OUTPUT_TAIL:]
    print("\n".join(f"    {line}" for line in tail), flush=True)


def table(results: list[Result]) -> str:
    """Return the summary table: one row per distribution, one column per step."""
    header = ("distribution", *STEPS, "seconds")
    rows = [
        (r.name, *(r.details.get(step, "-") for step in STEPS), f"{r.seconds:.1f}") for r in results
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 all passed, 1 a failure, 2 usage)."""
    parser = argparse.ArgumentParser(
        description="Install each distribution alone in a fresh venv, import it, run its tests."
    )
    parser.add_argument("distributions", nargs="*", help="names from packages/* (default: all)")
    parser.add_argument("--list", action="store_true", help="print the names as JSON and exit")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the venvs")
    parser.add_argument("--pip", action="store_true", help="use venv and pip even if uv is found")
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    distributions = discover()
    if args.list:
        print(json.dumps(sorted(distributions)))
        return 0
    selected = sorted({normalize(name) for name in args.distributions} or distributions)
    unknown = [name for name in selected if name not in distributions]
    if unknown:
        parser.error(f"unknown distribution(s) {unknown}; choose from {sorted(distributions)}")
    uv = None if args.pip else shutil.which("uv")
    print(f"checking {', '.join(selected)} with {'uv' if uv else 'venv and pip'}", flush=True)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="observabilipy-isolated-"))
    try:
        tools = Tools(python=args.python, uv=uv, workdir=workdir)
        results = check_all(selected, distributions, tools, max(1, args.jobs))
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(results))
    failed = [result.name for result in results if result.failure]
    verdict = f"FAILED: {', '.join(failed)}" if failed else "all passed"
    print(f"\n{verdict} in {time.monotonic() - started:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
