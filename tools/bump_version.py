"""Bump, or check, the one version every observabilipy distribution shares.

Every distribution in ``packages/*`` and the workspace root carry the same version, and a
requirement on a sibling distribution pins it exactly (``observabilipy-core==2.0.0``), so
a release is one consistent set. Usage::

    python tools/bump_version.py 2.1.0              # rewrite every version and pin
    python tools/bump_version.py --check            # print any drift, exit 1 if found
    python tools/bump_version.py --check --expect 2.1.0   # a release tag's check

Files are read with tomllib and written by substituting only the version text, so the
layout and comments of each ``pyproject.toml`` stay as they are.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tomllib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The canonical public form of PEP 440 (its appendix B, without local versions, which
# PyPI refuses): 2.1.0, 2.1.0rc1, 2.1.0.post1, 2.1.0.dev3, 1!2.0.
_N = r"(?:0|[1-9][0-9]*)"
VERSION_RE = re.compile(
    rf"(?:[1-9][0-9]*!)?{_N}(?:\.{_N})*(?:(?:a|b|rc){_N})?(?:\.post{_N})?(?:\.dev{_N})?"
)

# A PEP 508 requirement, as far as this tool needs it: name, extras, specifier, marker.
_REQUIREMENT_RE = re.compile(
    r"\s*(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?P<extras>\[[^\]]*\])?"
    r"\s*(?P<spec>[^;]*?)\s*(?:;(?P<marker>.*))?"
)
_EXACT_PIN_RE = re.compile(r"==\s*(?P<version>[^\s,;]+)")
_TABLE_RE = re.compile(r"\s*\[\[?\s*(?P<table>[^\[\]]+?)\s*\]\]?\s*(?:#.*)?")
_VERSION_LINE_RE = re.compile(r"(?P<head>\s*version\s*=\s*)(?P<quote>[\"'])[^\"']*(?P=quote)")
# One TOML string on one line, either quote, no escapes: a requirement with a marker
# holds the other quote ("observabilipy-core==2.0.0; python_version >= '3.11'").
_QUOTED_RE = re.compile(r"(?P<quote>[\"'])(?P<text>(?:(?!(?P=quote))[^\n\\])*)(?P=quote)")


class BumpError(Exception):
    """A manifest this tool cannot read or rewrite; the message names the file and the fix."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """What one ``pyproject.toml`` says about versions.

    ``pins`` holds every requirement on an observabilipy distribution, in
    ``dependencies`` and in ``optional-dependencies``, as written.
    """

    path: Path
    version: str
    pins: tuple[str, ...]


def normalize_name(name: str) -> str:
    """Return the PEP 503 normal form of a distribution name.

    >>> normalize_name("Observabilipy_Core")
    'observabilipy-core'
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def is_observabilipy(name: str) -> bool:
    """Tell whether a distribution name is one of this repository's.

    >>> is_observabilipy("observabilipy-sqlite"), is_observabilipy("observabilipy")
    (True, True)
    >>> is_observabilipy("observabilipyish")
    False
    """
    normal = normalize_name(name)
    return normal == "observabilipy" or normal.startswith("observabilipy-")


def requirement_name(requirement: str) -> str:
    """Return the normalized distribution name a PEP 508 requirement names.

    >>> requirement_name("observabilipy-core[testing]==2.0.0; python_version >= '3.11'")
    'observabilipy-core'
    """
    match = _REQUIREMENT_RE.fullmatch(requirement)
    if match is None:
        raise BumpError(f"cannot read the requirement {requirement!r}; write it as PEP 508")
    return normalize_name(match["name"])


def pinned_version(requirement: str) -> str | None:
    """Return the version a requirement pins exactly, or None if it is not an exact pin.

    >>> pinned_version("observabilipy-core[testing] == 2.0.0")
    '2.0.0'
    >>> pinned_version("observabilipy-core>=2.0.0") is None
    True
    """
    match = _REQUIREMENT_RE.fullmatch(requirement)
    if match is None:
        return None
    pin = _EXACT_PIN_RE.fullmatch(match["spec"])
    return pin["version"] if pin else None


def is_valid_version(version: str) -> bool:
    """Tell whether ``version`` is a public PEP 440 version in canonical form.

    >>> [is_valid_version(v) for v in ("2.1.0", "2.1.0rc1", "v2.1.0", "2.1.0-beta")]
    [True, True, False, False]
    """
    return VERSION_RE.fullmatch(version) is not None


def manifest_paths(root: Path) -> list[Path]:
    """Return the workspace's ``pyproject.toml`` and those of every ``packages/*``."""
    return [root / "pyproject.toml", *sorted(root.glob("packages/*/pyproject.toml"))]


def read_manifest(path: Path, text: str | None = None) -> Manifest:
    """Read the static version and sibling requirements of one ``pyproject.toml``.

    ``text`` stands for the file's content when given (a rewrite not yet written).
    """
    try:
        source = path.read_text(encoding="utf-8") if text is None else text
        project = tomllib.loads(source)["project"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as error:
        raise BumpError(f"{path}: cannot read its [project] table ({error})") from error
    version = project.get("version")
    if not isinstance(version, str):
        raise BumpError(f'{path}: [project] needs a static `version = "..."`')
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    pins = tuple(r for r in requirements if is_observabilipy(requirement_name(r)))
    return Manifest(path=path, version=version, pins=pins)


def find_drift(root: Path = ROOT, *, expect: str | None = None) -> list[str]:
    """Return one line per version or pin that differs from the shared version.

    The shared version is ``expect`` when given, else the one most manifests carry
    (the workspace root's on a tie). An empty list means no drift.
    """
    manifests = [read_manifest(path) for path in manifest_paths(root)]
    counts = Counter(m.version for m in manifests)
    target = expect or max(counts, key=lambda v: (counts[v], v == manifests[0].version))
    problems = []
    for manifest in manifests:
        where = manifest.path.relative_to(root)
        if manifest.version != target:
            problems.append(f"{where}: version {manifest.version}, expected {target}")
        for requirement in manifest.pins:
            if pinned_version(requirement) != target:
                name = requirement_name(requirement)
                problems.append(
                    f"{where}: requirement {requirement!r} must pin exactly {name}=={target}"
                )
    return problems


def _tables(text: str) -> Iterator[tuple[str, str]]:
    """Yield each line of a TOML text with the table it belongs to ("" before any)."""
    table = ""
    for line in text.splitlines(keepends=True):
        header = _TABLE_RE.fullmatch(line.rstrip("\r\n"))
        if header:
            table = header["table"]
        yield table, line


def _rewrite_pin(match: re.Match[str], version: str) -> str:
    """Return a quoted string with its exact observabilipy pin moved to ``version``."""
    text = match["text"]
    requirement = _REQUIREMENT_RE.fullmatch(text)
    if requirement is None or not is_observabilipy(requirement["name"]):
        return match[0]
    pin = _EXACT_PIN_RE.fullmatch(requirement["spec"])
    if pin is None:
        return match[0]
    start = requirement.start("spec") + pin.start("version")
    end = requirement.start("spec") + pin.end("version")
    return f"{match['quote']}{text[:start]}{version}{text[end:]}{match['quote']}"


def rewrite(text: str, version: str) -> str:
    """Return a ``pyproject.toml`` text with its version and sibling pins set to ``version``.

    Only the version texts change: layout, comments and other requirements stay.

    >>> print(rewrite('[project]\\nversion = "2.0.0"  # shared\\n'
    ...               'dependencies = ["observabilipy-core==2.0.0", "attrs==2.0.0"]\\n', "2.1.0"))
    [project]
    version = "2.1.0"  # shared
    dependencies = ["observabilipy-core==2.1.0", "attrs==2.0.0"]
    <BLANKLINE>
    """
    lines = []
    for table, line in _tables(text):
        if table == "project":
            line = _VERSION_LINE_RE.sub(
                lambda m: f"{m['head']}{m['quote']}{version}{m['quote']}", line, count=1
            )
        lines.append(_QUOTED_RE.sub(lambda m: _rewrite_pin(m, version), line))
    return "".join(lines)


def bump(root: Path, version: str) -> list[Path]:
    """Set every manifest's version and sibling pins to ``version``; return the changed files.

    Nothing is written unless every manifest can be rewritten consistently.
    """
    if not is_valid_version(version):
        raise BumpError(
            f"version {version!r} is not a public PEP 440 version; "
            "use a form like 2.1.0, 2.1.0rc1, 2.1.0.post1 or 2.1.0.dev1 (no leading 'v')"
        )
    changed = {}
    for path in manifest_paths(root):
        old = path.read_text(encoding="utf-8")
        read_manifest(path, old)  # an unreadable manifest is an error before any write
        new = rewrite(old, version)
        _check_rewritten(read_manifest(path, new), version)
        if new != old:
            changed[path] = new
    for path, new in changed.items():
        partial = path.with_name(path.name + ".bump")
        partial.write_text(new, encoding="utf-8")
        os.replace(partial, path)
    return list(changed)


def _check_rewritten(manifest: Manifest, version: str) -> None:
    """Raise BumpError unless a rewritten manifest carries ``version`` everywhere."""
    if manifest.version != version:
        raise BumpError(f'{manifest.path}: cannot find its `version = "..."` line in [project]')
    for requirement in manifest.pins:
        if pinned_version(requirement) != version:
            raise BumpError(
                f"{manifest.path}: requirement {requirement!r} is not an exact pin; "
                f"write it as {requirement_name(requirement)}==<version> and run again"
            )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 drift, 2 usage error)."""
    parser = argparse.ArgumentParser(
        description="Bump, or check, the one version every observabilipy distribution shares."
    )
    parser.add_argument("version", nargs="?", help="the new version, e.g. 2.1.0")
    parser.add_argument("--check", action="store_true", help="report drift, exit 1 if any")
    parser.add_argument("--expect", help="with --check: the version everything must carry")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository root")
    args = parser.parse_args(argv)
    if args.check == (args.version is not None):
        parser.error("give either a new version or --check")
    if args.expect is not None and not args.check:
        parser.error("--expect goes with --check")
    if args.expect is not None and not is_valid_version(args.expect):
        parser.error(f"--expect {args.expect!r} is not a PEP 440 version (no leading 'v')")
    try:
        if args.check:
            problems = find_drift(args.root, expect=args.expect)
            if problems:
                print("version drift:", *problems, sep="\n  ")
                print("fix: python tools/bump_version.py <version>")
                return 1
            manifests = [read_manifest(path) for path in manifest_paths(args.root)]
            version = manifests[0].version
            print(f"ok: {len(manifests)} manifests at {version}, every sibling pin exact")
            return 0
        changed = bump(args.root, args.version)
    except BumpError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"updated {path.relative_to(args.root)}")
    print(f"every distribution is now at {args.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
