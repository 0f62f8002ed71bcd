"""The command line itself: help on every command, version, completion, entry points, errors."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from observabilipy.cli.app import main

if TYPE_CHECKING:
    from tests.cli._cli_support import COMMAND
else:
    from _cli_support import COMMAND

COMMANDS = ["tail", "metrics", "query", "serve", "top"]


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)])
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: observabilipy {' '.join(command)}".rstrip())
    if not command:
        for name in COMMANDS:
            assert f"\n  {name} " in result.output


def test_version_is_the_distributions() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert (
        result.output
        == f"observabilipy, version {importlib.metadata.version('observabilipy-cli')}\n"
    )


def test_console_script_runs_the_same_main() -> None:
    (script,) = importlib.metadata.entry_points(group="console_scripts", name="observabilipy")
    assert script.load() is main
    launcher = Path(sys.executable).with_name("observabilipy")
    if not launcher.exists():
        pytest.skip("the console script is not installed next to this interpreter")
    result = subprocess.run([launcher, "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout.startswith("observabilipy, version ")


def test_shell_completion_completes_commands_and_options() -> None:
    """What bash asks through _OBSERVABILIPY_COMPLETE (see docs/cli.md)."""
    env = {**os.environ, "_OBSERVABILIPY_COMPLETE": "bash_source"}
    script = subprocess.run(COMMAND, env=env, capture_output=True, text=True, timeout=30)
    assert script.returncode == 0
    assert "_observabilipy_completion" in script.stdout
    assert "complete -o nosort -F _observabilipy_completion observabilipy" in script.stdout

    def complete(words: str) -> list[str]:
        env = {
            **os.environ,
            "_OBSERVABILIPY_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
        done = subprocess.run(COMMAND, env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert "plain,tail" in complete("observabilipy ta")
    assert "plain,--min-level" in complete("observabilipy tail http://x --min")
    assert {"plain,table", "plain,json", "plain,ndjson"} <= set(
        complete("observabilipy query app.db --format ")
    )


@pytest.mark.parametrize(
    ("args", "status", "expected"),
    [
        (["tail"], 2, "Error: Missing argument 'URL'. (see 'observabilipy tail --help')"),
        (["tail", "http://x", "--bogus"], 2, "Error: No such option"),
        (["nope"], 2, "Error: No such command 'nope'."),
        (
            ["query", "app.db", "--level", "loud"],
            2,
            "Error: Invalid value for '--level': 'loud' is not one of DEBUG, INFO, WARNING",
        ),
        (["tail", "http://x", "--since", "soon"], 1, "Error: --since: 'soon' is not a duration"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], status: int, expected: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == status
    assert result.output.count("\n") == 1, result.output
    assert result.output.startswith(expected)
    assert "Traceback" not in result.output
