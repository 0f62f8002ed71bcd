"""How the commands print: log lines, tables, and colours only where they belong.

Text that comes from the application (messages, attribute values, label
values) has its control characters escaped before it reaches a terminal, so
a log message cannot move the cursor or change the terminal's title.

>>> print(log_line(1714564800.25, "ERROR", "payment failed", {"order": 17, "who": "a b"}))
2024-05-01T12:00:00.250Z ERROR    payment failed  order=17 who="a b"
>>> print(table(["NAME", "VALUE"], [["up", "1"], ["jobs_total", "3"]]))
NAME        VALUE
up          1
jobs_total  3
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any, Final

import click

from observabilipy.cli.times import format_time

__all__ = ["escape", "format_attributes", "level_style", "log_line", "table", "use_colour"]

_LEVEL_STYLES: Final[dict[str, dict[str, Any]]] = {
    "DEBUG": {"dim": True},
    "INFO": {"fg": "green"},
    "WARNING": {"fg": "yellow"},
    "ERROR": {"fg": "red"},
    "CRITICAL": {"fg": "red", "bold": True, "reverse": True},
}
# C0 and C1 controls and DEL: what a terminal would act on.
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_PLAIN_RE: Final = re.compile(r"[^\s\"'=\\]+")


def use_colour(choice: str, stream: IO[str] | None = None) -> bool:
    """Whether to colour: ``always``, ``never``, or ``auto`` (a terminal, and no ``NO_COLOR``).

    >>> use_colour("always"), use_colour("never")
    (True, False)
    """
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    return (sys.stdout if stream is None else stream).isatty()


def escape(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\n``, ``\\x1b``).

    >>> escape("line 1\\nline 2 \\x1b[31m")
    'line 1\\\\nline 2 \\\\x1b[31m'
    """
    if not _CONTROL_RE.search(text):
        return text
    return _CONTROL_RE.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def format_attributes(attributes: Mapping[str, Any]) -> str:
    """``key=value`` pairs; values with spaces or quotes are JSON-quoted.

    >>> format_attributes({"user": "ann", "path": "/a b", "n": 2, "ok": True, "none": None})
    'user=ann path="/a b" n=2 ok=true none=null'
    """
    pairs = []
    for key, value in attributes.items():
        if isinstance(value, str) and _PLAIN_RE.fullmatch(value):
            shown = value
        else:
            shown = json.dumps(value, ensure_ascii=False, default=str)
        pairs.append(f"{escape(str(key))}={escape(shown)}")
    return " ".join(pairs)


def level_style(level: str) -> dict[str, Any]:
    """The ``click.style`` arguments of ``level`` (none for an unknown level)."""
    return _LEVEL_STYLES.get(level, {})


def log_line(
    timestamp: float,
    level: str,
    message: str,
    attributes: Mapping[str, Any],
    *,
    colour: bool = False,
) -> str:
    """One entry as ``tail`` and ``query`` print it: time, level, message, attributes.

    >>> log_line(0.0, "INFO", "hi", {}, colour=True)
    '1970-01-01T00:00:00.000Z \\x1b[32mINFO    \\x1b[0m hi'
    """
    shown_level = f"{escape(level):<8}"
    if colour:
        shown_level = click.style(shown_level, **level_style(level))
    line = f"{format_time(timestamp)} {shown_level} {escape(message)}"
    if attributes:
        extra = format_attributes(attributes)
        line += "  " + (click.style(extra, dim=True) if colour else extra)
    return line


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows in columns as wide as their widest cell, two spaces apart; the last is not padded."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = []
    for row in (headers, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)
